"""Benchmark: how much of the oracles the test snapshot's own records reveal (an in-time ceiling).

The credit evaluation's out-of-time AUC falls short of the as-of oracle for two reasons:
1. what an enterprise's records cannot tell: its hidden risk is drawn once, and its records are
   noisy draws from it over the months the platform holds;
2. what training on earlier snapshots loses: their shorter history (a 24-month window is complete in
   one training snapshot of a 48-month platform, a 36-month one in none) and the drift since.

This measures the first. The same LightGBM (models/credit_evaluation.yaml, the same catalog) is fitted
in time, on k folds of the test snapshot's own enterprises: features as of the test date, labels of the
12 months after it; every enterprise is scored by the fold that did not see it. That AUC is what the
records at the test date reveal to this learner. It is a ceiling for a model trained out of time, and
generous: its labels contain the shocks inside the outcome window (industry F's bad spell), which
only the full oracle knows too. From any folder:

    .venv/bin/python benchmarks/oracle_ceiling.py --home /tmp/oracle-demo
    .venv/bin/python benchmarks/oracle_ceiling.py --warehouse /tmp/city48/warehouse.duckdb --folds 2
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold

from scoring.data.ingest import connect, extract_date_of
from scoring.domain.scorer import encode_matrix
from scoring.features.build import ensure_snapshots, source_starts, truncated_features
from scoring.features.catalog import Catalog, load_catalog
from scoring.training.fit import feature_names, fit_rows
from scoring.training.rows import TrainingRows, evaluation_frame
from scoring.training.spec import load_spec
from scoring.training.train import choose_as_of_dates, data_start

REPO = Path(__file__).resolve().parents[1]


def short_history(con: Any, catalog: Catalog, test_date: dt.date, months: int) -> set[str]:
    """The features a platform holding only the ``months`` before ``test_date`` would have missing:
    every source's first month (and each outcome-dated feature's lag) moved as if the data began then."""
    starts = source_starts(con, catalog, as_of_dates=[test_date])[test_date]
    first = min(v for v in starts.values() if v is not None)  # the month the platform's records begin
    shift = (test_date.year - first.year) * 12 + test_date.month - first.month - months
    moved = {
        k: None if v is None else (pd.Timestamp(v) + pd.DateOffset(months=shift)).date() for k, v in starts.items()
    }
    return truncated_features(catalog, moved, as_of=test_date)


def in_time_scores(
    spec_path: Path, catalog_path: Path, warehouse: Path, folds: int, seed: int, history: int | None = None
) -> dict:
    """Out-of-fold margins of the spec's LightGBM fitted on the test snapshot itself, with the oracles;
    with ``history``, the features a platform of that many months would lack are left missing."""
    spec, catalog = load_spec(spec_path), load_catalog(catalog_path)
    with connect(warehouse) as con:
        _, test_date = choose_as_of_dates(spec, start=data_start(con), extract=extract_date_of(con))
        ensure_snapshots(con, catalog, as_of_dates=[test_date])
        frame = evaluation_frame(con, catalog, test_date)
        blanked = short_history(con, catalog, test_date, history) if history else set()
    names = feature_names(spec, catalog)
    frame[[n for n in names if n in blanked]] = np.nan
    x = encode_matrix(frame, names, catalog.categories_of(names))
    y = frame["adverse"].to_numpy().astype(np.int8)
    uscc = frame["uscc"].to_numpy()
    margin = np.empty(len(y))
    trees = []
    for k, (fit_idx, out_idx) in enumerate(
        StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed).split(x, y, groups=uscc)
    ):
        rows = TrainingRows(matrix=x[fit_idx], y=y[fit_idx], uscc=uscc[fit_idx])
        booster, _, info = fit_rows(spec, catalog, rows, seed=seed + k)
        margin[out_idx] = booster.predict(x[out_idx], raw_score=True)
        trees.append(info["best_iteration"])
    return {
        "test_date": str(test_date),
        "rows": len(y),
        "bad_rate": float(y.mean()),
        "in_time_auc": roc_auc_score(y, margin),
        "asof_oracle_auc": roc_auc_score(y, frame["p_asof"]),
        "oracle_auc": roc_auc_score(y, frame["p_true"]),
        "trees": trees,
        "blanked": sorted(set(names) & blanked),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, help="a home (its var/warehouse.duckdb, features/ and models/)")
    parser.add_argument("--warehouse", type=Path, help="a warehouse; the catalog and spec are the repository's")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--history-months",
        type=int,
        help="leave missing what a platform of this many months would lack (24: as the latest training snapshot)",
    )
    args = parser.parse_args()
    if (args.home is None) == (args.warehouse is None):
        parser.error("give one of --home and --warehouse")
    root = args.home or REPO
    warehouse = args.warehouse or args.home / "var" / "warehouse.duckdb"
    started = time.perf_counter()
    out = in_time_scores(
        root / "models" / "credit_evaluation.yaml",
        root / "features" / "catalog.yaml",
        warehouse,
        args.folds,
        args.seed,
        args.history_months,
    )
    where = f"--home {args.home}" if args.home else f"--warehouse {args.warehouse}"
    history = f" --history-months {args.history_months}" if args.history_months else ""
    print(f"Command: `.venv/bin/python benchmarks/oracle_ceiling.py {where} --folds {args.folds}{history}`\n")
    if out["blanked"]:
        print(
            f"Left missing, as a platform of {args.history_months} months would have them: {len(out['blanked'])} features.\n"
        )
    print(
        f"Test snapshot {out['test_date']}: {out['rows']:,} enterprises, {out['bad_rate']:.2%} adverse; "
        f"{args.folds} folds ({', '.join(map(str, out['trees']))} trees), {time.perf_counter() - started:,.0f} s.\n"
    )
    print(
        "| in time (k folds of the test snapshot) | as-of oracle | full oracle | in time / as-of oracle | in time / full oracle |"
    )
    print("|---:|---:|---:|---:|---:|")
    a, o, f = out["in_time_auc"], out["asof_oracle_auc"], out["oracle_auc"]
    print(f"| {a:.4f} | {o:.4f} | {f:.4f} | {a / o:.4f} | {a / f:.4f} |")


if __name__ == "__main__":
    main()
