"""The service as banks, analysts, regulators and admins use it: roles, consent, decisions, outcomes."""

import datetime as dt
import json

import duckdb
import pytest
from prometheus_client.parser import text_string_to_metric_families

from scoring.store import Role, create_key, engine_for, verify_chain


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def firms(served) -> dict[str, str]:
    """Live enterprises of the served snapshot: one with tax sales (lendable), one listed, one disputed."""
    con = duckdb.connect(str(served.settings.warehouse_path), read_only=True)
    try:
        latest = "as_of = (SELECT max(as_of) FROM feature_snapshots)"
        lendable = con.execute(
            f"SELECT uscc FROM feature_snapshots WHERE {latest} AND tax_sales_12m > 2000000 AND serious_list_active = 0 "
            "AND executee_list_active = 0 ORDER BY penalty_count_24m, uscc LIMIT 3"
        ).fetchall()
        listed = con.execute(
            f"SELECT uscc FROM feature_snapshots WHERE {latest} AND executee_list_active = 1 ORDER BY uscc LIMIT 1"
        ).fetchone()[0]
    finally:
        con.close()
    return {"lendable": lendable[0][0], "other": lendable[1][0], "third": lendable[2][0], "listed": listed}


def _grant(client, keys, uscc: str, bank: str, purpose: str = "pre_credit", **dates) -> dict:
    today = dt.date.today()
    body = {
        "uscc": uscc,
        "bank_id": bank,
        "purpose": purpose,
        "granted_on": str(dates.get("granted_on", today - dt.timedelta(days=30))),
        "expires_on": str(dates.get("expires_on", today + dt.timedelta(days=335))),
        "evidence": "SQ-test",
    }
    r = client.post("/v1/consents", json=body, headers=_auth(keys.admin))
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture(scope="module")
def consented(client, keys, firms) -> dict:
    """Bank A is authorized for pre-credit on two firms; bank B on the third."""
    return {
        "a1": _grant(client, keys, firms["lendable"], "BANK_A"),
        "a2": _grant(client, keys, firms["listed"], "BANK_A"),
        "b": _grant(client, keys, firms["third"], "BANK_B"),
    }


