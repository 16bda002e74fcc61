"""A load: find the contract files, load each into its table, and report on the whole (数据质量报告)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections.abc import Iterable
from pathlib import Path

import duckdb

from scoring.data import schema
from scoring.data.ingest.errors import IngestError, LoadAborted
from scoring.data.ingest.marker import interrupted_load_marker
from scoring.data.ingest.reading import readable
from scoring.data.ingest.report import LoadReport, TableLoad
from scoring.data.ingest.sql import count
from scoring.data.ingest.upsert import load_file
from scoring.data.ingest.warehouse import connect, ensure_tables

log = logging.getLogger(__name__)


def table_for(path: Path) -> schema.Table | None:
    """The contract table a file belongs to, by its name (English table name or Chinese label)."""
    stem = path.name.split(".")[0]
    for t in schema.TABLES.values():
        if stem in (t.name, t.label_zh):
            return t
    return None


def discover(source: Path) -> list[tuple[schema.Table, Path]]:
    """Files under ``source`` (a folder or one file) with their tables, enterprises first."""
    if not source.exists():
        raise IngestError(f"{source}: no such file or folder")
    candidates = [source] if source.is_file() else sorted(p for p in source.iterdir() if p.is_file())
    found = []
    for p in candidates:
        if p.suffix.lower() not in (".parquet", ".csv", ".tsv", ".txt"):
            continue
        t = table_for(p)
        if t is None:
            if source.is_file():
                raise IngestError(f"{p}: no contract table is named {p.stem!r}; name the file after its table")
            log.warning("%s: not a contract table, skipped", p)
            continue
        found.append((t, p))
    order = list(schema.TABLES)
    return sorted(found, key=lambda tp: (order.index(tp[0].name), str(tp[1])))


def ingest(
    sources: Iterable[Path],
    warehouse: Path,
    *,
    extract_date: dt.date | None = None,
    memory_limit: str | None = None,
) -> LoadReport:
    """Load every contract file found in ``sources`` into ``warehouse`` and report on the load.

    The load is one transaction: killed, out of disk or failing half-way, it leaves the warehouse
    exactly as it was (:class:`LoadAborted` says what happened), and a rerun loads it all. A load
    killed before it could say so is reported by the next one (``report.interrupted``).
    ``extract_date`` is when the platform exported the files: no event can be dated on or after
    it. It defaults to the ``extract_date`` of a ``manifest.json`` beside the files, else today.
    A file that cannot be read is reported in ``failures`` (and the others still load), except
    the enterprises file, without which nothing else can be checked.
    """
    files: list[tuple[schema.Table, Path]] = []
    for source in sources:
        files += discover(source)
        manifest = (source if source.is_dir() else source.parent) / "manifest.json"
        if extract_date is None and manifest.exists():
            extract_date = dt.date.fromisoformat(json.loads(manifest.read_text())["extract_date"])
    if not files:
        raise IngestError("no contract files found (name them after their table, e.g. penalties.csv or 行政处罚.csv)")
    extract_date = extract_date or dt.date.today()
    order = list(schema.TABLES)
    files.sort(key=lambda tp: order.index(tp[0].name))
    load_id = dt.datetime.now().strftime("%Y%m%d%H%M%S") + "-" + uuid.uuid4().hex[:6]
    report = LoadReport(load_id=load_id, extract_date=extract_date, tables=[])
    with connect(warehouse, memory_limit=memory_limit) as con, interrupted_load_marker(warehouse, load_id) as before:
        report.interrupted = None if before is None or _committed(con, before) else before
        readable_files = _readable(con, files, report)
        try:
            con.execute("BEGIN TRANSACTION")
            ensure_tables(con)
            for table, path in readable_files:
                report.tables.append(_load_one(con, table, path, load_id=load_id, extract_date=extract_date))
            con.execute("INSERT OR REPLACE INTO meta VALUES ('extract_date', ?)", [str(extract_date)])
            report.coverage = coverage(con, extract_date)
            con.execute(
                "INSERT INTO load_reports VALUES (?, ?, now())",
                [load_id, json.dumps(report.to_dict(), ensure_ascii=False)],
            )
            con.execute("COMMIT")
        except BaseException as exc:
            _roll_back(con)
            if isinstance(exc, (duckdb.Error, OSError)):
                raise LoadAborted.of(load_id, exc) from exc
            raise
    return report


def _committed(con: duckdb.DuckDBPyConnection, marker: dict) -> bool:
    """Whether the load a marker names committed (killed between its commit and removing the marker)."""
    try:
        return bool(count(con, "SELECT count(*) FROM load_reports WHERE load_id = ?", [str(marker.get("load_id"))]))
    except duckdb.CatalogException:  # a new warehouse: no load ever committed
        return False


def _readable(
    con: duckdb.DuckDBPyConnection, files: list[tuple[schema.Table, Path]], report: LoadReport
) -> list[tuple[schema.Table, Path]]:
    """The files that can be read; the others in ``report.failures`` (an error, when it is the enterprises file)."""
    kept = []
    for table, path in files:
        try:
            readable(con, table, path)
        except IngestError as exc:
            if table.name == "enterprises":
                raise
            report.failures[str(path)] = str(exc)
            log.error("%s", exc)
        else:
            kept.append((table, path))
    return kept


def _load_one(
    con: duckdb.DuckDBPyConnection, table: schema.Table, path: Path, *, load_id: str, extract_date: dt.date
) -> TableLoad:
    """One file, logged when it is done (a long load shows how far it got)."""
    try:
        result = load_file(con, table, path, load_id=load_id, extract_date=extract_date)
    except (duckdb.Error, OSError) as exc:
        raise LoadAborted.of(path, exc) from exc
    log.info(
        "%s: %s rows read into %s (not committed until the whole load is)", path, f"{result.rows_read:,}", table.name
    )
    return result


def _roll_back(con: duckdb.DuckDBPyConnection) -> None:
    """Undo the load; a connection DuckDB has already invalidated (a failed write) has nothing left to undo."""
    try:
        con.execute("ROLLBACK")
    except duckdb.Error as exc:
        log.warning("rollback: %s", exc)


def coverage(con: duckdb.DuckDBPyConnection, as_of: dt.date) -> dict[str, float]:
    """Share of live enterprises with at least one record in each source table."""
    live = (
        "SELECT uscc FROM enterprises WHERE registered_date < $as_of "
        "AND (deregistered_date IS NULL OR deregistered_date >= $as_of)"
    )
    n = count(con, f"SELECT count(*) FROM ({live})", {"as_of": as_of})  # nosec B608 # a constant; the date is bound
    if not n:
        return {}
    return {
        name: count(
            con,
            f"SELECT count(*) FROM ({live}) l "  # nosec B608 # table names of the contract; the date is bound
            f"WHERE l.uscc IN (SELECT uscc FROM {name})",
            {"as_of": as_of},
        )
        / n
        for name in schema.RECORD_TABLES
        if name != "objections"
    }


def ingest_directory(source: Path, warehouse: Path, *, extract_date: dt.date | None = None) -> list[TableLoad]:
    """Load one folder; the per-table results of :func:`ingest`."""
    return ingest([source], warehouse, extract_date=extract_date).tables
