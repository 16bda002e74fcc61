"""The evaluation pipeline on any flat table: an extract a bank or an analyst brings (CSV or Parquet).

Numeric columns are used as they are, text columns of few distinct values as categories, missing
values stay missing (LightGBM routes them). The number of boosting rounds comes from
cross-validated early stopping, the calibration from out-of-fold margins, and the reported figures
are out of fold, so a small table is neither overfitted nor flattered. Parameters scale with the
table's size; analysts do not tune per table.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold

from scoring.domain.scorer import Calibration, Scorer, ScorerConfig, encode_matrix
from scoring.errors import ScoringError
from scoring.settings import Settings
from scoring.training.metrics import binary_metrics, grade_table
from scoring.training.report import decile_table, grades_ordered, log_tables
from scoring.training.scorecard import AdditiveScorecard
from scoring.training.spec import TableSpec, load_table_spec

MAX_CATEGORIES = 1000  # a text column with more distinct values is not used
ID_LIKE_SHARE = 0.5  # nor one whose values are mostly distinct (names, addresses, free text)
# the booster's share of the blend with the additive scorecard, chosen out of fold from these
BLEND_WEIGHTS = tuple(np.round(np.linspace(0.0, 1.0, 11), 2))
POSITIVE_WORDS = {"1", "1.0", "true", "yes", "y", "bad", "default", "defaulted", "违约", "坏", "是", "逾期"}
TABLE_EXPERIMENT = "tables"


class TableError(ScoringError, ValueError):
    """The table cannot be used as given; the message names the column and the fault."""

    code = "invalid_table"
    status = 422
    title_zh = "数据表无法使用"


def read_table(path: Path) -> pd.DataFrame:
    """A CSV (UTF-8 or GBK) or Parquet file as a DataFrame."""
    from scoring.data.ingest import IngestError, detect_encoding

    if not path.exists():
        raise TableError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix in (".csv", ".txt"):
            return pd.read_csv(path, encoding=detect_encoding(path), low_memory=False)
    except (IngestError, OSError, ValueError) as exc:
        raise TableError(f"{path}: cannot read: {exc}") from exc
    raise TableError(f"{path}: a table must be .csv or .parquet, not {suffix or 'no extension'}")


def binary_target(values: pd.Series, positive: str | None) -> tuple[np.ndarray, str]:
    """(0/1 outcome, the positive class as text); the positive class is given or inferred.

    Inferred: of exactly two distinct values, the one that reads as bad ("1", "true", "bad",
    "违约", ...), else the rarer one.
    """
    text = values.astype(str).str.strip()
    distinct = sorted(text.unique())
    if positive is not None:
        if positive not in distinct:
            raise TableError(f"target {values.name!r}: --positive {positive!r} is not among its values {distinct[:10]}")
        return (text == positive).to_numpy(dtype=int), positive
    if len(distinct) != 2:
        raise TableError(
            f"target {values.name!r} has {len(distinct)} distinct values {distinct[:10]}: give --positive VALUE"
        )
    words = [d for d in distinct if d.lower() in POSITIVE_WORDS]
    chosen = words[0] if len(words) == 1 else text.value_counts().idxmin()
    return (text == chosen).to_numpy(dtype=int), str(chosen)


def table_params(rows: int, seed: int) -> dict[str, Any]:
    """LightGBM parameters by table size: small tables get small, strongly regularised trees."""
    # under 3,000 rows: stumps, an additive model (measured on 1,000-row tables: docs/benchmarks.md)
    leaves = 2 if rows < 3_000 else 8 if rows < 30_000 else 31
    return {
        "objective": "binary",
        "learning_rate": 0.05,
        "num_leaves": leaves,
        "min_data_in_leaf": max(10, min(rows // 100, 200)),
        "feature_fraction": 0.8,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": 10.0,
        "min_data_per_group": 20,
        "cat_smooth": 20.0,
        "seed": seed,
        "num_threads": 2,
        "deterministic": True,
        "force_row_wise": True,
        "verbosity": -1,
    }


class TableModel(BaseEstimator, ClassifierMixin):
    """A calibrated blend of LightGBM and an additive scorecard for a flat table (the scikit-learn contract).

    Both halves are additive in the log-odds per feature (TreeSHAP for the booster, one step
    function per column for the scorecard), so the registered scorer explains the blend exactly.

    Args:
        folds: cross-validation folds for early stopping, calibration and the reported figures.
        max_rounds: the most boosting rounds cross-validation may choose.
        seed: the seed of the folds and of LightGBM.
    """

    def __init__(self, *, folds: int = 5, max_rounds: int = 2000, seed: int = 7):
        self.folds = folds
        self.max_rounds = max_rounds
        self.seed = seed

    def _columns(self, X: pd.DataFrame) -> None:
        self.features_: list[str] = []
        self.categories_: dict[str, list[str]] = {}
        self.dropped_: dict[str, str] = {}
        for col in X.columns:
            series = X[col]
            if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
                self.features_.append(str(col))
            elif pd.api.types.is_datetime64_any_dtype(series):
                self.dropped_[str(col)] = "a date: turn it into a number (age, months since) to use it"
            else:
                distinct = series.dropna().astype(str).unique()
                if len(distinct) > MAX_CATEGORIES:
                    self.dropped_[str(col)] = f"text with {len(distinct)} distinct values (over {MAX_CATEGORIES})"
                elif len(distinct) > 50 and len(distinct) > ID_LIKE_SHARE * series.notna().sum():
                    self.dropped_[str(col)] = (
                        f"text with {len(distinct)} distinct values in {len(series)} rows (an id or free text)"
                    )
                else:
                    self.features_.append(str(col))
                    self.categories_[str(col)] = sorted(distinct.tolist())

    def matrix(self, X: pd.DataFrame) -> np.ndarray:
        frame = X.copy()
        for col in self.categories_:
            frame[col] = frame[col].map(lambda v: None if pd.isna(v) else str(v))
        return encode_matrix(frame, self.features_, self.categories_)

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> TableModel:
        """Cross-validate the booster and the additive scorecard, blend them by out-of-fold log loss,
        calibrate, and refit both on every row."""
        y = np.asarray(y, dtype=int)
        if y.sum() < self.folds or (len(y) - y.sum()) < self.folds:
            raise TableError(f"the target needs at least {self.folds} rows of each class, has {int(y.sum())} positive")
        self._columns(X)
        if not self.features_:
            raise TableError("no usable column: every column is the target, the id, a date or free text")
        x = self.matrix(X)
        self.params_ = table_params(len(y), self.seed)
        cats = [i for i, n in enumerate(self.features_) if n in self.categories_]
        folds = list(StratifiedKFold(self.folds, shuffle=True, random_state=self.seed).split(x, y))
        data = lgb.Dataset(x, y, feature_name=self.features_, categorical_feature=cats, free_raw_data=False)
        boosted = self._boosted_oof(data, x, folds)
        levels = {n: len(c) for n, c in self.categories_.items()}
        carded = np.empty(len(y))
        for train, valid in folds:
            card = AdditiveScorecard(self.features_, levels, seed=self.seed).fit(x[train], y[train])
            carded[valid] = card.margin(x[valid])
        self.booster_weight_, platt = _blend(boosted, carded, y)
        self.calibration_ = Calibration(intercept=float(platt.intercept_[0]), slope=float(platt.coef_[0, 0]))
        oof = self.booster_weight_ * boosted + (1 - self.booster_weight_) * carded
        self.oof_probability_ = 1 / (1 + np.exp(-(self.calibration_.intercept + self.calibration_.slope * oof)))
        self.booster_ = lgb.train(self.params_, data, num_boost_round=self.rounds_)
        self.additive_ = None
        if self.booster_weight_ < 1.0:
            card = AdditiveScorecard(self.features_, levels, seed=self.seed).fit(x, y)
            self.additive_ = card.additive(weight=1 - self.booster_weight_, booster_weight=self.booster_weight_, x=x)
        self.classes_ = np.array([0, 1])
        return self

    def _boosted_oof(self, data: lgb.Dataset, x: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """The booster's out-of-fold margins at the number of rounds cross-validation chose (``rounds_``)."""
        cv = lgb.cv(
            self.params_,
            data,
            num_boost_round=self.max_rounds,
            folds=folds,
            callbacks=[lgb.early_stopping(50, verbose=False)],
            return_cvbooster=True,
            metrics=["binary_logloss"],
        )
        self.rounds_ = len(cast(list[float], cv["valid binary_logloss-mean"]))
        oof = np.empty(len(x))
        for booster, (_, valid) in zip(cast(lgb.CVBooster, cv["cvbooster"]).boosters, folds, strict=True):
            oof[valid] = booster.predict(x[valid], raw_score=True, num_iteration=self.rounds_)
        return oof

    def margin(self, X: pd.DataFrame) -> np.ndarray:
        """The blended margin, as the registered scorer computes it."""
        x = self.matrix(X)
        raw = np.asarray(self.booster_.predict(x, raw_score=True))
        if self.additive_ is None:
            return raw
        add = self.additive_
        return add.booster_weight * raw + add.intercept + add.values(x, self.features_).sum(axis=1)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        margin = self.margin(X)
        p = 1 / (1 + np.exp(-(self.calibration_.intercept + self.calibration_.slope * margin)))
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


