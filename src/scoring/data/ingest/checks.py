"""The checks every row must pass, as SQL over the staged file: types, codes, references, dates."""

from __future__ import annotations

import datetime as dt

from scoring.data import schema
from scoring.data.ingest.sql import quote
from scoring.data.uscc import sql_shape_expression

EARLIEST_DATE = "1949-10-01"


def typed_sql(col: schema.Column, is_csv: bool) -> str:
    """SQL turning the raw value into the contract type (NULL when it cannot)."""
    raw = f"r.{col.name}"
    if not is_csv:
        return f"TRY_CAST({raw} AS {col.dtype})"
    text = f"nullif(trim({raw}), '')"
    if col.dtype == "DATE":
        return (
            f"coalesce(TRY_CAST({text} AS DATE), CAST(try_strptime({text}, '%Y/%m/%d') AS DATE), "
            f"CAST(try_strptime({text}, '%Y%m%d') AS DATE), CAST(try_strptime({text}, '%Y年%m月%d日') AS DATE))"
        )
    if col.dtype == "BOOLEAN":
        return (
            f"CASE lower({text}) WHEN '是' THEN true WHEN '否' THEN false WHEN 'y' THEN true WHEN 'n' THEN false "
            f"ELSE TRY_CAST({text} AS BOOLEAN) END"
        )
    if col.dtype in ("DOUBLE", "INTEGER"):
        return f"TRY_CAST(replace({text}, ',', '') AS {col.dtype})"
    return text


def row_checks(table: schema.Table, extract_date: dt.date, is_csv: bool) -> list[tuple[str, str, str]]:
    """(field, SQL condition TRUE for a bad row, reason), in the order they are checked."""
    checks: list[tuple[str, str, str]] = []
    for col in table.columns:
        # the value as read: text from a CSV (blank is missing), the file's own type from Parquet
        raw = f"nullif(trim(t._r_{col.name}), '')" if is_csv else f"t._r_{col.name}"
        if not col.nullable:
            checks.append((col.name, f"{raw} IS NULL", "missing value (缺少必填值)"))
        if col.dtype != "VARCHAR":
            checks.append(
                (col.name, f"{raw} IS NOT NULL AND t.{col.name} IS NULL", f"not a valid {col.dtype} (格式错误)")
            )
    keyed = keyed_by_enterprise(table)
    if "uscc" in table.column_names:
        checks.append(
            (
                "uscc",
                f"NOT {sql_shape_expression('t.uscc')}",
                "malformed USCC: not 18 characters of 0-9/A-Y without I,O,S,V,Z (统一社会信用代码格式错误)",
            )
        )
    if keyed:
        checks.append(("uscc", "e.uscc IS NULL", "unknown enterprise: USCC not registered (无此登记主体)"))
    for col in table.columns:
        if col.allowed:
            values = ", ".join(quote(v) for v in col.allowed)
            checks.append(
                (col.name, f"t.{col.name} NOT IN ({values})", f"value not allowed (取值应为{'/'.join(col.allowed)})")
            )
        if col.non_negative:
            checks.append((col.name, f"t.{col.name} < 0", "negative amount (金额/数量为负)"))
        if col.dtype == "DATE":
            checks.append((col.name, f"t.{col.name} < DATE '{EARLIEST_DATE}'", "impossible date: before 1949-10-01"))
            if not col.future_ok:
                checks.append(
                    (
                        col.name,
                        f"t.{col.name} >= DATE '{extract_date}'",
                        f"impossible date: on or after the extraction date {extract_date} (日期晚于数据提取日)",
                    )
                )
    for later, earlier in table.date_order:
        checks.append((later, f"t.{later} < t.{earlier}", f"impossible date: {later} before {earlier} (日期顺序错误)"))
    if keyed and table.date_column:
        checks.append(
            (
                table.date_column,
                f"t.{table.date_column} < e.registered_date",
                "impossible date: before the enterprise's registration (早于成立日期)",
            )
        )
    if table.name == "objections":
        checks.append(
            (
                "record_id",
                "ref.record_id IS NULL",
                "unknown record: no such record of this enterprise in record_table (异议记录不存在)",
            )
        )
    return checks


def keyed_by_enterprise(table: schema.Table) -> bool:
    """Whether each row must belong to a registered enterprise."""
    return table.name != "enterprises" and "uscc" in table.column_names


def references_sql() -> str:
    """(record_table, record_id, uscc) of every record an objection may name."""
    parts = [
        f"SELECT '{name}' AS record_table, "  # nosec B608 # table and key names of the contract
        f"CAST({schema.TABLES[name].key[0]} AS VARCHAR) AS record_id, uscc FROM {name}"
        for name in schema.DISPUTABLE_TABLES
    ]
    return " UNION ALL ".join(parts)
