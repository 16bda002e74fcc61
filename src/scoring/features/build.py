"""Point-in-time feature snapshots, computed set-based in DuckDB from the catalog.

A snapshot at ``as_of`` describes every enterprise registered before ``as_of`` and not
deregistered before it, using only records dated strictly before ``as_of``: each feature
reads its own date column (the decision, filing, billing or outcome date), and a record
whose change is dated later (a list exit, a repair) is seen as it stood before that change.
A penalty repaired (信用修复) before ``as_of`` no longer counts.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict

import duckdb
import pandas as pd

from scoring.data import schema
from scoring.data.ingest import data_fingerprint
from scoring.features.catalog import Catalog, Feature, Source

log = logging.getLogger(__name__)

SNAPSHOT_TABLE = "feature_snapshots"


def _date(d: dt.date) -> str:
    return f"DATE '{d.isoformat()}'"


def _months_before(as_of: str, months: int) -> str:
    return f"({as_of} - INTERVAL {months} MONTH)"


def _aggregate(f: Feature, date_col: str, as_of: str, end_col: str | None) -> str:
    col = f.column
    return {
        "count": "count(*)",
        "sum": f"sum({col})",
        "max": f"max({col})",
        "min": f"min({col})",
        "mean": f"avg({col})",
        "count_distinct": f"count(DISTINCT {col})",
        "last": f"arg_max({col}, {date_col})",
        "months_since_last": f"date_diff('month', max({date_col}), {as_of})",
        "active": "CAST(count(*) > 0 AS INTEGER)",
        "expression": f.expression or "",
    }[f.aggregation].replace("AS_OF", as_of)


def _group_key(catalog: Catalog, f: Feature) -> tuple:
    """Features of one source read over the same window with the same filter share a scan.

    (Measured at a city: sharing one scan per source, with each feature's window and filter as an
    aggregate FILTER, took 44 s a snapshot against 33 s for a scan per window.)"""
    src = catalog.sources[f.source]
    return (f.source, f.date or src.date, f.window_months, f.offset_months, f.filter, f.end)


def repaired_sql(src: Source, as_of: str) -> str:
    """SQL that is TRUE for a record repaired (信用修复) before ``as_of``."""
    repaired = f"coalesce({src.repaired_from} < {as_of}, false)"
    return f"({repaired} AND coalesce(({src.repaired_when}), false))" if src.repaired_when else repaired


def _objection_filters(catalog: Catalog, table: str, as_of: str) -> list[str]:
    """异议: a record deleted after an objection stops counting from the resolution date; an open
    objection removes the record too when the catalog says disputed records do not count."""
    if table not in schema.DISPUTABLE_TABLES:
        return []
    key = schema.TABLES[table].key[0]
    about = f"o.record_table = '{table}' AND o.record_id = t.{key}"
    filters = [
        f"NOT EXISTS (SELECT 1 FROM objections o WHERE {about} AND o.result = '删除' AND o.resolved_date < {as_of})"
    ]
    if catalog.disputed_records == "exclude":
        filters.append(
            f"NOT EXISTS (SELECT 1 FROM objections o WHERE {about} AND o.raised_date < {as_of} "
            f"AND (o.resolved_date IS NULL OR o.resolved_date >= {as_of}))"
        )
    return filters


def _kinds_of_features(
    catalog: Catalog,
) -> tuple[dict[tuple, list[Feature]], list[Feature], list[Feature], list[Feature]]:
    """(aggregates grouped by shared scan, static enterprise features, derived, peer percentiles)."""
    groups: dict[tuple, list[Feature]] = defaultdict(list)
    static, derived, peers = [], [], []
    for f in catalog.features:
        if f.aggregation in ("expression", "category") and f.source == "enterprises":
            static.append(f)
        elif f.aggregation == "derived":
            derived.append(f)
        elif f.aggregation == "peer_percentile":
            peers.append(f)
        else:
            groups[_group_key(catalog, f)].append(f)
    return groups, static, derived, peers


def _scan_sql(catalog: Catalog, k: int, key: tuple, feats: list[Feature], a: str) -> tuple[str, str, list[str]]:
    """(CTE ``g<k>``, its join onto the population, its select columns) for one scan of one source.

    The scan reads the records dated before ``a`` (the as-of column) within the group's window,
    without repaired records, records deleted after an objection, or records ended by then.
    """
    source, date_col, window, offset, flt, end = key
    src = catalog.sources[source]
    upper = _months_before(a, offset) if offset else a
    where = [f"t.{date_col} < {upper}"]
    if window:
        where.append(f"t.{date_col} >= {_months_before(a, window + offset)}")
    if src.repaired_from:
        # 信用修复: a repair dated before as_of removes the record from every feature
        where.append(f"NOT {repaired_sql(src, a)}")
    where += _objection_filters(catalog, src.table, a)
    if flt:
        where.append(f"({flt.replace('AS_OF', a)})")
    if end:
        where.append(f"(t.{end} IS NULL OR t.{end} >= {a})")
    aggs = ", ".join(f"{_aggregate(f, 't.' + date_col, a, end)} AS {f.name}" for f in feats)
    cte = (
        f"g{k} AS (SELECT t.uscc, d.as_of, {aggs} FROM {src.table} t JOIN dates d ON {' AND '.join(where)} "
        "GROUP BY t.uscc, d.as_of)"
    )
    join = f"LEFT JOIN g{k} ON g{k}.uscc = p.uscc AND g{k}.as_of = p.as_of"
    columns = []
    for f in feats:
        value = f"g{k}.{f.name}"
        if f.default is not None:
            value = f"coalesce({value}, {f.default})"
        columns.append(f"CAST({value} AS DOUBLE) AS {f.name}")
    return cte, join, columns


def feature_sql(catalog: Catalog, as_of: dt.date | list[dt.date], *, ordered: bool = True) -> str:
    """The one SQL statement that builds the snapshot at each as-of date (records dated before it only).

    Several dates are built in one pass: every record is joined to the as-of dates whose windows
    it falls in, so each source table is read once for all of them.
    """
    dates = sorted(set(as_of if isinstance(as_of, list) else [as_of]))
    a = "d.as_of"
    groups, static, derived, peers = _kinds_of_features(catalog)
    ctes = [
        f"dates AS (SELECT CAST(unnest([{', '.join(_date(d) for d in dates)}]) AS DATE) AS as_of)",
        f"""population AS (
            SELECT e.*, d.as_of FROM enterprises e JOIN dates d
              ON e.registered_date < {a} AND (e.deregistered_date IS NULL OR e.deregistered_date >= {a}))""",
    ]
    joins, selects = [], []
    for f in static:
        selects.append(f"{(f.expression or '').replace('AS_OF', 'p.as_of')} AS {f.name}")
    for k, (key, feats) in enumerate(groups.items()):
        cte, join, columns = _scan_sql(catalog, k, key, feats, a)
        ctes.append(cte)
        joins.append(join)
        selects += columns
    base = (
        f"SELECT p.uscc, p.as_of, p.industry AS _industry, p.division AS _division, {', '.join(selects)} "
        f"FROM population p {' '.join(joins)}"
    )
    derived_sql = "".join(f", CAST({f.expression} AS DOUBLE) AS {f.name}" for f in derived)
    # peer-relative: the share of enterprises of the same industry and division with a lower value.
    # Computed on a narrow table and joined back: a window over the wide rows would carry every
    # feature through each sort (at a county it took half the build time).
    peer_sql = ", ".join(
        f"CASE WHEN {f.of} IS NULL THEN NULL ELSE percent_rank() OVER "
        f"(PARTITION BY as_of, _industry, _division, {f.of} IS NULL ORDER BY {f.of}) END AS {f.name}"
        for f in peers
    )
    of = ", ".join(sorted({str(f.of) for f in peers}))
    names = ", ".join(f"q.{f.name}" if f.aggregation == "peer_percentile" else f"d.{f.name}" for f in catalog.features)
    # a stored snapshot needs no order (it is read back by key); sorting a city's wide rows is costly
    order = " ORDER BY d.as_of, d.uscc" if ordered else ""
    with_sql = f"WITH {', '.join(ctes)}, base AS ({base}), derived AS (SELECT *{derived_sql} FROM base)"
    if not peers:
        return f"{with_sql} SELECT d.uscc, d.as_of, {names} FROM derived d{order}"
    return (
        f"{with_sql}, peers AS (SELECT uscc, as_of, {peer_sql} FROM (SELECT uscc, as_of, _industry, _division, {of} "
        "FROM derived)) "
        f"SELECT d.uscc, d.as_of, {names} FROM derived d JOIN peers q ON q.uscc = d.uscc AND q.as_of = d.as_of "
        f"{order}"
    )


def build_features(con: duckdb.DuckDBPyConnection, catalog: Catalog, *, as_of: dt.date) -> pd.DataFrame:
    """Compute the snapshot at ``as_of`` and return it (one row per live enterprise).

    Reads only records dated strictly before ``as_of`` (see the module docstring).
    """
    return con.execute(feature_sql(catalog, as_of)).df()


def _prepare_table(con: duckdb.DuckDBPyConnection, catalog: Catalog, sql: str) -> None:
    """Create the snapshot table; drop it first when it was built from another catalog."""
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [SNAPSHOT_TABLE]
    ).fetchone()[0]  # type: ignore[index]
    if exists:
        cols = [r[0] for r in con.execute(f"DESCRIBE {SNAPSHOT_TABLE}").fetchall()]
        if cols == ["uscc", "as_of", *(f.name for f in catalog.features)]:
            return
        # the catalog changed: snapshots built from the old one no longer match and are rebuilt on demand
        log.warning("feature catalog changed; dropping stored snapshots")
        con.execute(f"DROP TABLE {SNAPSHOT_TABLE}")
    con.execute(f"CREATE TABLE {SNAPSHOT_TABLE} AS {sql} LIMIT 0")


def _builds_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "CREATE TABLE IF NOT EXISTS snapshot_builds (as_of DATE PRIMARY KEY, catalog_digest VARCHAR, "
        "data_fingerprint VARCHAR, built_at TIMESTAMP)"
    )


def store_snapshot(con: duckdb.DuckDBPyConnection, catalog: Catalog, *, as_of: dt.date) -> int:
    """Build the snapshot at ``as_of`` into the warehouse table, replacing an earlier build; return its rows."""
    return store_snapshots(con, catalog, as_of_dates=[as_of])


# Enterprise-snapshots built per SQL pass. One pass joins every record to each as-of date whose
# windows hold it, so its intermediate rows grow with the number of dates: at a county all the
# dates of a training run fit in one pass, at a city of a million one pass of 12 dates spilled
# 58 GB to disk while two dates per pass take the same time per date as one (docs/benchmarks.md).
ROWS_PER_PASS = 2_000_000


def _passes(con: duckdb.DuckDBPyConnection, dates: list[dt.date], rows_per_pass: int) -> list[list[dt.date]]:
    """The dates split into passes of at most ``rows_per_pass`` enterprise-snapshots (one date at least)."""
    row = con.execute("SELECT count(*) FROM enterprises").fetchone()
    per_date = max(int(row[0]) if row else 0, 1)
    size = max(rows_per_pass // per_date, 1)
    return [dates[i : i + size] for i in range(0, len(dates), size)]


def store_snapshots(
    con: duckdb.DuckDBPyConnection,
    catalog: Catalog,
    *,
    as_of_dates: list[dt.date],
    rows_per_pass: int = ROWS_PER_PASS,
) -> int:
    """Build the snapshots at all ``as_of_dates`` into the warehouse table, replacing earlier builds of
    those dates; return the rows written. Several dates share one SQL pass, as many as fit in
    ``rows_per_pass`` enterprise-snapshots.

    Records which catalog and which data each was built from, so a later change of either rebuilds it.
    """
    dates = sorted(set(as_of_dates))
    _prepare_table(con, catalog, feature_sql(catalog, dates))
    _builds_table(con)
    fingerprint = data_fingerprint(con)
    con.execute(f"DELETE FROM {SNAPSHOT_TABLE} WHERE as_of IN (SELECT unnest(?))", [dates])
    # forget the old builds first: a pass that fails leaves its dates missing, never stale-but-current
    con.execute("DELETE FROM snapshot_builds WHERE as_of IN (SELECT unnest(?))", [dates])
    for chunk in _passes(con, dates, rows_per_pass):
        con.execute(f"INSERT INTO {SNAPSHOT_TABLE} {feature_sql(catalog, chunk, ordered=False)}")
        for d in chunk:
            con.execute(
                "INSERT OR REPLACE INTO snapshot_builds VALUES (?, ?, ?, now())", [d, catalog.digest, fingerprint]
            )
    row = con.execute(f"SELECT count(*) FROM {SNAPSHOT_TABLE} WHERE as_of IN (SELECT unnest(?))", [dates]).fetchone()
    return int(row[0]) if row else 0


def ensure_snapshots(con: duckdb.DuckDBPyConnection, catalog: Catalog, *, as_of_dates: list[dt.date]) -> list[dt.date]:
    """Build the snapshots among ``as_of_dates`` that are missing or stale; return those built."""
    _prepare_table(con, catalog, feature_sql(catalog, list(as_of_dates)))
    _builds_table(con)
    current = (catalog.digest, data_fingerprint(con))
    built = {
        r[0]: (r[1], r[2])
        for r in con.execute("SELECT as_of, catalog_digest, data_fingerprint FROM snapshot_builds").fetchall()
    }
    stale = sorted(d for d in set(as_of_dates) if built.get(d) != current)
    if stale:
        store_snapshots(con, catalog, as_of_dates=stale)
    return stale


def load_snapshot(con: duckdb.DuckDBPyConnection, catalog: Catalog, *, as_of: dt.date) -> pd.DataFrame:
    """The stored snapshot at ``as_of``, built first when it is missing or was built from another
    catalog or other data."""
    _prepare_table(con, catalog, feature_sql(catalog, as_of))
    _builds_table(con)
    built = con.execute(
        "SELECT catalog_digest, data_fingerprint FROM snapshot_builds WHERE as_of = ?", [as_of]
    ).fetchone()
    if built != (catalog.digest, data_fingerprint(con)):
        store_snapshot(con, catalog, as_of=as_of)
    return con.execute(f"SELECT * FROM {SNAPSHOT_TABLE} WHERE as_of = ? ORDER BY uscc", [as_of]).df()


def stored_as_of_dates(con: duckdb.DuckDBPyConnection) -> list[dt.date]:
    try:
        return [r[0] for r in con.execute(f"SELECT DISTINCT as_of FROM {SNAPSHOT_TABLE} ORDER BY 1").fetchall()]
    except duckdb.CatalogException:
        return []
