"""A window reaching before the first month of its source's records gives a missing value, not a
partial count, sum or ratio; the first month is read from the records dated before the as-of date.

A tiny warehouse written by hand: penalties from March 2022, monthly tax returns filed from January
2022, commitments from January 2022 whose outcomes come up to five months later.
"""

import datetime as dt
import math
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from scoring.data.ingest.warehouse import ensure_tables
from scoring.features.build import (
    SNAPSHOT_TABLE,
    build_features,
    source_starts,
    store_snapshot,
    truncated_features,
)
from scoring.features.catalog import Catalog, load_catalog
from scoring.features.online import load_online

REPO = Path(__file__).resolve().parents[2]
A, B = "91320100748204660Q", "91430122707233692A"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(REPO / "features" / "catalog.yaml")


def _months(first: dt.date, n: int) -> list[dt.date]:
    return [(pd.Timestamp(first) + pd.DateOffset(months=k)).date() for k in range(n)]


@pytest.fixture()
def con(tmp_path: Path):
    c = duckdb.connect(str(tmp_path / "w.duckdb"))
    ensure_tables(c)
    c.execute("INSERT INTO meta VALUES ('extract_date', '2025-01-01')")
    for uscc in (A, B):
        c.execute(
            "INSERT INTO enterprises BY NAME SELECT ? AS uscc, 'x' AS name, '企业' AS entity_type, 'C' AS industry, "
            "'320100' AS division, 1e6 AS registered_capital, '小型' AS size_class, '存续' AS status, "
            "DATE '2015-01-01' AS registered_date",
            [uscc],
        )
    penalties = [("p1", A, "2022-03-10"), ("p2", A, "2022-11-02"), ("p3", A, "2023-05-20")]
    for pid, uscc, day in penalties:
        c.execute(
            "INSERT INTO penalties BY NAME SELECT ? AS penalty_id, ? AS uscc, '市场监管' AS domain, '一般' AS severity, "
            "1000.0 AS amount, CAST(? AS DATE) AS decision_date",
            [pid, uscc, day],
        )
    # A's sales double from the first year of returns to the second: 100 a month, then 200
    for k, filed in enumerate(_months(dt.date(2022, 1, 15), 30)):
        c.execute(
            "INSERT INTO tax_monthly BY NAME SELECT ? AS uscc, CAST(? AS DATE) AS period, CAST(? AS DATE) AS filed_date, "
            "? AS declared_sales, 1.0 AS tax_paid, 0.0 AS arrears, 0 AS arrears_days, false AS late_filing",
            [
                A,
                (pd.Timestamp(filed.replace(day=1)) - pd.DateOffset(months=1)).date(),
                filed,
                100.0 if k < 12 else 200.0,
            ],
        )
    # commitments every two months; each outcome five months after it (the longest lag: 5 months)
    for k, day in enumerate(_months(dt.date(2022, 1, 5), 12)[::2]):
        c.execute(
            "INSERT INTO commitments BY NAME SELECT ? AS commitment_id, ? AS uscc, '信用承诺' AS commitment_type, "
            "CAST(? AS DATE) AS commit_date, '违诺' AS outcome, CAST(? AS DATE) AS outcome_date",
            [f"c{k}", B, day, (pd.Timestamp(day) + pd.DateOffset(months=5)).date()],
        )
    yield c
    c.close()


def _row(con, catalog: Catalog, as_of: dt.date, uscc: str = A) -> pd.Series:
    return build_features(con, catalog, as_of=as_of).set_index("uscc").loc[uscc]


def test_a_window_reaching_before_the_first_month_of_its_source_is_missing(con, catalog) -> None:
    early = _row(con, catalog, dt.date(2023, 9, 1))  # 18 months after the first penalty's month
    assert early["penalty_count_12m"] == 2  # [2022-09, 2023-09): the window is inside the data
    assert math.isnan(early["penalty_count_24m"])  # [2021-09, ...): not 3 over part of the window
    assert math.isnan(early["penalty_count_36m"])
    later = _row(con, catalog, dt.date(2024, 3, 1))  # the 24-month window starts in March 2022
    assert later["penalty_count_24m"] == 3 and math.isnan(later["penalty_count_36m"])
    # an enterprise without penalties has 0 once the window is complete, missing before
    assert math.isnan(_row(con, catalog, dt.date(2023, 9, 1), B)["penalty_count_24m"])
    assert _row(con, catalog, dt.date(2024, 3, 1), B)["penalty_count_24m"] == 0


def test_a_year_on_year_growth_needs_the_whole_previous_year(con, catalog) -> None:
    # returns filed from January 2022: at 2023-12-01 last year's window starts in December 2021
    assert math.isnan(_row(con, catalog, dt.date(2023, 12, 1))["tax_sales_yoy"])
    full = _row(con, catalog, dt.date(2024, 1, 1))
    assert full["tax_sales_yoy"] == pytest.approx(1.0)  # 12 x 200 against 12 x 100
    assert full["tax_sales_12m"] == 2400 and full["tax_months_filed_12m"] == 12


