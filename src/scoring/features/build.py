"""Point-in-time feature snapshots, computed set-based in DuckDB from the catalog.

A snapshot at ``as_of`` describes every enterprise registered before ``as_of`` and not
deregistered before it, using only records dated strictly before ``as_of``: each feature
reads its own date column (the decision, filing, billing or outcome date), and a record
whose change is dated later (a list exit, a repair) is seen as it stood before that change.
A penalty repaired (信用修复) before ``as_of`` no longer counts.

A window that reaches before the first month of its source's records (the platform's data start
for that source, read from the records dated before ``as_of``) gives a missing value, not a count
or sum over the part of the window the platform holds (see ``Feature.needs_full_window``): a
year-on-year growth 18 months into the platform's data is missing, not this year's sales over six
months of last year's. A feature dated by a later date of its record (a commitment's outcome) is
complete from that start plus the longest lag seen between the two dates.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
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


def _start_key(catalog: Catalog, f: Feature) -> str:
    """The ``starts`` column of a feature: its source's, or its source's and date column's when the
    feature is dated by a later date of the record (an outcome, a revocation)."""
    own = catalog.sources[f.source].date
    return f.source if not f.date or f.date == own else f"{f.source}.{f.date}"


def _starts_sql(catalog: Catalog) -> list[str]:
    """The CTEs ``firsts`` and ``starts``: per as-of date of ``dates``, from which month each
    full-window feature's records are complete (NULL when there is none before the date); no CTE when
    no feature needs one.

    A source is complete from the first month of its records. A feature dated by a later date of the
    record (a commitment's outcome) is complete from then plus the longest lag between the two dates
    (in calendar months): the outcomes of commitments made before the platform's data are never in
    it. Both read only records dated before the as-of date, as every feature does: the first record
    before a date is the first of all when it is before the date (so one scan of the table serves
    every date), and there is none otherwise.
    """
    keys = {_start_key(catalog, f): f for f in catalog.features if f.needs_full_window}
    if not keys:
        return []
    sources = sorted({f.source for f in keys.values()})
    firsts = ", ".join(
        f'(SELECT min({catalog.sources[s].date}) FROM {catalog.sources[s].table}) AS "{s}"' for s in sources
    )
    columns = []
    for key, f in sorted(keys.items()):
        src = catalog.sources[f.source]
        earliest = f'f."{f.source}"'
        first = f"CASE WHEN {earliest} < d.as_of THEN CAST(date_trunc('month', {earliest}) AS DATE) END"
        if f.date and f.date != src.date:
            lag = (
                f"(SELECT max(date_diff('month', t.{src.date}, t.{f.date})) FROM {src.table} t "
                f"WHERE t.{f.date} < d.as_of)"
            )
            first = f"CAST(({first}) + to_months(CAST({lag} AS INTEGER)) AS DATE)"
        columns.append(f'{first} AS "{key}"')
    return [
        f"firsts AS (SELECT {firsts})",
        f"starts AS (SELECT d.as_of, {', '.join(columns)} FROM dates d CROSS JOIN firsts f)",
    ]


def _full_window(catalog: Catalog, f: Feature, value: str, as_of: str) -> str:
    """``value`` where the feature's window starts on or after its records are complete, else NULL."""
    if not f.needs_full_window:
        return value
    start = f'starts."{_start_key(catalog, f)}"'
    return f"CASE WHEN {_months_before(as_of, f.reach_months)} >= {start} THEN {value} END"


def source_starts(
    con: duckdb.DuckDBPyConnection, catalog: Catalog, *, as_of_dates: list[dt.date]
) -> dict[dt.date, dict[str, dt.date | None]]:
    """Per as-of date, from which month the records of every full-window feature are complete (None:
    no record before the date), keyed as :func:`truncated_features` reads them."""
    ctes = _starts_sql(catalog)
    dates = sorted(set(as_of_dates))
    if not ctes:
        return {d: {} for d in dates}
    frame = con.execute(f"WITH {', '.join([_dates_sql(dates), *ctes])} SELECT * FROM starts").df()
    return {
        pd.Timestamp(row.pop("as_of")).date(): {
            k: (None if pd.isna(v) else pd.Timestamp(v).date()) for k, v in row.items()
        }
        for row in frame.to_dict("records")
    }


def truncated_features(catalog: Catalog, starts: dict[str, dt.date | None], *, as_of: dt.date) -> set[str]:
    """The features missing for every enterprise at ``as_of`` because a window reaches before its
    records are complete (``starts``: :func:`source_starts` at that date): those whose own window does,
    the derived features computed from them and the peer percentiles ranking them."""
    out = set()
    for f in catalog.features:
        if f.needs_full_window:
            start = starts.get(_start_key(catalog, f))
            reach = (pd.Timestamp(as_of) - pd.DateOffset(months=f.reach_months)).date()
            if start is None or reach < start:
                out.add(f.name)
    names = {f.name for f in catalog.features}
    for f in catalog.features:  # derived features reference non-derived ones only (the catalog checks it)
        if f.aggregation == "derived" and set(re.findall(r"[a-z][a-z0-9_]*", f.expression or "")) & names & out:
            out.add(f.name)
    out |= {f.name for f in catalog.features if f.aggregation == "peer_percentile" and f.of in out}
    return out


def _dates_sql(dates: list[dt.date]) -> str:
    return f"dates AS (SELECT CAST(unnest([{', '.join(_date(d) for d in dates)}]) AS DATE) AS as_of)"


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
    without repaired records, records deleted after an objection, or records ended by then. A column
    whose window reaches before the source's first month is NULL (``_full_window``).
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
        columns.append(f"CAST({_full_window(catalog, f, value, 'p.as_of')} AS DOUBLE) AS {f.name}")
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
        _dates_sql(dates),
        f"""population AS (
            SELECT e.*, d.as_of FROM enterprises e JOIN dates d
              ON e.registered_date < {a} AND (e.deregistered_date IS NULL OR e.deregistered_date >= {a}))""",
    ]
    starts = _starts_sql(catalog)
    ctes += starts
    joins, selects = ["JOIN starts ON starts.as_of = p.as_of"] if starts else [], []
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
        f"CASE WHEN {f.of} IS NULL THEN NULL ELSE {'cume_dist' if f.ties == 'high' else 'percent_rank'}() OVER "
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
