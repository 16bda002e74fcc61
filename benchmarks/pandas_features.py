"""A direct pandas implementation of a representative subset of the catalog, for the side-by-side benchmark.

It is written the way an analyst would write it in a notebook: vectorised pandas (boolean masks,
groupby, rank), no Python loop over enterprises. It follows the same point-in-time rules as
``scoring.features.build``: records dated before ``as_of`` only, repaired penalties and list entries
left out from their repair date, records deleted after an objection left out from its resolution, and
a window reaching before the first month of its source's records is missing, not a partial sum.
The benchmark checks that its values equal the SQL pipeline's before it reports any time.
"""

from __future__ import annotations

import pandas as pd

# The catalog features this module computes (with the helper features they derive from).
FEATURES = [
    "ent_age_months",
    "penalty_count_12m",
    "penalty_severe_count_24m",
    "penalty_amount_12m",
    "months_since_last_penalty",
    "serious_list_active",
    "tax_sales_12m",
    "tax_sales_prev_12m",
    "tax_sales_yoy",
    "tax_sales_cv_12m",
    "tax_late_filings_12m",
    "elec_usage_12m",
    "utility_paid_ratio_12m",
    "si_headcount_latest",
    "si_headcount_12m_ago",
    "si_headcount_change_12m",
    "tax_sales_12m_peer_pct",
]

# The columns each table needs, read from the warehouse before the timed computation.
COLUMNS = {
    "enterprises": ["uscc", "industry", "division", "registered_date", "deregistered_date"],
    "penalties": ["penalty_id", "uscc", "severity", "amount", "decision_date", "repair_date"],
    "serious_dishonesty_list": ["list_entry_id", "uscc", "entry_date", "exit_date", "exit_reason"],
    "tax_monthly": ["uscc", "filed_date", "declared_sales", "late_filing"],
    "utility_monthly": ["uscc", "utility", "bill_date", "usage", "billed", "paid"],
    "social_insurance_monthly": ["uscc", "report_date", "headcount"],
    "objections": ["record_table", "record_id", "resolved_date", "result"],
}


def _months_between(dates: pd.Series, as_of: pd.Timestamp) -> pd.Series:
    """Calendar-month boundaries from each date to ``as_of`` (DuckDB's date_diff('month', ...))."""
    return (as_of.year * 12 + as_of.month) - (dates.dt.year * 12 + dates.dt.month)


def _window(frame: pd.DataFrame, column: str, as_of: pd.Timestamp, months: int, offset: int = 0) -> pd.DataFrame:
    upper = as_of - pd.DateOffset(months=offset)
    return frame[(frame[column] >= as_of - pd.DateOffset(months=months + offset)) & (frame[column] < upper)]


def _complete(records: pd.DataFrame, column: str, as_of: pd.Timestamp, months: int) -> bool:
    """Whether a window of ``months`` before ``as_of`` starts on or after the first month of the source's
    records dated before ``as_of`` (all of them, repaired or deleted ones too)."""
    before = records.loc[records[column] < as_of, column]
    if before.empty:
        return False
    return as_of - pd.DateOffset(months=months) >= before.min().to_period("M").to_timestamp()


def _deleted(objections: pd.DataFrame, table: str, as_of: pd.Timestamp) -> pd.Series:
    o = objections
    return o.loc[(o.record_table == table) & (o.result == "删除") & (o.resolved_date < as_of), "record_id"]


