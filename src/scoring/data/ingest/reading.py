"""Reading an exchange file: its encoding and header, mapped onto the contract, staged in DuckDB as read."""

from __future__ import annotations

import codecs
import csv
import hashlib
from pathlib import Path

import duckdb

from scoring.data import schema
from scoring.data.ingest.errors import IngestError
from scoring.data.ingest.sql import drop, ident, quote


def file_hash(path: Path) -> str:
    """The SHA-256 of the file's bytes, in hex."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def decodes_as(path: Path, encoding: str) -> bool:
    """Whether the whole file decodes in ``encoding`` (read in blocks, so any size is fine)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                decoder.decode(block)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def detect_encoding(path: Path) -> str:
    """'utf-8' (with or without BOM) when the whole file decodes as UTF-8, else 'gb18030' (a superset of GBK)."""
    for encoding in ("utf-8", "gb18030"):
        if decodes_as(path, encoding):
            return encoding
    raise IngestError(f"{path}: neither UTF-8 nor GBK/GB18030 text")


def as_utf8(path: Path, encoding: str, workdir: Path) -> Path:
    """The file itself when it is UTF-8, else a UTF-8 copy (DuckDB reads UTF-8 only; its GBK
    support is an extension that would be downloaded at run time)."""
    if encoding == "utf-8":
        return path
    target = workdir / (path.stem + ".utf8.csv")
    with path.open("r", encoding=encoding, newline="") as src, target.open("w", encoding="utf-8", newline="") as dst:
        for block in iter(lambda: src.read(1 << 20), ""):
            dst.write(block)
    return target


def csv_header(path: Path) -> tuple[list[str], str]:
    """(the header line's column names, the delimiter) of a UTF-8 CSV file."""
    with path.open("r", encoding="utf-8-sig", newline="") as f:
        first = f.readline()
    if not first.strip():
        raise IngestError(f"{path}: empty file (no header line)")
    try:
        delimiter = csv.Sniffer().sniff(first, delimiters=",\t;|").delimiter
    except csv.Error:
        delimiter = ","
    header = next(csv.reader([first], delimiter=delimiter))
    return [h.strip() for h in header], delimiter


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
) -> tuple[dict[str, int], list[str], bool]:
    """Read ``path`` into TEMP table ``raw``: one column per contract column (as read), plus ``_line``.

    Returns (rejected-line counts by reason, ignored columns, is_csv). Malformed CSV lines are
    put straight into TEMP table ``rejects``.
    """
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return {}, _stage_parquet(con, table, path), False
    if suffix not in (".csv", ".txt", ".tsv"):
        raise IngestError(f"{path}: unknown file type {suffix!r} (use .parquet or .csv)")
    counts, ignored = _stage_csv(con, table, path, workdir)
    return counts, ignored, True


def _stage_parquet(con: duckdb.DuckDBPyConnection, table: schema.Table, path: Path) -> list[str]:
    """Stage a Parquet file as TEMP view ``raw`` (and an empty ``rejects``); returns the ignored columns."""
    try:
        cols = [r[0] for r in con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()]
    except duckdb.Error as exc:
        raise IngestError(f"{path}: cannot read as Parquet: {exc}") from exc
    mapping, ignored = map_header(table, cols, path)
    select = ", ".join(f"{ident(mapping[c.name])} AS {c.name}" for c in table.columns)
    drop(con, "raw")
    # a view takes no parameter: the path is quoted into it
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW raw AS SELECT {select}, "  # nosec B608 # quoted by ident() and quote()
        f"file_row_number + 1 AS _line FROM read_parquet({quote(str(path))}, file_row_number = true)"
    )
    con.execute("CREATE OR REPLACE TEMP TABLE rejects (line BIGINT, field VARCHAR, reason VARCHAR, record VARCHAR)")
    return ignored


def _stage_csv(
    con: duckdb.DuckDBPyConnection, table: schema.Table, path: Path, workdir: Path
) -> tuple[dict[str, int], list[str]]:
    """Stage a CSV file as TEMP table ``raw``, its malformed lines in ``rejects``.

    Returns (rejected-line counts by reason, ignored columns).
    """
    utf8 = as_utf8(path, detect_encoding(path), workdir)
    header, delimiter = csv_header(utf8)
    mapping, ignored = map_header(table, header, path)
    select = ", ".join(f"{ident(mapping[c.name])} AS {c.name}" for c in table.columns)
    for leftover in ("csv_rejects", "csv_scans"):  # DuckDB appends to these: start each file empty
        drop(con, leftover)
    try:
        con.execute(
            """CREATE OR REPLACE TEMP TABLE raw_rows AS
                SELECT *, row_number() OVER () AS _rank FROM read_csv(?, header = true,
                    all_varchar = true, delim = ?, quote = '"', store_rejects = true,
                    rejects_table = 'csv_rejects', rejects_scan = 'csv_scans')""",
            [str(utf8), delimiter],
        )
    except duckdb.Error as exc:
        raise IngestError(f"{path}: cannot read as CSV: {exc}") from exc
    # physical line of each good row: header is line 1, and each rejected line before it shifts it by one
    con.execute(
        """CREATE OR REPLACE TEMP TABLE rejects AS
           SELECT line, arg_min(coalesce(column_name, '(line)'), column_idx) AS field,
                  'malformed line: ' || arg_min(error_message, column_idx) AS reason, any_value(csv_line) AS record
           FROM csv_rejects GROUP BY line"""
    )
    con.execute(
        """CREATE OR REPLACE TEMP TABLE reject_gaps AS
           SELECT line - row_number() OVER (ORDER BY line) - 1 AS good_before,
                  row_number() OVER (ORDER BY line) AS shift
           FROM (SELECT DISTINCT line FROM rejects)"""
    )
    drop(con, "raw")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE raw AS SELECT {select}, "  # nosec B608 # column names quoted by ident()
        "r._rank + 1 + coalesce(g.shift, 0) AS _line "
        "FROM raw_rows r ASOF LEFT JOIN reject_gaps g ON r._rank > g.good_before"
    )
    con.execute("DROP TABLE raw_rows")
    counts = dict(con.execute("SELECT reason, count(*) FROM rejects GROUP BY 1").fetchall())
    return counts, ignored
