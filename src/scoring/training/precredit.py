"""Train the 信易贷 pre-credit models from the loan outcomes banks report.

Two models, trained on the same loans: the default model (probability of 90+ days past due within
12 months of the loan's start) and the amount model (a prudent quantile of the log amount that
similar enterprises borrowed and repaid). The policy in models/pre_credit_policy.yaml combines them
with the credit evaluation into a limit (scoring.domain.policy).

Out of time by vintage: the test loans started in the latest months whose 12-month outcome is
complete; the training loans started in the months before. A loan's features are the enterprise's
catalog values in the latest snapshot at or before its start month, on a grid of month starts, so
they read only records dated before the loan started. The declined applications of the same vintages
are read the same way for reject inference (scoring.training.reject), measured wherever their
counterfactual outcomes are known (synthetic data).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from scoring.data.ingest import connect, data_fingerprint, extract_date_of
from scoring.domain.scorer import AmountConfig, AmountScorer, Scorer, ScorerConfig, encode_matrix
from scoring.explain.summary import summary_figure
from scoring.features.build import SNAPSHOT_TABLE, ensure_snapshots
from scoring.features.catalog import Catalog, catalog_hash, load_catalog
from scoring.features.labels import build_loan_labels, window_end
from scoring.settings import Settings
from scoring.training.cards import amount_card, default_card
from scoring.training.errors import TrainingError
from scoring.training.fit import feature_names, fit, scorer_config
from scoring.training.reject import assess, declined_labels
from scoring.training.report import (
    amount_metrics,
    binary_report,
    calibration_figure,
    importance_figure,
    roc_figure,
    shap_importance,
)
from scoring.training.rows import add_months, data_start, holdout_mask
from scoring.training.spec import AmountSpec, ModelSpec, VintageSplit, load_amount_spec, load_spec, spec_hash
from scoring.training.tracking import RunRecord, TrainResult, code_version, log_run

DEFAULT_SPEC = "pre_credit_default"
AMOUNT_SPEC = "pre_credit_amount"
POLICY = "pre_credit_policy"


@dataclass(frozen=True)
class Vintages:
    """Loan start months: train in [train_from, test_from), test in [test_from, test_before)."""

    train_from: dt.date
    test_from: dt.date
    test_before: dt.date


def choose_vintages(split: VintageSplit, *, start: dt.date, extract: dt.date) -> Vintages:
    """The latest test vintages whose 12-month outcome windows all end by ``extract``, and the
    training vintages before them (none earlier than ``min_history_months`` after ``start``)."""
    test_before = dt.date(extract.year, extract.month, 1)
    while window_end(test_before - dt.timedelta(days=1)) > extract:
        test_before = add_months(test_before, -1)
    test_from = add_months(test_before, -split.test_vintage_months)
    train_from = max(add_months(test_from, -split.train_vintage_months), add_months(start, split.min_history_months))
    if train_from >= test_from:
        raise TrainingError(
            f"no loan vintage has {split.min_history_months} months of history before it and a complete "
            f"12-month outcome before the test vintages from {test_from}: data from {start} to {extract} is too short"
        )
    return Vintages(train_from=train_from, test_from=test_from, test_before=test_before)


def snapshot_dates(as_of: pd.Series, *, anchor: dt.date, every: int) -> pd.Series:
    """For each loan month, the latest month start at or before it on the grid ``anchor - k * every``."""
    months = (anchor.year - as_of.dt.year) * 12 + (anchor.month - as_of.dt.month)
    back = -(-months // every) * every  # ceil to the grid
    return pd.Series([add_months(anchor, -int(k)) for k in back], index=as_of.index, dtype="datetime64[ns]").dt.date


def loan_frame(
    con: Any, catalog: Catalog, *, vintages: Vintages, split: VintageSplit, extract: dt.date
) -> tuple[pd.DataFrame, int]:
    """(loans started in the vintages with their outcome and features, loans without a snapshot row).

    Reads records dated before each loan's snapshot date for its features, and the loan's own
    outcome window for its labels.
    """
    labels = build_loan_labels(con, start_from=vintages.train_from, start_before=vintages.test_before)
    if labels.empty:
        raise TrainingError(f"no loans started between {vintages.train_from} and {vintages.test_before}")
    return with_features(con, catalog, labels, split=split, extract=extract)


def declined_frame(
    con: Any, catalog: Catalog, *, vintages: Vintages, split: VintageSplit, extract: dt.date
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training, test) declined applications of the vintages with their features, as :func:`loan_frame`
    reads loans: the decision date stands for the start of the loan that was not made (拒绝推断)."""
    labels = declined_labels(con, start_from=vintages.train_from, start_before=vintages.test_before)
    if labels.empty:
        return labels, labels
    frame, _ = with_features(con, catalog, labels, split=split, extract=extract)
    is_test = (frame["start_date"] >= vintages.test_from).to_numpy()
    return frame[~is_test].reset_index(drop=True), frame[is_test].reset_index(drop=True)