def _blend(boosted: np.ndarray, carded: np.ndarray, y: np.ndarray) -> tuple[float, LogisticRegression]:
    """(the booster's weight, the Platt scaling of the blend) of least out-of-fold log loss.

    Both margins are log-odds, so the blend ``w * booster + (1 - w) * scorecard`` is one margin
    whose calibration is one Platt scaling; a weight of 1 is the booster alone.
    """
    best: tuple[float, float, LogisticRegression] | None = None
    for weight in BLEND_WEIGHTS:
        margin = (weight * boosted + (1 - weight) * carded).reshape(-1, 1)
        platt = LogisticRegression(C=1e6, max_iter=1000).fit(margin, y)
        loss = log_loss(y, platt.predict_proba(margin)[:, 1])
        if platt.coef_[0, 0] > 0 and (best is None or loss < best[0] - 1e-9):
            best = (loss, float(weight), platt)
    if best is None:
        raise TableError("neither the boosted model nor the scorecard orders the outcome out of fold")
    return best[1], best[2]


def _model_name(path: Path) -> str:
    return "table_" + (re.sub(r"[^0-9a-zA-Z_]+", "_", path.stem).strip("_").lower() or "extract")


@dataclass
class TableResult:
    model_uri: str
    name: str
    version: str
    run_id: str
    metrics: dict[str, float]
    positive: str
    features: list[str]
    dropped: dict[str, str]
    grades: pd.DataFrame

    def as_json(self) -> str:
        return json.dumps(
            {
                "model_uri": self.model_uri,
                "name": self.name,
                "version": self.version,
                "run_id": self.run_id,
                "positive": self.positive,
                "features": self.features,
                "dropped": self.dropped,
                "metrics": self.metrics,
                **{k: self.metrics[k] for k in ("auc", "ks", "gini", "brier")},
                "grades_ordered": bool(self.metrics["grades_ordered"]),
                "grades": [
                    {
                        "grade": str(grade),
                        "min_score": float(row["min_score"]),
                        "share": round(float(row["share"]), 4),
                        "bad_rate": round(float(row["bad_rate"]), 4),
                    }
                    for grade, row in self.grades.iterrows()
                ],
            },
            ensure_ascii=False,
        )


