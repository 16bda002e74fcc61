"""Train the credit evaluation model out of time, validate it, log and register it in MLflow.

This module runs the steps in order; each lives in the module named for it: the rows
(:mod:`scoring.training.rows`: as-of dates, the test frame, the stacked training snapshots), the fit
(:mod:`scoring.training.fit`: LightGBM with monotone constraints, Platt calibration) and the run
(:mod:`scoring.training.tracking`: lineage, MLflow logging and registration). Their public names are
importable from here too, as commands, benchmarks and notebooks import them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from scoring.data.ingest import connect, extract_date_of
from scoring.domain.scorer import Scorer, ScorerConfig
from scoring.explain.summary import summary_figure
from scoring.features.build import ensure_snapshots
from scoring.features.catalog import Catalog, load_catalog
from scoring.features.labels import window_end
from scoring.settings import Settings
from scoring.training.cards import evaluation_card
from scoring.training.errors import TrainingError
from scoring.training.fit import feature_names, fit, fit_rows, scorer_config
from scoring.training.report import (
    binary_report,
    calibration_figure,
    importance_figure,
    roc_figure,
    shap_importance,
)
from scoring.training.rows import (
    TrainingRows,
    add_months,
    choose_as_of_dates,
    data_start,
    evaluation_frame,
    holdout_mask,
    holdout_of,
    training_rows,
)
from scoring.training.spec import ModelSpec, load_spec
from scoring.training.tracking import (
    RunRecord,
    TrainResult,
    code_version,
    current_lineage,
    log_run,
    register_booster,
)

__all__ = [
    "SHAP_ROWS",
    "SLICE",
    "RunRecord",
    "TrainResult",
    "TrainingError",
    "TrainingRows",
    "add_months",
    "choose_as_of_dates",
    "code_version",
    "current_lineage",
    "data_start",
    "evaluation_frame",
    "feature_names",
    "fit",
    "fit_rows",
    "holdout_mask",
    "holdout_of",
    "log_run",
    "register_booster",
    "scorer_config",
    "shap_sample",
    "train_evaluation",
    "training_rows",
]

# what fit_rows records when it samples the negatives (fit.sample_negatives), logged as parameters
SAMPLING = ("n_fit_before_sampling", "positives_kept", "negatives_before_sampling", "negative_rate", "negative_weight")
SLICE = 500_000  # rows scored at once when a whole training set is scored
SHAP_ROWS = 50_000  # test rows explained for the SHAP importance summary


def shap_sample(n: int, seed: int, limit: int = SHAP_ROWS) -> np.ndarray:
    """The test rows the SHAP importance summary averages over: all of them up to ``limit``, else a
    seeded sample: TreeSHAP of a million rows would take longer than the rest of training, and a mean
    absolute contribution over 50,000 random rows is a close estimate of it (docs/benchmarks.md)."""
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


@dataclass
class EvaluationRows:
    """What the credit evaluation is trained and tested on, and the dates that chose it."""

    start: dt.date  # the first month with records
    extract: dt.date  # the data's extraction date
    train_dates: list[dt.date]
    test_date: dt.date
    names: list[str]  # the features in model order
    train: TrainingRows
    test: pd.DataFrame  # the test snapshot with its labels (and the oracle's probability)


@dataclass
class Validation:
    """The out-of-time figures of a fitted model on its test rows."""

    x_test: np.ndarray  # the test rows as the booster takes them
    metrics: dict[str, float]
    tables: dict[str, pd.DataFrame]
    figures: dict[str, Any]


def train_evaluation(
    settings: Settings,
    *,
    spec_path: Path | None = None,
    register: bool = True,
    snapshots: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train, validate out of time, log to MLflow and register (``champion`` if first, else ``challenger``).

    Reads the warehouse: feature snapshots at the train and test as-of dates (built when
    missing) and outcome labels in the 12 months after each. With ``snapshots`` (a folder that
    `scoring features --engine spark --labels` wrote) the training snapshots and their labels are
    read from there; the test snapshot is still the warehouse's.
    """

    from scoring.registry.versions import configure, ensure_experiment

    say = progress or (lambda _msg: None)
    spec_path = spec_path or settings.model_spec_path("credit_evaluation")
    spec = load_spec(spec_path)
    catalog = load_catalog(settings.catalog_path)
    rows = read_rows(settings, spec, catalog, snapshots=snapshots, progress=say)
    seed = int(spec.lightgbm.get("seed", 0))
    say(f"fitting LightGBM on {len(rows.train):,} rows")
    booster, calibration, fit_info = fit_rows(spec, catalog, rows.train, seed=seed, progress=say)
    say(f"{fit_info['best_iteration']} trees; validating on {len(rows.test):,} test rows")
    lineage: dict[str, Any] = {
        "train_as_of": [str(d) for d in rows.train_dates],
        "test_as_of": str(rows.test_date),
        "data_start": str(rows.start),
        "data_extract_date": str(rows.extract),
        **({"train_snapshots": str(snapshots)} if snapshots is not None else {}),
        **current_lineage(settings, spec_path),
        "code_version": code_version(),
    }
    config = scorer_config(spec, catalog, rows.names, calibration=calibration, lineage=lineage)
    checked = validate(booster, config, spec, rows=rows, fit_info=fit_info, seed=seed)
    configure(settings)
    run_id, version, alias = log_run(
        settings,
        experiment_id=ensure_experiment(settings, settings.experiment),
        booster=booster,
        name=spec.name,
        record=_record(spec, config, rows=rows, fit_info=fit_info, checked=checked),
        register=register,
    )
    return TrainResult(
        model_name=spec.name,
        version=version,
        run_id=run_id,
        test_as_of=rows.test_date,
        train_as_of=rows.train_dates,
        metrics=checked.metrics,
        grades=checked.tables["grades"],
        alias=alias,
        extra=fit_info,
    )


