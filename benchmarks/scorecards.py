"""Benchmark: the project's models against WOE-binned logistic scorecards, side by side on the same splits.

Runs in its own environment (`make bench-env`: optbinning and toad, whose dependencies MLflow's
pinned ones exclude), with the project's source on the path:

    PYTHONPATH=src .venv-bench/bin/python benchmarks/scorecards.py --reps 20 --write

Small flat tables like a bank's extract (1,000 rows, 20 mixed columns, 30 % bad; a new table and a
new stratified 70/30 split per repetition): `scoring train-table`'s TableModel, a default LightGBM,
optbinning's Scorecard and toad's chi-merge + WOE + logistic regression.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, write_section

from scoring.data.synthetic_tables import flat_table
from scoring.training.table import TableModel

SECTION = "## Models: against WOE logistic scorecards"
# toad 0.1.7 indexes column labels with NumPy arrays, which pandas 3's Arrow-backed strings refuse
pd.set_option("future.infer_string", False)
Fit = Callable[[pd.DataFrame, np.ndarray, pd.DataFrame], np.ndarray]


def ks(y: np.ndarray, p: np.ndarray) -> float:
    fpr, tpr, _ = roc_curve(y, p)
    return float(np.max(tpr - fpr))


def ours(x: pd.DataFrame, y: np.ndarray, test: pd.DataFrame) -> np.ndarray:
    return TableModel().fit(x, y).predict_proba(test)[:, 1]


def lightgbm_default(x: pd.DataFrame, y: np.ndarray, test: pd.DataFrame) -> np.ndarray:
    import lightgbm as lgb

    cats = [c for c in x.columns if not pd.api.types.is_numeric_dtype(x[c])]
    a, b = x.copy(), test.copy()
    for c in cats:
        kinds = pd.CategoricalDtype(sorted(a[c].dropna().unique()))
        a[c], b[c] = a[c].astype(kinds), b[c].astype(kinds)
    return lgb.LGBMClassifier(verbose=-1, random_state=0).fit(a, y).predict_proba(b)[:, 1]


def optbinning_scorecard(x: pd.DataFrame, y: np.ndarray, test: pd.DataFrame) -> np.ndarray:
    from optbinning import BinningProcess, Scorecard

    cats = [c for c in x.columns if not pd.api.types.is_numeric_dtype(x[c])]
    # the usual scorecard practice: monotone bins for numbers, variables kept from IV 0.1 up (without
    # the selection, WOE bins of noise columns overfit: test AUC 0.69 against 0.90 on train)
    monotone = {c: {"monotonic_trend": "auto_asc_desc"} for c in x.columns if c not in cats}
    process = BinningProcess(
        list(x.columns),
        categorical_variables=cats,
        binning_fit_params=monotone,
        selection_criteria={"iv": {"min": 0.1}},
    )
    card = Scorecard(binning_process=process, estimator=LogisticRegression(max_iter=1000))
    return card.fit(x, y).predict_proba(test)[:, 1]


def toad_scorecard(x: pd.DataFrame, y: np.ndarray, test: pd.DataFrame) -> np.ndarray:
    import toad

    # toad's chi-merge (Rust) panics on NaN: missing numbers become their own low bin, as scorecard
    # builders usually do
    numeric = [c for c in x.columns if pd.api.types.is_numeric_dtype(x[c])]
    x, test = x.copy(), test.copy()
    x[numeric], test[numeric] = x[numeric].fillna(-9999.0), test[numeric].fillna(-9999.0)
    frame = x.copy()
    frame["_y"] = y
    # the usual toad flow: drop weak (IV < 0.1) and collinear (|r| > 0.7) variables, then bin
    frame = toad.selection.select(frame, target="_y", empty=0.9, iv=0.1, corr=0.7)
    test = test[[c for c in frame.columns if c != "_y"]]
    combiner = toad.transform.Combiner()
    combiner.fit(frame, y="_y", method="chi", min_samples=0.05)
    woe = toad.transform.WOETransformer()
    train_woe = woe.fit_transform(combiner.transform(frame), frame["_y"], exclude=["_y"]).drop(columns="_y")
    test_woe = woe.transform(combiner.transform(test))
    # and toad's stepwise selection on the WOE values (both directions, by AIC), as its tutorial does
    chosen = toad.selection.stepwise(train_woe.assign(_y=y), target="_y", direction="both", criterion="aic")
    train_woe = chosen.drop(columns="_y")
    model = LogisticRegression(max_iter=1000).fit(train_woe.fillna(0), y)
    return model.predict_proba(test_woe[train_woe.columns].fillna(0))[:, 1]


METHODS: dict[str, Fit] = {
    "TableModel (`scoring train-table`)": ours,
    "LightGBM, default parameters": lightgbm_default,
    "optbinning Scorecard (monotone bins, IV ≥ 0.1, logistic)": optbinning_scorecard,
    "toad (IV and correlation selection, chi-merge, WOE, stepwise, logistic)": toad_scorecard,
}


def flat_tables(reps: int, shape: str) -> pd.DataFrame:
    rows = []
    for rep in range(reps):
        table = flat_table(rows=1000, columns=20, bad_rate=0.3, seed=100 + rep, shape=shape)  # type: ignore[arg-type]
        y = (table.pop("status") == "违约").to_numpy(dtype=int)
        x = table.drop(columns="borrower_id")
        a, b, ya, yb = train_test_split(x, y, test_size=0.3, stratify=y, random_state=rep)
        for name, fit in METHODS.items():
            started = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                p = fit(a.reset_index(drop=True), ya, b.reset_index(drop=True))
            rows.append(
                {
                    "rep": rep,
                    "method": name,
                    "auc": roc_auc_score(yb, p),
                    "ks": ks(yb, p),
                    "seconds": time.perf_counter() - started,
                }
            )
    return pd.DataFrame(rows)


def summary(results: pd.DataFrame, reference: str) -> str:
    g = results.groupby("method", sort=False)
    ref = results[results["method"] == reference].set_index("rep")
    lines = [
        "| method | AUC mean ± sd | KS mean ± sd | our AUC higher in | fit time (median) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, part in g:
        part = part.set_index("rep")
        wins = int((ref["auc"] > part["auc"]).sum()) if name != reference else None
        lines.append(
            f"| {name} | {part['auc'].mean():.4f} ± {part['auc'].std():.4f} | {part['ks'].mean():.4f} ± "
            f"{part['ks'].std():.4f} | {'' if wins is None else f'{wins} of {len(part)}'} | "
            f"{part['seconds'].median():.2f} s |"
        )
    return "\n".join(lines)


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
        **{k: v for k, v in METHODS.items() if "optbinning" in k or "toad" in k},
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument(
        "--warehouse", type=Path, default=REPO / "var" / "warehouse.duckdb", help="for the out-of-time split"
    )
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    described, split = evaluation_split(args.warehouse)
    print(split_table(split))
    results = {shape: flat_tables(args.reps, shape) for shape in ("additive", "mixed")}
    reference = next(iter(METHODS))
    command = (
        f"PYTHONPATH=src .venv-bench/bin/python benchmarks/scorecards.py --reps {args.reps} "
        f"--warehouse {args.warehouse}" + (" --write" if args.write else "")
    )
    text = f"""{SECTION}

Command: `make demo && make bench-env && {command}`
Machine: {os.cpu_count()} cores, Python {platform.python_version()}; optbinning and toad in their own environment.

**The credit evaluation's out-of-time split** ({described}). Every method is fitted on the same
training snapshots and tested on the same test snapshot; the interval is a paired bootstrap of the
test enterprises (200 resamples).

{split_table(split)}

**Small flat tables**: {args.reps} repetitions, each a new generated table (1,000 rows, 18 numeric and 2
categorical columns with Chinese labels, 5 % of numbers missing, 30 % bad; the outcome depends on 6
numeric columns and the industry) and a new stratified 70/30 split; every method sees the same split.
Test-set figures.

*Additive tables* (each column monotone and linear in the log-odds: a scorecard's home ground):

{summary(results["additive"], reference)}

*Mixed tables* (a threshold, a U shape and an interaction among the 6 columns):

{summary(results["mixed"], reference)}
"""
    print(text)
    if args.write:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
