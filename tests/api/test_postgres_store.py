"""The whole service with its decision store on a real PostgreSQL server, as in production."""

import datetime as dt

import duckdb
from fastapi.testclient import TestClient

from scoring.serve.app import create_app
from scoring.store import Purpose, Role, create_key, engine_for, metadata, verify_chain
from tests.conftest import authorize


def test_decisions_refusals_outcomes_and_replay_on_postgresql(served, postgres_url) -> None:
    engine = engine_for(postgres_url)
    metadata.drop_all(engine)  # a clean store on the session's server
    engine.dispose()
    engine = engine_for(postgres_url)
    settings = served.settings.model_copy(update={"decision_db_url": postgres_url})
    with duckdb.connect(str(served.settings.warehouse_path), read_only=True) as con:
        uscc, other = (
            r[0]
            for r in con.execute(
                "SELECT uscc FROM feature_snapshots WHERE as_of = (SELECT max(as_of) FROM feature_snapshots) "
                "AND tax_sales_12m > 2000000 ORDER BY uscc LIMIT 2"
            ).fetchall()
        )
    bank, _ = create_key(engine, role=Role.BANK, bank_id="PG_BANK")
    regulator, _ = create_key(engine, role=Role.REGULATOR)
    today = dt.date.today()
    authorize(engine, uscc=uscc, bank_id="PG_BANK", purpose=Purpose.PRE_CREDIT)
    with TestClient(create_app(settings)) as client:
        as_bank, as_regulator = {"Authorization": f"Bearer {bank}"}, {"Authorization": f"Bearer {regulator}"}
        decided = client.post("/v1/pre-credit", json={"uscc": uscc}, headers=as_bank)
        assert decided.status_code == 200, decided.text
        decision_id = decided.json()["decision_id"]
        assert client.post("/v1/pre-credit", json={"uscc": other}, headers=as_bank).status_code == 403
        outcome = {
            "decision_id": decision_id,
            "report_date": str(today),
            "loan_id": "PG-1",
            "start_date": str(today - dt.timedelta(days=10)),
            "term_months": 12,
            "maturity_date": str(today + dt.timedelta(days=355)),
            "amount": 100000,
            "max_dpd": 0,
            "status": "正常",
        }
        assert client.post("/v1/outcomes", json=outcome, headers=as_bank).status_code == 201
        again = client.post("/v1/outcomes", json=outcome, headers=as_bank)
        assert again.status_code == 200 and again.json()["duplicate"] is True
        stored = client.get(f"/v1/decisions/{decision_id}", headers=as_regulator).json()
        assert stored["pre_credit"]["pre_credit_limit"] == decided.json()["pre_credit_limit"]
        replay = client.post(f"/v1/decisions/{decision_id}/replay", headers=as_regulator).json()
        assert replay["identical"] is True, replay["differences"]
        # the console: a session row, and the search over the decision index, on PostgreSQL
        signed = client.post("/console/login", data={"api_key": regulator}, follow_redirects=False)
        assert signed.status_code == 303 and "scoring_console" in signed.cookies
        grade = decided.json()["grade"]
        found = client.get("/console/decisions", params={"q": uscc, "bank": "PG_BANK", "grade": grade})
        assert decision_id in found.text
        other_grade = next(g for g in "ABCD" if g != grade)
        assert decision_id not in client.get("/console/decisions", params={"grade": other_grade}).text
    report = verify_chain(engine)
    # the consent, the decision, the refusal, the outcome (the duplicate appends nothing) and the console sign-in
    assert report.intact and report.rows == 5, report.problems
    engine.dispose()