def _check_columns(table: pd.DataFrame, path: Path, *, target: str, id_column: str | None) -> None:
    """The target and id columns exist, and the target is known on every row."""
    for option, col in (("--target", target), ("--id", id_column)):
        if col is not None and col not in table.columns:
            raise TableError(f"{option} {col!r} is not a column of {path.name}: {list(table.columns)[:20]}")
    known = table[target].notna()
    if not known.all():
        raise TableError(f"target {target!r} is empty on {int((~known).sum())} rows: fill or remove them first")


def _fitted_config(
    model: TableModel, spec: TableSpec, y: np.ndarray, *, name: str, lineage: dict[str, Any]
) -> tuple[ScorerConfig, pd.DataFrame]:
    """(the scorer config, the out-of-fold grade table): grade bands cut from the model's own
    out-of-fold scores by the spec's shares, and each band's share, bad rate and cut score."""
    logit = np.log(model.oof_probability_ / (1 - model.oof_probability_))
    s = spec.score
    bands = spec.bands(np.clip(np.round(s.offset - s.factor * logit), s.min, s.max))
    config = ScorerConfig(
        model_name=name,
        features=model.features_,
        labels_zh={n: n for n in model.features_},
        categories=model.categories_,
        monotone={n: 0 for n in model.features_},
        calibration=model.calibration_,
        score=spec.score,
        grades=bands,
        overrides=[],
        lineage=lineage,
        additive=model.additive_,
    )
    scorer = Scorer(model.booster_, config)
    grades = grade_table(y, scorer.grades(scorer.score_from_logit(logit)), [g.grade for g in bands])
    grades["min_score"] = [g.min_score for g in bands]
    return config, grades


