"""Benchmark: candidate remedies for small flat tables, side by side with optbinning's scorecard.

The same 1,000-row tables and 70/30 splits as benchmarks/scorecards.py. Each candidate is the
TableModel recipe (cross-validated early stopping on log loss, 5 folds) with one change; the
results choose `table_params`. Runs in the scorecard environment:

    PYTHONPATH=src .venv-bench/bin/python benchmarks/table_remedies.py --reps 20 four_leaves,stumps,optbinning
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scorecards import Fit, ks, optbinning_scorecard

from scoring.data.synthetic_tables import flat_table
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


CANDIDATES: dict[str, Callable[[], Fit]] = {
    "four_leaves": lambda: candidate(),  # the recipe before this benchmark chose stumps
    "stumps": lambda: candidate(leaves=2),
    "stumps_monotone": lambda: candidate(leaves=2, monotone_z=2.58),
    "monotone": lambda: candidate(monotone_z=2.58),
    "cv_2_or_4_monotone": lambda: candidate(monotone_z=2.58, choose=[{"num_leaves": 2}, {"num_leaves": 4}]),
    "stumps_extra_trees": lambda: candidate(leaves=2, extra={"extra_trees": True}),
    "stumps_lr_0.02": lambda: candidate(leaves=2, extra={"learning_rate": 0.02}),
    "optbinning": lambda: optbinning_scorecard,
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("names", help=f"comma-separated, of: {', '.join(CANDIDATES)}")
    args = parser.parse_args()
    chosen = {n: CANDIDATES[n]() for n in args.names.split(",")}
    rows = []
    for shape in ("additive", "mixed"):
        for rep in range(args.reps):
            table = flat_table(rows=1000, columns=20, bad_rate=0.3, seed=100 + rep, shape=shape)  # type: ignore[arg-type]
            y = (table.pop("status") == "违约").to_numpy(dtype=int)
            x = table.drop(columns="borrower_id")
            a, b, ya, yb = train_test_split(x, y, test_size=0.3, stratify=y, random_state=rep)
            for name, fit in chosen.items():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    p = fit(a.reset_index(drop=True), ya, b.reset_index(drop=True))
                rows.append({"shape": shape, "rep": rep, "method": name, "auc": roc_auc_score(yb, p), "ks": ks(yb, p)})
    results = pd.DataFrame(rows)
    print(results.groupby(["method", "shape"], sort=False)[["auc", "ks"]].mean().unstack().round(4))
    if "optbinning" in chosen:
        auc = results.pivot_table(index=["shape", "rep"], columns="method", values="auc")
        for name in chosen:
            if name != "optbinning":
                gap = (auc[name] - auc["optbinning"]).groupby(level="shape")
                print(
                    name,
                    {
                        s: f"higher in {(g > 0).sum()}/{len(g)}, mean {g.mean():+.4f} ± {g.std() / np.sqrt(len(g)):.4f}"
                        for s, g in gap
                    },
                )


if __name__ == "__main__":
    main()
