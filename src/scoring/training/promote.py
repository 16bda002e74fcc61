"""Promotion: ``challenger`` becomes ``champion`` only through a gate, measured on the same data.

The gate scores both versions on the latest out-of-time test data the warehouse holds now (the
credit evaluation's test snapshot, or the pre-credit models' test loans) and checks:

- binary models: the challenger's AUC is not below the champion's; the challenger's observed bad
  rate strictly rises from A to D; the PSI between the two versions' scores is below 0.1 (the
  grades supervisors and banks see would not jump);
- the amount model: the challenger's quantile (pinball) loss is not above the champion's; the PSI
  between the two versions' log amounts is below 0.1.

Figures and verdict are written as tags on the challenger's version, whatever the outcome; a forced
promotion also records who forced it and why.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from scoring.data.ingest import connect, extract_date_of
from scoring.domain.scorer import AmountScorer, Scorer
from scoring.errors import ScoringError
from scoring.features.catalog import load_catalog
from scoring.registry.versions import load_scorer
from scoring.settings import Settings
from scoring.training.errors import TrainingError
from scoring.training.metrics import grade_table
from scoring.training.report import amount_metrics, grades_ordered, psi
from scoring.training.rows import choose_as_of_dates, data_start, evaluation_frame
from scoring.training.spec import VintageSplit, load_amount_spec, load_spec

PSI_LIMIT = 0.1
EVALUATION = "credit_evaluation"
DEFAULT = "pre_credit_default"
AMOUNT = "pre_credit_amount"
MODELS = (EVALUATION, DEFAULT, AMOUNT)


class PromotionError(ScoringError, RuntimeError):
    """Promotion cannot be decided (no challenger, a version cannot score the current data, ...)."""

    code = "promotion_undecided"
    status = None
    title_zh = "无法判定是否晋级"


@dataclass
class GateResult:
    model: str
    challenger: str
    champion: str | None
    data: str
    figures: dict[str, float] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(self.checks.values())

    def tags(self) -> dict[str, str]:
        out = {f"gate.{k}": f"{v:.6g}" for k, v in self.figures.items()}
        out.update({f"gate.check.{k}": str(v).lower() for k, v in self.checks.items()})
        out.update(
            {
                "gate.verdict": "pass" if self.passed else "fail",
                "gate.champion_version": self.champion or "none",
                "gate.data": self.data,
                "gate.at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            }
        )
        return out


def _version(client: Any, name: str, alias: str) -> str | None:
    import mlflow

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except mlflow.exceptions.MlflowException:
        return None


def _load(name: str, version: str) -> Scorer | AmountScorer:
    try:
        return load_scorer(name, version).scorer
    except ValueError as exc:
        raise PromotionError(str(exc)) from exc


def test_data(settings: Settings, model: str) -> tuple[pd.DataFrame, str]:
    """(rows with features and outcome, a description) of the model's out-of-time test data now."""
    catalog = load_catalog(settings.catalog_path)
    with connect(settings.warehouse_path, memory_limit=settings.duckdb_memory_limit) as con:
        extract, start = extract_date_of(con), data_start(con)
        if model == EVALUATION:
            spec = load_spec(settings.model_spec_path(model))
            _, test_date = choose_as_of_dates(spec, start=start, extract=extract)
            return evaluation_frame(con, catalog, test_date), f"enterprises as of {test_date}"
        from scoring.training.precredit import choose_vintages, loan_frame

        split = load_spec(settings.model_spec_path(DEFAULT)).split
        assert isinstance(split, VintageSplit)  # the spec's validator guarantees it for default_12m
        vintages = choose_vintages(split, start=start, extract=extract)
        loans, _ = loan_frame(con, catalog, vintages=vintages, split=split, extract=extract)
    test = loans[loans["start_date"] >= vintages.test_from].reset_index(drop=True)
    if model == AMOUNT:
        from scoring.training.precredit import performing

        test = performing(test)
    data = f"loans started {vintages.test_from} to {vintages.test_before - dt.timedelta(days=1)}"
    if test.empty:
        raise PromotionError(f"{model}: no test rows among the {data}")
    return test, data


def _matrix(scorer: Scorer | AmountScorer, frame: pd.DataFrame) -> np.ndarray:
    missing = [f for f in scorer.config.features if f not in frame.columns]
    if missing:
        raise PromotionError(f"{scorer.config.model_name}: the current catalog no longer has {missing[:5]}")
    return scorer.matrix(frame)


