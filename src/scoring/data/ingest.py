"""Load platform exchange files into the DuckDB warehouse; lose nothing.

Files are Parquet, or CSV in UTF-8 or GBK with English or Chinese headers (mapped through the
data contract). Every row read ends in exactly one place:

- its table, when it passes every check (inserted, or replacing an older version of the same
  natural key: the later record wins and the older version moves to ``<table>_history``);
- nowhere new, when an identical version is already there (loading a file twice changes nothing);
- ``<table>_history``, when a later line of the same file has the same natural key;
- ``quarantine``, with table, source file, line, field and reason, when a check fails.

A whole file that cannot be read is an :class:`IngestError` naming the file and why.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import json
import logging
import tempfile
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from scoring.data import schema
from scoring.data.uscc import sql_check_expression, sql_shape_expression
from scoring.errors import ScoringError

log = logging.getLogger(__name__)

EARLIEST_DATE = "1949-10-01"
QUALITY_TARGET = 0.0001  # the seeds' ceiling for duplicate and wrong-code records: 0.01 %
WAREHOUSE_FORMAT = "2"  # bumped whenever a table's layout changes


class IngestError(ScoringError, RuntimeError):
    """A whole file could not be read or lacks required columns."""

    code = "ingest_failed"
    status = None
    title_zh = "数据文件无法导入"


class WarehouseFormatError(IngestError):
    """The warehouse file was written by a version with another table layout."""

    code = "warehouse_format"
    status = None
    title_zh = "数据仓库文件的版本不符"


@dataclass
class TableLoad:
    """What one file did to one table."""

    table: str
    source_file: str
    rows_read: int = 0
    inserted: int = 0
    replaced: int = 0
    unchanged: int = 0
    duplicates_in_file: int = 0
    quarantined: int = 0
    bad_uscc: int = 0
    warnings: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def loaded(self) -> int:
        """Rows of this file now in the table (inserted or replacing an older version)."""
        return self.inserted + self.replaced

    @property
    def accounted(self) -> int:
        return self.loaded + self.unchanged + self.duplicates_in_file + self.quarantined


@dataclass
class LoadReport:
    """The data-quality report of one load (数据质量报告)."""

    load_id: str
    extract_date: dt.date
    tables: list[TableLoad]
    coverage: dict[str, float] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def rows_read(self) -> int:
        return sum(t.rows_read for t in self.tables)

    @property
    def uscc_error_rate(self) -> float:
        return sum(t.bad_uscc for t in self.tables) / max(self.rows_read, 1)

    @property
    def duplicate_rate(self) -> float:
        return sum(t.duplicates_in_file for t in self.tables) / max(self.rows_read, 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "load_id": self.load_id,
            "extract_date": str(self.extract_date),
            "rows_read": self.rows_read,
            "uscc_error_rate": self.uscc_error_rate,
            "duplicate_rate": self.duplicate_rate,
            "target_rate": QUALITY_TARGET,
            "tables": [{**asdict(t), "loaded": t.loaded} for t in self.tables],
            "coverage": self.coverage,
            "failures": self.failures,
        }

    def to_markdown(self) -> str:
        def verdict(rate: float) -> str:
            return "within target" if rate <= QUALITY_TARGET else "ABOVE TARGET"

        lines = [
            f"# Data-quality report, load {self.load_id}",
            "",
            f"Extraction date {self.extract_date}; {self.rows_read:,} rows read.",
            "",
            f"- USCC error rate (malformed or unregistered codes): {self.uscc_error_rate:.4%} "
            f"({verdict(self.uscc_error_rate)}, target ≤ {QUALITY_TARGET:.2%})",
            f"- duplicate rate (same natural key twice in a file): {self.duplicate_rate:.4%} "
            f"({verdict(self.duplicate_rate)})",
            "",
            "| table | file | read | inserted | replaced | unchanged | duplicates | quarantined |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for t in self.tables:
            lines.append(
                f"| {t.table} | {Path(t.source_file).name} | {t.rows_read:,} | {t.inserted:,} | {t.replaced:,} | "
                f"{t.unchanged:,} | {t.duplicates_in_file:,} | {t.quarantined:,} |"
            )
        reasons = [(t.table, r, n) for t in self.tables for r, n in t.reasons.items()]
        if reasons:
            lines += ["", "## Quarantine reasons", "", "| table | field: reason | rows |", "|---|---|---:|"]
            lines += [f"| {t} | {r} | {n:,} |" for t, r, n in reasons]
        warnings = [(t.table, w, n) for t in self.tables for w, n in t.warnings.items()]
        if warnings:
            lines += ["", "## Warnings", "", "| table | warning | rows |", "|---|---|---:|"]
            lines += [f"| {t} | {w} | {n:,} |" for t, w, n in warnings]
        if self.coverage:
            lines += ["", "## Coverage among live enterprises", "", "| source | share |", "|---|---:|"]
            lines += [f"| {k} | {v:.1%} |" for k, v in self.coverage.items()]
        if self.failures:
            lines += ["", "## Files that could not be read", ""]
            lines += [f"- {k}: {v}" for k, v in self.failures.items()]
        return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- warehouse
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


def _ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
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


# ---------------------------------------------------------------------------- reading files
def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _decodes_as(path: Path, encoding: str) -> bool:
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
        if _decodes_as(path, encoding):
            return encoding
    raise IngestError(f"{path}: neither UTF-8 nor GBK/GB18030 text")


def _as_utf8(path: Path, encoding: str, workdir: Path) -> Path:
    """The file itself when it is UTF-8, else a UTF-8 copy (DuckDB reads UTF-8 only; its GBK
    support is an extension that would be downloaded at run time)."""
    if encoding == "utf-8":
        return path
    target = workdir / (path.stem + ".utf8.csv")
    with path.open("r", encoding=encoding, newline="") as src, target.open("w", encoding="utf-8", newline="") as dst:
        for block in iter(lambda: src.read(1 << 20), ""):
            dst.write(block)
    return target


def _csv_header(path: Path) -> tuple[list[str], str]:
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


def _map_header(table: schema.Table, header: list[str], path: Path) -> tuple[dict[str, str], list[str]]:
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


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _stage(
    con: duckdb.DuckDBPyConnection, table: schema.Table, path: Path, workdir: Path
) -> tuple[dict[str, int], list[str], bool]:
    """Read ``path`` into TEMP table ``raw``: one column per contract column (as read), plus ``_line``.

    Returns (rejected-line counts by reason, ignored columns, is_csv). Malformed CSV lines are
    put straight into TEMP table ``rejects``.
    """
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        try:
            cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet({_quote(str(path))})").fetchall()]
        except duckdb.Error as exc:
            raise IngestError(f"{path}: cannot read as Parquet: {exc}") from exc
        mapping, ignored = _map_header(table, cols, path)
        select = ", ".join(f"{_ident(mapping[c.name])} AS {c.name}" for c in table.columns)
        _drop(con, "raw")
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW raw AS SELECT {select}, file_row_number + 1 AS _line "
            f"FROM read_parquet({_quote(str(path))}, file_row_number = true)"
        )
        con.execute("CREATE OR REPLACE TEMP TABLE rejects (line BIGINT, field VARCHAR, reason VARCHAR, record VARCHAR)")
        return {}, ignored, False
    if suffix not in (".csv", ".txt", ".tsv"):
        raise IngestError(f"{path}: unknown file type {suffix!r} (use .parquet or .csv)")
    utf8 = _as_utf8(path, detect_encoding(path), workdir)
    header, delimiter = _csv_header(utf8)
    mapping, ignored = _map_header(table, header, path)
    select = ", ".join(f"{_ident(mapping[c.name])} AS {c.name}" for c in table.columns)
    for leftover in ("csv_rejects", "csv_scans"):  # DuckDB appends to these: start each file empty
        _drop(con, leftover)
    try:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE raw_rows AS
                SELECT *, row_number() OVER () AS _rank FROM read_csv({_quote(str(utf8))}, header = true,
                    all_varchar = true, delim = {_quote(delimiter)}, quote = '"', store_rejects = true,
                    rejects_table = 'csv_rejects', rejects_scan = 'csv_scans')"""
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
    _drop(con, "raw")
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE raw AS
            SELECT {select}, r._rank + 1 + coalesce(g.shift, 0) AS _line
            FROM raw_rows r ASOF LEFT JOIN reject_gaps g ON r._rank > g.good_before"""
    )
    con.execute("DROP TABLE raw_rows")
    counts = dict(con.execute("SELECT reason, count(*) FROM rejects GROUP BY 1").fetchall())
    return counts, ignored, True


# ---------------------------------------------------------------------------- checks
def _typed(col: schema.Column, is_csv: bool) -> str:
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


def _checks(table: schema.Table, extract_date: dt.date, is_csv: bool) -> list[tuple[str, str, str]]:
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
    keyed = _keyed_by_enterprise(table)
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
            values = ", ".join(_quote(v) for v in col.allowed)
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


def _keyed_by_enterprise(table: schema.Table) -> bool:
    """Whether each row must belong to a registered enterprise."""
    return table.name != "enterprises" and "uscc" in table.column_names


def _references_sql() -> str:
    """(record_table, record_id, uscc) of every record an objection may name."""
    parts = [
        f"SELECT '{name}' AS record_table, CAST({schema.TABLES[name].key[0]} AS VARCHAR) AS record_id, uscc FROM {name}"
        for name in schema.DISPUTABLE_TABLES
    ]
    return " UNION ALL ".join(parts)


# ---------------------------------------------------------------------------- one file
def load_file(
    con: duckdb.DuckDBPyConnection, table: schema.Table, path: Path, *, load_id: str, extract_date: dt.date
) -> TableLoad:
    """Validate one file and upsert its good rows into ``table``; quarantine the rest."""
    result = TableLoad(table.name, str(path))
    with tempfile.TemporaryDirectory(prefix="ingest-") as tmp:
        rejected, ignored, is_csv = _stage(con, table, path, Path(tmp))
    if ignored:
        result.warnings[f"columns not in the contract, ignored: {ignored}"] = 1
    checks = _checks(table, extract_date, is_csv)
    case = " ".join(f"WHEN {cond} THEN {i}" for i, (_, cond, _) in enumerate(checks))
    typed = ", ".join(f"{_typed(c, is_csv)} AS {c.name}" for c in table.columns)
    joins = "LEFT JOIN enterprises e ON e.uscc = t.uscc" if _keyed_by_enterprise(table) else ""
    if table.name == "objections":
        joins += (
            f" LEFT JOIN ({_references_sql()}) ref ON ref.record_table = t.record_table "
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
        """
    )
    names = table.column_names
    cols = ", ".join(names)
    extra = f", {sql_check_expression('uscc')} AS uscc_check_ok" if table.name == "enterprises" else ""
    meta = f"{_quote(load_id)} AS _load_id, {_quote(str(path))} AS _source_file, _line, now() AS _loaded_at"
    keys = ", ".join(table.key)
    # the same natural key twice in one file: the later line wins, earlier ones are replaced versions
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE dupes AS SELECT {keys}, max(_line) AS _keep FROM checked "
        f"WHERE _fault IS NULL GROUP BY {keys} HAVING count(*) > 1"
    )
    good = "c._fault IS NULL"
    loser = "FALSE"
    if _count(con, "SELECT count(*) FROM dupes"):
        on_dupe = " AND ".join(f"d.{k} = c.{k}" for k in table.key)
        loser = f"EXISTS (SELECT 1 FROM dupes d WHERE {on_dupe} AND d._keep <> c._line)"
        # (a reload of the same file finds them there already and adds no second copy)
        same_line = " AND ".join(f"h.{k} = c.{k}" for k in table.key)
        con.execute(
            f"INSERT INTO {table.name}_history SELECT {cols}{extra}, {meta}, now(), {_quote(load_id)} "
            f"FROM checked c WHERE {good} AND {loser} AND NOT EXISTS (SELECT 1 FROM {table.name}_history h "
            f"WHERE {same_line} AND h._source_file = {_quote(str(path))} AND h._line = c._line)"
        )
        result.duplicates_in_file = _count(con, f"SELECT count(*) FROM checked c WHERE {good} AND {loser}")
    accepted = f"FROM checked c WHERE {good} AND NOT {loser}"
    if not _count(con, f"SELECT count(*) FROM (SELECT 1 FROM {table.name} LIMIT 1)"):
        # an empty table (the first load): every accepted row is new
        con.execute(f"INSERT INTO {table.name} SELECT {cols}{extra}, {meta} {accepted}")
        result.inserted = _count(con, f"SELECT count(*) {accepted}")
    else:
        con.execute(f"CREATE OR REPLACE TEMP TABLE incoming AS SELECT {cols}{extra}, {meta} {accepted}")
        on_key = " AND ".join(f"o.{k} = i.{k}" for k in table.key)
        same = " AND ".join(f"o.{c} IS NOT DISTINCT FROM i.{c}" for c in names)
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE matched AS SELECT ({same}) AS _same, "
            + ", ".join(f"i.{k} AS _k_{k}" for k in table.key)
            + f" FROM incoming i JOIN {table.name} o ON {on_key}"
        )
        result.unchanged = _count(con, "SELECT count(*) FROM matched WHERE _same")
        result.replaced = _count(con, "SELECT count(*) FROM matched WHERE NOT _same")
        match_o = " AND ".join(f"o.{k} = m._k_{k}" for k in table.key)
        match_i = " AND ".join(f"i.{k} = m._k_{k}" for k in table.key)
        if result.replaced:
            con.execute(
                f"INSERT INTO {table.name}_history SELECT o.*, now(), {_quote(load_id)} FROM {table.name} o "
                f"JOIN matched m ON {match_o} AND NOT m._same"
            )
            con.execute(f"DELETE FROM {table.name} o USING matched m WHERE {match_o} AND NOT m._same")
        con.execute(
            f"INSERT INTO {table.name} SELECT i.* FROM incoming i ANTI JOIN (SELECT * FROM matched WHERE _same) m ON {match_i}"
        )
        result.inserted = _count(con, "SELECT count(*) FROM incoming") - result.replaced - result.unchanged

    reason_sql = " ".join(f"WHEN {i} THEN {_quote(f + chr(9) + r)}" for i, (f, _, r) in enumerate(checks))
    con.execute(
        f"""
        INSERT INTO quarantine
        SELECT {_quote(load_id)}, {_quote(table.name)}, {_quote(str(path))}, c._line,
               split_part(c.r, chr(9), 1), split_part(c.r, chr(9), 2), to_json(raw_row), now()
        FROM (SELECT _line, CASE _fault {reason_sql} END AS r FROM checked WHERE _fault IS NOT NULL) c
        JOIN (SELECT r._line AS line, r AS raw_row FROM raw r) x ON x.line = c._line
        """
    )
    con.execute(
        f"""INSERT INTO quarantine SELECT {_quote(load_id)}, {_quote(table.name)}, {_quote(str(path))}, line,
                   field, reason, to_json(record), now() FROM rejects"""
    )
    result.rows_read = _count(con, "SELECT count(*) FROM checked") + sum(rejected.values())
    result.quarantined = _count(con, "SELECT count(*) FROM checked WHERE _fault IS NOT NULL") + sum(rejected.values())
    result.reasons = dict(
        con.execute(
            "SELECT field || ': ' || reason, count(*) FROM quarantine WHERE load_id = ? AND table_name = ? "
            "AND source_file = ? GROUP BY 1 ORDER BY 2 DESC",
            [load_id, table.name, str(path)],
        ).fetchall()
    )
    result.bad_uscc = sum(n for r, n in result.reasons.items() if r.startswith("uscc:"))
    if table.name == "enterprises":
        bad_check = _count(
            con, f"SELECT count(*) FROM enterprises WHERE _load_id = {_quote(load_id)} AND NOT uscc_check_ok"
        )
        if bad_check:
            result.warnings["uscc check character wrong (early pilot codes kept, 校验码不符的早期试点代码)"] = bad_check
    if result.accounted != result.rows_read:
        raise AssertionError(f"{path}: {result.rows_read} rows read but {result.accounted} accounted for")
    con.execute(
        "INSERT INTO loads VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now())",
        [
            load_id,
            table.name,
            str(path),
            _file_hash(path),
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
    for temp in ("raw", "rejects", "checked", "incoming", "dupes", "matched"):
        _drop(con, temp)
    return result


def _drop(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Drop a temporary table or view of that name, whichever it is."""
    for kind in ("TABLE", "VIEW"):
        try:
            con.execute(f"DROP {kind} IF EXISTS {name}")
        except duckdb.CatalogException:
            continue


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row else 0


# ---------------------------------------------------------------------------- a load
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
    with connect(warehouse, memory_limit=memory_limit) as con:
        _ensure_tables(con)
        for table, path in files:
            try:
                report.tables.append(load_file(con, table, path, load_id=load_id, extract_date=extract_date))
            except IngestError as exc:
                if table.name == "enterprises":
                    raise
                report.failures[str(path)] = str(exc)
                log.error("%s", exc)
        con.execute("INSERT OR REPLACE INTO meta VALUES ('extract_date', ?)", [str(extract_date)])
        report.coverage = coverage(con, extract_date)
        con.execute(
            "INSERT INTO load_reports VALUES (?, ?, now())", [load_id, json.dumps(report.to_dict(), ensure_ascii=False)]
        )
    return report


def coverage(con: duckdb.DuckDBPyConnection, as_of: dt.date) -> dict[str, float]:
    """Share of live enterprises with at least one record in each source table."""
    live = (
        f"SELECT uscc FROM enterprises WHERE registered_date < DATE '{as_of}' "
        f"AND (deregistered_date IS NULL OR deregistered_date >= DATE '{as_of}')"
    )
    n = _count(con, f"SELECT count(*) FROM ({live})")
    if not n:
        return {}
    return {
        name: _count(con, f"SELECT count(*) FROM ({live}) l WHERE l.uscc IN (SELECT uscc FROM {name})") / n
        for name in schema.RECORD_TABLES
        if name != "objections"
    }


def ingest_directory(source: Path, warehouse: Path, *, extract_date: dt.date | None = None) -> list[TableLoad]:
    """Load one folder; the per-table results of :func:`ingest`."""
    return ingest([source], warehouse, extract_date=extract_date).tables


def data_fingerprint(con: duckdb.DuckDBPyConnection) -> str:
    """A hash of what the warehouse holds now: every table's row count and latest loaded file contents."""
    parts: list[Any] = [con.execute("SELECT value FROM meta WHERE key = 'extract_date'").fetchone()]
    for name in schema.TABLES:
        parts.append([name, _count(con, f"SELECT count(*) FROM {name}")])
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
