"""The enterprise's own key (issue 19, item 1): its evaluation and its query log, nothing of any other
enterprise, nothing of a bank's pre-credit decision."""

from __future__ import annotations

import duckdb
import pytest
from fastapi.testclient import TestClient

from scoring.serve.app import create_app
from scoring.store import Purpose, Role, create_key, engine_for, events
from tests.conftest import authorize


@pytest.fixture(scope="module")
def two(served) -> tuple[str, str]:
    """Two enterprises of the served snapshot."""
    with duckdb.connect(str(served.settings.warehouse_path), read_only=True) as con:
        rows = con.execute(
            "SELECT uscc FROM feature_snapshots WHERE as_of = (SELECT max(as_of) FROM feature_snapshots) "
            "AND tax_sales_12m > 1000000 ORDER BY uscc DESC LIMIT 2"
        ).fetchall()
    return rows[0][0], rows[1][0]


@pytest.fixture(scope="module")
def setup(served, two):
    """(client, {name: headers}): the enterprise A's key, a bank authorized by A, a regulator."""
    a, _ = two
    engine = engine_for(served.settings.decision_url)

    def key(role: Role, **kw) -> dict[str, str]:
        secret, _ = create_key(engine, role=role, rate_per_minute=100_000, label=f"enterprise tests {role}", **kw)
        return {"Authorization": f"Bearer {secret}"}

    heads = {
        "a": key(Role.ENTERPRISE, uscc=a),
        "bank": key(Role.BANK, bank_id="BANK_Q"),
        "regulator": key(Role.REGULATOR),
    }
    consent = authorize(engine, uscc=a, bank_id="BANK_Q", purpose=Purpose.PRE_CREDIT)
    with TestClient(create_app(served.settings)) as client:
        yield client, heads, consent


def test_an_enterprise_key_must_name_its_enterprise_and_only_it_does(served) -> None:
    engine = engine_for(served.settings.decision_url)
    with pytest.raises(ValueError, match="--uscc"):
        create_key(engine, role=Role.ENTERPRISE)
    with pytest.raises(ValueError, match="only enterprise keys"):
        create_key(engine, role=Role.ANALYST, uscc="91340100MA2N0X3T4K")


def test_the_enterprise_evaluates_itself_and_no_other(setup, two) -> None:
    client, heads, _ = setup
    a, b = two
    mine = client.post("/v1/evaluations", json={"uscc": a}, headers=heads["a"])
    assert mine.status_code == 200, mine.text
    assert mine.json()["grade"] in "ABCD" and mine.json()["reasons"]
    other = client.post("/v1/evaluations", json={"uscc": b}, headers=heads["a"])
    assert other.status_code == 403 and other.json()["error"]["code"] == "not_own_enterprise"
    assert b not in other.text
    missing = client.post("/v1/evaluations", json={"uscc": "91340100MA2N0X3T4K"}, headers=heads["a"])
    assert (missing.status_code, missing.json()["error"]) == (403, other.json()["error"])  # no probing


def test_no_pre_credit_and_no_decision_of_a_bank_for_the_enterprise(setup, two) -> None:
    client, heads, _ = setup
    a, _ = two
    asked = client.post("/v1/pre-credit", json={"uscc": a}, headers=heads["bank"])
    assert asked.status_code == 200, asked.text
    assert client.post("/v1/pre-credit", json={"uscc": a}, headers=heads["a"]).json()["error"]["code"] == (
        "forbidden_role"
    )
    read = client.get(f"/v1/decisions/{asked.json()['decision_id']}", headers=heads["a"])
    assert read.status_code == 403 and read.json()["error"]["code"] == "forbidden_role"
    assert str(asked.json()["pre_credit_limit"]) not in read.text


def test_the_query_log_says_who_asked_when_for_what_under_which_authorization(setup, two, served) -> None:
    client, heads, consent = setup
    a, b = two
    asked = client.post("/v1/pre-credit", json={"uscc": a}, headers=heads["bank"]).json()
    supervised = client.post("/v1/evaluations", json={"uscc": a}, headers=heads["regulator"]).json()
    log = client.get(f"/v1/enterprises/{a}/queries", headers=heads["a"])
    assert log.status_code == 200, log.text
    entries = {e["event_id"]: e for e in log.json()["entries"]}
    bank = entries[asked["decision_id"]]
    assert (bank["kind"], bank["requester_role"], bank["bank_id"], bank["purpose"], bank["consent_id"]) == (
        "pre_credit",
        "bank",
        "BANK_Q",
        "pre_credit",
        consent["consent_id"],
    )
    assert bank["purpose_zh"] == "信易贷预授信" and bank["answered"] is True
    assert entries[supervised["decision_id"]]["purpose"] == "supervision"
    assert "pre_credit_limit" not in log.text and str(asked["pre_credit_limit"]) not in log.text
    # a request refused is in the log too: which bank tried without an authorization
    client.post("/v1/pre-credit", json={"uscc": b}, headers=heads["bank"])
    theirs = client.get(f"/v1/enterprises/{b}/queries", headers=heads["regulator"]).json()["entries"]
    assert theirs[0]["kind"] == "refusal" and theirs[0]["refusal_code"] == "no_consent"
    assert theirs[0]["bank_id"] == "BANK_Q" and theirs[0]["answered"] is False


