"""Benchmark: the project's models against WOE-binned logistic scorecards, side by side on the same splits.

Runs in its own environment (`make bench-env`: optbinning, toad and scorecardpy, whose dependencies
MLflow's pinned ones exclude). From any folder:

    .venv-bench/bin/python benchmarks/scorecards.py --reps 20
    .venv-bench/bin/python benchmarks/scorecards.py --reps 2 --families sparse,mnar --sizes 1000

Table families like a bank's extracts (scoring.data.synthetic_tables.FAMILIES), each at its sizes
(benchmarks/tables.py DEFAULT_SIZES, or --sizes for all): a new table and a new stratified 70/30
split per repetition, every method on the same splits. For each family and size: mean AUC and KS
± sd, how often TableModel's AUC is higher, its paired gap to the best scorecard (mean ± standard
error), fit times, and whether it meets issue 15's target (at least the best scorecard's mean).
With a warehouse (--warehouse, or var/warehouse.duckdb when it exists) also the credit
evaluation's out-of-time split.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from pathlib import Path

# the benchmarks' modules and the project's source, from any folder
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np
import pandas as pd
from common import REPO, write_section
from sklearn.metrics import roc_auc_score
from tables import DEFAULT_SIZES, METHODS, REFERENCE, SCORECARDS, Fit, describe, ks, lightgbm_default, measure, splits

from scoring.data.synthetic_tables import FAMILIES

SECTION = "## Models: against WOE logistic scorecards"


def evaluation_split(warehouse: Path, resamples: int = 200) -> tuple[str, pd.DataFrame]:
    """The credit evaluation's own out-of-time split (models/credit_evaluation.yaml): the project's
    model as `scoring train` fits it, and each scorecard fitted on the same training snapshots and
    tested on the same test snapshot. Returns (a description of the split, one row per method)."""
    from scoring.data.ingest import connect, extract_date_of
    from scoring.domain.scorer import Scorer, encode_matrix
    from scoring.features.catalog import load_catalog
    from scoring.training.spec import load_spec
    from scoring.training.train import (
        choose_as_of_dates,
        data_start,
        evaluation_frame,
        feature_names,
        fit_rows,
        scorer_config,
        training_rows,
    )

    spec = load_spec(REPO / "models" / "credit_evaluation.yaml")
    catalog = load_catalog(REPO / "features" / "catalog.yaml")
    names = feature_names(spec, catalog)
    with connect(warehouse, memory_limit="6GB") as con:
        train_dates, test_date = choose_as_of_dates(spec, start=data_start(con), extract=extract_date_of(con))
        rows = training_rows(con, catalog, names, train_dates)
        test = evaluation_frame(con, catalog, test_date)
    y_test = test["adverse"].to_numpy()

    def ours(_x: pd.DataFrame, _y: np.ndarray, _test: pd.DataFrame) -> np.ndarray:
        # the production path from the encoded rows: the same rows and test as the frames the others get
        booster, calibration, _ = fit_rows(spec, catalog, rows, seed=int(spec.lightgbm["seed"]))
        scorer = Scorer(booster, scorer_config(spec, catalog, names, calibration=calibration))
        return scorer.probability(scorer.matrix(test))

    def frame(matrix: np.ndarray) -> pd.DataFrame:
        """Rows as the scorecard libraries take them: categories as their labels, numbers as floats."""
        out = pd.DataFrame(matrix, columns=names)
        for n in names:
            if catalog.feature(n).is_categorical:
                labels = np.array(catalog.feature(n).categories, dtype=object)
                codes = out[n].to_numpy()
                out[n] = np.where(np.isnan(codes), None, labels[np.nan_to_num(codes).astype(int)])
        return out

    x_train = frame(rows.matrix)
    categories = catalog.categories_of(names)
    x_test = frame(encode_matrix(test, names, categories))
    # columns with a single value in training (never-seen events at a county) carry nothing; optbinning
    # cannot bin an all-missing column, so the scorecards get the others
    used = [n for n in names if x_train[n].nunique(dropna=True) > 1]
    x_train, x_test = x_train[used], x_test[used]
    methods: dict[str, Fit] = {
        "credit evaluation model (`scoring train`)": ours,
        "LightGBM, default parameters": lightgbm_default,
        # scorecardpy is left out here: its var_filter alone would take hours on these 71,000 rows
        **{METHODS[k].label: METHODS[k].fit for k in ("optbinning", "toad")},
    }
    found, probabilities = [], {}
    for name, fit in methods.items():
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            probabilities[name] = fit(x_train, rows.y.astype(int), x_test)
        found.append(
            {
                "method": name,
                "auc": roc_auc_score(y_test, probabilities[name]),
                "ks": ks(y_test, probabilities[name]),
                "seconds": time.perf_counter() - started,
            }
        )
    results = pd.DataFrame(found)
    # a paired bootstrap of the test enterprises: the spread of each method's AUC gap to ours
    reference = next(iter(methods))
    rng = np.random.default_rng(0)
    draws = [rng.integers(0, len(y_test), len(y_test)) for _ in range(resamples)]
    gaps = {
        name: np.array(
            [roc_auc_score(y_test[i], probabilities[reference][i]) - roc_auc_score(y_test[i], p[i]) for i in draws]
        )
        for name, p in probabilities.items()
        if name != reference
    }
    results["our AUC gap, 95 % interval"] = results["method"].map(
        lambda m: (
            ""
            if m not in gaps
            else f"{np.mean(gaps[m]):+.4f} [{np.quantile(gaps[m], 0.025):+.4f}, {np.quantile(gaps[m], 0.975):+.4f}]"
        )
    )
    oracle = roc_auc_score(y_test, test["p_true"]) if test["p_true"].notna().all() else float("nan")
    described = (
        f"{warehouse}: training snapshots {', '.join(map(str, train_dates))} ({len(rows):,} enterprise-snapshots, "
        f"{len(names)} features, {len(used)} of them with more than one value), test snapshot {test_date} ({len(test):,} enterprises, bad rate "
        f"{y_test.mean():.2%}, oracle AUC {oracle:.4f})"
    )
    return described, results


def split_table(results: pd.DataFrame) -> str:
    lines = [
        "| method | AUC | KS | our AUC minus theirs (bootstrap mean, 95 % interval) | fit time |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in results.itertuples(index=False):
        lines.append(f"| {r[0]} | {r.auc:.4f} | {r.ks:.4f} | {r[4]} | {r.seconds:.1f} s |")
    return "\n".join(lines)


def family_results(family: str, rows: int, reps: int, methods: list[str]) -> pd.DataFrame:
    """One row per repetition and method: test AUC, KS and fit time."""
    fits = {k: METHODS[k].fit for k in methods}
    found: list[dict[str, object]] = []
    for split in splits(family, rows, reps):
        found += measure(split, fits, family=family, rows=rows)
    return pd.DataFrame(found)


def paired_gap(results: pd.DataFrame, metric: str, other: str) -> tuple[float, float]:
    """(mean, standard error) over the repetitions of our ``metric`` minus ``other``'s, split by split."""
    wide = results.pivot(index="rep", columns="method", values=metric)
    gap = wide[REFERENCE] - wide[other]
    return float(gap.mean()), float(gap.std(ddof=1) / np.sqrt(len(gap))) if len(gap) > 1 else float("nan")


