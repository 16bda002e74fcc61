"""A feature at as_of reads only records dated before as_of; a repaired penalty stops counting."""

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from scoring.data import schema
from scoring.data.ingest import extract_date_of
from scoring.features.build import build_features
from scoring.features.catalog import load_catalog
from scoring.features.labels import build_labels

REPO = Path(__file__).resolve().parents[2]
AS_OF = dt.date(2024, 7, 1)


@pytest.fixture()
def con(warehouse_copy: Path):
    c = duckdb.connect(str(warehouse_copy))
    yield c
    c.close()


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(REPO / "features" / "catalog.yaml")


def _date_columns(table: schema.Table) -> list[str]:
    return [c.name for c in table.columns if c.dtype == "DATE"]


def _copy_rows_shifted(
    con: duckdb.DuckDBPyConnection,
    table: schema.Table,
    *,
    first_date: dt.date,
    by_record_date: bool = False,
    n: int = 20,
    where: str = "TRUE",
) -> None:
    """Copy n rows of live enterprises so that their earliest date (or their record date) falls on
    first_date; all dates of a row keep their gaps."""
    dates = _date_columns(table)
    least = table.date_column if by_record_date else f"least({', '.join(dates)})"

    def copied(c: schema.Column) -> str:
        if c.name in dates:
            return f"{c.name} + CAST(DATE '{first_date}' - {least} AS INTEGER) AS {c.name}"
        dated_key = any(k in dates for k in table.key)  # shifting the dates already makes a new key
        if c.name in table.key and c.name != "uscc" and not dated_key:  # a new key: the copy is another record
            return f"{c.name} || '-copy' AS {c.name}" if c.dtype == "VARCHAR" else f"{c.name} + 100 AS {c.name}"
        return c.name

    shifted = ", ".join(copied(c) for c in table.columns)
    con.execute(
        f"INSERT INTO {table.name} BY NAME SELECT {shifted} FROM {table.name} "
        f"WHERE {where} AND uscc IN "
        f"(SELECT uscc FROM enterprises WHERE registered_date < DATE '{AS_OF}' - INTERVAL 2 YEAR "
        "AND deregistered_date IS NULL) "
        f"ORDER BY uscc LIMIT {n}"
    )
    if table.name == "tax_monthly":  # the copies must not collide with the real months
        con.execute(
            "UPDATE tax_monthly SET period = period + INTERVAL 40 YEAR WHERE filed_date >= DATE '2024-07-01' "
            "AND period < DATE '2024-06-01'"
        )


@pytest.mark.parametrize("table", schema.RECORD_TABLES)
@pytest.mark.parametrize("days_after", [0, 1, 200])
def test_records_dated_on_or_after_as_of_change_no_feature(con, catalog, table: str, days_after: int) -> None:
    before = build_features(con, catalog, as_of=AS_OF)
    _copy_rows_shifted(con, schema.TABLES[table], first_date=AS_OF + dt.timedelta(days=days_after))
    after = build_features(con, catalog, as_of=AS_OF)
    pd.testing.assert_frame_equal(before, after)


@pytest.mark.parametrize("table", ["penalties", "tax_monthly", "utility_monthly", "serious_dishonesty_list", "loans"])
def test_records_dated_the_day_before_do_change_features(con, catalog, table: str) -> None:
    before = build_features(con, catalog, as_of=AS_OF)
    where = "utility = 'electricity'" if table == "utility_monthly" else "TRUE"  # water usage is no feature
    _copy_rows_shifted(
        con, schema.TABLES[table], first_date=AS_OF - dt.timedelta(days=1), by_record_date=True, where=where
    )
    after = build_features(con, catalog, as_of=AS_OF)
    assert not before.equals(after)