def evaluate_gate(settings: Settings, model: str, *, challenger: str | None = None) -> GateResult:
    """Score champion and challenger on the same current test data and apply the gate."""
    from scoring.registry.versions import configure

    if model not in MODELS:
        raise PromotionError(f"unknown model {model!r}: one of {', '.join(MODELS)}")
    client = configure(settings)
    challenger = challenger or _version(client, model, settings.challenger_alias)
    if challenger is None:
        raise PromotionError(f"{model} has no {settings.challenger_alias}: train one with `scoring retrain`")
    champion = _version(client, model, settings.model_alias)
    frame, data = test_data(settings, model)
    result = GateResult(model=model, challenger=challenger, champion=champion, data=data)
    new = _load(model, challenger)
    old = _load(model, champion) if champion and champion != challenger else None
    x_new = _matrix(new, frame)
    if model == AMOUNT:
        assert isinstance(new, AmountScorer)
        spec = load_amount_spec(settings.model_spec_path(AMOUNT))
        actual = np.log(frame["amount"].to_numpy(dtype=float))
        mine = amount_metrics(actual, new.log_amount(x_new), spec.alpha)
        result.figures.update({"challenger_loss": mine.get("pinball_loss", mine["rmse_log"])})
        result.figures["challenger_coverage"] = mine["coverage"]
        if isinstance(old, AmountScorer):
            theirs = amount_metrics(actual, old.log_amount(_matrix(old, frame)), spec.alpha)
            result.figures["champion_loss"] = theirs.get("pinball_loss", theirs["rmse_log"])
            result.figures["log_amount_psi"] = psi(old.log_amount(_matrix(old, frame)), new.log_amount(x_new))
            result.checks["loss_not_above_champion"] = (
                result.figures["challenger_loss"] <= result.figures["champion_loss"]
            )
            result.checks["psi_below_0.1"] = result.figures["log_amount_psi"] < PSI_LIMIT
        return result
    assert isinstance(new, Scorer)
    from sklearn.metrics import roc_auc_score

    y = frame["adverse" if model == EVALUATION else "default_12m"].to_numpy()
    if y.min() == y.max():
        raise PromotionError(f"{model}: every outcome on {data} is {y.min()}: AUC is undefined, the gate cannot decide")
    decided = new.decide(x_new)
    result.figures["challenger_auc"] = float(roc_auc_score(y, decided["probability"]))
    order = [g.grade for g in new.config.grades]
    table = grade_table(y, decided["grade"].to_numpy(), order)
    for g in order:
        result.figures[f"bad_rate_{g}"] = float(table.loc[g, "bad_rate"])
    result.checks["grades_ordered"] = grades_ordered(table)
    if isinstance(old, Scorer):
        before = old.decide(_matrix(old, frame))
        result.figures["champion_auc"] = float(roc_auc_score(y, before["probability"]))
        result.figures["score_psi"] = psi(before["score"].to_numpy(), decided["score"].to_numpy())
        result.checks["auc_not_below_champion"] = result.figures["challenger_auc"] >= result.figures["champion_auc"]
        result.checks["score_psi_below_0.1"] = result.figures["score_psi"] < PSI_LIMIT
    return result


def promote(
    settings: Settings, model: str, *, force: bool = False, reason: str | None = None, by: str | None = None
) -> tuple[GateResult, bool]:
    """Evaluate the gate and move ``champion`` to the challenger when it passes (or when forced with a
    reason); return (the gate, whether it moved). The gate's figures are tagged on the challenger."""
    from scoring.registry.versions import configure

    if force and not (reason and reason.strip()):
        raise PromotionError("--force needs a reason: it is recorded with the promotion")
    gate = evaluate_gate(settings, model)
    client = configure(settings)
    tags = gate.tags()
    moved = gate.passed or force
    if force and not gate.passed:
        tags.update(
            {"gate.forced": "true", "gate.force_reason": (reason or "").strip(), "gate.forced_by": by or _user()}
        )
    for key, value in tags.items():
        client.set_model_version_tag(model, gate.challenger, key, value)
    if moved:
        if gate.champion and gate.champion != gate.challenger:
            client.set_model_version_tag(model, gate.champion, "replaced_by", gate.challenger)
        client.set_registered_model_alias(model, settings.model_alias, gate.challenger)
        client.delete_registered_model_alias(model, settings.challenger_alias)
    return gate, moved


def _user() -> str:
    try:
        return os.environ.get("SCORING_USER") or getpass.getuser()
    except OSError:
        return "unknown"


__all__ = ["GateResult", "PromotionError", "TrainingError", "evaluate_gate", "promote", "test_data"]
