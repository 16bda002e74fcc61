"""One file into one table: check every row, upsert the good ones, quarantine the rest, account for all.

The later record of a natural key wins; the version it replaces moves to ``<table>_history``, and
so do earlier lines of the same file with the same key. An identical version already there is
left alone, so loading a file twice changes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from pathlib import Path

import duckdb

from scoring.data import schema
from scoring.data.ingest.checks import keyed_by_enterprise, references_sql, row_checks, typed_sql
from scoring.data.ingest.reading import file_hash, stage
from scoring.data.ingest.report import TableLoad
from scoring.data.ingest.sql import count, drop, quote
from scoring.data.uscc import sql_check_expression

_TEMP_TABLES = ("raw", "rejects", "checked", "incoming", "dupes", "matched")


def load_file(
    con: duckdb.DuckDBPyConnection, table: schema.Table, path: Path, *, load_id: str, extract_date: dt.date
) -> TableLoad:
    """Validate one file and upsert its good rows into ``table``; quarantine the rest."""
    result = TableLoad(table.name, str(path))
    with tempfile.TemporaryDirectory(prefix="ingest-") as tmp:
        rejected, notes, is_csv = stage(con, table, path, Path(tmp))
    result.warnings.update(notes)
    checks = row_checks(table, extract_date, is_csv)
    _check(con, table, checks, is_csv)
    # what a stored row holds: the contract's columns (and the check-character flag), then where it came
    # from (the load id and the file, bound as $load_id and $source_file)
    extra = f", {sql_check_expression('uscc')} AS uscc_check_ok" if table.name == "enterprises" else ""
    meta = "$load_id AS _load_id, $source_file AS _source_file, _line, now() AS _loaded_at"
    stored = f"{', '.join(table.column_names)}{extra}, {meta}"
    loser = _set_aside_duplicates(con, table, path, stored=stored, load_id=load_id, result=result)
    _upsert(
        con,
        table,
        path,
        accepted=f"FROM checked c WHERE c._fault IS NULL AND NOT {loser}",
        stored=stored,
        load_id=load_id,
        result=result,
    )
    _quarantine(con, table, path, checks, load_id=load_id)
    _tally(con, table, path, rejected, load_id=load_id, result=result)
    _record_load(con, table, path, load_id=load_id, extract_date=extract_date, result=result)
    for temp in _TEMP_TABLES:
        drop(con, temp)
    return result


def _check(
    con: duckdb.DuckDBPyConnection, table: schema.Table, checks: list[tuple[str, str, str]], is_csv: bool
) -> None:
    """TEMP table ``checked``: the typed values of every staged row and the first check it fails (``_fault``)."""
    case = " ".join(f"WHEN {cond} THEN {i}" for i, (_, cond, _) in enumerate(checks))
    typed = ", ".join(f"{typed_sql(c, is_csv)} AS {c.name}" for c in table.columns)
    joins = "LEFT JOIN enterprises e ON e.uscc = t.uscc" if keyed_by_enterprise(table) else ""
    if table.name == "objections":
        joins += (
            f" LEFT JOIN ({references_sql()}) ref ON ref.record_table = t.record_table "
            "AND ref.record_id = t.record_id AND ref.uscc = t.uscc"
        )
    # one pass: typed values and the first failing check of every row (the raw row is looked up
    # again only for the few rows that go to quarantine)
    raw_cols = ", ".join(f"r.{c.name} AS _r_{c.name}" for c in table.columns)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE checked AS
        SELECT t.* EXCLUDE ({", ".join(f"_r_{c.name}" for c in table.columns)}), CASE {case} ELSE NULL END AS _fault
        FROM (SELECT {typed}, r._line, {raw_cols} FROM raw r) t {joins}
        """  # nosec B608 # the contract's names and checks (checks.py); the extraction date is a datetime.date
    )


def _set_aside_duplicates(
    con: duckdb.DuckDBPyConnection, table: schema.Table, path: Path, *, stored: str, load_id: str, result: TableLoad
) -> str:
    """Move earlier lines of a natural key repeated in the file to history; the SQL condition naming them."""
    keys = ", ".join(table.key)
    # the same natural key twice in one file: the later line wins, earlier ones are replaced versions
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE dupes AS SELECT {keys}, "  # nosec B608 # key names of the contract
        f"max(_line) AS _keep FROM checked WHERE _fault IS NULL GROUP BY {keys} HAVING count(*) > 1"
    )
    good = "c._fault IS NULL"
    loser = "FALSE"
    if count(con, "SELECT count(*) FROM dupes"):
        on_dupe = " AND ".join(f"d.{k} = c.{k}" for k in table.key)
        loser = (
            f"EXISTS (SELECT 1 FROM dupes d WHERE {on_dupe} "  # nosec B608 # key names of the contract
            "AND d._keep <> c._line)"
        )
        # (a reload of the same file finds them there already and adds no second copy)
        same_line = " AND ".join(f"h.{k} = c.{k}" for k in table.key)
        con.execute(
            f"INSERT INTO {table.name}_history SELECT {stored}, now(), $load_id "  # nosec B608 # the contract's names
            f"FROM checked c WHERE {good} AND {loser} AND NOT EXISTS (SELECT 1 FROM {table.name}_history h "
            f"WHERE {same_line} AND h._source_file = $source_file AND h._line = c._line)",
            {"load_id": load_id, "source_file": str(path)},
        )
        checked = f"SELECT count(*) FROM checked c WHERE {good} AND {loser}"  # nosec B608 # key names of the contract
        result.duplicates_in_file = count(con, checked)
    return loser