def with_features(
    con: Any, catalog: Catalog, labels: pd.DataFrame, *, split: VintageSplit, extract: dt.date
) -> tuple[pd.DataFrame, int]:
    """(labelled rows joined to their snapshot's features, rows without a snapshot row): each row
    (uscc, as_of, start_date, loan_id) reads the latest snapshot on the grid at or before ``as_of``."""
    anchor = dt.date(extract.year, extract.month, 1)
    labels["snapshot"] = snapshot_dates(
        pd.to_datetime(labels["as_of"]), anchor=anchor, every=split.snapshot_every_months
    )
    ensure_snapshots(con, catalog, as_of_dates=sorted(set(labels["snapshot"])))
    # a temporary table from the DataFrame (DuckDB's replacement scan of the local ``labels``)
    con.execute("CREATE OR REPLACE TEMP TABLE loan_labels AS SELECT * FROM labels")
    try:
        frame = con.execute(
            f"SELECT l.*, f.* EXCLUDE (uscc, as_of) FROM loan_labels l "  # nosec B608 # SNAPSHOT_TABLE
            f"JOIN {SNAPSHOT_TABLE} f "
            "ON f.uscc = l.uscc AND f.as_of = l.snapshot ORDER BY l.start_date, l.loan_id"
        ).df()
    finally:
        con.execute("DROP TABLE IF EXISTS loan_labels")
    frame["start_date"] = pd.to_datetime(frame["start_date"]).dt.date
    return frame, len(labels) - len(frame)


def lineage_now(settings: Settings) -> dict[str, str]:
    """Hashes of the data, catalog, both specs and the policy a pre-credit model would be trained on now."""
    with connect(settings.warehouse_path, read_only=True) as con:
        data = data_fingerprint(con)
    parts = {
        "data_fingerprint": data,
        "catalog_hash": catalog_hash(settings.catalog_path),
        "spec_hash": spec_hash(settings.model_spec_path(DEFAULT_SPEC)),
        "amount_spec_hash": spec_hash(settings.model_spec_path(AMOUNT_SPEC)),
        "policy_hash": spec_hash(settings.model_spec_path(POLICY)),
    }
    parts["fingerprint"] = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]
    return parts


