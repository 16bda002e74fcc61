"""Synthetic flat tables like the extracts banks hand to analysts: one row per borrower, mixed columns.

Used by the tests and by the scorecard benchmark. The outcome follows a known logistic model of
some columns, the rest are noise; the bad rate is set through the intercept.

- `flat_table`: 20 columns, 6 of them informative (additive or mixed shapes), numbers missing at
  random, two categories with Chinese labels. Its output for given arguments does not change: tests
  and past figures rely on it.
- `bank_table(family, ...)`: the table families of the benchmark (`FAMILIES`), each a trait of real
  bank extracts: few strong columns among many weak ones, a high-cardinality code, values missing
  not at random (缺失非随机), strong class imbalance.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np
import pandas as pd

INDUSTRIES = ["制造业", "批发零售", "建筑业", "交通运输", "信息技术", "住宿餐饮"]
REGIONS = ["城区", "开发区", "东乡", "西乡"]
INDUSTRY_EFFECT = np.array([0.0, 0.3, 0.6, 0.2, -0.4, 0.5])

Family = Literal["additive", "mixed", "sparse", "high_cardinality", "mnar", "imbalanced"]
FAMILIES: dict[str, str] = {
    "additive": "flat_table: 6 of 18 numbers and the industry, each linear in the log-odds",
    "mixed": "flat_table: the same 6 through a threshold, a U shape and an interaction",
    "sparse": "3 strong numbers, 25 weak ones (coefficients 0.04 to 0.12), 10 of noise, industry",
    "high_cardinality": (
        "a township code (乡镇街道代码) of 300 levels with real but noisy effects, industry, 4 strong "
        "and 4 noise numbers, a company name (free text, one per row: not to be used)"
    ),
    "mnar": (
        "values missing not at random: firms without a tax record, or with a thin credit file, are "
        "riskier; sales and tax in CNY with a lognormal spread; never-overdue left empty"
    ),
    "imbalanced": (
        "strong class imbalance: 3 strong, 12 weak and 5 noise numbers, a 40-level branch code, "
        "a tax record missing not at random, lognormal sales"
    ),
}
BAD_RATES: dict[str, float] = {
    "additive": 0.3,
    "mixed": 0.3,
    "sparse": 0.15,
    "high_cardinality": 0.2,
    "mnar": 0.12,
    "imbalanced": 0.05,
}
_NAME_PARTS = (
    list("华盛恒瑞丰鑫达通宏远泰安嘉信和兴永隆金源"),
    ["贸易", "科技", "建材", "物流", "餐饮", "机械", "电子"],
)


def _intercept(logit: np.ndarray, bad_rate: float) -> float:
    """The intercept that gives the wanted mean bad probability (bisection)."""
    lo, hi = -10.0, 10.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if np.mean(1 / (1 + np.exp(-(logit + mid)))) < bad_rate:
            lo = mid
        else:
            hi = mid
    return lo


def flat_table(
    *,
    rows: int = 1000,
    columns: int = 20,
    bad_rate: float = 0.3,
    seed: int = 0,
    missing: float = 0.05,
    shape: Literal["mixed", "additive"] = "mixed",
) -> pd.DataFrame:
    """A table with ``borrower_id``, ``columns`` feature columns and ``status`` (违约 / 正常).

    Columns: 2 categorical (industry, region), the rest numeric; the outcome depends on 6 of them
    and the industry. ``mixed``: some through a threshold, a U shape or an interaction (trees' home
    ground); ``additive``: each monotone and linear in the log-odds (a scorecard's home ground).
    """
    if columns < 8:
        raise ValueError("columns must be at least 8 (6 informative, 2 categorical)")
    rng = np.random.default_rng(seed)
    n_num = columns - 2
    z = rng.normal(size=(rows, n_num))
    industry = rng.integers(0, len(INDUSTRIES), rows)
    region = rng.integers(0, len(REGIONS), rows)
    industry_effect = INDUSTRY_EFFECT[industry]
    additive = 0.8 * z[:, 0] - 0.6 * z[:, 1] + 0.5 * z[:, 2] + 0.4 * z[:, 3] - 0.3 * z[:, 4] + 0.3 * z[:, 5]
    mixed = (
        0.9 * z[:, 0] - 0.7 * z[:, 1] + 0.6 * (z[:, 2] > 0.8) + 0.5 * z[:, 3] * (z[:, 4] > 0) - 0.4 * np.abs(z[:, 5])
    )
    logit = (additive if shape == "additive" else mixed) + industry_effect
    bad = rng.random(rows) < 1 / (1 + np.exp(-(logit + _intercept(logit, bad_rate))))
    frame = pd.DataFrame({"borrower_id": [f"B{seed:03d}{i:06d}" for i in range(rows)]})
    names = ["tax_sales_growth", "arrears_months", "penalties_24m", "headcount_change", "utility_trend", "age_gap"]
    names += [f"x{k:02d}" for k in range(n_num - len(names))]
    for j, name in enumerate(names[:n_num]):
        values = np.round(z[:, j] * 10 + 50, 3)
        values[rng.random(rows) < missing] = np.nan
        frame[name] = values
    frame["industry"] = np.array(INDUSTRIES, dtype=object)[industry]
    frame["region"] = np.array(REGIONS, dtype=object)[region]
    frame["status"] = np.where(bad, "违约", "正常")
    return frame


def bank_table(
    family: Family, *, rows: int = 1000, seed: int = 0, bad_rate: float | None = None, levels: int = 300
) -> pd.DataFrame:
    """A table of one of `FAMILIES`: ``borrower_id``, its feature columns and ``status`` (违约 / 正常).

    Args:
        family: the kind of table (see `FAMILIES`); ``additive`` and ``mixed`` are `flat_table`'s.
        rows: borrowers (the benchmark uses 1,000 to 30,000).
        seed: the same seed gives the same table; the effects of the columns and of the codes are
            the family's and do not change with it.
        bad_rate: the share of 违约 (default: the family's, `BAD_RATES`).
        levels: the number of township codes of ``high_cardinality`` (each appears when rows >= levels).
    """
    if family not in get_args(Family):
        raise ValueError(f"family must be one of {', '.join(get_args(Family))}, not {family!r}")
    rate = BAD_RATES[family] if bad_rate is None else bad_rate
    if family in ("additive", "mixed"):
        return flat_table(rows=rows, columns=20, bad_rate=rate, seed=seed, shape=family)
    rng = np.random.default_rng([seed, list(FAMILIES).index(family)])
    cols: dict[str, np.ndarray] = {"borrower_id": np.array([f"B{seed:03d}{i:06d}" for i in range(rows)])}
    logit = np.zeros(rows)
    industry = rng.integers(0, len(INDUSTRIES), rows)
    cols["industry"] = np.array(INDUSTRIES, dtype=object)[industry]
    logit += INDUSTRY_EFFECT[industry]
    if family == "sparse":
        logit += _numbers(rng, cols, [0.9, -0.7, 0.6], "strong")
        logit += _numbers(rng, cols, _weak(25), "weak")
        _numbers(rng, cols, [0.0] * 10, "noise")
        cols["region"] = np.array(REGIONS, dtype=object)[rng.integers(0, len(REGIONS), rows)]
    elif family == "high_cardinality":
        logit += _numbers(rng, cols, [0.7, -0.6, 0.5, 0.4], "strong")
        _numbers(rng, cols, [0.0] * 4, "noise")
        logit += _codes(rng, cols, "township_code", levels=levels, spread=0.6, prefix="330106")
        cols["company_name"] = _company_names(rng, rows)
    elif family == "mnar":
        logit += _numbers(rng, cols, [0.6, -0.5, 0.4], "strong")
        _numbers(rng, cols, [0.0] * 5, "noise")
        logit += _missing_not_at_random(rng, cols)
    else:
        logit += _numbers(rng, cols, [0.9, -0.7, 0.6], "strong")
        logit += _numbers(rng, cols, _weak(12), "weak")
        _numbers(rng, cols, [0.0] * 5, "noise")
        logit += _codes(rng, cols, "branch_code", levels=40, spread=0.4, prefix="网点")
        logit += _missing_not_at_random(rng, cols)
    bad = rng.random(rows) < 1 / (1 + np.exp(-(logit + _intercept(logit, rate))))
    frame = pd.DataFrame(cols)
    frame["status"] = np.where(bad, "违约", "正常")
    return frame


def _weak(n: int) -> list[float]:
    """n small coefficients of alternating sign, from 0.04 to 0.12."""
    return [float(c) * (1 if k % 2 else -1) for k, c in enumerate(np.linspace(0.04, 0.12, n))]


def _numbers(rng: np.random.Generator, cols: dict[str, np.ndarray], coefs: list[float], kind: str) -> np.ndarray:
    """Numeric columns ``{kind}_NN``, each linear in the log-odds through a latent normal (coefficient
    per standard deviation), shown as a plain value, a skewed amount or a count; 5 % missing at random.
    Returns their contribution to the log-odds."""
    rows = len(cols["borrower_id"])
    z = rng.normal(size=(rows, len(coefs)))
    for j in range(len(coefs)):
        form = j % 3
        values: np.ndarray
        if form == 0:
            values = np.round(z[:, j] * 10 + 50, 2)
        elif form == 1:  # an amount: lognormal, in CNY
            values = np.round(np.exp(10 + 0.8 * z[:, j]), 0)
        else:  # a count: a step function of the latent value
            values = np.floor(np.exp(1 + 0.5 * z[:, j]))
        values[rng.random(rows) < 0.05] = np.nan
        cols[f"{kind}_{j:02d}"] = values
    return z @ np.asarray(coefs, dtype=float)


def _codes(
    rng: np.random.Generator, cols: dict[str, np.ndarray], name: str, *, levels: int, spread: float, prefix: str
) -> np.ndarray:
    """A code column of ``levels`` levels with skewed frequencies (a few large, many small) and an
    effect per level drawn once for the family (normal, sd ``spread``). Returns the effects by row."""
    design = np.random.default_rng(levels)  # the family's levels and effects, the same for every seed
    effect = design.normal(0, spread, levels)
    share = 1 / (np.arange(levels) + 5.0)
    share /= share.sum()
    rows = len(cols["borrower_id"])
    # every level once (when there are rows enough), the rest by frequency, shuffled
    level = np.concatenate([np.arange(min(levels, rows)), rng.choice(levels, max(rows - levels, 0), p=share)])
    level = rng.permutation(level)
    cols[name] = np.array([f"{prefix}{k:03d}" for k in range(levels)], dtype=object)[level]
    return effect[level]


def _company_names(rng: np.random.Generator, rows: int) -> np.ndarray:
    """Free text, one value per row: an enterprise's name (企业名称), useless for scoring."""
    first, trade = _NAME_PARTS
    picks = zip(rng.integers(0, len(first), (rows, 2)), rng.integers(0, len(trade), rows), strict=True)
    return np.array(
        [f"{first[a]}{first[b]}{trade[t]}有限公司（{i:05d}）" for i, ((a, b), t) in enumerate(picks)], dtype=object
    )


def _missing_not_at_random(rng: np.random.Generator, cols: dict[str, np.ndarray]) -> np.ndarray:
    """Columns whose missingness carries risk. Returns their contribution to the log-odds.

    - ``tax_paid_12m`` (CNY): empty for firms without a tax record, likelier the riskier the firm;
    - ``sales_cny``: lognormal sales, higher is safer; empty for thin files, which are riskier;
    - ``months_since_overdue``: empty when never overdue (safer); recent overdue is riskier.
    """
    rows = len(cols["borrower_id"])
    risk, size, overdue = rng.normal(size=(3, rows))
    no_tax = rng.random(rows) < 1 / (1 + np.exp(-(-1.6 + 0.9 * risk)))
    tax = np.round(np.exp(9 - 0.5 * risk + 0.8 * rng.normal(size=rows)), 0)
    tax[no_tax] = np.nan
    cols["tax_paid_12m"] = tax
    sales = np.round(np.exp(14 + 1.2 * size), -2)
    thin = rng.random(rows) < 0.08
    sales[thin] = np.nan
    cols["sales_cny"] = sales
    ever = overdue > 0.3
    months = np.where(ever, np.ceil(np.exp(2.5 + 0.7 * rng.normal(size=rows))), np.nan)
    cols["months_since_overdue"] = months
    return 0.8 * risk + 0.7 * no_tax - 0.4 * size + 0.8 * thin + np.where(ever, 0.6 - 0.15 * np.log(months + 1), 0.0)