def _one_unrepaired_penalty(con: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    return con.execute(
        f"SELECT penalty_id, uscc FROM penalties WHERE decision_date < DATE '{AS_OF}' "
        f"AND decision_date >= DATE '{AS_OF}' - INTERVAL 6 MONTH AND repair_date IS NULL ORDER BY penalty_id LIMIT 1"
    ).fetchone()


def test_a_repaired_penalty_stops_counting_from_its_repair_date(con, catalog) -> None:
    penalty_id, uscc = _one_unrepaired_penalty(con)
    count = lambda: build_features(con, catalog, as_of=AS_OF).set_index("uscc").loc[uscc, "penalty_count_12m"]  # noqa: E731
    original = count()
    con.execute(f"UPDATE penalties SET repair_date = DATE '{AS_OF}' WHERE penalty_id = ?", [penalty_id])
    assert count() == original  # repaired on the as-of date: not yet known before it
    con.execute(f"UPDATE penalties SET repair_date = DATE '{AS_OF}' - 1 WHERE penalty_id = ?", [penalty_id])
    assert count() == original - 1


def test_labels_read_only_the_outcome_window(con) -> None:
    as_of = dt.date(2023, 7, 1)
    labels = build_labels(con, as_of=as_of).set_index("uscc")
    clean = labels[labels["adverse"] == 0].index[0]
    con.execute(
        "INSERT INTO penalties (penalty_id, uscc, domain, severity, amount, decision_date, publicity_end_date) "
        "VALUES ('T-before', ?, '市场监管', '严重', 1000, DATE '2023-06-30', DATE '2026-06-30')",
        [clean],
    )
    assert build_labels(con, as_of=as_of).set_index("uscc").loc[clean, "adverse"] == 0
    con.execute(
        "INSERT INTO penalties (penalty_id, uscc, domain, severity, amount, decision_date, publicity_end_date) "
        "VALUES ('T-after', ?, '市场监管', '严重', 1000, DATE '2023-07-01', DATE '2026-07-01')",
        [clean],
    )
    assert build_labels(con, as_of=as_of).set_index("uscc").loc[clean, "adverse"] == 1


def test_tax_arrears_that_began_before_the_as_of_date_are_no_new_event(con) -> None:
    as_of = dt.date(2023, 7, 1)
    labels = build_labels(con, as_of=as_of).set_index("uscc")
    filers = {r[0] for r in con.execute("SELECT DISTINCT uscc FROM tax_monthly").fetchall()}
    clean = next(u for u in labels[labels["adverse"] == 0].index if u not in filers)
    insert = (
        "INSERT INTO tax_monthly (uscc, period, filed_date, declared_sales, tax_paid, arrears, arrears_days, late_filing) "
        "VALUES (?, ?, ?, 1000, 0, 500, ?, false)"
    )
    con.execute(insert, [clean, dt.date(2023, 5, 1), dt.date(2023, 6, 12), 95])  # past 90 days before the as-of date
    con.execute(insert, [clean, dt.date(2023, 6, 1), dt.date(2023, 7, 12), 125])  # the same episode goes on
    assert build_labels(con, as_of=as_of).set_index("uscc").loc[clean, "adverse"] == 0
    con.execute(insert, [clean, dt.date(2023, 8, 1), dt.date(2023, 9, 12), 0])
    con.execute(insert, [clean, dt.date(2023, 9, 1), dt.date(2023, 10, 12), 95])  # a new episode in the window
    assert build_labels(con, as_of=as_of).set_index("uscc").loc[clean, "adverse"] == 1


def test_a_stored_snapshot_is_rebuilt_when_the_data_changed(con, catalog) -> None:
    from scoring.features.build import load_snapshot

    first = load_snapshot(con, catalog, as_of=AS_OF).set_index("uscc")
    penalty_id, uscc = _one_unrepaired_penalty(con)
    con.execute("DELETE FROM penalties WHERE penalty_id = ?", [penalty_id])
    again = load_snapshot(con, catalog, as_of=AS_OF).set_index("uscc")
    assert again.loc[uscc, "penalty_count_12m"] == first.loc[uscc, "penalty_count_12m"] - 1


def test_loan_labels_read_twelve_months_from_each_start(con) -> None:
    from scoring.features.labels import build_loan_labels

    uscc = con.execute("SELECT uscc FROM enterprises WHERE registered_date < DATE '2020-01-01' LIMIT 1").fetchone()[0]
    insert = (
        "INSERT INTO loans (loan_id, uscc, bank_id, start_date, term_months, maturity_date, amount, max_dpd, "
        "dpd90_date, settled_date, status) VALUES (?, ?, 'B1', ?, 12, ?, 100000, ?, ?, ?, ?)"
    )
    con.execute(
        insert,
        ["L-late-default", uscc, dt.date(2023, 2, 10), dt.date(2024, 2, 10), 120, dt.date(2024, 3, 1), None, "违约"],
    )  # 90 days past due after the 12 months
    con.execute(
        insert, ["L-default", uscc, dt.date(2023, 2, 15), dt.date(2024, 2, 15), 120, dt.date(2023, 9, 1), None, "违约"]
    )
    con.execute(
        insert, ["L-repaid", uscc, dt.date(2023, 2, 20), dt.date(2024, 2, 20), 0, None, dt.date(2024, 2, 1), "结清"]
    )
    labels = build_loan_labels(con, start_from=dt.date(2023, 2, 1), start_before=dt.date(2023, 3, 1)).set_index(
        "loan_id"
    )
    assert labels.loc["L-late-default", ["default_12m", "repaid"]].tolist() == [0, 0]
    assert pd.isna(labels.loc["L-late-default", "repaid_amount"])
    assert labels.loc["L-default", ["default_12m", "repaid", "repaid_amount"]].tolist() == [1, 0, 0.0]
    assert labels.loc["L-repaid", ["default_12m", "repaid", "repaid_amount"]].tolist() == [0, 1, 100000.0]
    assert (labels["as_of"] == pd.Timestamp("2023-02-01")).all()
    with pytest.raises(Exception, match="outcome windows"):
        late = extract_date_of(con)  # loans started up to the extraction date have no full year of outcome yet
        build_loan_labels(con, start_from=dt.date(late.year - 1, late.month, 1), start_before=late)
