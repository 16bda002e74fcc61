"""Reading an exchange file: its encoding and header, mapped onto the contract, staged in DuckDB as read."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb

from scoring.data import schema
from scoring.data.ingest.errors import IngestError
from scoring.data.ingest.exchange import CR_MARK, decodes_as, normalize, read_header
from scoring.data.ingest.sql import drop, ident, quote


def file_hash(path: Path) -> str:
    """The SHA-256 of the file's bytes, in hex."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def detect_encoding(path: Path) -> str:
    """'utf-8' (with or without BOM) when the whole file decodes as UTF-8, else 'gb18030' (a superset of GBK)."""
    for encoding in ("utf-8", "gb18030"):
        if decodes_as(path, encoding):
            return encoding
    raise IngestError(f"{path}: neither UTF-8 nor GBK/GB18030 text")


def map_header(table: schema.Table, header: list[str], path: Path) -> tuple[dict[str, str], list[str]]:
    """(canonical column -> file column, ignored file columns); error when a column is missing."""
    known = table.header_map()
    mapping: dict[str, str] = {}
    ignored = []
    for h in header:
        canonical = known.get(h.strip().lower())
        if canonical is None or canonical in mapping:
            ignored.append(h)
        else:
            mapping[canonical] = h
    missing = [c.name for c in table.columns if c.name not in mapping]
    if missing:
        labels = [f"{c} ({table.column(c).label_zh})" for c in missing]
        raise IngestError(f"{path}: table {table.name} lacks columns {labels}; the file has {header}")
    return mapping, ignored


def stage(
    con: duckdb.DuckDBPyConnection, table: schema.Table, path: Path, workdir: Path
) -> tuple[dict[str, int], dict[str, int], bool]:
    """Read ``path`` into TEMP table ``raw``: one column per contract column (as read), plus ``_line``.

    Returns (rejected-record counts by reason, warnings with their counts, is_csv). Malformed CSV
    records are put straight into TEMP table ``rejects``.
    """
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return {}, _stage_parquet(con, table, path), False
    if suffix not in (".csv", ".txt", ".tsv"):
        raise IngestError(f"{path}: unknown file type {suffix!r} (use .parquet or .csv)")
    counts, notes = _stage_csv(con, table, path, workdir)
    return counts, notes, True


def readable(con: duckdb.DuckDBPyConnection, table: schema.Table, path: Path) -> None:
    """Raise :class:`IngestError` when ``path`` cannot be read as ``table`` (type, format, header, columns).

    Checked for every file before a load begins, so that an unreadable file is reported and left
    out while the others load in one transaction (an error inside it would abort them all).
    """
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        map_header(table, _parquet_columns(con, path), path)
    elif suffix in (".csv", ".txt", ".tsv"):
        map_header(table, read_header(path)[0], path)
    else:
        raise IngestError(f"{path}: unknown file type {suffix!r} (use .parquet or .csv)")


def _ignored(columns: list[str]) -> dict[str, int]:
    return {f"columns not in the contract, ignored: {columns}": 1} if columns else {}


def _parquet_columns(con: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
    try:
        return [r[0] for r in con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()]
    except duckdb.Error as exc:
        raise IngestError(f"{path}: cannot read as Parquet: {exc}") from exc


def _stage_parquet(con: duckdb.DuckDBPyConnection, table: schema.Table, path: Path) -> dict[str, int]:
    """Stage a Parquet file as TEMP view ``raw`` (and an empty ``rejects``); returns the warnings."""
    mapping, ignored = map_header(table, _parquet_columns(con, path), path)
    select = ", ".join(f"{ident(mapping[c.name])} AS {c.name}" for c in table.columns)
    drop(con, "raw")
    # a view takes no parameter: the path is quoted into it
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW raw AS SELECT {select}, "  # nosec B608 # quoted by ident() and quote()
        f"file_row_number + 1 AS _line FROM read_parquet({quote(str(path))}, file_row_number = true)"
    )
    con.execute("CREATE OR REPLACE TEMP TABLE rejects (line BIGINT, field VARCHAR, reason VARCHAR, record VARCHAR)")
    return _ignored(ignored)


def _stage_csv(
    con: duckdb.DuckDBPyConnection, table: schema.Table, path: Path, workdir: Path
) -> tuple[dict[str, int], dict[str, int]]:
    """Stage a CSV file as TEMP table ``raw`` (through :func:`exchange.normalize`), its malformed records in ``rejects``.

    Returns (rejected-record counts by reason, warnings: ignored columns, blank lines, mixed encodings).
    """
    header, _ = read_header(path)
    mapping, ignored = map_header(table, header, path)
    clean = normalize(path, workdir)
    notes = _ignored(ignored)
    if clean.blank_lines:
        notes["blank lines skipped (空行)"] = clean.blank_lines
    if clean.gbk_lines and clean.utf8_lines:
        notes["lines in GBK among UTF-8 ones, each read in its own encoding (编码混合)"] = clean.gbk_lines
    types = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(header)))

    def field(c: schema.Column) -> str:
        raw = f"c{header.index(mapping[c.name])}"
        return f"replace({raw}, {quote(CR_MARK)}, chr(13))" if clean.cr_marked else raw

    select = ", ".join(f"{field(c)} AS {c.name}" for c in table.columns)
    for leftover in ("csv_rejects", "csv_scans"):  # DuckDB appends to these: start each file empty
        drop(con, leftover)
    drop(con, "raw")
    # written by csv.writer with exactly these columns: DuckDB reads it without sniffing; should it still
    # refuse a record, the record keeps its line (the first field) and goes to quarantine with the others
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE raw AS SELECT {select}, _line FROM read_csv(?, header = true, delim = ',', new_line = '\\n', auto_detect = false,
                quote = '"', escape = '"', columns = {{'_line': 'BIGINT', {types}}}, store_rejects = true,
                rejects_table = 'csv_rejects', rejects_scan = 'csv_scans')""",  # nosec B608 # contract names, numbered fields
        [str(clean.rows)],
    )
    con.execute(
        """CREATE OR REPLACE TEMP TABLE rejects AS
           SELECT line::BIGINT AS line, field, reason, replace(record, $mark, chr(13)) AS record
           FROM read_csv($path, header = true, delim = ',', new_line = '\\n', auto_detect = false, quote = '"', escape = '"',
                         columns = {'line': 'BIGINT', 'field': 'VARCHAR', 'reason': 'VARCHAR', 'record': 'VARCHAR'})
           UNION ALL
           SELECT try_cast(split_part(any_value(csv_line), ',', 1) AS BIGINT), '(line)',
                  'malformed line: ' || arg_min(error_message, column_idx), any_value(csv_line)
           FROM csv_rejects GROUP BY line""",
        {"path": str(clean.rejects), "mark": CR_MARK},
    )
    counts = dict(con.execute("SELECT reason, count(*) FROM rejects GROUP BY 1").fetchall())
    return counts, notes