def fit_amount(
    spec: AmountSpec, catalog: Catalog, train: pd.DataFrame, *, seed: int
) -> tuple[lgb.Booster, dict[str, Any]]:
    """LightGBM on the log amount of repaid loans, early-stopped on a holdout of enterprises."""
    names = feature_names(spec, catalog)
    categories = catalog.categories_of(names)
    matrix = encode_matrix(train, names, categories)
    y = np.log(train["amount"].to_numpy(dtype=float))
    is_held = holdout_mask(train, spec.split.holdout_fraction, seed)
    if (~is_held).sum() < 50 or is_held.sum() < 10:
        raise TrainingError(
            f"too few repaid loans to train {spec.name}: {int((~is_held).sum())} to fit, {int(is_held.sum())} held out "
            "(need 50 and 10)"
        )
    params = {k: v for k, v in spec.lightgbm.items() if k not in ("num_boost_round", "early_stopping_rounds")}
    params["objective"] = spec.objective
    if spec.alpha is not None:
        params["alpha"] = spec.alpha
    cats = [i for i, n in enumerate(names) if catalog.feature(n).is_categorical]
    dtrain = lgb.Dataset(matrix[~is_held], y[~is_held], feature_name=names, categorical_feature=cats)
    dvalid = lgb.Dataset(matrix[is_held], y[is_held], reference=dtrain)
    booster = lgb.train(
        params,
        dtrain,
        num_boost_round=int(spec.lightgbm.get("num_boost_round", 500)),
        valid_sets=[dvalid],
        valid_names=["holdout"],
        callbacks=[lgb.early_stopping(int(spec.lightgbm.get("early_stopping_rounds", 50)), verbose=False)],
    )
    info = {"best_iteration": booster.best_iteration, "n_fit": int((~is_held).sum()), "n_holdout": int(is_held.sum())}
    return booster, info


def amount_config(spec: AmountSpec, catalog: Catalog, names: list[str], *, lineage: dict[str, Any]) -> AmountConfig:
    """What the amount model is served with besides its booster (the counterpart of ``scorer_config``)."""
    return AmountConfig(
        model_name=spec.name,
        features=names,
        labels_zh={n: catalog.feature(n).label_zh for n in names},
        categories=catalog.categories_of(names),
        objective=spec.objective,
        alpha=spec.alpha,
        lineage=lineage,
    )


def performing(loans: pd.DataFrame) -> pd.DataFrame:
    """The loans the amount model learns from: no 90+ days past due within 12 months of the start
    (repaid, or still current after 12 months: a 24-month loan cannot be repaid within the window)."""
    return loans[loans["default_12m"] == 0].reset_index(drop=True)


@dataclass
class PreCreditResult:
    default: TrainResult
    amount: TrainResult


def train_pre_credit(
    settings: Settings, *, register: bool = True, progress: Callable[[str], None] | None = None
) -> PreCreditResult:
    """Train the default and amount models on the loans banks reported, validate them out of time
    by vintage, log both runs to MLflow and register them (``champion`` if first, else ``challenger``)."""
    from scoring.registry.versions import configure, ensure_experiment

    say = progress or (lambda _msg: None)
    default_spec = load_spec(settings.model_spec_path(DEFAULT_SPEC))
    amount_spec = load_amount_spec(settings.model_spec_path(AMOUNT_SPEC))
    if not isinstance(default_spec.split, VintageSplit):  # the spec's own validator guarantees it
        raise TrainingError(f"{default_spec.name}: needs a vintage split")
    split = default_spec.split
    catalog = load_catalog(settings.catalog_path)
    with connect(settings.warehouse_path, memory_limit=settings.duckdb_memory_limit) as con:
        extract = extract_date_of(con)
        start = data_start(con)
        vintages = choose_vintages(split, start=start, extract=extract)
        say(f"loans started {vintages.train_from} to {vintages.test_before} and their snapshots")
        loans, unmatched = loan_frame(con, catalog, vintages=vintages, split=split, extract=extract)
        declined = declined_frame(con, catalog, vintages=vintages, split=split, extract=extract)
    is_test = (loans["start_date"] >= vintages.test_from).to_numpy()
    train, test = loans[~is_test].reset_index(drop=True), loans[is_test].reset_index(drop=True)
    lineage: dict[str, Any] = {
        "train_vintages": f"{vintages.train_from} to {vintages.test_from - dt.timedelta(days=1)}",
        "test_vintages": f"{vintages.test_from} to {vintages.test_before - dt.timedelta(days=1)}",
        "data_start": str(start),
        "data_extract_date": str(extract),
        **lineage_now(settings),
        "code_version": code_version(),
    }
    data_window = {
        "data": f"{start} to {extract} (extraction date)",
        "training loans": f"started {lineage['train_vintages']}: {len(train):,}",
        "test loans": f"started {lineage['test_vintages']}: {len(test):,}",
        "features": f"latest snapshot every {split.snapshot_every_months} months at or before the loan's month",
        "loans left out": f"{unmatched:,} (the enterprise had no snapshot row: registered after the snapshot date)",
        "declined applications": f"{len(declined[0]):,} in the training vintages, {len(declined[1]):,} in the test",
    }
    configure(settings)
    experiment_id = ensure_experiment(settings, settings.pre_credit_experiment)
    say(f"fitting the default model on {len(train):,} loans")
    default = _train_default(
        settings,
        default_spec,
        catalog,
        train,
        test,
        lineage,
        data_window,
        experiment_id,
        register=register,
        declined=declined,
    )
    say("fitting the amount model on the repaid loans")
    amount = _train_amount(
        settings, amount_spec, catalog, train, test, lineage, data_window, experiment_id, register=register
    )
    return PreCreditResult(default=default, amount=amount)


