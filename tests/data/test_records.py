"""Objections (异议) and repairs (信用修复) change what counts, from their dates on."""

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from scoring.features.build import build_features
from scoring.features.catalog import load_catalog
from scoring.features.records import record_status

REPO = Path(__file__).resolve().parents[2]
EARLY, LATE = dt.date(2023, 9, 10), dt.date(2024, 6, 1)


@pytest.fixture()
def setup(warehouse_copy: Path):
    con = duckdb.connect(str(warehouse_copy))
    uscc = con.execute(
        "SELECT uscc FROM enterprises WHERE registered_date < DATE '2020-01-01' AND deregistered_date IS NULL "
        "AND uscc NOT IN (SELECT uscc FROM penalties) AND uscc NOT IN (SELECT uscc FROM objections) ORDER BY uscc LIMIT 1"
    ).fetchone()[0]
    insert = (
        "INSERT INTO penalties (penalty_id, uscc, domain, severity, amount, decision_date, publicity_end_date, repair_date) "
        "VALUES (?, ?, '市场监管', '一般', 3000, ?, ?, ?)"
    )
    con.execute(insert, ["P-repaired", uscc, dt.date(2023, 3, 1), dt.date(2024, 3, 1), dt.date(2024, 1, 15)])
    con.execute(insert, ["P-deleted", uscc, dt.date(2023, 6, 1), dt.date(2024, 6, 1), None])
    con.execute(insert, ["P-disputed", uscc, dt.date(2024, 2, 1), dt.date(2025, 2, 1), None])
    objection = "INSERT INTO objections (objection_id, uscc, record_table, record_id, raised_date, resolved_date, result) VALUES (?, ?, 'penalties', ?, ?, ?, ?)"
    con.execute(objection, ["O-1", uscc, "P-deleted", dt.date(2023, 9, 1), dt.date(2023, 9, 20), "删除"])
    con.execute(objection, ["O-2", uscc, "P-disputed", dt.date(2024, 5, 1), None, None])
    yield con, uscc
    con.close()


def _status(con, catalog, uscc: str, as_of: dt.date) -> dict[str, tuple[bool, str]]:
    frame = record_status(con, catalog, uscc=uscc, as_of=as_of)
    frame = frame[frame["table"] == "penalties"]
    return {r.record_id: (r.counts, r.status) for r in frame.itertuples()}


def _penalties(con, catalog, uscc: str, as_of: dt.date) -> float:
    # the 12-month count: at EARLY the 24-month window reaches before the county's first penalties (missing)
    return build_features(con, catalog, as_of=as_of).set_index("uscc").loc[uscc, "penalty_count_12m"]


def test_what_counts_as_of_two_dates(setup) -> None:
    con, uscc = setup
    catalog = load_catalog(REPO / "features" / "catalog.yaml")
    assert catalog.disputed_records == "count"
    # early: both earlier penalties count, the one under objection still counts while it is disputed
    assert _status(con, catalog, uscc, EARLY) == {
        "P-repaired": (True, "counts"),
        "P-deleted": (True, "disputed"),
    }
    assert _penalties(con, catalog, uscc, EARLY) == 2
    # late: one repaired, one deleted after its objection, the third disputed but counted
    assert _status(con, catalog, uscc, LATE) == {
        "P-repaired": (False, "repaired"),
        "P-deleted": (False, "deleted_after_objection"),
        "P-disputed": (True, "disputed"),
    }
    assert _penalties(con, catalog, uscc, LATE) == 1


def test_disputed_records_can_be_set_not_to_count(setup) -> None:
    con, uscc = setup
    catalog = load_catalog(REPO / "features" / "catalog.yaml").model_copy(update={"disputed_records": "exclude"})
    assert _status(con, catalog, uscc, LATE)["P-disputed"] == (False, "disputed")
    assert _penalties(con, catalog, uscc, LATE) == 0
    assert _penalties(con, catalog, uscc, EARLY) == 1  # the deleted one was disputed early on


def test_an_enterprise_with_only_monthly_records(warehouse_copy: Path) -> None:
    con = duckdb.connect(str(warehouse_copy), read_only=True)
    uscc = con.execute(
        "SELECT uscc FROM tax_monthly WHERE uscc NOT IN (SELECT uscc FROM penalties UNION SELECT uscc FROM commitments "
        "UNION SELECT uscc FROM admin_actions UNION SELECT uscc FROM licenses UNION SELECT uscc FROM loans "
        "UNION SELECT uscc FROM real_estate UNION SELECT uscc FROM patents UNION SELECT uscc FROM executee_list "
        "UNION SELECT uscc FROM serious_dishonesty_list UNION SELECT uscc FROM hightech_certificates) LIMIT 1"
    ).fetchone()[0]
    frame = record_status(con, load_catalog(REPO / "features" / "catalog.yaml"), uscc=uscc, as_of=LATE)
    assert frame["counts"].dtype == bool and frame["counts"].all()
    assert set(frame["table"]) <= {"tax_monthly", "utility_monthly", "social_insurance_monthly", "housing_fund_monthly"}
