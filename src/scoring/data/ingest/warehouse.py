"""The DuckDB warehouse: connecting, its tables and format, and what it holds (fingerprint, extraction date)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import duckdb

from scoring.data import schema
from scoring.data.ingest.errors import IngestError, WarehouseFormatError
from scoring.data.ingest.sql import count

WAREHOUSE_FORMAT = "2"  # bumped whenever a table's layout changes


def connect(path: Path, *, read_only: bool = False, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """Open the warehouse file (created on first write)."""
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {}
    if memory_limit:
        config["memory_limit"] = memory_limit
    con = duckdb.connect(str(path), read_only=read_only, config=config)
    con.execute("SET enable_progress_bar = false")  # our commands show their own progress
    # tables are keyed, not ordered: letting DuckDB write rows in any order parallelises the loads
    con.execute("SET preserve_insertion_order = false")
    return con


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the tables of this format in a new warehouse; refuse a warehouse of another format."""
    existing = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if existing:
        fmt = None
        if "meta" in existing:
            row = con.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
            fmt = row[0] if row else None
        if fmt != WAREHOUSE_FORMAT:
            raise WarehouseFormatError(
                f"the warehouse was written in format {fmt or 'before 2'}, this version writes format "
                f"{WAREHOUSE_FORMAT}: load the files into a new warehouse file (or delete the old one)"
            )
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS quarantine (
            load_id VARCHAR, table_name VARCHAR, source_file VARCHAR, line BIGINT,
            field VARCHAR, reason VARCHAR, record JSON, quarantined_at TIMESTAMP)
        """
    )
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS loads (
            load_id VARCHAR, table_name VARCHAR, source_file VARCHAR, file_sha256 VARCHAR, rows_read BIGINT,
            inserted BIGINT, replaced BIGINT, unchanged BIGINT, duplicates_in_file BIGINT, quarantined BIGINT,
            warnings JSON, extract_date DATE, loaded_at TIMESTAMP)
        """
    )
    con.execute("CREATE TABLE IF NOT EXISTS load_reports (load_id VARCHAR, report JSON, created_at TIMESTAMP)")
    con.execute("CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
    con.execute("INSERT OR REPLACE INTO meta VALUES ('format', ?)", [WAREHOUSE_FORMAT])
    for table in schema.TABLES.values():
        cols = ", ".join(f"{c.name} {c.dtype}" for c in table.columns)
        extra = ", uscc_check_ok BOOLEAN" if table.name == "enterprises" else ""
        meta = "_load_id VARCHAR, _source_file VARCHAR, _line BIGINT, _loaded_at TIMESTAMP"
        con.execute(f"CREATE TABLE IF NOT EXISTS {table.name} ({cols}{extra}, {meta})")
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {table.name}_history ({cols}{extra}, {meta}, "
            "_replaced_at TIMESTAMP, _replaced_by_load VARCHAR)"
        )


def data_fingerprint(con: duckdb.DuckDBPyConnection) -> str:
    """A hash of what the warehouse holds now: every table's row count and latest loaded file contents."""
    parts: list[Any] = [con.execute("SELECT value FROM meta WHERE key = 'extract_date'").fetchone()]
    present = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    # a table added to the schema after the warehouse was loaded (loan_applications) is created by
    # the next ingestion; until then it is left out, so the fingerprint of an older warehouse holds
    for name in (n for n in schema.TABLES if n in present):
        parts.append([name, count(con, f"SELECT count(*) FROM {name}")])  # nosec B608 # tables of the contract
    parts.append(
        con.execute(
            "SELECT table_name, list(DISTINCT file_sha256 ORDER BY file_sha256) FROM loads GROUP BY 1 ORDER BY 1"
        ).fetchall()
    )
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]


def extract_date_of(con: duckdb.DuckDBPyConnection) -> dt.date:
    """The extraction date of the data in the warehouse (the day after the last record)."""
    row = con.execute("SELECT value FROM meta WHERE key = 'extract_date'").fetchone()
    if row is None:
        raise IngestError("the warehouse holds no load yet: run `scoring ingest` first")
    return dt.date.fromisoformat(row[0])