def _default_figures(
    y_test: np.ndarray,
    p_test: np.ndarray,
    contrib: np.ndarray,
    x_test: np.ndarray,
    *,
    config: ScorerConfig,
    importance: pd.DataFrame,
    seed: int,
) -> dict[str, Any]:
    """The default model's validation plots: ROC, calibration, SHAP importance and summary."""
    return {
        "plots/roc.png": roc_figure(y_test, p_test, None),
        "plots/calibration.png": calibration_figure(y_test, p_test),
        "plots/shap_importance.png": importance_figure(importance),
        "plots/shap_summary.png": summary_figure(
            contrib,
            x_test,
            names=config.features,
            labels_zh=config.labels_zh,
            categorical=config.categories,
            title="TreeSHAP by feature, out-of-time test loans",
            xlabel="TreeSHAP (log-odds of 90+ days past due)",
            seed=seed,
        ),
    }


def _train_default(
    settings: Settings,
    spec: ModelSpec,
    catalog: Catalog,
    train: pd.DataFrame,
    test: pd.DataFrame,
    lineage: dict[str, Any],
    data_window: dict[str, str],
    experiment_id: str,
    *,
    register: bool,
    declined: tuple[pd.DataFrame, pd.DataFrame],
) -> TrainResult:
    seed = int(spec.lightgbm.get("seed", 0))
    booster, calibration, info = fit(spec, catalog, train, seed=seed, target="default_12m")
    names = feature_names(spec, catalog)
    config = scorer_config(spec, catalog, names, calibration=calibration, lineage=lineage)
    ri = assess(spec, catalog, train=train, test=test, declined=declined, baseline=Scorer(booster, config), seed=seed)
    booster, config = ri.registered(booster, config)  # the adopted remedy's, if one is (reject.ADOPTED_REMEDY)
    y_test = test["default_12m"].to_numpy()
    if y_test.sum() == 0 or y_test.sum() == len(y_test):
        raise TrainingError(f"the test loans hold {int(y_test.sum())} defaults in {len(y_test)}: AUC is undefined")
    scorer = Scorer(booster, config)
    x_test = scorer.matrix(test)
    decided = scorer.decide(x_test)
    p_test = decided["probability"].to_numpy()
    order = [g.grade for g in spec.grades]
    metrics, tables = binary_report(
        y_test=y_test,
        p_test=p_test,
        score_train=scorer.decide(scorer.matrix(train))["score"].to_numpy(),
        score_test=decided["score"].to_numpy(),
        grades_test=decided["grade"].to_numpy(),
        grade_order=order,
    )
    metrics["holdout_auc"] = info["holdout_auc"]
    metrics["best_iteration"] = float(info["best_iteration"])
    contrib = np.asarray(booster.predict(x_test, pred_contrib=True))
    tables["shap_importance"] = shap_importance(contrib, names, config.labels_zh)
    card = default_card(spec, config, data_window=data_window, metrics=metrics, tables=tables, reject=ri)
    metrics.update(ri.metrics())
    if ri.measured:
        tables |= {"reject_inference": ri.figures, "reject_inference_deltas": ri.deltas}
    record = RunRecord(
        run_name=f"{spec.name}-{lineage['test_vintages']}",
        params={**spec.lightgbm, "n_train": info["n_fit"], "n_holdout": info["n_holdout"], "n_test": len(test)},
        lineage=lineage,
        metrics=metrics,
        figures=_default_figures(
            y_test, p_test, contrib, x_test, config=config, importance=tables["shap_importance"], seed=seed
        ),
        tables=tables,
        card=card,
        config_key="scorer_config",
        config=config.model_dump(mode="json"),
        example=pd.DataFrame(x_test[:5], columns=names),
        tags={"test_auc": f"{metrics['auc']:.4f}"},
    )
    run_id, version, alias = log_run(
        settings, experiment_id=experiment_id, booster=booster, name=spec.name, record=record, register=register
    )
    return TrainResult(
        model_name=spec.name,
        version=version,
        run_id=run_id,
        test_as_of=min(test["start_date"]),
        train_as_of=sorted(set(train["snapshot"])),
        metrics=metrics,
        grades=tables["grades"],
        alias=alias,
        extra=info,
    )


