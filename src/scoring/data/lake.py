"""The Parquet lake: the warehouse's validated tables written for an engine past one machine (Spark).

``scoring export`` writes one folder per table of the data contract, each split into buckets of
enterprises (``bucket=<k>/``, k = a hash of the USCC modulo the bucket count), rows sorted by USCC
within a file, so that an engine reading one enterprise's records, or joining two tables on the
USCC, reads matching buckets. Tables without a USCC (the generator's regimes), and empty tables, are one folder of
one file. ``_lake.json`` says what was written: the tables, their rows, the buckets, the
warehouse's extraction date and data fingerprint, so a build on the lake can say which data it used.

Only the validated tables are exported (what ``scoring ingest`` accepted): the quarantine, the load
log and the history of replaced rows stay in the warehouse.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb

from scoring.data import schema
from scoring.data.ingest.sql import quote
from scoring.data.ingest.warehouse import data_fingerprint, extract_date_of
from scoring.errors import ScoringError

MANIFEST = "_lake.json"
BUCKETS = 16  # a county's tables are small; a province sets more with --buckets


class LakeError(ScoringError, RuntimeError):
    """A lake that cannot be written or read: the message says why."""

    code = "lake_invalid"
    status = None
    title_zh = "数据湖目录无效"


@dataclass(frozen=True)
class Exported:
    table: str
    rows: int
    bucketed: bool


def _present(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def export_lake(con: duckdb.DuckDBPyConnection, out: Path, *, buckets: int = BUCKETS) -> list[Exported]:
    """Write every table of the contract that the warehouse holds to ``out`` (replacing an earlier export)."""
    if buckets < 1:
        raise LakeError(f"--buckets must be at least 1, not {buckets}")
    out.mkdir(parents=True, exist_ok=True)
    present = _present(con)
    written = []
    for name, table in schema.TABLES.items():
        if name not in present:
            continue
        target = out / name
        if target.exists():
            shutil.rmtree(target)
        columns = ", ".join(c.name for c in table.columns)
        rows = con.execute(f"SELECT count(*) FROM {name}").fetchone()  # nosec B608 # a table of the contract
        count = int(rows[0]) if rows else 0
        bucketed = "uscc" in table.column_names
        # the file names are quoted, not bound: DuckDB binds COPY's target from 1.4 on (pyproject allows 1.1)
        if bucketed and count:
            con.execute(
                f"COPY (SELECT {columns}, CAST(hash(uscc) % ? AS INTEGER) AS bucket "  # nosec B608 # contract names
                f"FROM {name} ORDER BY uscc) TO {quote(str(target))} "
                "(FORMAT parquet, PARTITION_BY (bucket), COMPRESSION zstd)",
                [buckets],
            )
        else:  # a table without a USCC, or an empty one: one file (an empty folder would have no schema)
            target.mkdir()
            con.execute(
                f"COPY (SELECT {columns} FROM {name}) "  # nosec B608 # the contract's names; the file name quoted
                f"TO {quote(str(target / 'data_0.parquet'))} (FORMAT parquet)"
            )
        written.append(Exported(table=name, rows=count, bucketed=bucketed and count > 0))
    manifest = {
        "format": 1,
        "buckets": buckets,
        "bucket_of": "hash(uscc) % buckets (DuckDB's hash), as the folder bucket=<k>",
        "extract_date": str(extract_date_of(con)),
        "data_fingerprint": data_fingerprint(con),
        "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "tables": {e.table: {"rows": e.rows, "bucketed": e.bucketed} for e in written},
    }
    (out / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    return written


def read_manifest(lake: Path) -> dict:
    """What ``export_lake`` wrote to ``lake``; an error that says so when it is not a lake."""
    path = lake / MANIFEST
    if not path.exists():
        raise LakeError(f"{lake} is not a lake written by `scoring export` (no {MANIFEST})")
    return json.loads(path.read_text(encoding="utf-8"))