def test_the_first_month_is_read_from_the_records(con, catalog) -> None:
    """Not a fixed date: a penalty loaded later but dated in 2021 makes the 24-month window complete."""
    as_of = dt.date(2023, 9, 1)
    con.execute(
        "INSERT INTO penalties BY NAME SELECT 'p0' AS penalty_id, ? AS uscc, '市场监管' AS domain, "
        "'一般' AS severity, 10.0 AS amount, DATE '2021-06-30' AS decision_date",
        [B],
    )
    assert source_starts(con, catalog, as_of_dates=[as_of])[as_of]["penalties"] == dt.date(2021, 6, 1)
    assert _row(con, catalog, as_of)["penalty_count_24m"] == 3
    assert _row(con, catalog, as_of, B)["penalty_count_24m"] == 0  # p0 is before the window


def test_records_dated_on_or_after_the_as_of_date_do_not_move_the_first_month(con, catalog) -> None:
    as_of = dt.date(2022, 3, 1)  # before every penalty
    before = build_features(con, catalog, as_of=as_of)
    assert before["penalty_count_3m"].isna().all()  # no penalty before it: how long the history is, unknown
    con.execute("DELETE FROM penalties")
    con.execute("DELETE FROM commitments WHERE commit_date >= DATE '2022-03-01'")
    after = build_features(con, catalog, as_of=as_of)
    pd.testing.assert_frame_equal(before, after)


def test_a_feature_dated_by_an_outcome_waits_for_the_longest_lag(con, catalog) -> None:
    """Commitments start in January 2022 and their outcomes come five months later: outcomes before June
    2022 would have been of commitments the platform never held."""
    as_of = dt.date(2024, 6, 1)  # 24-month window [2022-06, 2024-06): outcomes complete from June 2022
    starts = source_starts(con, catalog, as_of_dates=[as_of, dt.date(2024, 5, 1)])
    assert starts[as_of]["commitments"] == dt.date(2022, 1, 1)
    assert starts[as_of]["commitments__outcome_date"] == dt.date(2022, 6, 1)
    assert _row(con, catalog, as_of, B)["commitment_violated_24m"] == 6
    assert math.isnan(_row(con, catalog, dt.date(2024, 5, 1), B)["commitment_violated_24m"])
    assert _row(con, catalog, dt.date(2024, 5, 1), B)["commitment_count_24m"] == 4  # dated by the commitment


def test_a_latest_value_is_kept_from_a_shorter_history(con, catalog) -> None:
    con.execute(
        "INSERT INTO tax_ratings BY NAME SELECT ? AS uscc, 2022 AS year, 'B' AS rating, DATE '2023-04-01' AS rated_date",
        [A],
    )
    row = _row(con, catalog, dt.date(2024, 1, 1))  # 24-month window from 2022-01, ratings from 2023-04
    assert row["tax_rating_latest"] == 2  # the latest rating: right whatever came before
    assert math.isnan(row["tax_rating_poor_36m"])  # a count over the window: missing


def test_truncated_features_are_the_ones_missing_for_everyone(con, catalog) -> None:
    for as_of in (dt.date(2023, 9, 1), dt.date(2024, 1, 1), dt.date(2024, 6, 1)):
        snapshot = build_features(con, catalog, as_of=as_of)
        truncated = truncated_features(catalog, source_starts(con, catalog, as_of_dates=[as_of])[as_of], as_of=as_of)
        assert "penalty_count_36m" in truncated and "tax_sales_12m" not in truncated
        for name in truncated:
            assert snapshot[name].isna().all(), (as_of, name)
        # every other feature that needs a full window and has a default has a value
        for f in catalog.features:
            if f.needs_full_window and f.default is not None and f.name not in truncated:
                assert snapshot[f.name].notna().all(), (as_of, f.name)


def test_the_online_table_serves_the_batch_values_missing_windows_included(con, catalog, tmp_path) -> None:
    as_of = dt.date(2023, 9, 1)
    store_snapshot(con, catalog, as_of=as_of)
    batch = build_features(con, catalog, as_of=as_of).set_index("uscc")
    con.close()
    path = tmp_path / "w.duckdb"
    online = load_online(path, catalog, as_of=as_of)
    assert sorted(online.usccs) == sorted(batch.index)
    for uscc in batch.index:
        served = online.values(uscc)
        assert served is not None
        for name in batch.columns.drop("as_of"):
            a, b = served[name], batch.at[uscc, name]
            both_missing = (a is None or (isinstance(a, float) and np.isnan(a))) and pd.isna(b)
            assert both_missing or a == b, (uscc, name, a, b)
        assert math.isnan(served["penalty_count_24m"]) and math.isnan(served["tax_sales_yoy"])
    with duckdb.connect(str(path), read_only=True) as check:
        stored = check.execute(f"SELECT count(*) FROM {SNAPSHOT_TABLE} WHERE penalty_count_24m IS NULL").fetchone()
    assert stored == (2,)
