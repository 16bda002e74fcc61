"""The catalog's snippets printed for Spark mean on a real Spark what they mean on DuckDB.

A standalone master and two workers on 127.0.0.1 (tests/conftest.py ``spark``), started from the
PySpark wheel with the OS's Java 17.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from scoring.features.catalog import load_catalog
from scoring.features.sql import parse_snippet, render
from tests.unit.test_catalog_sql import PAIRS  # the month-end pairs, with what each shows

REPO = Path(__file__).resolve().parents[2]


def _values(rows: list[tuple[str, ...]]) -> str:
    return ", ".join("(" + ", ".join("NULL" if v is None else f"DATE '{v}'" for v in row) + ")" for row in rows)


def test_the_month_difference_is_the_same_on_spark_and_duckdb(spark) -> None:
    catalog = load_catalog(REPO / "features" / "catalog.yaml")
    age = catalog.feature("ent_age_months")  # the catalog's own month difference
    tree = parse_snippet(age.expression or "", kind="expression", names={"registered_date"})
    rows = _values(PAIRS)
    on_spark = spark.sql(
        f"SELECT {render(tree, 'spark', as_of='b')} AS m FROM VALUES {rows} AS t(registered_date, b)"
    ).collect()
    on_duck = (
        duckdb.connect()
        .execute(f"SELECT {render(tree, 'duckdb', as_of='b')} AS m FROM (VALUES {rows}) AS t(registered_date, b)")
        .fetchall()
    )
    assert [r["m"] for r in on_spark] == [r[0] for r in on_duck] == [1, 1, 12, 1, 0, 60, -31]
    # what a mechanical transpile would have run: Spark's datediff counts whole months
    naive = spark.sql("SELECT datediff(MONTH, DATE '2023-12-31', DATE '2024-01-01') AS m").collect()[0]["m"]
    assert naive == 0


@pytest.mark.parametrize(
    ("rows", "latest"),
    [
        ([("B", "2024-01-01"), (None, "2024-06-01")], "B"),  # the latest row's value is NULL: skipped
        ([("B", "2024-01-01"), ("A", "2024-06-01")], "A"),
        ([(None, "2024-01-01")], None),  # no value at all
    ],
)
def test_the_latest_value_skips_nulls_on_spark_as_on_duckdb(spark, rows, latest) -> None:
    tree = parse_snippet("arg_max(rating, rated_date)", kind="expression", names={"rating", "rated_date"})
    values = ", ".join(f"({'NULL' if r is None else repr(r)}, DATE '{d}')" for r, d in rows)
    on_spark = spark.sql(
        f"SELECT {render(tree, 'spark', as_of='NULL')} AS v FROM VALUES {values} AS t(rating, rated_date)"
    ).collect()[0]["v"]
    on_duck = (
        duckdb.connect()
        .execute(f"SELECT {render(tree, 'duckdb', as_of='NULL')} AS v FROM (VALUES {values}) AS t(rating, rated_date)")
        .fetchone()
    )
    assert on_duck is not None and on_spark == on_duck[0] == latest


def test_a_catalog_filter_with_the_as_of_date_selects_the_same_rows(spark) -> None:
    catalog = load_catalog(REPO / "features" / "catalog.yaml")
    valid = catalog.feature("licenses_valid")
    tree = parse_snippet(valid.filter or "", kind="filter", names={"valid_until", "revoked_date"})
    rows = [
        ("2025-06-30", None),
        ("2024-12-31", None),  # expired the day before the as-of date
        ("2025-01-01", None),  # valid on the as-of date itself
        ("2026-01-01", "2024-12-31"),  # revoked the day before
        ("2026-01-01", "2025-01-01"),  # revoked on the as-of date: still valid before it
    ]
    values = _values(rows)
    as_of = "DATE '2025-01-01'"
    on_spark = spark.sql(
        f"SELECT count(*) AS n FROM VALUES {values} AS t(valid_until, revoked_date) "
        f"WHERE {render(tree, 'spark', as_of=as_of)}"
    ).collect()[0]["n"]
    on_duck = (
        duckdb.connect()
        .execute(
            f"SELECT count(*) FROM (VALUES {values}) AS t(valid_until, revoked_date) WHERE {render(tree, 'duckdb', as_of=as_of)}"
        )
        .fetchone()
    )
    assert on_duck is not None and on_spark == on_duck[0] == 3