def _upsert(
    con: duckdb.DuckDBPyConnection,
    table: schema.Table,
    path: Path,
    *,
    accepted: str,
    stored: str,
    load_id: str,
    result: TableLoad,
) -> None:
    """Insert the ``accepted`` rows; a changed version of a stored key replaces it (the old one to history).

    ``stored`` reads the parameters ``$load_id`` and ``$source_file`` (``path``)."""
    where_from = {"load_id": load_id, "source_file": str(path)}
    any_row = f"SELECT count(*) FROM (SELECT 1 FROM {table.name} LIMIT 1)"  # nosec B608 # a table of the contract
    if not count(con, any_row):
        # an empty table (the first load): every accepted row is new
        con.execute(f"INSERT INTO {table.name} SELECT {stored} {accepted}", where_from)
        result.inserted = count(con, f"SELECT count(*) {accepted}")
        return
    con.execute(f"CREATE OR REPLACE TEMP TABLE incoming AS SELECT {stored} {accepted}", where_from)
    on_key = " AND ".join(f"o.{k} = i.{k}" for k in table.key)
    same = " AND ".join(f"o.{c} IS NOT DISTINCT FROM i.{c}" for c in table.column_names)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE matched AS SELECT ({same}) AS _same, "
        + ", ".join(f"i.{k} AS _k_{k}" for k in table.key)
        + f" FROM incoming i JOIN {table.name} o ON {on_key}"
    )
    result.unchanged = count(con, "SELECT count(*) FROM matched WHERE _same")
    result.replaced = count(con, "SELECT count(*) FROM matched WHERE NOT _same")
    match_o = " AND ".join(f"o.{k} = m._k_{k}" for k in table.key)
    match_i = " AND ".join(f"i.{k} = m._k_{k}" for k in table.key)
    if result.replaced:
        con.execute(
            f"INSERT INTO {table.name}_history SELECT o.*, now(), ? "  # nosec B608 # the contract's names
            f"FROM {table.name} o JOIN matched m ON {match_o} AND NOT m._same",
            [load_id],
        )
        con.execute(
            f"DELETE FROM {table.name} o USING matched m "  # nosec B608 # the contract's names
            f"WHERE {match_o} AND NOT m._same"
        )
    con.execute(
        f"INSERT INTO {table.name} SELECT i.* FROM incoming i "  # nosec B608 # table and key names of the contract
        f"ANTI JOIN (SELECT * FROM matched WHERE _same) m ON {match_i}"
    )
    result.inserted = count(con, "SELECT count(*) FROM incoming") - result.replaced - result.unchanged


def _quarantine(
    con: duckdb.DuckDBPyConnection, table: schema.Table, path: Path, checks: list[tuple[str, str, str]], *, load_id: str
) -> None:
    """Rows that failed a check, and malformed lines, into ``quarantine`` with field, reason and the raw row."""
    reason_sql = " ".join(f"WHEN {i} THEN {quote(f + chr(9) + r)}" for i, (f, _, r) in enumerate(checks))
    con.execute(
        f"""
        INSERT INTO quarantine
        SELECT ?, ?, ?, c._line,
               split_part(c.r, chr(9), 1), split_part(c.r, chr(9), 2), to_json(raw_row), now()
        FROM (SELECT _line, CASE _fault {reason_sql} END AS r FROM checked WHERE _fault IS NOT NULL) c
        JOIN (SELECT r._line AS line, r AS raw_row FROM raw r) x ON x.line = c._line
        """,  # nosec B608 # the reasons are the contract's texts (checks.py), quoted
        [load_id, table.name, str(path)],
    )
    con.execute(
        """INSERT INTO quarantine SELECT ?, ?, ?, line,
                   field, reason, to_json(record), now() FROM rejects""",
        [load_id, table.name, str(path)],
    )


def _tally(
    con: duckdb.DuckDBPyConnection,
    table: schema.Table,
    path: Path,
    rejected: dict[str, int],
    *,
    load_id: str,
    result: TableLoad,
) -> None:
    """Rows read and quarantined, by reason; an error when a row read is not accounted for."""
    result.rows_read = count(con, "SELECT count(*) FROM checked") + sum(rejected.values())
    result.quarantined = count(con, "SELECT count(*) FROM checked WHERE _fault IS NOT NULL") + sum(rejected.values())
    result.reasons = dict(
        con.execute(
            "SELECT field || ': ' || reason, count(*) FROM quarantine WHERE load_id = ? AND table_name = ? "
            "AND source_file = ? GROUP BY 1 ORDER BY 2 DESC",
            [load_id, table.name, str(path)],
        ).fetchall()
    )
    result.bad_uscc = sum(n for r, n in result.reasons.items() if r.startswith("uscc:"))
    if table.name == "enterprises":
        bad_check = count(con, "SELECT count(*) FROM enterprises WHERE _load_id = ? AND NOT uscc_check_ok", [load_id])
        if bad_check:
            result.warnings["uscc check character wrong (early pilot codes kept, 校验码不符的早期试点代码)"] = bad_check
    if result.accounted != result.rows_read:
        raise AssertionError(f"{path}: {result.rows_read} rows read but {result.accounted} accounted for")


def _record_load(
    con: duckdb.DuckDBPyConnection,
    table: schema.Table,
    path: Path,
    *,
    load_id: str,
    extract_date: dt.date,
    result: TableLoad,
) -> None:
    """One row in ``loads``: the file, its hash and what it did to the table."""
    con.execute(
        "INSERT INTO loads VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now())",
        [
            load_id,
            table.name,
            str(path),
            file_hash(path),
            result.rows_read,
            result.inserted,
            result.replaced,
            result.unchanged,
            result.duplicates_in_file,
            result.quarantined,
            json.dumps(result.warnings, ensure_ascii=False),
            extract_date,
        ],
    )
