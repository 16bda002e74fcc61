"""Train the credit evaluation model out of time, validate it, log and register it in MLflow."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from scoring.data.ingest import connect, data_fingerprint, extract_date_of
from scoring.domain.scorer import Calibration, Scorer, ScorerConfig, encode_matrix
from scoring.errors import ScoringError
from scoring.features.build import ensure_snapshots, load_snapshot
from scoring.features.catalog import Catalog, catalog_hash, load_catalog
from scoring.features.labels import LABEL_MONTHS, build_labels, labels_sql, oracle_probability, window_end
from scoring.settings import Settings
from scoring.training.report import (
    binary_report,
    calibration_figure,
    importance_figure,
    log_tables,
    model_card,
    roc_figure,
    shap_importance,
)
from scoring.training.spec import AmountSpec, ModelSpec, SplitSpec, load_spec, spec_hash

log = logging.getLogger(__name__)


class TrainingError(ScoringError, RuntimeError):
    """Training cannot proceed on this data (too little history, no positives, ...)."""

    code = "training_failed"
    status = None
    title_zh = "无法在该数据上训练"


@dataclass
class TrainResult:
    model_name: str
    version: str
    run_id: str
    test_as_of: dt.date
    train_as_of: list[dt.date]
    metrics: dict[str, float]
    grades: pd.DataFrame
    alias: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def add_months(d: dt.date, months: int) -> dt.date:
    y, m = divmod(d.month - 1 + months, 12)
    return dt.date(d.year + y, m + 1, 1)


def data_start(con: Any) -> dt.date:
    """The first month with records in the warehouse (the earliest tax, utility or insurance month)."""
    row = con.execute(
        "SELECT least((SELECT min(period) FROM tax_monthly), (SELECT min(period) FROM utility_monthly),"
        " (SELECT min(period) FROM social_insurance_monthly))"
    ).fetchone()
    if row is None or row[0] is None:
        raise TrainingError("the warehouse has no monthly records: run `scoring ingest` first")
    return dt.date(row[0].year, row[0].month, 1)


def choose_as_of_dates(spec: ModelSpec, *, start: dt.date, extract: dt.date) -> tuple[list[dt.date], dt.date]:
    """(train as-of dates, test as-of date): the test date is the latest with a complete window."""
    if not isinstance(spec.split, SplitSpec):
        raise TrainingError(f"{spec.name}: as-of dates need a snapshot split (train_offsets_months)")
    test = add_months(dt.date(extract.year, extract.month, 1), -LABEL_MONTHS)
    while window_end(test) > extract:
        test = add_months(test, -1)
    earliest = add_months(start, spec.split.min_history_months)
    train = sorted(d for d in (add_months(test, -k) for k in spec.split.train_offsets_months) if d >= earliest)
    if not train:
        raise TrainingError(
            f"no training as-of date has {spec.split.min_history_months} months of history before it and a "
            f"complete outcome window before the test date {test}: data from {start} to {extract} is too short"
        )
    return train, test


def code_version() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        from scoring import __version__

        return __version__


def current_lineage(settings: Settings, spec_path: Path | None = None) -> dict[str, str]:
    """Hashes of the data, catalog and spec a model would be trained on now, and one over all three."""
    spec_path = spec_path or settings.model_spec_path("credit_evaluation")
    with connect(settings.warehouse_path, read_only=True) as con:
        data = data_fingerprint(con)
    parts = {
        "data_fingerprint": data,
        "catalog_hash": catalog_hash(settings.catalog_path),
        "spec_hash": spec_hash(spec_path),
    }
    parts["fingerprint"] = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]
    return parts


def evaluation_frame(con: Any, catalog: Catalog, as_of: dt.date) -> pd.DataFrame:
    """Features at ``as_of`` (records before it) with the adverse-event label of the 12 months from it."""
    features = load_snapshot(con, catalog, as_of=as_of)
    labels = build_labels(con, as_of=as_of)
    frame = features.merge(labels[["uscc", "adverse", "exposure_months"]], on="uscc", how="inner")
    frame["p_true"] = oracle_probability(con, frame)
    return frame


@dataclass
class TrainingRows:
    """Many snapshots' rows stacked for fitting: the encoded features, the label and the enterprise."""

    matrix: np.ndarray  # float64, rows x features in model order
    y: np.ndarray
    uscc: np.ndarray  # object: one enterprise's snapshots share it, so the holdout keeps them together

    def __len__(self) -> int:
        return len(self.y)


