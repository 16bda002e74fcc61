"""Validate platform files and load them into the DuckDB warehouse; bad rows go to quarantine.

Every row of every file ends either in its table or in ``quarantine`` with the table, source
file, row number, field and reason, so ``loaded + quarantined == rows read`` per file.
A table is replaced as a whole by each load of its file, so loading twice gives the same
warehouse (incremental upserts are a later step of the data layer).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from scoring.data import schema
from scoring.data.uscc import sql_check_expression, sql_shape_expression

log = logging.getLogger(__name__)

EARLIEST_DATE = "1949-10-01"


class IngestError(RuntimeError):
    """A whole file could not be read or lacks required columns."""


@dataclass
class TableLoad:
    table: str
    source_file: str
    rows_read: int = 0
    loaded: int = 0
    quarantined: int = 0
    warnings: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)


def connect(path: Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse file (created on first write)."""
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    return duckdb.connect(str(path), read_only=read_only)


def _ensure_meta(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS quarantine (
            load_id VARCHAR, table_name VARCHAR, source_file VARCHAR, source_row BIGINT,
            field VARCHAR, reason VARCHAR, record JSON, quarantined_at TIMESTAMP)
        """
    )
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS loads (
            load_id VARCHAR, table_name VARCHAR, source_file VARCHAR, rows_read BIGINT, loaded BIGINT,
            quarantined BIGINT, warnings JSON, extract_date DATE, file_sha256 VARCHAR, loaded_at TIMESTAMP)
        """
    )
    # warehouses made before a column existed get it added rather than failing
    con.execute("ALTER TABLE loads ADD COLUMN IF NOT EXISTS file_sha256 VARCHAR")
    con.execute("CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)")


