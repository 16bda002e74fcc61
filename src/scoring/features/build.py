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

import duckdb
import pandas as pd

from scoring.data.ingest import data_fingerprint
from scoring.features.catalog import Catalog
from scoring.features.plan import dates_sql, feature_sql, start_key, starts_sql
from scoring.features.sql import columns_of

__all__ = ["feature_sql"]  # the plan's SQL, which callers of the DuckDB build also read

log = logging.getLogger(__name__)

SNAPSHOT_TABLE = "feature_snapshots"


def source_starts(
    con: duckdb.DuckDBPyConnection, catalog: Catalog, *, as_of_dates: list[dt.date]
) -> dict[dt.date, dict[str, dt.date | None]]:
    """Per as-of date, from which month the records of every full-window feature are complete (None:
    no record before the date), keyed as :func:`truncated_features` reads them."""
    ctes = starts_sql(catalog, "duckdb")
    dates = sorted(set(as_of_dates))
    if not ctes:
        return {d: {} for d in dates}
    plan = ", ".join([dates_sql(dates, "duckdb"), *ctes])
    frame = con.execute(f"WITH {plan} SELECT * FROM starts").df()  # nosec B608 # the plan's SQL (plan.py)
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
            start = starts.get(start_key(catalog, f))
            reach = (pd.Timestamp(as_of) - pd.DateOffset(months=f.reach_months)).date()
            if start is None or reach < start:
                out.add(f.name)
    for f in catalog.features:  # derived features reference non-derived ones only (the catalog checks it)
        if f.aggregation == "derived" and columns_of(catalog.snippet(f.name, "expression")) & out:
            out.add(f.name)
    out |= {f.name for f in catalog.features if f.aggregation == "peer_percentile" and f.of in out}
    return out


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
    con.execute(
        f"DELETE FROM {SNAPSHOT_TABLE} WHERE as_of IN (SELECT unnest(?))",  # nosec B608 # SNAPSHOT_TABLE
        [dates],
    )
    # forget the old builds first: a pass that fails leaves its dates missing, never stale-but-current
    con.execute("DELETE FROM snapshot_builds WHERE as_of IN (SELECT unnest(?))", [dates])
    for chunk in _passes(con, dates, rows_per_pass):
        con.execute(f"INSERT INTO {SNAPSHOT_TABLE} {feature_sql(catalog, chunk, ordered=False)}")
        for d in chunk:
            con.execute(
                "INSERT OR REPLACE INTO snapshot_builds VALUES (?, ?, ?, now())", [d, catalog.digest, fingerprint]
            )
    stored = f"SELECT count(*) FROM {SNAPSHOT_TABLE} WHERE as_of IN (SELECT unnest(?))"  # nosec B608 # SNAPSHOT_TABLE
    row = con.execute(stored, [dates]).fetchone()
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
    stored = f"SELECT * FROM {SNAPSHOT_TABLE} WHERE as_of = ? ORDER BY uscc"  # nosec B608 # SNAPSHOT_TABLE
    return con.execute(stored, [as_of]).df()


def stored_as_of_dates(con: duckdb.DuckDBPyConnection) -> list[dt.date]:
    try:
        stored = f"SELECT DISTINCT as_of FROM {SNAPSHOT_TABLE} ORDER BY 1"  # nosec B608 # SNAPSHOT_TABLE
        return [r[0] for r in con.execute(stored).fetchall()]
    except duckdb.CatalogException:
        return []