def training_rows(
    con: Any,
    catalog: Catalog,
    names: list[str],
    dates: list[dt.date],
    *,
    progress: Callable[[str], None] | None = None,
) -> TrainingRows:
    """The labelled snapshots at ``dates``, encoded as ``encode_matrix`` does, in one preallocated matrix.

    A city is 1,000,000 enterprises x 12 snapshots. Each snapshot is joined to its labels and
    encoded in the warehouse (numbers as DOUBLE, a category as its position in the catalog's list)
    and arrives as Arrow columns; going through per-snapshot DataFrames and concatenating them would
    hold several copies of 12 million rows and spend most of the time converting columns.
    """
    from scoring.features.build import SNAPSHOT_TABLE

    say = progress or (lambda _msg: None)
    ensure_snapshots(con, catalog, as_of_dates=dates)
    categories = catalog.categories_of(names)
    columns = []
    for n in names:
        cats = categories.get(n)
        if cats is None:
            columns.append(f'CAST(f."{n}" AS DOUBLE)')
        else:  # 0-based code; a value outside the list (or missing) is NULL, as in encode_matrix
            listed = ", ".join("'" + c.replace("'", "''") + "'" for c in cats)
            columns.append(f'CAST(list_position([{listed}], f."{n}") - 1 AS DOUBLE)')
    marks = ", ".join("?" for _ in dates)
    counts = dict(
        con.execute(
            f"SELECT as_of, count(*) FROM {SNAPSHOT_TABLE} WHERE as_of IN ({marks}) GROUP BY 1", dates
        ).fetchall()
    )
    bound = sum(counts.get(d, 0) for d in dates)  # labels join inside the snapshot: an upper bound
    matrix = np.empty((bound, len(names)), dtype=np.float64)
    y = np.empty(bound, dtype=np.int8)
    uscc = np.empty(bound, dtype=object)
    at = 0
    for d in dates:
        say(f"features and labels as of {d}")
        labels = labels_sql(con, as_of=d)
        # a cursor of its own: the query streams to Arrow without waiting on results open on ``con``
        table = (
            con.cursor()
            .sql(
                f"""
            WITH labels AS ({labels})
            SELECT f.uscc, l.adverse, {", ".join(columns)}
            FROM {SNAPSHOT_TABLE} f JOIN labels l USING (uscc)
            WHERE f.as_of = DATE '{d.isoformat()}'
            ORDER BY f.uscc
            """
            )
            .to_arrow_table()
        )
        n = table.num_rows
        for j in range(len(names)):
            matrix[at : at + n, j] = table.column(j + 2).to_numpy()  # nulls arrive as NaN
        y[at : at + n] = table.column(1).to_numpy()
        uscc[at : at + n] = table.column(0).to_numpy(zero_copy_only=False)
        at += n
        del table
    return TrainingRows(matrix=matrix[:at], y=y[:at], uscc=uscc[:at])


def holdout_mask(frame: pd.DataFrame, fraction: float, seed: int) -> np.ndarray:
    """Rows of a random ``fraction`` of the enterprises: one enterprise's rows never sit on both sides."""
    return holdout_of(frame["uscc"].to_numpy(), fraction, seed)