def train_table(
    settings: Settings,
    path: Path,
    *,
    target: str,
    positive: str | None = None,
    id_column: str | None = None,
    name: str | None = None,
) -> TableResult:
    """Train, validate out of fold, log and register the evaluation pipeline on a flat table."""
    import mlflow

    from scoring.registry.versions import configure, ensure_experiment
    from scoring.training.tracking import code_version, register_booster

    table = read_table(path)
    _check_columns(table, path, target=target, id_column=id_column)
    y, positive = binary_target(table[target], positive)
    X = table.drop(columns=[c for c in (target, id_column) if c is not None])
    model = TableModel().fit(X, y)
    spec = load_table_spec(settings.model_spec_path("table_model"))
    lineage = {
        "table": path.name,
        "table_sha256": hashlib.sha256(path.read_bytes()).hexdigest()[:16],
        "rows": len(table),
        "target": target,
        "positive": positive,
        "code_version": code_version(),
    }
    oof = model.oof_probability_
    config, grades = _fitted_config(model, spec, y, name=name or _model_name(path), lineage=lineage)
    metrics = binary_metrics(y, oof)
    metrics["grades_ordered"] = float(grades_ordered(grades))
    metrics["rounds"] = float(model.rounds_)
    metrics["booster_weight"] = model.booster_weight_
    configure(settings)
    experiment_id = ensure_experiment(settings, TABLE_EXPERIMENT)
    with mlflow.start_run(experiment_id=experiment_id, run_name=config.model_name) as run:
        mlflow.log_params(
            {**model.params_, "folds": model.folds, "rounds": model.rounds_, "booster_weight": model.booster_weight_}
        )
        mlflow.set_tags({f"lineage.{k}": str(v) for k, v in lineage.items()})
        mlflow.log_metrics({f"oof_{k}": v for k, v in metrics.items()})
        log_tables({"grades": grades, "deciles": decile_table(y, oof)})
        if model.dropped_:
            mlflow.log_text(json.dumps(model.dropped_, ensure_ascii=False, indent=2), "dropped_columns.json")
        version, _ = register_booster(
            settings,
            booster=model.booster_,
            name=config.model_name,
            example=pd.DataFrame(model.matrix(X.head(5)), columns=model.features_),
            metadata={"scorer_config": config.model_dump(mode="json")},
            tags={"oof_auc": f"{metrics['auc']:.4f}"},
        )
    return TableResult(
        model_uri=f"models:/{config.model_name}/{version}",
        name=config.model_name,
        version=version,
        run_id=run.info.run_id,
        metrics=metrics,
        positive=positive,
        features=model.features_,
        dropped=model.dropped_,
        grades=grades,
    )


def predict_table(
    settings: Settings, path: Path, *, model_uri: str, out: Path, id_column: str | None = None, top: int = 3
) -> pd.DataFrame:
    """Score every row of a table with a registered model; write id, probability, score, grade and
    the top reasons (the columns that lowered the score most, with their values) to ``out``."""
    import mlflow

    from scoring.registry.versions import configure

    configure(settings)
    try:
        info = mlflow.models.get_model_info(model_uri)
    except Exception as exc:  # MLflow raises several types for an unknown URI
        raise TableError(f"--model {model_uri}: not found in the registry at {settings.tracking_uri}: {exc}") from exc
    meta = info.metadata or {}
    if "scorer_config" not in meta:
        raise TableError(f"--model {model_uri}: carries no scorer config (not registered by `scoring train-table`)")
    config = ScorerConfig.model_validate(meta["scorer_config"])
    scorer = Scorer(mlflow.lightgbm.load_model(model_uri), config)
    table = read_table(path)
    missing = [c for c in config.features if c not in table.columns]
    if missing:
        raise TableError(f"{path.name} lacks the model's columns {missing[:10]}")
    if id_column is not None and id_column not in table.columns:
        raise TableError(f"--id {id_column!r} is not a column of {path.name}")
    frame = table[config.features].copy()
    for col in config.categories:
        frame[col] = frame[col].map(lambda v: None if pd.isna(v) else str(v))
    x = scorer.matrix(frame)
    decided = scorer.decide(x)
    points, _ = scorer.contributions(x)
    result = pd.DataFrame(
        {
            (id_column or "row"): table[id_column].to_numpy() if id_column else np.arange(1, len(table) + 1),
            "probability": decided["probability"].round(6),
            "score": decided["score"].astype(int),
            "grade": decided["grade"],
        }
    )
    top = min(top, len(config.features))
    worst = np.argsort(points, axis=1)[:, :top]
    for k in range(top):
        texts = []
        for i, j in enumerate(worst[:, k]):
            pts = points[i, j]
            name = config.features[j]
            value = table[name].iloc[i]
            texts.append(f"{name}={'缺失' if pd.isna(value) else value}（降低评分{-pts:.0f}分）" if pts < -0.5 else "")
        result[f"reason_{k + 1}"] = texts
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".parquet":
        result.to_parquet(out, index=False)
    else:
        result.to_csv(out, index=False, encoding="utf-8")
    return result
