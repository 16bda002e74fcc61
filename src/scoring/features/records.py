"""Which records count for an enterprise as of a date, which do not, and why.

A record counts when it is dated before the as-of date, unless it was repaired (信用修复) before
then, or deleted after an objection (异议) resolved before then. A record under an open
objection is disputed: it counts or not as the catalog's ``disputed_records`` says, and a
decision made on it says so.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd

from scoring.data import schema
from scoring.features.catalog import Catalog
from scoring.features.plan import repaired_sql

# what to show of each event record: its date and a short description
_DESCRIBE = {
    "penalties": ("decision_date", "severity || ' ' || domain || ' 罚没' || CAST(round(amount) AS BIGINT) || '元'"),
    "serious_dishonesty_list": (
        "entry_date",
        "'列入严重失信主体名单 ' || domain || CASE WHEN exit_date < AS_OF "
        "THEN ' 移出' || CAST(exit_date AS VARCHAR) || coalesce(' ' || exit_reason, '') ELSE '' END",
    ),
    "executee_list": (
        "entry_date",
        "'失信被执行人 ' || court || CASE WHEN exit_date < AS_OF THEN ' 移出' || CAST(exit_date AS VARCHAR) ELSE '' END",
    ),
    "commitments": (
        "commit_date",
        "commitment_type || ' ' || CASE WHEN outcome_date < AS_OF THEN outcome ELSE '在途' END",
    ),
    "admin_actions": ("action_date", "action_type || ' ' || result"),
    "licenses": ("issued_date", "license_type || ' 有效期至' || CAST(valid_until AS VARCHAR)"),
    "loans": ("start_date", "bank_id || ' ' || CAST(round(amount) AS BIGINT) || '元 ' || term_months || '个月'"),
    "real_estate": ("registered_date", "property_type || ' ' || area_m2 || '平方米'"),
    "hightech_certificates": ("certified_date", "'高新技术企业 有效期至' || CAST(expiry_date AS VARCHAR)"),
    "patents": ("granted_date", "patent_type || '专利'"),
}


def _day(value: object) -> str:
    return str(pd.Timestamp(value).date())


def _event_records_sql(catalog: Catalog, *, where: str) -> str:
    """The event records dated before the parameter ``$as_of`` that meet ``where``."""
    a = "$as_of"
    repairs = {src.table: src for src in catalog.sources.values() if src.repaired_from}
    parts = []
    for table, (date_col, describe) in _DESCRIBE.items():
        key = schema.TABLES[table].key[0]
        src = repairs.get(table)
        repaired = repaired_sql(src, a) if src else "false"
        repaired_on = f"CAST({src.repaired_from} AS VARCHAR)" if src else "NULL"
        parts.append(
            f"""SELECT * FROM (
                    SELECT '{table}' AS "table", uscc, CAST({key} AS VARCHAR) AS record_id, {date_col} AS date,
                           {describe.replace("AS_OF", a)} AS description, {repaired} AS repaired,
                           {repaired_on} AS repaired_on
                    FROM {table} WHERE {date_col} < {a}) r WHERE {where}
            """  # nosec B608 # names of _DESCRIBE and the catalog; the date is bound
        )
    return " UNION ALL ".join(parts)


def _classify(records: pd.DataFrame, objections: pd.DataFrame, catalog: Catalog, as_of: dt.date) -> pd.DataFrame:
    """Add counts, status and reason_zh to event records, given the objections raised before ``as_of``."""
    status, reasons, counts = [], [], []
    by_record = {key: group for key, group in objections.groupby(["record_table", "record_id"])}
    none = objections.iloc[0:0]
    for row in records.itertuples(index=False):
        obj = by_record.get((row.table, row.record_id), none)
        resolved = obj[obj["resolved_date"].notna() & (pd.to_datetime(obj["resolved_date"]) < pd.Timestamp(as_of))]
        open_ = obj[~obj.index.isin(resolved.index)]
        if row.repaired:
            status.append("repaired")
            reasons.append(f"已于{row.repaired_on}信用修复，自修复之日起不再计入")
            counts.append(False)
        elif (resolved["result"] == "删除").any():
            when = _day(resolved.loc[resolved["result"] == "删除", "resolved_date"].iloc[0])
            status.append("deleted_after_objection")
            reasons.append(f"异议成立，已于{when}删除，不再计入")
            counts.append(False)
        elif not open_.empty:
            raised = _day(open_["raised_date"].iloc[0])
            counted = catalog.disputed_records == "count"
            status.append("disputed")
            reasons.append(f"{raised}起异议处理中，" + ("处理完毕前仍计入" if counted else "处理完毕前不计入"))
            counts.append(counted)
        else:
            status.append("counts")
            if not resolved.empty:
                reasons.append(f"异议已处理（{resolved['result'].iloc[-1]}），计入")
            else:
                reasons.append("计入")
            counts.append(True)
    records = records.drop(columns=["repaired", "repaired_on"])
    records["counts"] = pd.Series(counts, dtype=bool, index=records.index)
    records["status"], records["reason_zh"] = status, reasons
    return records


def record_exceptions(con: duckdb.DuckDBPyConnection, catalog: Catalog, *, as_of: dt.date) -> pd.DataFrame:
    """Every enterprise's event records, dated before ``as_of``, that do not simply count.

    Those repaired (信用修复), deleted after an objection, or under an open objection (异议) as of
    ``as_of``: what a decision made on that date must say it excluded or found disputed. Reads
    the same records and objections as :func:`record_status`, for all enterprises at once.
    Columns: uscc, table, record_id, date, description, counts, status, reason_zh.
    """
    objected = (
        'EXISTS (SELECT 1 FROM objections o WHERE o.uscc = r.uscc AND o.record_table = r."table" '
        "AND o.record_id = r.record_id "
        "AND o.raised_date < $as_of)"
    )
    records = con.execute(
        _event_records_sql(catalog, where=f"repaired OR {objected}") + ' ORDER BY uscc, date, "table"',
        {"as_of": as_of},
    ).df()
    objections = con.execute(
        """SELECT record_table, record_id, raised_date, resolved_date, result FROM objections
            WHERE raised_date < ? ORDER BY raised_date""",
        [as_of],
    ).df()
    out = _classify(records, objections, catalog, as_of)
    return out[out["status"] != "counts"].reset_index(drop=True)


def record_status(con: duckdb.DuckDBPyConnection, catalog: Catalog, *, uscc: str, as_of: dt.date) -> pd.DataFrame:
    """Every event record of ``uscc`` dated before ``as_of``: whether it counts, and why.

    Reads records dated before ``as_of`` and objections raised or resolved before it. Columns:
    table, record_id, date, description, counts, status, reason_zh. Monthly records (tax,
    utilities, insurance, housing fund) are summarised one line per table.
    """
    records = con.execute(
        _event_records_sql(catalog, where="uscc = $uscc") + ' ORDER BY date, "table"', {"uscc": uscc, "as_of": as_of}
    ).df()
    records = records.drop(columns=["uscc"])
    objections = con.execute(
        """SELECT record_table, record_id, raised_date, resolved_date, result FROM objections
            WHERE uscc = $uscc AND raised_date < $as_of ORDER BY raised_date""",
        {"uscc": uscc, "as_of": as_of},
    ).df()
    records = _classify(records, objections, catalog, as_of)
    monthly = []
    for table in ("tax_monthly", "utility_monthly", "social_insurance_monthly", "housing_fund_monthly"):
        date_col = schema.TABLES[table].date_column or ""
        n, first, last = con.execute(
            f"SELECT count(*), min({date_col}), max({date_col}) FROM {table} "  # nosec B608 # the contract's names
            f"WHERE uscc = $uscc AND {date_col} < $as_of",
            {"uscc": uscc, "as_of": as_of},
        ).fetchone() or (0, None, None)
        if n:
            monthly.append(
                {
                    "table": table,
                    "record_id": f"{n} rows",
                    "date": last,
                    "description": f"{first} to {last}",
                    "counts": True,
                    "status": "counts",
                    "reason_zh": "计入",
                }
            )
    if monthly:
        records = pd.concat([records, pd.DataFrame(monthly)], ignore_index=True)
    records["counts"] = records["counts"].astype(bool)
    return records


OBJECTION_DEADLINE_DAYS = 20  # an objection is answered within 20 days of being raised (异议须在20日内办结)


def overdue_objections(
    con: duckdb.DuckDBPyConnection, *, as_of: dt.date, days: int = OBJECTION_DEADLINE_DAYS
) -> list[dict[str, object]]:
    """Objections still open on ``as_of`` that were raised more than ``days`` days before it, oldest first.

    Open: not resolved, or resolved on or after ``as_of`` (not yet, as of that day). Each: objection_id,
    uscc, record_table, record_id, raised_date, days_open, days_overdue.
    """
    rows = con.execute(
        """SELECT objection_id, uscc, record_table, record_id, raised_date,
                  date_diff('day', raised_date, $as_of) AS days_open
           FROM objections
           WHERE (resolved_date IS NULL OR resolved_date >= $as_of)
             AND raised_date < $as_of AND date_diff('day', raised_date, $as_of) > $days
           ORDER BY raised_date, objection_id""",
        {"as_of": as_of, "days": days},
    ).fetchall()
    names = ("objection_id", "uscc", "record_table", "record_id", "raised_date", "days_open")
    return [{**dict(zip(names, r, strict=True)), "days_overdue": r[5] - days} for r in rows]
