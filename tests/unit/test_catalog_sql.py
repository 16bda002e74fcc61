"""The catalog's SQL snippets: parsed and checked when the catalog loads, printed for each engine."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest
import yaml

from scoring.features.catalog import CatalogError, load_catalog
from scoring.features.sql import SnippetError, columns_of, parse_snippet, render

REPO = Path(__file__).resolve().parents[2]
CATALOG = REPO / "features" / "catalog.yaml"


def test_every_snippet_of_the_catalog_parses_and_names_known_columns() -> None:
    catalog = load_catalog(CATALOG)
    filters = [f for f in catalog.features if f.filter]
    assert len(filters) > 30  # the catalog's filters were all checked, not skipped
    derived = next(f for f in catalog.features if f.name == "distress_months_18m")
    tree = parse_snippet(derived.expression or "", kind="derived", names={f.name for f in catalog.features})
    assert "tax_late_filings_18m" in columns_of(tree)


def _with(tmp_path: Path, name: str, **changes: object) -> Path:
    raw = yaml.safe_load(CATALOG.read_text(encoding="utf-8"))
    entry = next(f for f in raw["features"] if f["name"] == name)
    entry.update(changes)
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("name", "changes", "says"),
    [
        ("tax_late_filings_12m", {"filter": "late_filing AND regexp_matches(period, '1')"}, "function"),
        ("tax_late_filings_12m", {"filter": "late_filing AND uscc IN (SELECT uscc FROM loans)"}, "SUBQUERY"),
        ("tax_late_filings_12m", {"filter": "late_filing; DROP TABLE tax_monthly"}, "2 statements"),
        ("tax_late_filings_12m", {"filter": "sum(arrears) > 0"}, "SUM"),
        ("tax_late_filings_12m", {"filter": "late_fling"}, "unknown column 'late_fling'"),
        ("ent_age_months", {"expression": "date_diff('day', registered_date, AS_OF)"}, "months only"),
        (
            "tax_sales_yoy",
            {"expression": "tax_sales_12m / nullif(tax_sales_yoy_peer_pct, 0)"},
            "neither derived nor peer",
        ),
        ("tax_sales_yoy", {"expression": "tax_sales_12m / nullif(distress_months_12m, 0)"}, "neither derived nor peer"),
        ("utility_paid_ratio_12m", {"expression": "sum(paid) / nullif(sum(sum(billed)), 0)"}, "inside an aggregate"),
    ],
)
def test_a_snippet_outside_the_allow_list_is_a_catalog_error_naming_file_feature_and_construct(
    tmp_path: Path, name: str, changes: dict, says: str
) -> None:
    path = _with(tmp_path, name, **changes)
    with pytest.raises(CatalogError) as err:
        load_catalog(path)
    message = str(err.value)
    assert str(path) in message and f"feature {name!r}" in message and says in message


def test_a_repair_condition_is_checked_too(tmp_path: Path) -> None:
    raw = yaml.safe_load(CATALOG.read_text(encoding="utf-8"))
    raw["sources"]["serious_list"]["repaired_when"] = "exit_reason = '信用修复' OR random() > 0.5"
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(CatalogError, match=r"source 'serious_list': repaired_when: function .*RAND"):
        load_catalog(path)


def test_a_snippet_that_does_not_parse_says_so() -> None:
    with pytest.raises(SnippetError, match="cannot parse"):
        parse_snippet("arrears >", kind="filter", names={"arrears"})


PAIRS = [
    ("2023-12-31", "2024-01-01"),  # one boundary, one day: 1 in DuckDB, 0 whole months in Spark's datediff
    ("2024-01-31", "2024-02-01"),
    ("2024-02-29", "2025-02-28"),
    ("2024-02-29", "2024-03-01"),
    ("2024-03-15", "2024-03-14"),
    ("2020-01-01", "2025-01-01"),
    ("2025-01-01", "2022-06-30"),
]


def test_the_month_difference_means_month_boundaries_on_both_engines() -> None:
    """Spark's rendering of date_diff('month', ...) is built from year() and month(), which mean the same
    on both engines, so DuckDB can evaluate it and must agree with its own date_diff on every pair."""
    tree = parse_snippet("date_diff('month', registered_date, AS_OF)", kind="expression", names={"registered_date"})
    duck, spark = render(tree, "duckdb", as_of="b"), render(tree, "spark", as_of="b")
    assert "DATEDIFF" not in spark.upper() and "YEAR" in spark.upper()
    con = duckdb.connect()
    for a, b in PAIRS:
        row = con.execute(
            f"SELECT {duck}, {spark}, date_diff('month', registered_date, b) "
            f"FROM (SELECT DATE '{a}' AS registered_date, DATE '{b}' AS b)"
        ).fetchone()
        assert row is not None and row[0] == row[1] == row[2], (a, b, row)
    first = dt.date.fromisoformat(PAIRS[0][1]) - dt.date.fromisoformat(PAIRS[0][0])
    assert first.days == 1


def test_the_latest_value_skips_null_values_on_both_engines() -> None:
    tree = parse_snippet("arg_max(rating, rated_date)", kind="expression", names={"rating", "rated_date"})
    spark = render(tree, "spark", as_of="DATE '2025-01-01'")
    # Spark's max_by would take the NULL of the latest row: the rendering orders only rows with a value,
    # by the date and then the value (so that two rows of one date give the greater on both engines)
    assert spark.upper() == "MAX_BY(RATING, CASE WHEN NOT (RATING) IS NULL THEN STRUCT(RATED_DATE, RATING) END)"
    duck = render(tree, "duckdb", as_of="DATE '2025-01-01'")
    con = duckdb.connect()
    for rows, latest in [
        ("VALUES ('B', DATE '2024-01-01'), (NULL, DATE '2024-06-01')", "B"),
        ("VALUES ('B', DATE '2024-01-01'), ('A', DATE '2024-01-01'), ('C', DATE '2023-01-01')", "B"),
    ]:
        assert con.execute(f"SELECT {duck} FROM ({rows}) t(rating, rated_date)").fetchone() == (latest,)


def test_the_as_of_date_is_put_in_as_an_expression() -> None:
    tree = parse_snippet(
        "valid_until >= AS_OF AND revoked_date IS NULL", kind="filter", names={"valid_until", "revoked_date"}
    )
    assert render(tree, "duckdb", as_of="p.as_of") == "valid_until >= (p.as_of) AND revoked_date IS NULL"
    assert render(tree, "spark", as_of="p.as_of") == "valid_until >= (p.as_of) AND revoked_date IS NULL"