def features(tables: dict[str, pd.DataFrame], as_of: pd.Timestamp) -> pd.DataFrame:
    """The subset's snapshot at ``as_of``: one row per live enterprise, indexed by uscc."""
    e = tables["enterprises"]
    live = e[(e.registered_date < as_of) & (e.deregistered_date.isna() | (e.deregistered_date >= as_of))]
    out = live.set_index("uscc")[["industry", "division"]].copy()
    out["ent_age_months"] = _months_between(live.registered_date, as_of).to_numpy()

    p_all = tables["penalties"]
    p = p_all[
        (p_all.decision_date < as_of)
        & ~(p_all.repair_date < as_of)
        & ~p_all.penalty_id.isin(_deleted(tables["objections"], "penalties", as_of))
    ]
    p12 = _window(p, "decision_date", as_of, 12)
    out["penalty_count_12m"] = p12.groupby("uscc").size()
    p24 = _window(p, "decision_date", as_of, 24)
    out["penalty_severe_count_24m"] = p24[p24.severity.isin(["较重", "严重"])].groupby("uscc").size()
    out["penalty_amount_12m"] = p12.groupby("uscc").amount.sum()
    out["months_since_last_penalty"] = _months_between(p24.groupby("uscc").decision_date.max(), as_of)
    for name, months in (("penalty_count_12m", 12), ("penalty_severe_count_24m", 24), ("penalty_amount_12m", 12)):
        out[name] = out[name].fillna(0) if _complete(p_all, "decision_date", as_of, months) else float("nan")

    s = tables["serious_dishonesty_list"]
    s = s[
        (s.entry_date < as_of)
        & ~((s.exit_date < as_of) & (s.exit_reason == "信用修复"))
        & ~s.list_entry_id.isin(_deleted(tables["objections"], "serious_dishonesty_list", as_of))
        & (s.exit_date.isna() | (s.exit_date >= as_of))
    ]
    out["serious_list_active"] = out.index.isin(s.uscc).astype(float)

    t = tables["tax_monthly"]
    t = t[t.filed_date < as_of]
    tax_12m, tax_24m = _complete(t, "filed_date", as_of, 12), _complete(t, "filed_date", as_of, 24)
    t12 = _window(t, "filed_date", as_of, 12).groupby("uscc")
    out["tax_sales_12m"] = t12.declared_sales.sum(min_count=1)
    out["tax_sales_prev_12m"] = _window(t, "filed_date", as_of, 12, 12).groupby("uscc").declared_sales.sum(min_count=1)
    out["tax_sales_yoy"] = out.tax_sales_12m / out.tax_sales_prev_12m.replace(0, float("nan")) - 1
    out["tax_sales_cv_12m"] = t12.declared_sales.std() / t12.declared_sales.mean().replace(0, float("nan"))
    out["tax_late_filings_12m"] = t12.late_filing.sum().reindex(out.index).fillna(0)
    for name, complete in (("tax_sales_12m", tax_12m), ("tax_sales_prev_12m", tax_24m), ("tax_sales_cv_12m", tax_12m)):
        if not complete:
            out[name] = float("nan")
    if not tax_12m:
        out["tax_late_filings_12m"] = float("nan")
    out["tax_sales_yoy"] = out.tax_sales_12m / out.tax_sales_prev_12m.replace(0, float("nan")) - 1

    u = _window(tables["utility_monthly"], "bill_date", as_of, 12)
    out["elec_usage_12m"] = u[u.utility == "electricity"].groupby("uscc").usage.sum(min_count=1)
    u12 = u.groupby("uscc")
    out["utility_paid_ratio_12m"] = u12.paid.sum(min_count=1) / u12.billed.sum(min_count=1).replace(0, float("nan"))
    if not _complete(tables["utility_monthly"], "bill_date", as_of, 12):
        out[["elec_usage_12m", "utility_paid_ratio_12m"]] = float("nan")

    si = tables["social_insurance_monthly"]
    for name, offset in (("si_headcount_latest", 0), ("si_headcount_12m_ago", 12)):
        window = _window(si, "report_date", as_of, 3, offset).sort_values("report_date")
        out[name] = window.groupby("uscc").headcount.last()
    out["si_headcount_change_12m"] = out.si_headcount_latest / out.si_headcount_12m_ago.replace(0, float("nan")) - 1

    # peers: the share of enterprises of the same industry and division with a lower value
    known = out.tax_sales_12m.notna()
    peers = out[known].groupby(["industry", "division"]).tax_sales_12m
    rank, size = peers.rank(method="min"), peers.transform("size")
    out["tax_sales_12m_peer_pct"] = ((rank - 1) / (size - 1)).where(size > 1, 0.0)
    return out[FEATURES].astype(float).sort_index()
