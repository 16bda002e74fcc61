"""Outcome labels, read from the 12 months on and after the as-of date (never before it).

An adverse credit event (不良信用事件) is any of: a 较重/严重 administrative penalty, entry onto
the 严重失信主体名单 or the 失信被执行人 list, tax arrears past 90 days (the first month of an
episode), a broken credit commitment (违诺), or a loan reaching 90 days past due. The window
``[as_of, as_of + 12 months)`` never overlaps the feature window, which ends the day before.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd

from scoring.data.ingest import extract_date_of

LABEL_MONTHS = 12


class LabelWindowError(ValueError):
    """The outcome window reaches past the data: the label would be incomplete."""


def window_end(as_of: dt.date, months: int = LABEL_MONTHS) -> dt.date:
    y, m = divmod(as_of.month - 1 + months, 12)
    return as_of.replace(year=as_of.year + y, month=m + 1)


def adverse_event_sql(start: str, end: str) -> str:
    """One row per adverse event dated in [start, end): (uscc, event_date, kind)."""
    w = lambda col: f"{col} >= {start} AND {col} < {end}"  # noqa: E731
    return f"""
        SELECT uscc, decision_date AS event_date, 'severe_penalty' AS kind FROM penalties
            WHERE severity IN ('较重', '严重') AND {w("decision_date")}
        UNION ALL
        SELECT uscc, entry_date, CASE list_type WHEN '严重失信主体名单' THEN 'serious_list' ELSE 'executee_list' END
            FROM dishonesty_lists WHERE {w("entry_date")}
        UNION ALL
        SELECT uscc, outcome_date, 'broken_commitment' FROM commitments WHERE outcome = '违诺' AND {w("outcome_date")}
        UNION ALL
        SELECT uscc, dpd90_date, 'loan_default' FROM loans WHERE {w("dpd90_date")}
        UNION ALL
        SELECT uscc, filed_date, 'tax_arrears' FROM (
            SELECT uscc, filed_date, arrears_days,
                   lag(arrears_days) OVER (PARTITION BY uscc ORDER BY period) AS prev_days,
                   lag(period) OVER (PARTITION BY uscc ORDER BY period) AS prev_period
            FROM tax_monthly)
            WHERE arrears_days > 90
              AND (prev_days IS NULL OR prev_days <= 90 OR prev_period < filed_date - INTERVAL 2 MONTH)
              AND {w("filed_date")}
    """


def build_labels(con: duckdb.DuckDBPyConnection, *, as_of: dt.date, months: int = LABEL_MONTHS) -> pd.DataFrame:
    """Adverse-event label for every enterprise live at ``as_of``.

    Reads records dated in ``[as_of, as_of + months)`` only. Columns: uscc, as_of, adverse
    (0/1), first_event_kind, exposure_months (live months inside the window, for the oracle).
    Raises LabelWindowError when the window reaches past the warehouse's extraction date.
    """
    end = window_end(as_of, months)
    extract = extract_date_of(con)
    if end > extract:
        raise LabelWindowError(
            f"the {months}-month outcome window from {as_of} ends {end}, after the data ends ({extract})"
        )
    a, e = f"DATE '{as_of}'", f"DATE '{end}'"
    return con.execute(
        f"""
        WITH events AS ({adverse_event_sql(a, e)}),
        first AS (SELECT uscc, arg_min(kind, event_date) AS first_event_kind FROM events GROUP BY uscc)
        SELECT p.uscc, {a} AS as_of,
               CAST(f.uscc IS NOT NULL AS INTEGER) AS adverse, f.first_event_kind,
               CASE WHEN p.deregistered_date IS NULL OR p.deregistered_date >= {e} THEN {months}
                    ELSE date_diff('month', {a}, date_trunc('month', p.deregistered_date)) END AS exposure_months
        FROM enterprises p LEFT JOIN first f ON f.uscc = p.uscc
        WHERE p.registered_date < {a} AND (p.deregistered_date IS NULL OR p.deregistered_date >= {a})
        ORDER BY p.uscc
        """
    ).df()


def oracle_probability(con: duckdb.DuckDBPyConnection, labels: pd.DataFrame) -> pd.Series | None:
    """The generator's true probability for each labelled row (synthetic data only), else None."""
    try:
        truth = con.execute("SELECT uscc, monthly_hazard FROM synthetic_truth").df()
    except duckdb.CatalogException:
        return None
    merged = labels[["uscc", "exposure_months"]].merge(truth, on="uscc", how="left")
    p = 1 - (1 - merged["monthly_hazard"]) ** merged["exposure_months"]
    return pd.Series(p.to_numpy(), index=labels.index, name="p_true")