def read_rows(
    settings: Settings,
    spec: ModelSpec,
    catalog: Catalog,
    *,
    snapshots: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> EvaluationRows:
    """The training snapshots and the test snapshot of the spec's out-of-time split, with their labels.

    Reads the warehouse: feature snapshots at the as-of dates (built when missing, records dated
    before each date) and the outcome labels of the 12 months from each; the training ones from
    ``snapshots`` when given (see ``training_rows``).
    """
    say = progress or (lambda _msg: None)
    with connect(settings.warehouse_path, memory_limit=settings.duckdb_memory_limit) as con:
        extract = extract_date_of(con)
        start = data_start(con)
        train_dates, test_date = choose_as_of_dates(spec, start=start, extract=extract)
        say(f"feature snapshots as of {', '.join(map(str, [*train_dates, test_date]))}")
        built = [test_date] if snapshots is not None else [*train_dates, test_date]
        ensure_snapshots(con, catalog, as_of_dates=built)  # dates share SQL passes
        names = feature_names(spec, catalog)
        train = training_rows(con, catalog, names, train_dates, snapshots=snapshots, progress=say)
        say(f"features and labels as of {test_date} (test)")
        test = evaluation_frame(con, catalog, test_date)
    return EvaluationRows(
        start=start, extract=extract, train_dates=train_dates, test_date=test_date, names=names, train=train, test=test
    )


def validate(
    booster: lgb.Booster,
    config: ScorerConfig,
    spec: ModelSpec,
    *,
    rows: EvaluationRows,
    fit_info: dict[str, Any],
    seed: int,
) -> Validation:
    """Score the test rows as the service would and compute the validation report: metrics, tables
    (grades, deciles, SHAP importance) and figures (ROC, calibration, SHAP importance and summary)."""
    scorer = Scorer(booster, config)
    test, train = rows.test, rows.train
    x_test = scorer.matrix(test)
    decided = scorer.decide(x_test)
    y_test = test["adverse"].to_numpy()
    p_test = decided["probability"].to_numpy()
    score_train = np.concatenate(  # in slices: a decision frame of 12 million rows is not needed at once
        [scorer.score_from_logit(scorer.logit(train.matrix[i : i + SLICE])) for i in range(0, len(train), SLICE)]
    )
    order = [g.grade for g in spec.grades]
    p_true = test["p_true"].to_numpy(dtype=float) if "p_true" in test else None
    p_asof = test["p_asof"].to_numpy(dtype=float) if "p_asof" in test else None
    metrics, tables = binary_report(
        y_test=y_test,
        p_test=p_test,
        score_train=score_train,
        score_test=decided["score"].to_numpy(),
        grades_test=decided["grade"].to_numpy(),
        grade_order=order,
        p_true=p_true,
        p_asof=p_asof,
    )
    metrics["holdout_auc"] = fit_info["holdout_auc"]
    metrics["best_iteration"] = float(fit_info["best_iteration"])
    explained = x_test[shap_sample(len(x_test), seed)]
    contrib = np.asarray(booster.predict(explained, pred_contrib=True))
    tables["shap_importance"] = shap_importance(contrib, rows.names, config.labels_zh)
    figures = {
        "plots/roc.png": roc_figure(y_test, p_test, test.get("p_true"), test.get("p_asof")),
        "plots/calibration.png": calibration_figure(y_test, p_test),
        "plots/shap_importance.png": importance_figure(tables["shap_importance"]),
        "plots/shap_summary.png": summary_figure(
            contrib,
            explained,
            names=rows.names,
            labels_zh=config.labels_zh,
            categorical=config.categories,
            title="TreeSHAP by feature, out-of-time test",
            xlabel="TreeSHAP (log-odds of an adverse event)",
            seed=seed,
        ),
    }
    return Validation(x_test=x_test, metrics=metrics, tables=tables, figures=figures)


def sampling_line(fit_info: dict[str, Any]) -> dict[str, str]:
    """The model card's line on the negative sampling, when the fit sampled."""
    if "negative_rate" not in fit_info:
        return {}
    return {
        "sampling": (
            f"{fit_info['n_fit_before_sampling']:,} fitting rows sampled to {fit_info['n_fit']:,}: every positive "
            f"({fit_info['positives_kept']:,}) and {fit_info['negative_rate']:.2%} of the "
            f"{fit_info['negatives_before_sampling']:,} negatives (seeded), each kept negative weighted "
            f"{fit_info['negative_weight']:.3f}; early stopping and the Platt calibration on the unsampled "
            f"holdout of {fit_info['n_holdout']:,} rows"
        )
    }


def _record(
    spec: ModelSpec, config: ScorerConfig, *, rows: EvaluationRows, fit_info: dict[str, Any], checked: Validation
) -> RunRecord:
    """What the run logs: parameters, lineage, the validation report, the model card and the config."""
    lineage, names = config.lineage, rows.names
    return RunRecord(
        run_name=f"{spec.name}-{rows.test_date}",
        params={
            **spec.lightgbm,
            "train_as_of": ",".join(lineage["train_as_of"]),
            "test_as_of": lineage["test_as_of"],
            "n_features": len(names),
            "n_train": fit_info["n_fit"],
            "n_holdout": fit_info["n_holdout"],
            "calibration": spec.calibration,
            **{k: fit_info[k] for k in SAMPLING if k in fit_info},
        },
        lineage=lineage,
        metrics=checked.metrics,
        figures=checked.figures,
        tables=checked.tables,
        card=evaluation_card(
            spec,
            config,
            data_window={
                "data": f"{rows.start} to {rows.extract} (extraction date)",
                "train as-of dates": ", ".join(lineage["train_as_of"]),
                "test as-of date": f"{rows.test_date} (outcomes to {window_end(rows.test_date)})",
                "rows": f"{fit_info['n_fit']:,} fit, {fit_info['n_holdout']:,} holdout, {len(rows.test):,} test",
                **sampling_line(fit_info),
            },
            metrics=checked.metrics,
            tables=checked.tables,
        ),
        config_key="scorer_config",
        config=config.model_dump(mode="json"),
        example=pd.DataFrame(checked.x_test[:5], columns=names),
        tags={"test_auc": f"{checked.metrics['auc']:.4f}"},
    )