def _faults(table: schema.Table, extract_date: dt.date) -> list[tuple[str, str, str]]:
    """(field, SQL condition that is TRUE for a bad row, reason) in the order they are checked."""
    checks: list[tuple[str, str, str]] = []
    for col in table.columns:
        if not col.nullable:
            checks.append((col.name, f"s.{col.name} IS NULL", "missing value (缺少必填值)"))
    checks.append(
        (
            "uscc",
            f"NOT {sql_shape_expression('s.uscc')}",
            "malformed USCC: not 18 characters of 0-9/A-Y without I,O,S,V,Z (统一社会信用代码格式错误)",
        )
    )
    if table.name != "enterprises":
        checks.append(("uscc", "e.uscc IS NULL", "unknown enterprise: USCC not registered (无此登记主体)"))
    for col in table.columns:
        if col.allowed:
            values = ", ".join(f"'{v}'" for v in col.allowed)
            checks.append(
                (col.name, f"s.{col.name} NOT IN ({values})", f"value not allowed (取值应为{'/'.join(col.allowed)})")
            )
        if col.non_negative:
            checks.append((col.name, f"s.{col.name} < 0", "negative amount (金额/数量为负)"))
        if col.dtype == "DATE":
            checks.append((col.name, f"s.{col.name} < DATE '{EARLIEST_DATE}'", "impossible date: before 1949-10-01"))
            if not col.future_ok:
                checks.append(
                    (
                        col.name,
                        f"s.{col.name} >= DATE '{extract_date}'",
                        f"impossible date: on or after the extraction date {extract_date} (日期晚于数据提取日)",
                    )
                )
    for later, earlier in table.date_order:
        checks.append((later, f"s.{later} < s.{earlier}", f"impossible date: {later} before {earlier} (日期顺序错误)"))
    if table.name != "enterprises" and table.date_column:
        checks.append(
            (
                table.date_column,
                f"s.{table.date_column} < e.registered_date",
                "impossible date: before the enterprise's registration (早于成立日期)",
            )
        )
    return checks


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def data_fingerprint(con: duckdb.DuckDBPyConnection) -> str:
    """A hash of what the warehouse holds now: each table's latest file (by content) and row count."""
    rows = con.execute(
        "SELECT table_name, arg_max(file_sha256, loaded_at), arg_max(loaded, loaded_at) FROM loads "
        "GROUP BY table_name ORDER BY table_name"
    ).fetchall()
    extract = con.execute("SELECT value FROM meta WHERE key = 'extract_date'").fetchone()
    payload = json.dumps([extract[0] if extract else None, *[list(r) for r in rows]])
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def load_table(
    con: duckdb.DuckDBPyConnection, table: schema.Table, file: Path, *, load_id: str, extract_date: dt.date
) -> TableLoad:
    """Validate one file and replace ``table`` with its good rows; quarantine the rest."""
    result = TableLoad(table.name, str(file))
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE stage AS SELECT * FROM read_parquet('{file}', file_row_number=true)")
    except duckdb.Error as exc:
        raise IngestError(f"{file}: cannot read as Parquet: {exc}") from exc
    present = {r[0] for r in con.execute("DESCRIBE stage").fetchall()}
    missing = [c for c in table.column_names if c not in present]
    if missing:
        raise IngestError(f"{file}: table {table.name} lacks columns {missing}")
    checks = _faults(table, extract_date)
    case = " ".join(f"WHEN {cond} THEN {i}" for i, (_, cond, _) in enumerate(checks))
    join = "" if table.name == "enterprises" else "LEFT JOIN enterprises e ON e.uscc = s.uscc"
    key = ", ".join(f"s.{k}" for k in table.key)
    # later rows win over earlier rows with the same natural key; the earlier ones are quarantined
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE checked AS
        SELECT s.*, CASE {case} ELSE NULL END AS fault,
               row_number() OVER (PARTITION BY {key} ORDER BY s.file_row_number DESC) AS dup_rank
        FROM stage s {join}
        """
    )
    cols = ", ".join(f"CAST({c.name} AS {c.dtype}) AS {c.name}" for c in table.columns)
    extra = ""
    if table.name == "enterprises":
        extra = f", {sql_check_expression('uscc')} AS uscc_check_ok"
    con.execute(
        f"CREATE OR REPLACE TABLE {table.name} AS SELECT {cols}{extra} FROM checked "
        "WHERE fault IS NULL AND dup_rank = 1 ORDER BY file_row_number"
    )
    con.execute("DELETE FROM quarantine WHERE table_name = ?", [table.name])
    reason_sql = " ".join(f"WHEN {i} THEN {_quote(f + chr(9) + r)}" for i, (f, _, r) in enumerate(checks))
    con.execute(
        f"""
        INSERT INTO quarantine
        SELECT ?, ?, ?, file_row_number,
               split_part(r, '\t', 1), split_part(r, '\t', 2),
               to_json(struct_pack({", ".join(table.column_names)})), now()
        FROM (SELECT *, CASE WHEN fault IS NOT NULL THEN CASE fault {reason_sql} END
                             ELSE '{table.key[0]}\tduplicate natural key: replaced by a later row (重复记录)' END AS r
              FROM checked WHERE fault IS NOT NULL OR dup_rank > 1)
        """,
        [load_id, table.name, str(file)],
    )
    result.rows_read = con.execute("SELECT count(*) FROM stage").fetchone()[0]  # type: ignore[index]
    result.loaded = con.execute(f"SELECT count(*) FROM {table.name}").fetchone()[0]  # type: ignore[index]
    result.quarantined = con.execute("SELECT count(*) FROM quarantine WHERE table_name = ?", [table.name]).fetchone()[0]  # type: ignore[index]
    result.reasons = dict(
        con.execute(
            "SELECT field || ': ' || reason, count(*) FROM quarantine WHERE table_name = ? GROUP BY 1 ORDER BY 2 DESC",
            [table.name],
        ).fetchall()
    )
    if table.name == "enterprises":
        bad_check = con.execute("SELECT count(*) FROM enterprises WHERE NOT uscc_check_ok").fetchone()[0]  # type: ignore[index]
        if bad_check:
            result.warnings["uscc check character wrong (early pilot codes kept, 校验码不符的早期试点代码)"] = bad_check
    assert result.loaded + result.quarantined == result.rows_read, "a row was neither loaded nor quarantined"
    con.execute(
        "INSERT INTO loads (load_id, table_name, source_file, rows_read, loaded, quarantined, warnings, extract_date,"
        " file_sha256, loaded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, now())",
        [
            load_id,
            table.name,
            str(file),
            result.rows_read,
            result.loaded,
            result.quarantined,
            json.dumps(result.warnings, ensure_ascii=False),
            extract_date,
            _file_hash(file),
        ],
    )
    con.execute("DROP TABLE stage; DROP TABLE checked")
    return result


def ingest_directory(source: Path, warehouse: Path, *, extract_date: dt.date | None = None) -> list[TableLoad]:
    """Load every known table found in ``source`` (enterprises first) into ``warehouse``.

    ``extract_date`` is when the platform exported the files: no event can be dated on or after
    it. It defaults to the ``extract_date`` in ``manifest.json`` beside the files, else today.
    """
    if not source.is_dir():
        raise IngestError(f"{source}: no such directory")
    manifest = source / "manifest.json"
    if extract_date is None:
        if manifest.exists():
            extract_date = dt.date.fromisoformat(json.loads(manifest.read_text())["extract_date"])
        else:
            extract_date = dt.date.today()
    files = {name: source / f"{name}.parquet" for name in schema.TABLES}
    if not files["enterprises"].exists():
        raise IngestError(
            f"{source}: enterprises.parquet is required (every record is keyed to a registered enterprise)"
        )
    load_id = uuid.uuid4().hex[:12]
    results = []
    with connect(warehouse) as con:
        _ensure_meta(con)
        for name, file in files.items():
            if not file.exists():
                log.warning("%s: no %s file, table left as it was", source, name)
                continue
            results.append(load_table(con, schema.TABLES[name], file, load_id=load_id, extract_date=extract_date))
        con.execute("INSERT OR REPLACE INTO meta VALUES ('extract_date', ?)", [str(extract_date)])
        if manifest.exists():
            con.execute("INSERT OR REPLACE INTO meta VALUES ('manifest', ?)", [manifest.read_text()])
    return results


def extract_date_of(con: duckdb.DuckDBPyConnection) -> dt.date:
    """The extraction date of the data in the warehouse (the day after the last record)."""
    row = con.execute("SELECT value FROM meta WHERE key = 'extract_date'").fetchone()
    if row is None:
        raise IngestError("the warehouse holds no load yet: run `scoring ingest` first")
    return dt.date.fromisoformat(row[0])