def verdict(gap: float, se: float) -> str:
    if gap >= 0:
        return "met"
    return "not met, within one SE" if not gap < -se else "not met, more than one SE below"


def family_summary(results: pd.DataFrame) -> tuple[str, dict[str, object]]:
    """The family's table and gap lines (markdown), and its line of the overall verdict table."""
    means = results.groupby("method", sort=False)[["auc", "ks"]].mean()
    ref = results[results["method"] == REFERENCE].set_index("rep") if REFERENCE in means.index else None
    lines = [
        "| method | AUC mean ± sd | KS mean ± sd | our AUC higher in | fit time (median) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, part in results.groupby("method", sort=False):
        part = part.set_index("rep")
        wins = "" if ref is None or name == REFERENCE else f"{int((ref['auc'] > part['auc']).sum())} of {len(part)}"
        lines.append(
            f"| {METHODS[str(name)].label} | {part['auc'].mean():.4f} ± {part['auc'].std():.4f} | "
            f"{part['ks'].mean():.4f} ± {part['ks'].std():.4f} | {wins} | {part['seconds'].median():.2f} s |"
        )
    cards = [c for c in SCORECARDS if c in means.index]
    row: dict[str, object] = {}
    if ref is not None and cards:
        lines.append("")
        met = True
        for metric, word in (("auc", "AUC"), ("ks", "KS")):
            best = max(cards, key=lambda c: means.loc[c, metric])
            gap, se = paired_gap(results, metric, best)
            met &= gap >= 0
            text = verdict(gap, se)
            lines.append(
                f"- Our {word} minus the best scorecard's ({best}, {means.loc[best, metric]:.4f}): "
                f"{gap:+.4f} ± {se:.4f} (mean ± standard error of the paired difference): {text}."
            )
            row[f"our {word} minus the best scorecard's"] = f"{gap:+.4f} ± {se:.4f} ({best})"
            row[f"{word} verdict"] = text
        row["verdict"] = "**met**" if met else "**not met**"
        lines.append(f"- **Verdict: {'met' if met else 'not met'}** (AUC and KS at least the best scorecard's mean).")
    return "\n".join(lines), row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=20, help="repetitions per family and size (default 20)")
    parser.add_argument("--families", default=",".join(FAMILIES), help=f"comma-separated, of: {', '.join(FAMILIES)}")
    parser.add_argument("--sizes", help="comma-separated row counts for every family (default: each family's own)")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated, of: {', '.join(METHODS)}")
    parser.add_argument(
        "--warehouse", type=Path, help="for the out-of-time split (default var/warehouse.duckdb, skipped if absent)"
    )
    parser.add_argument("--write", action="store_true", help="write the section of docs/benchmarks.md")
    args = parser.parse_args()
    families = args.families.split(",")
    methods = args.methods.split(",")
    for name, known in (("family", FAMILIES), ("method", METHODS)):
        unknown = [v for v in (families if name == "family" else methods) if v not in known]
        if unknown:
            parser.error(f"unknown {name} {', '.join(unknown)}: choose among {', '.join(known)}")
    sizes = {f: tuple(int(n) for n in args.sizes.split(",")) if args.sizes else DEFAULT_SIZES[f] for f in families}

    warehouse = args.warehouse or REPO / "var" / "warehouse.duckdb"
    oot = ""
    if warehouse.exists():
        described, split = evaluation_split(warehouse)
        print(split_table(split), flush=True)
        oot = f"""**The credit evaluation's out-of-time split** ({described}). Every method is fitted on the same
training snapshots and tested on the same test snapshot; the interval is a paired bootstrap of the
test enterprises (200 resamples).

{split_table(split)}
"""
    elif args.warehouse is not None:
        parser.error(f"--warehouse {warehouse}: no such file")
    else:
        print(f"note: {warehouse} does not exist (make demo makes it): the out-of-time split is skipped", flush=True)

    parts, verdicts = [], []
    for family in families:
        for rows in sizes[family]:
            started = time.perf_counter()
            results = family_results(family, rows, args.reps, methods)
            wall = time.perf_counter() - started
            table, row = family_summary(results)
            part = (
                f"*{family}, {rows:,} rows* ({describe(family)}; {args.reps} repetitions, "
                f"{wall:.0f} s in all):\n\n{table}\n"
            )
            print(part, flush=True)
            parts.append(part)
            verdicts.append({"family": family, "rows": f"{rows:,}", **row, "wall time": f"{wall:.0f} s"})
    overall = pd.DataFrame(verdicts)
    overview = "| " + " | ".join(overall.columns) + " |\n|" + "---|" * len(overall.columns) + "\n"
    overview += "\n".join("| " + " | ".join(str(v) for v in r) + " |" for r in overall.itertuples(index=False))
    print(overview)

    command = f".venv-bench/bin/python benchmarks/scorecards.py --reps {args.reps}"
    for flag, value, default in (
        ("--families", args.families, ",".join(FAMILIES)),
        ("--sizes", args.sizes, None),
        ("--methods", args.methods, ",".join(METHODS)),
        ("--warehouse", args.warehouse, None),
    ):
        if value is not None and value != default:
            command += f" {flag} {value}"
    text = f"""{SECTION}

Command: `make bench-env && {command}{" --write" if args.write else ""}`
Machine: {os.cpu_count()} cores, Python {platform.python_version()}; optbinning, toad and scorecardpy in their own environment.

{oot}
**Table families**: each repetition a new generated table and a new stratified 70/30 split; every
method sees the same split; test-set figures. The scorecards get the columns as an analyst prepares
them (identifiers dropped, levels of a code with under 20 training rows grouped into 其他), the plain
LightGBM without identifiers, TableModel the table whole. toad and scorecardpy bins are merged until
monotone, the adjustment their tutorials leave to the analyst. The verdict is issue 15's target:
AUC and KS at least the best scorecard's mean.

{overview}

{chr(10).join(parts)}"""
    if args.write:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