@pytest.fixture(scope="module")
def decision_a(client, keys, firms, consented) -> dict:
    r = client.post(
        "/v1/pre-credit", json={"uscc": firms["lendable"], "reference": "APP-1"}, headers=_auth(keys.bank_a)
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_pre_credit_gives_limit_decision_reasons_steps_and_versions(decision_a, served, firms) -> None:
    body = decision_a
    assert body["decision"] in ("approve", "refer", "decline") and body["decision_zh"]
    assert body["pre_credit_limit"] >= 0 and body["pre_credit_limit"] % 10000 == 0
    assert body["pre_credit_limit"] == body["policy_steps"][-1]["after"]
    assert [s["step"] for s in body["policy_steps"]][:4] == [
        "amount_model",
        "sales_cap",
        "product_ceiling",
        "grade_factor",
    ]
    assert body["grade"] in "ABCD" and 0 <= body["score"] <= 1000 and 0 < body["default_probability"] < 1
    assert len(body["reasons"]) == 5 and all("违约风险" in r["text_zh"] for r in body["reasons"])
    assert len(body["evaluation_reasons"]) == 5
    assert {m["name"] for m in body["models"]} == {"credit_evaluation", "pre_credit_default", "pre_credit_amount"}
    assert body["policy"] == "pre_credit_policy" and body["consent_id"]


def test_a_listed_enterprise_gets_no_limit(client, keys, firms, consented) -> None:
    body = client.post("/v1/pre-credit", json={"uscc": firms["listed"]}, headers=_auth(keys.bank_a)).json()
    assert body["pre_credit_limit"] == 0 and body["decision"] == "decline"
    assert any(s["step"] == "listed:executee_list_active" for s in body["policy_steps"])


def test_without_consent_a_bank_is_refused_and_the_refusal_is_audited(client, keys, firms, consented, served) -> None:
    # bank B has no authorization for the firm bank A may see
    r = client.post("/v1/pre-credit", json={"uscc": firms["lendable"]}, headers=_auth(keys.bank_b))
    assert r.status_code == 403 and r.json()["error"]["code"] == "no_consent"
    assert "BANK_B" in r.json()["error"]["message_en"] and r.json()["error"]["message_zh"]
    # an evaluation needs an authorization too
    r = client.post("/v1/evaluations", json={"uscc": firms["lendable"]}, headers=_auth(keys.bank_b))
    assert r.status_code == 403
    from scoring.store import events

    refusals = events(engine_for(served.settings.decision_url), kinds=["refusal"], bank_id="BANK_B")
    assert refusals and refusals[0]["payload"]["code"] == "no_consent"


def test_an_expired_or_revoked_consent_does_not_count(client, keys, firms) -> None:
    today = dt.date.today()
    expired = _grant(
        client, keys, firms["other"], "BANK_B", granted_on=today - dt.timedelta(days=400), expires_on=today
    )
    assert expired["expires_on"] == str(today)
    assert client.post("/v1/pre-credit", json={"uscc": firms["other"]}, headers=_auth(keys.bank_b)).status_code == 403
    live = _grant(client, keys, firms["other"], "BANK_B")
    assert client.post("/v1/pre-credit", json={"uscc": firms["other"]}, headers=_auth(keys.bank_b)).status_code == 200
    r = client.post(f"/v1/consents/{live['consent_id']}/revoke", headers=_auth(keys.admin))
    assert r.status_code == 200 and r.json()["revoked_at"]
    assert client.post("/v1/pre-credit", json={"uscc": firms["other"]}, headers=_auth(keys.bank_b)).status_code == 403


def test_roles_may_only_do_their_part(client, keys, firms, decision_a) -> None:
    uscc = {"uscc": firms["lendable"]}
    # analysts and regulators evaluate without consent; admins do not evaluate
    assert client.post("/v1/evaluations", json=uscc, headers=_auth(keys.analyst)).status_code == 200
    assert client.post("/v1/evaluations", json=uscc, headers=_auth(keys.regulator)).status_code == 200
    assert (
        client.post("/v1/evaluations", json=uscc, headers=_auth(keys.admin)).json()["error"]["code"] == "forbidden_role"
    )
    # only banks ask for pre-credit limits or report outcomes
    for key in (keys.analyst, keys.regulator, keys.admin):
        assert client.post("/v1/pre-credit", json=uscc, headers=_auth(key)).status_code == 403
    # regulators change nothing: no consents, no outcomes, no reloads
    assert client.post("/v1/consents", json={}, headers=_auth(keys.regulator)).status_code in (403, 422)
    grant = {
        "uscc": firms["lendable"],
        "bank_id": "X",
        "purpose": "pre_credit",
        "granted_on": "2026-01-01",
        "expires_on": "2027-01-01",
    }
    assert client.post("/v1/consents", json=grant, headers=_auth(keys.regulator)).status_code == 403
    assert client.post("/v1/models/reload", headers=_auth(keys.regulator)).status_code == 403
    # analysts do not read decisions; the batch is theirs alone
    assert client.get(f"/v1/decisions/{decision_a['decision_id']}", headers=_auth(keys.analyst)).status_code == 403
    assert (
        client.post(
            "/v1/batch/evaluations", json={"usccs": [firms["lendable"]]}, headers=_auth(keys.bank_a)
        ).status_code
        == 403
    )
    # every role lists the models
    for key in (keys.analyst, keys.regulator, keys.admin, keys.bank_a):
        assert client.get("/v1/models", headers=_auth(key)).status_code == 200


def test_the_regulator_opens_a_decision_in_full(client, keys, decision_a, served) -> None:
    r = client.get(f"/v1/decisions/{decision_a['decision_id']}", headers=_auth(keys.regulator))
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["kind"] == "pre_credit" and d["requester"]["bank_id"] == "BANK_A" and d["reference"] == "APP-1"
    assert d["consent"]["consent_id"] == decision_a["consent_id"]
    ev = d["evaluation"]
    # every SHAP value and the base add up to the score (before clipping)
    assert len(ev["shap_points"]) == len(served_features(client))
    assert abs(ev["base_points"] + sum(ev["shap_points"].values()) - ev["score"]) < 1.0
    inputs = {i["feature"]: i for i in d["inputs"]}
    assert inputs["tax_sales_12m"]["label_zh"] and inputs["tax_sales_12m"]["value"] > 2000000
    pc = d["pre_credit"]
    assert pc["pre_credit_limit"] == decision_a["pre_credit_limit"] and pc["policy_steps"] == decision_a["policy_steps"]
    assert pc["default_model"]["shap_points"] and pc["amount_model"]["shap_log"] and pc["policy_document"]["version"]
    assert d["excluded_records"] is not None and isinstance(d["disputed_records"], list)
    assert d["audit"]["seq"] > 0 and len(d["audit"]["hash"]) == 64


def served_features(client) -> list[str]:
    return client.app.state.service.models.evaluation.config.features


def test_a_bank_sees_its_own_decisions_and_never_another_banks(client, keys, decision_a) -> None:
    own = client.get(f"/v1/decisions/{decision_a['decision_id']}", headers=_auth(keys.bank_a))
    assert own.status_code == 200 and own.json()["excluded_records"] is None  # repaired records are not published
    other = client.get(f"/v1/decisions/{decision_a['decision_id']}", headers=_auth(keys.bank_b))
    missing = client.get("/v1/decisions/00000000-0000-4000-8000-000000000000", headers=_auth(keys.bank_b))
    # another bank's decision looks exactly like one that does not exist
    assert other.status_code == missing.status_code == 404
    assert other.json()["error"]["code"] == missing.json()["error"]["code"] == "unknown_decision"
    assert client.get("/v1/decisions/not-a-uuid", headers=_auth(keys.bank_a)).status_code == 422


def test_replay_recomputes_the_identical_decision(client, keys, decision_a) -> None:
    r = client.post(f"/v1/decisions/{decision_a['decision_id']}/replay", headers=_auth(keys.regulator))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["identical"] is True and body["differences"] == []
    assert body["recomputed"]["pre_credit_limit"] == decision_a["pre_credit_limit"]
    assert body["recomputed"]["score"] == decision_a["score"]
    assert (
        client.post(f"/v1/decisions/{decision_a['decision_id']}/replay", headers=_auth(keys.bank_a)).status_code == 403
    )


def test_replay_notices_a_changed_input(client, keys, decision_a, served) -> None:
    """A replay is a real recomputation: had the stored inputs been different, it would say so."""
    from scoring.serve.stored import replay as _replay
    from scoring.store import get_decision

    stored = get_decision(engine_for(served.settings.decision_url), decision_a["decision_id"])
    points = stored["payload"]["evaluation"]["shap_points"]
    numeric = [
        i for i in stored["payload"]["inputs"] if isinstance(i["value"], (int, float)) and i["feature"] in points
    ]
    top = max(numeric, key=lambda i: abs(points[i["feature"]]))
    top["value"] = -1e9 if top["value"] > 0 else 1e9  # far across any split on it
    result = _replay(client.app.state.service, stored)
    assert not result.identical and "evaluation.shap_points" in result.differences


def _outcome(decision_id: str, **changes) -> dict:
    body = {
        "decision_id": decision_id,
        "report_date": str(dt.date.today()),
        "loan_id": "L-A-0001",
        "start_date": str(dt.date.today() - dt.timedelta(days=60)),
        "term_months": 12,
        "maturity_date": str(dt.date.today() + dt.timedelta(days=305)),
        "amount": 200000,
        "max_dpd": 0,
        "status": "正常",
    }
    return {**body, **changes}


def test_outcomes_are_idempotent_per_decision_and_date(client, keys, decision_a) -> None:
    first = client.post("/v1/outcomes", json=_outcome(decision_a["decision_id"]), headers=_auth(keys.bank_a))
    assert first.status_code == 201 and first.json()["duplicate"] is False
    again = client.post("/v1/outcomes", json=_outcome(decision_a["decision_id"]), headers=_auth(keys.bank_a))
    assert again.status_code == 200 and again.json() == {**first.json(), "duplicate": True}
    changed = client.post(
        "/v1/outcomes", json=_outcome(decision_a["decision_id"], max_dpd=15), headers=_auth(keys.bank_a)
    )
    assert changed.status_code == 409 and changed.json()["error"]["code"] == "outcome_conflict"
    earlier = _outcome(decision_a["decision_id"], report_date=str(dt.date.today() - dt.timedelta(days=1)))
    assert client.post("/v1/outcomes", json=earlier, headers=_auth(keys.bank_a)).status_code == 201
    listed = client.get(f"/v1/outcomes?decision_id={decision_a['decision_id']}", headers=_auth(keys.bank_a)).json()
    assert len(listed) == 2 and {o["bank_id"] for o in listed} == {"BANK_A"}


def test_a_bank_never_reports_on_or_reads_another_banks_outcomes(client, keys, decision_a) -> None:
    stolen = client.post(
        "/v1/outcomes", json=_outcome(decision_a["decision_id"], loan_id="L-B"), headers=_auth(keys.bank_b)
    )
    assert stolen.status_code == 404
    assert (
        client.get(f"/v1/outcomes?decision_id={decision_a['decision_id']}", headers=_auth(keys.bank_b)).status_code
        == 404
    )
    assert all(o["bank_id"] == "BANK_B" for o in client.get("/v1/outcomes", headers=_auth(keys.bank_b)).json())
    assert len(client.get("/v1/outcomes", headers=_auth(keys.regulator)).json()) >= 2


def test_bad_outcomes_name_the_field(client, keys, decision_a) -> None:
    r = client.post(
        "/v1/outcomes",
        json=_outcome(decision_a["decision_id"], dpd90_date=str(dt.date.today())),
        headers=_auth(keys.bank_a),
    )
    assert r.status_code == 422 and "max_dpd" in r.json()["error"]["message_en"]
    r = client.post("/v1/outcomes", json=_outcome(decision_a["decision_id"], amount=-1), headers=_auth(keys.bank_a))
    assert r.status_code == 422 and r.json()["error"]["field"] == "amount"


def test_reported_outcomes_export_as_a_loans_table_for_retraining(client, keys, decision_a, served) -> None:
    from scoring.data import schema
    from scoring.store import reported_loans

    frame = reported_loans(engine_for(served.settings.decision_url))
    row = frame[frame["loan_id"] == "L-A-0001"].iloc[0]
    assert row["bank_id"] == "BANK_A" and str(row["start_date"]) == _outcome("x")["start_date"]
    assert list(frame.columns) == [c.name for c in schema.TABLES["loans"].columns]


def test_batch_streams_one_line_per_uscc_in_order(client, keys, firms, served) -> None:
    usccs = [firms["lendable"], "91320100748204660", firms["listed"], "91320100748204660Q", firms["other"]]
    with client.stream("POST", "/v1/batch/evaluations", json={"usccs": usccs}, headers=_auth(keys.analyst)) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in r.iter_lines() if line]
    assert [line["uscc"] for line in lines] == usccs
    assert lines[1]["error"]["code"] == "invalid_uscc" and lines[3]["error"]["code"] == "unknown_enterprise"
    assert lines[2]["grade"] in "CD" and lines[0]["reasons"]
    single = client.post("/v1/evaluations", json={"uscc": firms["other"]}, headers=_auth(keys.analyst)).json()
    assert (lines[4]["score"], lines[4]["grade"]) == (single["score"], single["grade"])
    stored = client.get(f"/v1/decisions/{lines[0]['decision_id']}", headers=_auth(keys.regulator))
    assert stored.status_code == 200