def test_the_query_log_pages_newest_first_without_gaps(setup, two) -> None:
    client, heads, _ = setup
    a, _ = two
    for _ in range(3):
        client.post("/v1/evaluations", json={"uscc": a}, headers=heads["regulator"])
    whole = client.get(f"/v1/enterprises/{a}/queries", params={"limit": 200}, headers=heads["a"]).json()["entries"]
    paged, before = [], None
    while True:
        params = {"limit": 2} if before is None else {"limit": 2, "before": before}
        page = client.get(f"/v1/enterprises/{a}/queries", params=params, headers=heads["a"]).json()
        paged += page["entries"]
        before = page["next_before"]
        if before is None:
            break
    assert [e["event_id"] for e in paged] == [e["event_id"] for e in whole] and len(whole) >= 3
    assert [e["cursor"] for e in whole] == sorted((e["cursor"] for e in whole), reverse=True)


def test_another_enterprises_log_is_refused_audited_and_others_may_not_read_logs(setup, two, served) -> None:
    client, heads, _ = setup
    a, b = two
    refused = client.get(f"/v1/enterprises/{b}/queries", headers=heads["a"])
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_own_enterprise"
    assert client.get(f"/v1/enterprises/{a}/queries", headers=heads["bank"]).json()["error"]["code"] == (
        "forbidden_role"
    )
    last = events(engine_for(served.settings.decision_url), kinds=["refusal"], limit=5)
    assert any(e["uscc"] == b and e["payload"]["code"] == "not_own_enterprise" for e in last)


@pytest.fixture(scope="module")
def others(setup, two, served):
    """Another party's objects: a bank's pre-credit decision about B (authorized), its consent and an outcome."""
    client, heads, _ = setup
    _, b = two
    engine = engine_for(served.settings.decision_url)
    consent = authorize(engine, uscc=b, bank_id="BANK_Q", purpose=Purpose.PRE_CREDIT)
    decided = client.post("/v1/pre-credit", json={"uscc": b}, headers=heads["bank"]).json()
    return {"decision": decided["decision_id"], "consent": consent["consent_id"], "uscc": b, "limit": decided}


CALLS = {
    "read the decision": ("GET", "/v1/decisions/{decision}", None, 403, "forbidden_role"),
    "replay it": ("POST", "/v1/decisions/{decision}/replay", None, 403, "forbidden_role"),
    "ask its review": (
        "POST",
        "/v1/decisions/{decision}/reviews",
        {"reason": "想看看别人的决定"},
        404,
        "unknown_decision",
    ),
    "read its outcomes": ("GET", "/v1/outcomes?decision_id={decision}", None, 403, "forbidden_role"),
    "read the consents": ("GET", "/v1/consents?uscc={uscc}", None, 403, "forbidden_role"),
    "revoke the consent": ("POST", "/v1/consents/{consent}/revoke", None, 403, "forbidden_role"),
    "read its query log": ("GET", "/v1/enterprises/{uscc}/queries", None, 403, "not_own_enterprise"),
    "evaluate it": ("POST", "/v1/evaluations", {"uscc": "{uscc}"}, 403, "not_own_enterprise"),
    "ask pre-credit": ("POST", "/v1/pre-credit", {"uscc": "{uscc}"}, 403, "forbidden_role"),
    "read the review queue": ("GET", "/v1/reviews", None, 403, "forbidden_role"),
    "reload the models": ("POST", "/v1/models/reload", None, 403, "forbidden_role"),
}


@pytest.mark.parametrize("what", sorted(CALLS))
def test_an_enterprise_reaches_nothing_of_another_party(setup, others, what) -> None:
    """Every endpoint that takes another party's id, with enterprise A's key: the documented refusal, and
    nothing of the other party (its bank's limit, its consent, its USCC beyond what A sent) in the answer."""
    client, heads, _ = setup
    method, path, body, status, code = CALLS[what]
    fill = {k: v for k, v in others.items() if k != "limit"}
    json_body = {k: v.format(**fill) for k, v in body.items()} if body else None
    sent = path.format(**fill)
    answer = client.request(method, sent, json=json_body, headers=heads["a"])
    assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), answer.text
    said = answer.text.replace(sent.split("?", 1)[0], "")  # what the caller sent may be echoed, nothing else
    assert str(others["limit"]["pre_credit_limit"]) not in said
    assert others["consent"] not in said and others["limit"]["name"] not in said
