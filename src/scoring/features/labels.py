"""Outcome labels, read from the 12 months on and after the as-of date (never before it).

Records deleted after an objection (异议, result 删除) are no events. An adverse credit event
(不良信用事件) is any of: a 较重/严重 administrative penalty, entry onto
the 严重失信主体名单 or the 失信被执行人 list, tax arrears past 90 days (the first month of an
episode), a broken credit commitment (违诺), or a loan reaching 90 days past due. The window
``[as_of, as_of + 12 months)`` never overlaps the feature window, which ends the day before.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd

from scoring.data.ingest import extract_date_of
from scoring.errors import ScoringError
from scoring.features.sql import Engine, translate

LABEL_MONTHS = 12


class LabelWindowError(ScoringError, ValueError):
    """The outcome window reaches past the data: the label would be incomplete."""

    code = "incomplete_label_window"
    status = None
    title_zh = "结果观察期超出数据范围"


def window_end(as_of: dt.date, months: int = LABEL_MONTHS) -> dt.date:
    """``as_of`` plus ``months`` calendar months (the 31st of a shorter month becomes its last day)."""
    return (pd.Timestamp(as_of) + pd.DateOffset(months=months)).date()


def adverse_event_sql(start: str, end: str) -> str:
    """One row per adverse event dated in [start, end): (uscc, event_date, kind)."""
    w = lambda col: f"{col} >= {start} AND {col} < {end}"  # noqa: E731

    def not_deleted(table: str, key: str) -> str:
        # a record deleted after an objection (异议) was an error: it was never an event
        return (
            f"{key} NOT IN (SELECT record_id FROM objections "  # nosec B608 # table and key names of this module
            f"WHERE record_table = '{table}' AND result = '删除')"
        )

    return f"""
        SELECT uscc, decision_date AS event_date, 'severe_penalty' AS kind FROM penalties
            WHERE severity IN ('较重', '严重') AND {w("decision_date")} AND {not_deleted("penalties", "penalty_id")}
        UNION ALL
        SELECT uscc, entry_date, 'serious_list' FROM serious_dishonesty_list
            WHERE {w("entry_date")} AND {not_deleted("serious_dishonesty_list", "list_entry_id")}
        UNION ALL
        SELECT uscc, entry_date, 'executee_list' FROM executee_list
            WHERE {w("entry_date")} AND {not_deleted("executee_list", "case_no")}
        UNION ALL
        SELECT uscc, outcome_date, 'broken_commitment' FROM commitments
            WHERE outcome = '违诺' AND {w("outcome_date")} AND {not_deleted("commitments", "commitment_id")}
        UNION ALL
        SELECT uscc, dpd90_date, 'loan_default' FROM loans
            WHERE {w("dpd90_date")} AND {not_deleted("loans", "loan_id")}
        UNION ALL
        SELECT uscc, filed_date, 'tax_arrears' FROM (
            SELECT uscc, period, filed_date, arrears_days,
                   lag(arrears_days) OVER (PARTITION BY uscc ORDER BY period) AS prev_days,
                   lag(period) OVER (PARTITION BY uscc ORDER BY period) AS prev_period
            FROM tax_monthly) episodes
            WHERE arrears_days > 90
              -- the first month of an episode: the month before was not past 90 days, or was not filed
              AND (prev_days IS NULL OR prev_days <= 90 OR prev_period < period - INTERVAL 1 MONTH)
              AND {w("filed_date")}
    """  # nosec B608 # this module's names; start and end are DATE literals of datetime.date


def build_labels(con: duckdb.DuckDBPyConnection, *, as_of: dt.date, months: int = LABEL_MONTHS) -> pd.DataFrame:
    """Adverse-event label for every enterprise live at ``as_of``.

    Reads records dated in ``[as_of, as_of + months)`` only. Columns: uscc, as_of, adverse
    (0/1), first_event_kind, exposure_months (live months inside the window, for the oracle).
    Raises LabelWindowError when the window reaches past the warehouse's extraction date.
    """
    return con.execute(labels_sql(con, as_of=as_of, months=months) + " ORDER BY uscc").df()


def labels_sql(con: duckdb.DuckDBPyConnection, *, as_of: dt.date, months: int = LABEL_MONTHS) -> str:
    """The query behind ``build_labels`` (unordered), for joining in the warehouse."""
    return labels_statement(as_of=as_of, months=months, extract=extract_date_of(con))


def labels_statement(*, as_of: dt.date, months: int, extract: dt.date, engine: Engine = "duckdb") -> str:
    """The labels at ``as_of`` as ``engine``'s SQL, given the data's extraction date (checked first).

    The first event's kind is the kind first in name order among the events of the first date, so
    that two events on one day give the same label on every engine."""
    end = window_end(as_of, months)
    if end > extract:
        raise LabelWindowError(
            f"the {months}-month outcome window from {as_of} ends {end}, after the data ends ({extract})"
        )
    a, e = f"DATE '{as_of}'", f"DATE '{end}'"
    return translate(
        f"""
        WITH events AS ({adverse_event_sql(a, e)}),
        first_dates AS (SELECT uscc, min(event_date) AS first_date FROM events GROUP BY uscc),
        first_kinds AS (
            SELECT v.uscc, min(v.kind) AS first_event_kind FROM events v
            JOIN first_dates f ON f.uscc = v.uscc AND f.first_date = v.event_date GROUP BY v.uscc)
        SELECT p.uscc, {a} AS as_of,
               CAST(f.uscc IS NOT NULL AS INTEGER) AS adverse, f.first_event_kind,
               CASE WHEN p.deregistered_date IS NULL OR p.deregistered_date >= {e} THEN {months}
                    ELSE date_diff('month', {a}, date_trunc('month', p.deregistered_date)) END AS exposure_months
        FROM enterprises p LEFT JOIN first_kinds f ON f.uscc = p.uscc
        WHERE p.registered_date < {a} AND (p.deregistered_date IS NULL OR p.deregistered_date >= {a})
        """,  # nosec B608 # text for Spark too: dates are datetime.date, months an int
        engine,
    )


def oracle_probability(
    con: duckdb.DuckDBPyConnection, labels: pd.DataFrame, *, knowable: bool = False
) -> pd.Series | None:
    """The generator's true probability for each labelled row (synthetic data only), else None.

    ``1 - prod(1 - h_m)`` over the live months of the outcome window, where the monthly hazard
    ``h_m`` is raised during an industry's bad spell (``synthetic_regimes``). With ``knowable``,
    the probability as it could be known at the as-of date: a bad spell that begins after the
    row's as-of date is left out (no model trained before it can foresee it), one already under
    way is counted (``p_asof``; else ``p_true``).
    """
    try:
        truth = con.execute(
            "SELECT t.uscc, t.monthly_hazard, e.industry FROM synthetic_truth t JOIN enterprises e USING (uscc)"
        ).df()
        regimes = con.execute("SELECT industry, start_month, end_month, logit_shift FROM synthetic_regimes").df()
    except duckdb.CatalogException:
        return None
    if truth.empty:
        return None
    merged = labels[["uscc", "as_of", "exposure_months"]].merge(truth, on="uscc", how="left")
    h0 = merged["monthly_hazard"].to_numpy()
    months = merged["exposure_months"].to_numpy()
    as_of = pd.to_datetime(merged["as_of"]).dt.to_period("M")
    survive = (1 - h0) ** months
    for r in regimes.itertuples():
        start = pd.Period(r.start_month, "M")
        end = pd.Period(r.end_month, "M")
        first = as_of.map(lambda p, s=start: max(p, s))
        last = (as_of + merged["exposure_months"]).map(lambda p, e=end: min(p, e))
        overlap = np.array([max((b - a).n, 0) for a, b in zip(first, last, strict=True)])
        overlap = np.where(merged["industry"].to_numpy() == r.industry, overlap, 0)
        if knowable:
            overlap = np.where((as_of >= start).to_numpy(), overlap, 0)
        h1 = 1 / (1 + np.exp(-(np.log(h0 / (1 - h0)) + r.logit_shift)))
        survive = survive * ((1 - h1) / (1 - h0)) ** overlap
    return pd.Series(1 - survive, index=labels.index, name="p_asof" if knowable else "p_true")


def build_loan_labels(
    con: duckdb.DuckDBPyConnection, *, start_from: dt.date, start_before: dt.date, months: int = LABEL_MONTHS
) -> pd.DataFrame:
    """Outcome labels of the 信易贷 pre-credit models, one row per loan started in ``[start_from, start_before)``.

    ``as_of`` is the first day of the loan's start month: its features read records dated before
    it, and its outcome is read from ``[start_date, start_date + months)`` only, so the two windows
    never overlap. Columns: loan_id, uscc, bank_id, start_date, as_of, amount, term_months,
    default_12m (1 when the loan reached 90 days past due within ``months`` of its start),
    repaid (1 when it was settled within the window without reaching 90 days past due) and
    repaid_amount (the amount for repaid loans, 0 for defaulted ones, NULL while still running).
    Loans deleted after an objection (异议) are left out. Raises LabelWindowError when a window
    reaches past the warehouse's extraction date.
    """
    return con.execute(
        loan_labels_statement(
            start_from=start_from, start_before=start_before, months=months, extract=extract_date_of(con)
        )
        + " ORDER BY start_date, loan_id"
    ).df()


def loan_labels_statement(
    *, start_from: dt.date, start_before: dt.date, months: int, extract: dt.date, engine: Engine = "duckdb"
) -> str:
    """The loan labels of ``build_loan_labels`` (unordered) as ``engine``'s SQL, the windows checked first."""
    last_end = window_end(start_before - dt.timedelta(days=1), months)
    if last_end > extract:
        raise LabelWindowError(
            f"loans started up to {start_before} have {months}-month outcome windows ending {last_end}, "
            f"after the data ends ({extract})"
        )
    return translate(
        f"""
        SELECT loan_id, uscc, bank_id, start_date, CAST(date_trunc('month', start_date) AS DATE) AS as_of,
               amount, term_months,
               CAST(coalesce(dpd90_date < start_date + INTERVAL {months} MONTH, false) AS INTEGER) AS default_12m,
               CAST(coalesce(settled_date < start_date + INTERVAL {months} MONTH, false)
                    AND NOT coalesce(dpd90_date < start_date + INTERVAL {months} MONTH, false) AS INTEGER) AS repaid,
               CASE WHEN coalesce(dpd90_date < start_date + INTERVAL {months} MONTH, false) THEN 0.0
                    WHEN settled_date < start_date + INTERVAL {months} MONTH THEN amount END AS repaid_amount
        FROM loans
        WHERE start_date >= DATE '{start_from}' AND start_date < DATE '{start_before}'
          AND loan_id NOT IN (SELECT record_id FROM objections WHERE record_table = 'loans' AND result = '删除')
        """,  # nosec B608 # text for Spark too: dates are datetime.date, months an int
        engine,
    )