def test_batch_takes_at_most_ten_thousand(client, keys, firms) -> None:
    r = client.post("/v1/batch/evaluations", json={"usccs": [firms["lendable"]] * 10_001}, headers=_auth(keys.analyst))
    assert r.status_code == 422 and r.json()["error"]["field"] == "usccs"


def test_a_body_over_the_limit_is_413_declared_or_chunked(client, keys) -> None:
    big = json.dumps({"uscc": "9" * 100_000}).encode()
    r = client.post("/v1/evaluations", content=big, headers={**_auth(keys.analyst), "Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"

    def chunks():  # no Content-Length: sent with Transfer-Encoding: chunked
        for _ in range(20):
            yield b" " * 8192

    r = client.post(
        "/v1/evaluations", content=chunks(), headers={**_auth(keys.analyst), "Content-Type": "application/json"}
    )
    assert r.status_code == 413 and r.json()["error"]["message_zh"]


def test_rate_limit_answers_429_with_retry_after(client, served, firms) -> None:
    secret, _ = create_key(engine_for(served.settings.decision_url), role=Role.ANALYST, rate_per_minute=3)
    codes = [
        client.post("/v1/evaluations", json={"uscc": firms["lendable"]}, headers=_auth(secret)).status_code
        for _ in range(4)
    ]
    assert codes == [200, 200, 200, 429]
    r = client.post("/v1/evaluations", json={"uscc": firms["lendable"]}, headers=_auth(secret))
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1 and r.json()["error"]["code"] == "rate_limited"


def test_models_show_versions_training_window_and_card(client, keys) -> None:
    body = client.get("/v1/models", headers=_auth(keys.bank_a)).json()
    names = {m["name"]: m for m in body["models"]}
    assert set(names) == {"credit_evaluation", "pre_credit_default", "pre_credit_amount"}
    ev = names["credit_evaluation"]
    assert ev["alias"] == "champion" and ev["training_window"]["train_as_of"] and ev["training_window"]["test_as_of"]
    card = client.get(ev["model_card_url"], headers=_auth(keys.bank_a))
    assert card.status_code == 200 and card.headers["content-type"].startswith("text/markdown") and "#" in card.text
    assert body["policy"]["name"] == "pre_credit_policy" and body["registry"]["reachable"] is True


def test_metrics_count_requests_latency_grades_and_versions(client, keys, decision_a) -> None:
    text = client.get("/metrics").text
    assert 'scoring_requests_total{method="POST",route="/v1/pre-credit",status="200"}' in text
    assert 'scoring_request_seconds_bucket{le="0.01",route="/v1/pre-credit"}' in text
    assert (
        f'scoring_decisions_total{{decision="{decision_a["decision"]}",grade="{decision_a["grade"]}",kind="pre_credit"}}'
        in text
    )
    assert 'scoring_model_info{name="credit_evaluation",version="' in text
    assert "scoring_registry_reachable 1.0" in text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    together = {s.name: s.value for s in families["scoring_decided_together"].samples if not s.labels.get("le")}
    answered = sum(
        s.value
        for s in families["scoring_requests"].samples
        if s.name == "scoring_requests_total"
        and s.labels == {"method": "POST", "route": "/v1/pre-credit", "status": "200"}
    )
    assert together["scoring_decided_together_count"] >= 1 and together["scoring_decided_together_sum"] >= answered


def test_errors_have_a_stable_code_and_both_languages(client, keys) -> None:
    for r in (
        client.get("/v1/nowhere", headers=_auth(keys.analyst)),
        client.post("/v1/evaluations", json={"uscc": "X"}, headers=_auth(keys.analyst)),
        client.post("/v1/evaluations", json={"uscc": "91320100748204660Q"}, headers=_auth(keys.analyst)),
        client.post("/v1/evaluations", json={"uscc": "91320100748204660Q"}, headers=_auth(keys.admin)),
    ):
        error = r.json()["error"]
        assert r.status_code >= 400 and error["code"] and error["message_zh"] and error["message_en"]


def test_every_decision_and_refusal_is_in_an_intact_chain(client, keys, decision_a, served) -> None:
    report = verify_chain(engine_for(served.settings.decision_url))
    assert report.intact, report.problems
    assert report.rows > 10


def test_openapi_documents_every_endpoint_with_examples(client) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path, method in [
        ("/v1/pre-credit", "post"),
        ("/v1/evaluations", "post"),
        ("/v1/decisions/{decision_id}", "get"),
        ("/v1/decisions/{decision_id}/replay", "post"),
        ("/v1/outcomes", "post"),
        ("/v1/batch/evaluations", "post"),
        ("/v1/models", "get"),
        ("/v1/consents", "post"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
    ]:
        assert method in paths[path], path
        op = paths[path][method]
        assert op.get("description") or op.get("summary")
    schemas = spec["components"]["schemas"]
    for name in ("PreCreditRequest", "EvaluationRequest", "OutcomeRequest", "BatchEvaluationRequest", "ConsentRequest"):
        assert schemas[name].get("examples"), name
    assert (
        "403" in paths["/v1/pre-credit"]["post"]["responses"] and "429" in paths["/v1/pre-credit"]["post"]["responses"]
    )


def test_answers_keep_to_the_documented_shapes(client, keys, firms) -> None:
    """What schemathesis found before issue 18 (tests/e2e/test_contract.py runs it), each pinned here."""
    consent = _grant(client, keys, firms["third"], "BANK_C")
    created = dt.datetime.fromisoformat(consent["created_at"])
    assert created.utcoffset() == dt.timedelta(0)  # the store gives it back without its zone: said as UTC
    both = client.options("/v1/consents", headers=_auth(keys.admin))
    assert both.status_code == 405 and both.headers["allow"] == "GET, HEAD, POST"  # both routes of the path
    garbled = client.post(
        "/v1/evaluations", content=b"\xff\xfe{", headers={**_auth(keys.bank_a), "Content-Type": "application/json"}
    )
    assert garbled.status_code == 400 and garbled.json()["error"]["code"] == "malformed_body"
    as_number = {"uscc": firms["third"], "bank_id": "BANK_C", "purpose": "pre_credit", "granted_on": 0}
    refused = client.post("/v1/consents", json={**as_number, "expires_on": "2030-01-01"}, headers=_auth(keys.admin))
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "granted_on"