def holdout_of(ids: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """True for the rows whose id is among a random ``fraction`` of the distinct ids (pandas' hashed
    look-ups, for the millions of rows of a city)."""
    series = pd.Series(ids)
    unique = np.sort(series.unique())
    rng = np.random.default_rng(seed)
    held = rng.choice(unique, size=int(len(unique) * fraction), replace=False)
    return series.isin(held).to_numpy()


def fit(
    spec: ModelSpec, catalog: Catalog, train: pd.DataFrame, *, seed: int, target: str = "adverse"
) -> tuple[lgb.Booster, Calibration, dict[str, Any]]:
    """Fit a frame's rows: see ``fit_rows``."""
    names = feature_names(spec, catalog)
    categories = catalog.categories_of(names)
    rows = TrainingRows(
        matrix=encode_matrix(train, names, categories), y=train[target].to_numpy(), uscc=train["uscc"].to_numpy()
    )
    return fit_rows(spec, catalog, rows, seed=seed, target=target)


def fit_rows(
    spec: ModelSpec,
    catalog: Catalog,
    rows: TrainingRows,
    *,
    seed: int,
    target: str = "adverse",
    progress: Callable[[str], None] | None = None,
) -> tuple[lgb.Booster, Calibration, dict[str, Any]]:
    """Fit the booster with monotone constraints and early stopping, then Platt calibration.

    Enterprises (not rows) are split between fitting and the holdout, so one enterprise's
    snapshots never sit on both sides. The rows are binned once and both sides are subsets of
    that dataset, so the matrix is never copied for the split.
    """
    names = feature_names(spec, catalog)
    y = rows.y
    is_held = holdout_of(rows.uscc, spec.split.holdout_fraction, seed)
    if y[~is_held].sum() < 20 or y[is_held].sum() < 5:
        raise TrainingError(
            f"too few positive outcomes ({target}) to train {spec.name}: {int(y[~is_held].sum())} to fit and "
            f"{int(y[is_held].sum())} held out of {len(y)} rows (need 20 and 5)"
        )
    params = {k: v for k, v in spec.lightgbm.items() if k not in ("num_boost_round", "early_stopping_rounds")}
    params["monotone_constraints"] = [catalog.feature(n).monotone.constraint for n in names]
    cats = [i for i, n in enumerate(names) if catalog.feature(n).is_categorical]
    fit_index, held_index = np.flatnonzero(~is_held), np.flatnonzero(is_held)
    large = spec.large_data
    if large is not None and len(fit_index) > large.above_rows:
        params.update(large.lightgbm)
        params["bagging_fraction"] = min(1.0, large.rows_per_tree / len(fit_index))
        params["bagging_freq"] = max(1, int(params.get("bagging_freq", 1)))
    binned = lgb.Dataset(rows.matrix, y, feature_name=names, categorical_feature=cats, params=params)
    say = progress or (lambda _msg: None)

    def report(env: Any) -> None:
        if (env.iteration + 1) % 100 == 0:
            loss = env.evaluation_result_list[0][2]
            say(f"{env.iteration + 1} trees, holdout log loss {loss:.5f}")

    booster = lgb.train(
        params,
        binned.subset(fit_index.tolist()),
        num_boost_round=int(spec.lightgbm.get("num_boost_round", 500)),
        valid_sets=[binned.subset(held_index.tolist())],
        valid_names=["holdout"],
        callbacks=[lgb.early_stopping(int(spec.lightgbm.get("early_stopping_rounds", 50)), verbose=False), report],
    )
    margin = booster.predict(rows.matrix[held_index], raw_score=True)
    platt = LogisticRegression(C=1e6, max_iter=1000).fit(np.asarray(margin).reshape(-1, 1), y[held_index])
    calibration = Calibration(intercept=float(platt.intercept_[0]), slope=float(platt.coef_[0, 0]))
    info = {
        "best_iteration": booster.best_iteration,
        "bagging_fraction": float(params.get("bagging_fraction", 1.0)),
        "learning_rate": float(params.get("learning_rate", 0.1)),
        "holdout_auc": float(roc_auc_score(y[held_index], margin)),
        "n_fit": len(fit_index),
        "n_holdout": len(held_index),
    }
    return booster, calibration, info


SLICE = 500_000  # rows scored at once when a whole training set is scored
SHAP_ROWS = 50_000  # test rows explained for the SHAP importance summary


def shap_sample(n: int, seed: int, limit: int = SHAP_ROWS) -> np.ndarray:
    """The test rows the SHAP importance summary averages over: all of them up to ``limit``, else a
    seeded sample: TreeSHAP of a million rows would take longer than the rest of training, and a mean
    absolute contribution over 50,000 random rows is a close estimate of it (docs/benchmarks.md)."""
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def feature_names(spec: ModelSpec | AmountSpec, catalog: Catalog) -> list[str]:
    """The spec's features in model order; every policy override must read one of them."""
    if spec.features == "all":
        names = [f.name for f in catalog.model_features]
    else:
        for n in spec.features:
            catalog.feature(n)
        names = list(spec.features)
    for rule in getattr(spec, "overrides", []):
        if rule.feature not in names:
            raise TrainingError(
                f"{spec.name}: override {rule.rule!r} reads {rule.feature!r}, which the model does not use"
            )
    return names


def scorer_config(spec: ModelSpec, catalog: Catalog, names: list[str], **kw: Any) -> ScorerConfig:
    return ScorerConfig(
        model_name=spec.name,
        features=names,
        labels_zh={n: catalog.feature(n).label_zh for n in names},
        categories=catalog.categories_of(names),
        monotone={n: catalog.feature(n).monotone.constraint for n in names},
        calibration=kw.get("calibration", Calibration(intercept=0.0, slope=1.0)),
        score=spec.score,
        grades=spec.grades,
        overrides=spec.overrides,
        lineage=kw.get("lineage", {}),
    )


def train_evaluation(
    settings: Settings,
    *,
    spec_path: Path | None = None,
    register: bool = True,
    progress: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train, validate out of time, log to MLflow and register (``champion`` if first, else ``challenger``).

    Reads the warehouse: feature snapshots at the train and test as-of dates (built when
    missing) and outcome labels in the 12 months after each.
    """

    from scoring.registry.versions import configure, ensure_experiment

    say = progress or (lambda _msg: None)
    spec_path = spec_path or settings.model_spec_path("credit_evaluation")
    spec = load_spec(spec_path)
    catalog = load_catalog(settings.catalog_path)
    with connect(settings.warehouse_path, memory_limit=settings.duckdb_memory_limit) as con:
        extract = extract_date_of(con)
        start = data_start(con)
        train_dates, test_date = choose_as_of_dates(spec, start=start, extract=extract)
        say(f"feature snapshots as of {', '.join(map(str, [*train_dates, test_date]))}")
        ensure_snapshots(con, catalog, as_of_dates=[*train_dates, test_date])  # dates share SQL passes
        names = feature_names(spec, catalog)
        train = training_rows(con, catalog, names, train_dates, progress=say)
        say(f"features and labels as of {test_date} (test)")
        test = evaluation_frame(con, catalog, test_date)
    seed = int(spec.lightgbm.get("seed", 0))
    say(f"fitting LightGBM on {len(train):,} rows")
    booster, calibration, fit_info = fit_rows(spec, catalog, train, seed=seed, progress=say)
    say(f"{fit_info['best_iteration']} trees; validating on {len(test):,} test rows")
    lineage: dict[str, Any] = {
        "train_as_of": [str(d) for d in train_dates],
        "test_as_of": str(test_date),
        "data_start": str(start),
        "data_extract_date": str(extract),
        **current_lineage(settings, spec_path),
        "code_version": code_version(),
    }
    config = scorer_config(spec, catalog, names, calibration=calibration, lineage=lineage)
    scorer = Scorer(booster, config)
    x_test = scorer.matrix(test)
    decided = scorer.decide(x_test)
    y_test = test["adverse"].to_numpy()
    p_test = decided["probability"].to_numpy()
    score_train = np.concatenate(  # in slices: a decision frame of 12 million rows is not needed at once
        [scorer.score_from_logit(scorer.logit(train.matrix[i : i + SLICE])) for i in range(0, len(train), SLICE)]
    )
    order = [g.grade for g in spec.grades]
    p_true = test["p_true"].to_numpy(dtype=float) if "p_true" in test else None
    metrics, tables = binary_report(
        y_test=y_test,
        p_test=p_test,
        score_train=score_train,
        score_test=decided["score"].to_numpy(),
        grades_test=decided["grade"].to_numpy(),
        grade_order=order,
        p_true=p_true,
    )
    metrics["holdout_auc"] = fit_info["holdout_auc"]
    metrics["best_iteration"] = float(fit_info["best_iteration"])
    explained = x_test[shap_sample(len(x_test), seed)]
    tables["shap_importance"] = shap_importance(
        np.asarray(booster.predict(explained, pred_contrib=True)), names, config.labels_zh
    )
    card = model_card(
        title=f"{spec.name} ({spec.description})",
        description=(
            "LightGBM with monotone constraints from the feature catalog, Platt-calibrated on a holdout of "
            "enterprises; the score is points-to-double-odds scaled, grades by the bands of the spec."
        ),
        intended_use=(
            "公共信用综合评价 for 分级分类监管: ranking enterprises by the probability of an adverse credit event "
            "in the 12 months after the as-of date, to set how often supervisors inspect. Not a lending "
            "decision by itself; the 信易贷 pre-credit models serve banks."
        ),
        data_window={
            "data": f"{start} to {extract} (extraction date)",
            "train as-of dates": ", ".join(lineage["train_as_of"]),
            "test as-of date": f"{test_date} (outcomes to {window_end(test_date)})",
            "rows": f"{fit_info['n_fit']:,} fit, {fit_info['n_holdout']:,} holdout, {len(test):,} test",
        },
        features=[(n, config.labels_zh[n]) for n in names],
        metrics=metrics,
        limitations=[
            "Trained on platform records only: an enterprise with few records gets a score near the average.",
            "Outcomes come from platform records: an adverse event that no department reported is not seen.",
            "A shift in an industry's risk after the test window (a regime change) is not foreseen; "
            "monitor score PSI and the bad rate by grade.",
            "On synthetic data the oracle AUC is the ceiling; on real data there is no oracle.",
        ],
        lineage=lineage,
        tables={"bad rate by grade": tables["grades"], "lift by decile": tables["deciles"]},
    )

    configure(settings)
    record = RunRecord(
        run_name=f"{spec.name}-{test_date}",
        params={
            **spec.lightgbm,
            "train_as_of": ",".join(lineage["train_as_of"]),
            "test_as_of": lineage["test_as_of"],
            "n_features": len(names),
            "n_train": fit_info["n_fit"],
            "n_holdout": fit_info["n_holdout"],
            "calibration": spec.calibration,
        },
        lineage=lineage,
        metrics=metrics,
        figures={
            "plots/roc.png": roc_figure(y_test, p_test, test.get("p_true")),
            "plots/calibration.png": calibration_figure(y_test, p_test),
            "plots/shap_importance.png": importance_figure(tables["shap_importance"]),
        },
        tables=tables,
        card=card,
        config_key="scorer_config",
        config=config.model_dump(mode="json"),
        example=pd.DataFrame(x_test[:5], columns=names),
        tags={"test_auc": f"{metrics['auc']:.4f}"},
    )
    run_id, version, alias = log_run(
        settings,
        experiment_id=ensure_experiment(settings, settings.experiment),
        booster=booster,
        name=spec.name,
        record=record,
        register=register,
    )
    grades = tables["grades"]
    return TrainResult(
        model_name=spec.name,
        version=version,
        run_id=run_id,
        test_as_of=test_date,
        train_as_of=train_dates,
        metrics=metrics,
        grades=grades,
        alias=alias,
        extra=fit_info,
    )


@dataclass
class RunRecord:
    """What a training run logs to MLflow: its inputs, figures, report and the model to register."""

    run_name: str
    params: dict[str, Any]
    lineage: dict[str, Any]
    metrics: dict[str, float]
    figures: dict[str, Any]
    tables: dict[str, pd.DataFrame]
    card: str
    config_key: str  # "scorer_config" or "amount_config": the metadata the loaders look for
    config: dict[str, Any]
    example: pd.DataFrame
    tags: dict[str, str]


def log_run(
    settings: Settings, *, experiment_id: str, booster: lgb.Booster, name: str, record: RunRecord, register: bool
) -> tuple[str, str, str]:
    """Log one run (params, lineage tags, ``test_`` metrics, plots, tables, model card, config) and,
    when ``register``, register its booster; return (run id, version, alias)."""
    import mlflow

    with mlflow.start_run(experiment_id=experiment_id, run_name=record.run_name) as run:
        mlflow.log_params(record.params)
        mlflow.set_tags({f"lineage.{k}": str(v) for k, v in record.lineage.items()})
        mlflow.log_metrics({f"test_{k}": v for k, v in record.metrics.items()})
        for path, figure in record.figures.items():
            mlflow.log_figure(figure, path)
        log_tables(record.tables)
        mlflow.log_text(record.card, "model_card.md")
        mlflow.log_text(json.dumps(record.config, ensure_ascii=False, indent=2), f"{record.config_key}.json")
        version, alias = "0", ""
        if register:
            version, alias = register_booster(
                settings,
                booster=booster,
                name=name,
                example=record.example,
                metadata={record.config_key: record.config},
                tags={**record.tags, "lineage_fingerprint": record.lineage["fingerprint"]},
            )
    return run.info.run_id, version, alias


def register_booster(
    settings: Settings,
    *,
    booster: lgb.Booster,
    name: str,
    example: pd.DataFrame,
    metadata: dict[str, Any],
    tags: dict[str, str],
) -> tuple[str, str]:
    """Log the booster in the active run and register it with its signature; return (version, alias).

    The first version of a model becomes ``champion``; later ones become ``challenger`` and reach
    ``champion`` only through `scoring promote` and its gate.
    """
    import mlflow
    from mlflow.models import infer_signature

    signature = infer_signature(example, booster.predict(example.to_numpy(), raw_score=True))
    info = mlflow.lightgbm.log_model(
        booster,
        name="model",
        signature=signature,
        input_example=example,
        registered_model_name=name,
        metadata=metadata,
    )
    version = str(info.registered_model_version)
    client = mlflow.MlflowClient()
    try:
        client.get_model_version_by_alias(name, settings.model_alias)
        alias = settings.challenger_alias
    except mlflow.exceptions.MlflowException:  # no champion yet: the first model is it
        alias = settings.model_alias
    client.set_registered_model_alias(name, alias, version)
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    return version, alias
