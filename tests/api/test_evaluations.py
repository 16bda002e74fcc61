import duckdb
import pytest

from scoring.serve.app import create_app
from scoring.store import engine_for, get_decision, revoke_key


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def known(served) -> dict:
    """A live enterprise with penalties and one on the serious dishonesty list, from the served snapshot."""
    con = duckdb.connect(str(served.settings.warehouse_path), read_only=True)
    try:
        latest = "as_of = (SELECT max(as_of) FROM feature_snapshots)"
        penalised = con.execute(
            f"SELECT uscc, penalty_count_12m FROM feature_snapshots WHERE {latest} AND penalty_count_12m >= 2 "
            "ORDER BY uscc LIMIT 1"
        ).fetchone()
        listed = con.execute(
            f"SELECT uscc FROM feature_snapshots WHERE {latest} AND serious_list_active = 1 ORDER BY uscc LIMIT 1"
        ).fetchone()[0]
    finally:
        con.close()
    return {"penalised": penalised[0], "penalties": int(penalised[1]), "listed": listed}


def test_needs_a_key(client) -> None:
    r = client.post("/v1/evaluations", json={"uscc": "91320100748204660Q"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "missing_api_key"
    r = client.post("/v1/evaluations", json={"uscc": "91320100748204660Q"}, headers=_auth("sk_wrong"))
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"


@pytest.mark.parametrize(
    ("uscc", "fault"),
    [("91320100748204660", "18"), ("9132010074820466OQ", "'O'"), ("91320100748204660X", "'Q'")],
)
def test_malformed_uscc_is_422_naming_the_fault(client, analyst_key, uscc: str, fault: str) -> None:
    r = client.post("/v1/evaluations", json={"uscc": uscc}, headers=_auth(analyst_key))
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "invalid_uscc" and error["field"] == "uscc"
    assert fault in error["message_en"] and error["message_zh"]


def test_unknown_enterprise_is_404(client, analyst_key) -> None:
    r = client.post("/v1/evaluations", json={"uscc": "91320100748204660Q"}, headers=_auth(analyst_key))
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_enterprise"


def test_extra_fields_and_bad_json_are_422(client, analyst_key, known) -> None:
    r = client.post("/v1/evaluations", json={"uscc": known["penalised"], "grade": "A"}, headers=_auth(analyst_key))
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_field"
    r = client.post(
        "/v1/evaluations", content=b"{not json", headers={**_auth(analyst_key), "Content-Type": "application/json"}
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_json"


def test_explained_evaluation_with_real_values(client, analyst_key, known, served) -> None:
    r = client.post("/v1/evaluations", json={"uscc": known["penalised"]}, headers=_auth(analyst_key))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["grade"] in "ABCD" and 0 <= body["score"] <= 1000 and 0 < body["probability"] < 1
    assert body["model"]["name"] == "credit_evaluation" and body["model"]["alias"] == "champion"
    assert len(body["reasons"]) == 5
    assert all(reason["text_zh"] and reason["label_zh"] for reason in body["reasons"])
    # the top five reasons are the largest contributions in size
    sizes = [abs(reason["points"]) for reason in body["reasons"]]
    assert sizes == sorted(sizes, reverse=True)
    # the decision is stored with its inputs
    stored = get_decision(engine_for(served.settings.decision_url), body["decision_id"])
    assert stored["uscc"] == known["penalised"] and stored["payload"]["evaluation"]["grade"] == body["grade"]
    inputs = {i["feature"]: i["value"] for i in stored["payload"]["inputs"]}
    assert inputs["penalty_count_12m"] == known["penalties"]


def test_penalty_reason_quotes_the_real_count(client, analyst_key, known) -> None:
    from scoring.domain.reasons import render
    from scoring.features.catalog import load_catalog

    catalog = load_catalog(client.app.state.service.settings.catalog_path)
    values = client.app.state.service.online.values(known["penalised"])
    text = render(catalog.feature("penalty_count_12m"), values)
    assert text.startswith(f"近12个月行政处罚{known['penalties']}次")


def test_serious_list_is_d_with_the_override_shown(client, analyst_key, known) -> None:
    body = client.post("/v1/evaluations", json={"uscc": known["listed"]}, headers=_auth(analyst_key)).json()
    assert body["grade"] == "D"
    assert [o["rule"] for o in body["overrides"]] == ["serious_dishonesty_list"]
    assert "严重失信" in body["overrides"][0]["reason_zh"]


def test_a_revoked_key_is_refused(client, served) -> None:
    from scoring.store import Role, create_key

    engine = engine_for(served.settings.decision_url)
    secret, record = create_key(engine, role=Role.REGULATOR)
    assert client.get("/readyz").status_code == 200
    revoke_key(engine, record.key_id)
    r = client.post("/v1/evaluations", json={"uscc": "91320100748204660Q"}, headers=_auth(secret))
    assert r.status_code == 401


def test_a_key_revoked_while_in_use_is_refused_once_the_key_cache_expires(served) -> None:
    """Live keys are remembered for key_cache_seconds; `scoring keys revoke` (another process) takes effect after."""
    import time

    from fastapi.testclient import TestClient

    from scoring.store import Role, create_key

    engine = engine_for(served.settings.decision_url)
    secret, record = create_key(engine, role=Role.REGULATOR)
    with TestClient(create_app(served.settings.model_copy(update={"key_cache_seconds": 0.5}))) as c:
        assert c.get("/v1/models", headers=_auth(secret)).status_code == 200
        revoke_key(engine, record.key_id)
        revoked = time.monotonic()
        codes = []
        while time.monotonic() < revoked + 30 and (not codes or codes[-1] != 401):
            codes.append(c.get("/v1/models", headers=_auth(secret)).status_code)
            time.sleep(0.05)
        # refused once the half second is up (slack for a slow machine, far below a 30 s wait)
        assert codes[-1] == 401 and set(codes) <= {200, 401}
        assert time.monotonic() - revoked < 5
    # with no cache, the very next request is refused
    secret, record = create_key(engine, role=Role.REGULATOR)
    with TestClient(create_app(served.settings.model_copy(update={"key_cache_seconds": 0}))) as c:
        assert c.get("/v1/models", headers=_auth(secret)).status_code == 200
        revoke_key(engine, record.key_id)
        assert c.get("/v1/models", headers=_auth(secret)).status_code == 401


def test_the_key_cache_forgets_a_key_after_its_seconds(monkeypatch) -> None:
    from scoring.serve import auth as deps
    from scoring.store import ApiKey, Role

    now = [1000.0]
    monkeypatch.setattr(deps.time, "monotonic", lambda: now[0])
    cache = deps.KeyCache(5)
    key = ApiKey(key_id="k1", role=Role.ANALYST, bank_id=None, label=None)
    cache.put("sk_secret", key, since=now[0] - 1)  # found live a second ago
    assert cache.get("sk_secret") == key and cache.get("sk_other") is None
    now[0] += 3.9
    assert cache.get("sk_secret") == key
    now[0] += 0.2  # 5.1 s after it was found live
    assert cache.get("sk_secret") is None
    off = deps.KeyCache(0)
    off.put("sk_secret", key, since=now[0])
    assert off.get("sk_secret") is None


def test_not_ready_without_a_model(tmp_path, analyst_key) -> None:
    from fastapi.testclient import TestClient

    from tests.conftest import settings_for

    with TestClient(create_app(settings_for(tmp_path))) as c:
        assert c.get("/healthz").status_code == 200
        ready = c.get("/readyz")
        assert ready.status_code == 503 and ready.json()["problems"]
        from scoring.store import Role, create_key

        secret, _ = create_key(engine_for(settings_for(tmp_path).decision_url), role=Role.ANALYST)
        r = c.post("/v1/evaluations", json={"uscc": "91320100748204660Q"}, headers=_auth(secret))
        assert r.status_code == 503 and r.json()["error"]["code"] == "not_ready"


def test_openapi_documents_the_endpoint(client) -> None:
    spec = client.get("/openapi.json").json()
    assert "/v1/evaluations" in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_a_body_that_is_not_a_json_object_names_the_fault(client, analyst_key) -> None:
    for content, headers in (
        ('{"uscc": "91320100748204660Q"}', {"Content-Type": "text/plain"}),
        ("[1, 2]", {"Content-Type": "application/json"}),
    ):
        r = client.post("/v1/evaluations", content=content, headers={**_auth(analyst_key), **headers})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_body", r.text
        assert "Content-Type: application/json" in r.json()["error"]["message_en"]
