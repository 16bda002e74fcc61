"""Synthetic flat tables like the extracts banks hand to analysts: one row per borrower, mixed columns.

Used by the tests and by the scorecard benchmark. The outcome follows a known logistic model of a
few columns (some through thresholds and an interaction), the rest are noise; numbers go missing at
random, a category column holds Chinese labels.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

INDUSTRIES = ["制造业", "批发零售", "建筑业", "交通运输", "信息技术", "住宿餐饮"]
REGIONS = ["城区", "开发区", "东乡", "西乡"]


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
    industry_effect = np.array([0.0, 0.3, 0.6, 0.2, -0.4, 0.5])[industry]
    additive = 0.8 * z[:, 0] - 0.6 * z[:, 1] + 0.5 * z[:, 2] + 0.4 * z[:, 3] - 0.3 * z[:, 4] + 0.3 * z[:, 5]
    mixed = (
        0.9 * z[:, 0] - 0.7 * z[:, 1] + 0.6 * (z[:, 2] > 0.8) + 0.5 * z[:, 3] * (z[:, 4] > 0) - 0.4 * np.abs(z[:, 5])
    )
    logit = (additive if shape == "additive" else mixed) + industry_effect
    # the intercept that gives the wanted bad rate
    lo, hi = -10.0, 10.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if np.mean(1 / (1 + np.exp(-(logit + mid)))) < bad_rate:
            lo = mid
        else:
            hi = mid
    bad = rng.random(rows) < 1 / (1 + np.exp(-(logit + lo)))
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