def _train_amount(
    settings: Settings,
    spec: AmountSpec,
    catalog: Catalog,
    train: pd.DataFrame,
    test: pd.DataFrame,
    lineage: dict[str, Any],
    data_window: dict[str, str],
    experiment_id: str,
    *,
    register: bool,
) -> TrainResult:
    repaid_train = performing(train)
    repaid_test = performing(test)
    if repaid_test.empty:
        raise TrainingError("no test loan performed through its window: the amount model cannot be validated")
    seed = int(spec.lightgbm.get("seed", 0))
    booster, info = fit_amount(spec, catalog, repaid_train, seed=seed)
    names = feature_names(spec, catalog)
    config = amount_config(spec, catalog, names, lineage=lineage)
    scorer = AmountScorer(booster, config)
    x_test = scorer.matrix(repaid_test)
    log_actual = np.log(repaid_test["amount"].to_numpy(dtype=float))
    metrics = amount_metrics(log_actual, scorer.log_amount(x_test), spec.alpha)
    metrics["best_iteration"] = float(info["best_iteration"])
    contrib = np.asarray(booster.predict(x_test, pred_contrib=True))
    importance = shap_importance(contrib, names, config.labels_zh)
    card = amount_card(
        spec,
        config,
        metrics=metrics,
        data_window={**data_window, "repaid loans": f"{len(repaid_train):,} train, {len(repaid_test):,} test"},
    )
    record = RunRecord(
        run_name=f"{spec.name}-{lineage['test_vintages']}",
        params={
            **spec.lightgbm,
            "objective": spec.objective,
            "alpha": spec.alpha,
            "n_train": info["n_fit"],
            "n_test": len(repaid_test),
        },
        lineage=lineage,
        metrics=metrics,
        figures={
            "plots/shap_importance.png": importance_figure(importance),
            "plots/shap_summary.png": summary_figure(
                contrib,
                x_test,
                names=names,
                labels_zh=config.labels_zh,
                categorical=config.categories,
                title="TreeSHAP by feature, out-of-time repaid loans",
                xlabel="TreeSHAP (log amount)",
                seed=seed,
            ),
        },
        tables={"shap_importance": importance},
        card=card,
        config_key="amount_config",
        config=config.model_dump(mode="json"),
        example=pd.DataFrame(x_test[:5], columns=names),
        tags={"test_rmse_log": f"{metrics['rmse_log']:.4f}"},
    )
    run_id, version, alias = log_run(
        settings, experiment_id=experiment_id, booster=booster, name=spec.name, record=record, register=register
    )
    return TrainResult(
        model_name=spec.name,
        version=version,
        run_id=run_id,
        test_as_of=min(test["start_date"]),
        train_as_of=sorted(set(train["snapshot"])),
        metrics=metrics,
        grades=pd.DataFrame(),
        alias=alias,
        extra=info,
    )
