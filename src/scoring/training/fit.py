"""Fitting: LightGBM with the catalog's monotone constraints, early-stopped on a holdout of
enterprises, then Platt calibration of its margin on that holdout."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from scoring.domain.scorer import Calibration, ScorerConfig, encode_matrix
from scoring.features.catalog import Catalog
from scoring.training.errors import TrainingError
from scoring.training.rows import TrainingRows, holdout_of
from scoring.training.spec import AmountSpec, LargeData, ModelSpec


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
    fit_index, weight, sampled = sample_negatives(y, fit_index, large, seed=seed)
    if large is not None and len(fit_index) > large.above_rows:
        params.update(large.lightgbm)
        params["bagging_fraction"] = min(1.0, large.rows_per_tree / len(fit_index))
        params["bagging_freq"] = max(1, int(params.get("bagging_freq", 1)))
    binned = lgb.Dataset(rows.matrix, y, weight=weight, feature_name=names, categorical_feature=cats, params=params)
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
        **sampled,
    }
    return booster, calibration, info


def sample_negatives(
    y: np.ndarray, fit_index: np.ndarray, large: LargeData | None, *, seed: int
) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
    """(the fitting rows kept, every row's weight or None, what was done, for the run and the card).

    Above ``large.sample_above_rows`` fitting rows: every positive, and a seeded sample of the
    negatives (without replacement) so that about ``large.sample_rows`` rows remain; each kept negative
    weighs 1 / its sampling rate, so the weighted class balance is the original one. Rows outside
    ``fit_index`` (the holdout) weigh 1 and are never sampled.
    """
    if large is None or large.sample_above_rows is None or large.sample_rows is None:
        return fit_index, None, {}
    if len(fit_index) <= large.sample_above_rows:
        return fit_index, None, {}
    positive = y[fit_index] == 1
    positives, negatives = fit_index[positive], fit_index[~positive]
    keep = large.sample_rows - len(positives)
    if keep <= 0 or keep >= len(negatives):
        raise TrainingError(
            f"sample_rows ({large.sample_rows:,}) leaves no negatives to sample: {len(positives):,} positives "
            f"and {len(negatives):,} negatives among {len(fit_index):,} fitting rows"
        )
    kept = np.sort(np.random.default_rng(seed).choice(negatives, size=keep, replace=False))
    rate = keep / len(negatives)
    weight = np.ones(len(y), dtype=np.float64)
    weight[kept] = 1.0 / rate
    return (
        np.sort(np.concatenate([positives, kept])),
        weight,
        {
            "n_fit_before_sampling": len(fit_index),
            "positives_kept": len(positives),
            "negatives_before_sampling": len(negatives),
            "negative_rate": rate,
            "negative_weight": 1.0 / rate,
        },
    )


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
