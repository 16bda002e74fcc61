"""Property: adding, changing or removing any record dated on or after the as-of date changes no feature."""

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from scoring.data import schema
from scoring.features.build import build_features
from scoring.features.catalog import load_catalog

REPO = Path(__file__).resolve().parents[2]
# 38 months into the county's data: the 36-month windows are complete, so a record dated the day before
# counts (earlier, a 36-month window reaching before the data is missing whatever it holds)
AS_OF = dt.date(2025, 3, 1)
TABLES = [t for t in schema.RECORD_TABLES if schema.TABLES[t].date_column]


@pytest.fixture(scope="module")
def world(county, tmp_path_factory):
    import shutil

    path = tmp_path_factory.mktemp("pit") / "w.duckdb"
    shutil.copy(county.settings.warehouse_path, path)
    con = duckdb.connect(str(path))
    catalog = load_catalog(REPO / "features" / "catalog.yaml")
    yield con, catalog, build_features(con, catalog, as_of=AS_OF)
    con.close()


def _later(table: schema.Table, days: int) -> str:
    return f"{table.date_column} >= DATE '{AS_OF}' + {days}"


def _mutate(con: duckdb.DuckDBPyConnection, table: schema.Table, op: str, days: int, pick: int) -> int:
    """Apply one change to records dated on or after AS_OF + days; return how many rows it touched."""
    later = _later(table, days)
    n = con.execute(f"SELECT count(*) FROM {table.name} WHERE {later}").fetchone()[0]
    if op == "remove":
        con.execute(f"DELETE FROM {table.name} WHERE {later}")
        return n
    if op == "change":
        if not n:
            return 0
        numeric = [c.name for c in table.columns if c.dtype in ("DOUBLE", "INTEGER") and c.name not in table.key]
        texts = [c for c in table.columns if c.allowed and c.name not in table.key]
        sets = [f"{c} = {c} * 3 + 7" for c in numeric] + [
            f"{c.name} = '{c.allowed[pick % len(c.allowed)]}'" for c in texts
        ]
        if not sets:
            return 0
        row = con.execute(
            f"SELECT rowid FROM {table.name} WHERE {later} ORDER BY rowid LIMIT 1 OFFSET {pick % n}"
        ).fetchone()[0]
        con.execute(f"UPDATE {table.name} SET {', '.join(sets)} WHERE rowid = {row}")
        return 1
    # add: copies of existing rows moved so that their earliest date is on or after AS_OF + days
    dates = [c.name for c in table.columns if c.dtype == "DATE"]
    shift = f"CAST(DATE '{AS_OF}' + {days} - least({', '.join(dates)}) AS INTEGER)"

    def copied(c: schema.Column) -> str:
        if c.name in dates:
            return f"{c.name} + {shift} AS {c.name}"
        if c.name in table.key and c.name != "uscc" and not any(k in dates for k in table.key):
            return f"{c.name} || '-new' AS {c.name}" if c.dtype == "VARCHAR" else f"{c.name} + 1000 AS {c.name}"
        return c.name

    con.execute(
        f"INSERT INTO {table.name} BY NAME SELECT {', '.join(copied(c) for c in table.columns)} FROM {table.name} "
        f"ORDER BY rowid LIMIT 5 OFFSET {pick % 500}"
    )
    return 5


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    table=st.sampled_from(TABLES),
    op=st.sampled_from(["add", "change", "remove"]),
    days=st.integers(min_value=0, max_value=400),
    pick=st.integers(min_value=0, max_value=10_000),
)
def test_future_records_never_change_a_feature(world, table: str, op: str, days: int, pick: int) -> None:
    con, catalog, before = world
    con.execute("BEGIN TRANSACTION")
    try:
        _mutate(con, schema.TABLES[table], op, days, pick)
        after = build_features(con, catalog, as_of=AS_OF)
    finally:
        con.execute("ROLLBACK")
    pd.testing.assert_frame_equal(before, after)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    table=st.sampled_from(
        ["penalties", "executee_list", "commitments", "loans", "admin_actions", "licenses", "patents"]
    ),
    days=st.integers(min_value=1, max_value=60),
    pick=st.integers(min_value=0, max_value=10_000),
)
@example(table="penalties", days=1, pick=3513)  # a repaired penalty: its copy once counted for nothing
def test_past_records_do_change_features(world, table: str, days: int, pick: int) -> None:
    con, catalog, before = world
    t = schema.TABLES[table]
    key = t.key[0]
    # the copy is not repaired (信用修复): a repaired record rightly counts for nothing
    repair = next((s.repaired_from for s in catalog.sources.values() if s.table == table and s.repaired_from), None)
    unrepaired = f", NULL AS {repair}" if repair else ""
    con.execute("BEGIN TRANSACTION")
    try:
        # a copy of a live enterprise's record, dated `days` before the as-of date
        con.execute(
            f"INSERT INTO {table} BY NAME SELECT * REPLACE ({key} || '-past' AS {key}, "
            f"DATE '{AS_OF}' - {days} AS {t.date_column}{unrepaired}) FROM {table} "
            f"WHERE uscc IN (SELECT uscc FROM enterprises WHERE registered_date < DATE '2020-01-01' "
            f"AND deregistered_date IS NULL) ORDER BY rowid LIMIT 1 OFFSET {pick % 50}"
        )
        after = build_features(con, catalog, as_of=AS_OF)
    finally:
        con.execute("ROLLBACK")
    assert not before.equals(after)
