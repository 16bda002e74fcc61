"""The plan of a feature snapshot, one for both engines, printed as DuckDB's or as Spark's SQL.

The plan says what a snapshot is (the rules are in build.py's docstring): the as-of dates; the
enterprises live at each; per source, the records dated before the date within each feature's
window, without repaired records (信用修复), records deleted after an objection (异议) resolved
before the date (and disputed ones when the catalog excludes them) and records ended by then; the
aggregates; NULL for a window that reaches before its records are complete; the derived features;
the peer percentiles. Each engine is given SQL that means exactly this. What differs between them
has one definition per engine here or in sql.py, never a mechanical transpile of the other's SQL:

- the as-of date list: DuckDB unnests a list; Spark (which cannot cast a generator) reads VALUES;
- the objection anti-join: DuckDB a ``NOT EXISTS`` in the join condition; Spark, which cannot
  correlate a subquery inside a join condition, a ``LEFT ANTI JOIN`` of the joined records;
- a date plus N months: DuckDB ``+ to_months(N)``, Spark ``add_months``; both keep a month end in
  range (01-31 plus one month is 02-28 or 02-29). A window's bound, the as-of date minus N months,
  is an expression on DuckDB and a column of the dates on Spark (:func:`bound`);
- the month difference and the last value by date (NULLs skipped): sql.py;
- the peer percentile: ``percent_rank``/``cume_dist`` in both, within partitions that keep NULLs
  apart (Spark sorts NULLs first and DuckDB last, which the NULL partition makes moot);
- the shape: DuckDB one scan per source, window and filter (measured at a city: 33 s a snapshot,
  against 44 s for one scan per source with conditional aggregates); Spark one scan per source and
  date column, each feature an aggregate over its own window and filter, because the DuckDB shape
  (89 CTEs) ran out of memory in a 1 GB Spark driver while planning.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import sqlglot
from sqlglot import exp

from scoring.data import schema
from scoring.features.catalog import Catalog, Feature, Source
from scoring.features.sql import Engine, render, translate

# The statements here are text, the same plan printed for DuckDB and for Spark (spark.sql takes no
# parameters), so nothing is bound: what goes in is names, sources and snippets of the catalog
# (checked against the data contract and the snippet allow-list when it loads), numbers of months
# (ints) and dates printed from datetime.date (:func:`date_literal`).


def date_literal(d: dt.date) -> str:
    return f"DATE '{d.isoformat()}'"


def months_before(as_of: str, months: int) -> str:
    """``as_of`` minus ``months`` calendar months (both engines clamp a month end)."""
    return f"({as_of} - INTERVAL {months} MONTH)"


def _plus_months(date: str, months: str, engine: Engine) -> str:
    if engine == "spark":
        return f"add_months({date}, CAST({months} AS INTEGER))"
    return f"CAST(({date}) + to_months(CAST({months} AS INTEGER)) AS DATE)"


def bound(alias: str, months: int, engine: Engine) -> str:
    """``<alias>.as_of`` minus ``months`` calendar months. On Spark a column of the dates, computed once
    per date: Spark adds months with java.time per row, and in the conditions of every record that was
    the hottest frame of a snapshot (JFR on the county's executors); DuckDB adds them vectorized."""
    if engine == "spark":
        return f"{alias}.as_of_m{months}"
    return months_before(f"{alias}.as_of", months)


def spark_bounds(catalog: Catalog) -> list[int]:
    """Every number of months the Spark plan subtracts from an as-of date (the columns of :func:`bound`)."""
    out = set()
    for f in catalog.features:
        out |= {f.offset_months, f.reach_months}
    return sorted(out - {0})


def dates_sql(dates: list[dt.date], engine: Engine, bounds: list[int] | None = None) -> str:
    """The CTE ``dates``: one row per as-of date, column ``as_of``; on Spark also ``as_of_m<N>``, the
    date minus N months, for each of ``bounds``."""
    if engine == "spark":
        values = ", ".join(f"({date_literal(d)})" for d in dates)
        minus = "".join(f", {_plus_months('as_of', str(-n), engine)} AS as_of_m{n}" for n in bounds or [])
        return f"dates AS (SELECT as_of{minus} FROM VALUES {values} AS v(as_of))"  # nosec B608 # dates and ints
    return f"dates AS (SELECT CAST(unnest([{', '.join(date_literal(d) for d in dates)}]) AS DATE) AS as_of)"


def start_key(catalog: Catalog, f: Feature) -> str:
    """The ``starts`` column of a feature: its source's, or its source's and date column's
    (``source__date``) when the feature is dated by a later date of the record (an outcome)."""
    own = catalog.sources[f.source].date
    return f.source if not f.date or f.date == own else f"{f.source}__{f.date}"


def starts_sql(catalog: Catalog, engine: Engine) -> list[str]:
    """The CTEs ``firsts``, ``lag<k>`` and ``starts``: per as-of date of ``dates``, from which month
    each full-window feature's records are complete (NULL when there is none before the date); no CTE
    when no feature needs one.

    A source is complete from the first month of its records. A feature dated by a later date of the
    record (a commitment's outcome) is complete from then plus the longest lag between the two dates
    (in calendar months) among the records whose later date is before the as-of date: the outcomes of
    commitments made before the platform's data are never in it. The first record before a date is
    the first of all when it is before the date (so one scan of the table serves every date), and
    there is none otherwise.
    """
    keys = {start_key(catalog, f): f for f in catalog.features if f.needs_full_window}
    if not keys:
        return []
    sources = sorted({f.source for f in keys.values()})
    firsts = ", ".join(
        f"(SELECT min({catalog.sources[s].date}) FROM {catalog.sources[s].table}) AS {s}"  # nosec B608 # catalog names
        for s in sources
    )
    ctes, columns, joins = [f"firsts AS (SELECT {firsts})"], [], list[str]()
    for key, f in sorted(keys.items()):
        src = catalog.sources[f.source]
        earliest = f"f.{f.source}"
        first = f"CASE WHEN {earliest} < d.as_of THEN CAST(date_trunc('month', {earliest}) AS DATE) END"
        if f.date and f.date != src.date:
            k = len(joins)
            lag = translate(f"max(date_diff('month', t.{src.date}, t.{f.date}))", engine)
            ctes.append(
                f"lag{k} AS (SELECT d.as_of, {lag} AS months "  # nosec B608 # catalog names
                f"FROM dates d JOIN {src.table} t "
                f"ON t.{f.date} < d.as_of GROUP BY d.as_of)"
            )
            joins.append(f"LEFT JOIN lag{k} ON lag{k}.as_of = d.as_of")
            first = _plus_months(first, f"lag{k}.months", engine)
        columns.append(f"{first} AS {key}")
    ctes.append(
        f"starts AS (SELECT d.as_of, {', '.join(columns)} "  # nosec B608 # catalog names
        f"FROM dates d CROSS JOIN firsts f {' '.join(joins)})"
    )
    return ctes


def _full_window(catalog: Catalog, f: Feature, value: str, alias: str, engine: Engine) -> str:
    """``value`` where the feature's window starts on or after its records are complete, else NULL."""
    if not f.needs_full_window:
        return value
    return f"CASE WHEN {bound(alias, f.reach_months, engine)} >= starts.{start_key(catalog, f)} THEN {value} END"


def repaired_sql(src: Source, as_of: str, engine: Engine = "duckdb") -> str:
    """SQL that is TRUE for a record repaired (信用修复) before ``as_of``."""
    repaired = f"coalesce({src.repaired_from} < {as_of}, false)"
    if not src.repaired_when:
        return repaired
    return f"({repaired} AND coalesce(({translate(src.repaired_when, engine)}), false))"


def _objections(catalog: Catalog, table: str, record: str, as_of: str) -> list[str]:
    """The conditions on an objection ``o`` of record ``record`` that take the record out at ``as_of``:
    deleted after an objection resolved before then; under an open objection when disputed records do
    not count."""
    if table not in schema.DISPUTABLE_TABLES:
        return []
    about = f"o.record_table = '{table}' AND o.record_id = {record}.{schema.TABLES[table].key[0]}"
    out = [f"{about} AND o.result = '删除' AND o.resolved_date < {as_of}"]
    if catalog.disputed_records == "exclude":
        out.append(f"{about} AND o.raised_date < {as_of} AND (o.resolved_date IS NULL OR o.resolved_date >= {as_of})")
    return out


def _kinds_of_features(
    catalog: Catalog, engine: Engine
) -> tuple[dict[tuple, list[Feature]], list[Feature], list[Feature], list[Feature]]:
    """(aggregates grouped by shared scan, static enterprise features, derived, peer percentiles).

    On DuckDB the features of one source read over the same window with the same filter share a
    scan; on Spark all the features of one source and date column do."""
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
            date_col = f.date or catalog.sources[f.source].date
            shared = () if engine == "spark" else (f.window_months, f.offset_months, f.filter, f.end)
            groups[(f.source, date_col, *shared)].append(f)
    return groups, static, derived, peers


EXACT = 10_000  # sums are exact in units of 1/10,000 (a fen is 1/100 yuan; meters read to 0.001)


def _exact_sum(node: exp.Expr) -> exp.Expr:
    """``sum(x)`` added up exactly, in whole units of 1/10,000 (64-bit integers), then made a double;
    ``avg(x)`` that sum over ``count(x)``. Two engines, or two runs of one, add doubles up in
    different orders and differ in the last bit, which a reason's rounded value shows (74,675,022
    yuan on DuckDB, 74,675,023 on Spark: measured on the county); an exact sum is the same number
    everywhere. (A sum in DECIMAL(38, 6) is exact too, but took 2.8 times as long in DuckDB as a
    sum of doubles; one of 64-bit integers 1.2 times.)"""
    if not isinstance(node, exp.Sum | exp.Avg) or isinstance(node.this, exp.Distinct):
        return node
    units = exp.Cast(
        this=exp.Round(this=exp.Mul(this=exp.Paren(this=node.this.copy()), expression=exp.Literal.number(EXACT))),
        to=exp.DataType.build("BIGINT"),
    )
    total = exp.Div(
        this=exp.Cast(this=exp.Sum(this=units), to=exp.DataType.build("DOUBLE")),
        expression=exp.Literal.number(f"{EXACT}.0"),
    )
    if isinstance(node, exp.Sum):
        return exp.Paren(this=total)
    count = exp.Nullif(this=exp.Count(this=node.this.copy()), expression=exp.Literal.number(0))
    return exp.Paren(this=exp.Div(this=exp.Paren(this=total), expression=count))


def _aggregate(catalog: Catalog, f: Feature, date_col: str) -> exp.Expr:
    """The feature's aggregate over its records (DuckDB's SQL, ``AS_OF`` the as-of date)."""
    return _plain_aggregate(catalog, f, date_col).transform(_exact_sum)


def _plain_aggregate(catalog: Catalog, f: Feature, date_col: str) -> exp.Expr:
    if f.aggregation == "expression":
        return catalog.snippet(f.name, "expression")
    col = f.column
    return sqlglot.parse_one(
        {
            "count": "count(*)",
            "sum": f"sum({col})",
            "max": f"max({col})",
            "min": f"min({col})",
            "mean": f"avg({col})",
            "count_distinct": f"count(DISTINCT {col})",
            "last": f"arg_max({col}, {date_col})",
            "months_since_last": f"date_diff('month', max({date_col}), AS_OF)",
            "active": "CAST(count(*) > 0 AS INTEGER)",
        }[f.aggregation],
        dialect="duckdb",
    )


def _feature_condition(catalog: Catalog, f: Feature, date_col: str) -> exp.Expr | None:
    """What selects a feature's own records among its source's (Spark's conditional aggregates)."""
    parts = []
    if f.offset_months:
        parts.append(f"{date_col} < {bound('t', f.offset_months, 'spark')}")
    if f.window_months:
        parts.append(f"{date_col} >= {bound('t', f.window_months + f.offset_months, 'spark')}")
    if f.end:
        parts.append(f"(t.{f.end} IS NULL OR t.{f.end} >= AS_OF)")
    condition = [sqlglot.parse_one(p, dialect="duckdb") for p in parts]
    if f.filter:
        condition.append(exp.Paren(this=catalog.snippet(f.name, "filter").copy()))
    return exp.and_(*condition) if condition else None


def _conditional(aggregate: exp.Expr, condition: exp.Expr | None) -> exp.Expr:
    """``aggregate`` over the rows that meet ``condition`` only, NULL when there is none (as a
    feature of a scan of its own is NULL for an enterprise without such records)."""
    if condition is None:
        return aggregate

    def only(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.AggFunc) and not isinstance(node.parent, exp.Filter):
            return exp.Filter(this=node.copy(), expression=exp.Where(this=condition.copy()))
        return node

    some = exp.GT(this=only(exp.Count(this=exp.Star(), big_int=True)), expression=exp.Literal.number(0))
    return exp.Case(ifs=[exp.If(this=some, true=aggregate.copy().transform(only))])


def _columns(catalog: Catalog, k: int, feats: list[Feature], engine: Engine) -> tuple[str, list[str]]:
    """(the scan's join onto the population, its select columns: defaults and full windows applied)."""
    name = "s" if engine == "spark" else "g"
    join = f"LEFT JOIN {name}{k} ON {name}{k}.uscc = p.uscc AND {name}{k}.as_of = p.as_of"
    columns = []
    for f in feats:
        value = f"{name}{k}.{f.name}"
        if f.default is not None:
            value = f"coalesce({value}, {f.default})"
        columns.append(f"CAST({_full_window(catalog, f, value, 'p', engine)} AS DOUBLE) AS {f.name}")
    return join, columns


def _duckdb_scan(catalog: Catalog, k: int, key: tuple, feats: list[Feature]) -> str:
    """The CTE ``g<k>``: one scan of one source over one window with one filter, on DuckDB."""
    source, date_col, window, offset, flt, end = key
    src, a = catalog.sources[source], "d.as_of"
    where = [f"t.{date_col} < {months_before(a, offset) if offset else a}"]
    if window:
        where.append(f"t.{date_col} >= {months_before(a, window + offset)}")
    if src.repaired_from:
        where.append(f"NOT {repaired_sql(src, a)}")  # 信用修复: a repair dated before as_of removes the record
    where += [
        f"NOT EXISTS (SELECT 1 FROM objections o WHERE {c})"  # nosec B608 # catalog names
        for c in _objections(catalog, src.table, "t", a)
    ]
    if flt:
        where.append(f"({render(catalog.snippet(feats[0].name, 'filter'), 'duckdb', as_of=a)})")
    if end:
        where.append(f"(t.{end} IS NULL OR t.{end} >= {a})")
    aggs = ", ".join(f"{render(_aggregate(catalog, f, 't.' + date_col), 'duckdb', as_of=a)} AS {f.name}" for f in feats)
    return (
        f"g{k} AS (SELECT t.uscc, d.as_of, {aggs} FROM {src.table} t "  # nosec B608 # catalog names and snippets
        f"JOIN dates d ON {' AND '.join(where)} "
        "GROUP BY t.uscc, d.as_of)"
    )


def _spark_scan(catalog: Catalog, k: int, key: tuple, feats: list[Feature]) -> str:
    """The CTE ``s<k>``: one scan of one source and date column for every as-of date, on Spark.

    The records are joined to the dates whose longest window holds them; objections take records out
    by anti-joins; each feature aggregates its own window and filter."""
    source, date_col = key
    src = catalog.sources[source]
    where = [f"t.{date_col} < d.as_of"]
    if all(f.window_months for f in feats):
        where.append(f"t.{date_col} >= {bound('d', max(f.reach_months for f in feats), 'spark')}")
    if src.repaired_from:
        where.append(f"NOT {repaired_sql(src, 'd.as_of', 'spark')}")
    rows = f"SELECT t.*, d.* FROM {src.table} t JOIN dates d ON {' AND '.join(where)}"  # nosec B608 # catalog names
    for condition in _objections(catalog, src.table, "r", "r.as_of"):
        rows = f"SELECT r.* FROM ({rows}) r LEFT ANTI JOIN objections o ON {condition}"  # nosec B608 # catalog names
    aggs = ", ".join(
        f"{render(_conditional(_aggregate(catalog, f, 't.' + date_col), _feature_condition(catalog, f, 't.' + date_col)), 'spark', as_of='t.as_of')} "
        f"AS {f.name}"
        for f in feats
    )
    return (
        f"s{k} AS (SELECT t.uscc, t.as_of, {aggs} "  # nosec B608 # catalog names and snippets
        f"FROM ({rows}) t GROUP BY t.uscc, t.as_of)"
    )


def _peers_sql(peers: list[Feature]) -> str:
    # the share of enterprises of the same industry and division with a lower value (``ties: high``:
    # not higher), NULL for a NULL value
    return ", ".join(
        f"CASE WHEN {f.of} IS NULL THEN NULL ELSE {'cume_dist' if f.ties == 'high' else 'percent_rank'}() OVER "
        f"(PARTITION BY as_of, _industry, _division, {f.of} IS NULL ORDER BY {f.of}) END AS {f.name}"
        for f in peers
    )


# A derived feature is rounded to 12 decimals. Its operands are sums that the two engines (and two
# runs of one) add up in different orders, so they may differ in the last bit; ``a / b - 1`` of two
# equal sums is then 2e-16 on one and 0 on the other, and a tree's split at zero (LightGBM's 1e-35)
# sends the two to different leaves. Measured on the county before rounding: one enterprise's
# electricity growth. Twelve decimals are far below any meaning of a ratio or a growth.
DERIVED_DIGITS = 12

# the statements without their dates, by (catalog digest, ordered, engine): printing one takes 80 ms
_STATEMENTS: dict[tuple[str, bool, Engine], str] = {}
_DATES = "__as_of_dates__"


def feature_sql(
    catalog: Catalog, as_of: dt.date | list[dt.date], *, ordered: bool = True, engine: Engine = "duckdb"
) -> str:
    """The one SQL statement that builds the snapshot at each as-of date (records dated before it only).

    Several dates are built in one pass: every record is joined to the as-of dates whose windows
    it falls in, so each source table is read once for all of them.
    """
    dates = sorted(set(as_of if isinstance(as_of, list) else [as_of]))
    key = (catalog.digest, ordered, engine)
    if key not in _STATEMENTS:
        _STATEMENTS[key] = _statement(catalog, ordered=ordered, engine=engine)
    bounds = spark_bounds(catalog) if engine == "spark" else None
    return _STATEMENTS[key].replace(_DATES, dates_sql(dates, engine, bounds), 1)


def _statement(catalog: Catalog, *, ordered: bool, engine: Engine) -> str:
    groups, static, derived, peers = _kinds_of_features(catalog, engine)
    ctes = [
        _DATES,
        """population AS (
            SELECT e.*, d.* FROM enterprises e JOIN dates d
              ON e.registered_date < d.as_of AND (e.deregistered_date IS NULL OR e.deregistered_date >= d.as_of))""",
    ]
    starts = starts_sql(catalog, engine)
    ctes += starts
    joins, selects = ["JOIN starts ON starts.as_of = p.as_of"] if starts else [], []
    for f in static:
        selects.append(f"{render(catalog.snippet(f.name, 'expression'), engine, as_of='p.as_of')} AS {f.name}")
    for k, (key, feats) in enumerate(groups.items()):
        ctes.append(_spark_scan(catalog, k, key, feats) if engine == "spark" else _duckdb_scan(catalog, k, key, feats))
        join, columns = _columns(catalog, k, feats, engine)
        joins.append(join)
        selects += columns
    base = (
        f"SELECT p.uscc, p.as_of, p.industry AS _industry, p.division AS _division, "  # nosec B608 # catalog names
        f"{', '.join(selects)} "
        f"FROM population p {' '.join(joins)}"
    )
    derived_sql = "".join(
        f", CAST(round({render(catalog.snippet(f.name, 'expression'), engine, as_of='as_of')}, {DERIVED_DIGITS}) "
        f"AS DOUBLE) AS {f.name}"
        for f in derived
    )
    names = ", ".join(f"q.{f.name}" if f.aggregation == "peer_percentile" else f"d.{f.name}" for f in catalog.features)
    # a stored snapshot needs no order (it is read back by key); sorting a city's wide rows is costly
    order = " ORDER BY d.as_of, d.uscc" if ordered else ""
    with_sql = (
        f"WITH {', '.join(ctes)}, base AS ({base}), "  # nosec B608 # catalog names and snippets
        f"derived AS (SELECT *{derived_sql} FROM base)"
    )
    if not peers:
        return f"{with_sql} SELECT d.uscc, d.as_of, {names} FROM derived d{order}"  # nosec B608 # catalog names
    # peer-relative features are computed on a narrow table and joined back: a window over the wide
    # rows would carry every feature through each sort (at a county it took half the build time)
    of = ", ".join(sorted({str(f.of) for f in peers}))
    return (
        f"{with_sql}, peers AS (SELECT uscc, as_of, {_peers_sql(peers)} "  # nosec B608 # catalog names
        "FROM (SELECT uscc, as_of, _industry, "
        f"_division, {of} FROM derived) narrow) "
        f"SELECT d.uscc, d.as_of, {names} FROM derived d JOIN peers q ON q.uscc = d.uscc AND q.as_of = d.as_of"
        f"{order}"
    )
