"""Human review (issue 19, item 5): asked for by the enterprise or the bank, decided once by a reviewer with a
reason, audited as its own event, shown with the decision, which never changes (its replay still reproduces it)."""

from __future__ import annotations

import duckdb
import pytest
from fastapi.testclient import TestClient

from scoring.serve.app import create_app
from scoring.store import Purpose, Role, create_key, engine_for, events, verify_chain
from tests.conftest import authorize


@pytest.fixture(scope="module")
def world(served):
    with duckdb.connect(str(served.settings.warehouse_path), read_only=True) as con:
        a, b = (
            r[0]
            for r in con.execute(
                "SELECT uscc FROM feature_snapshots WHERE as_of = (SELECT max(as_of) FROM feature_snapshots) "
                "AND tax_sales_12m > 1500000 ORDER BY uscc LIMIT 2 OFFSET 7"
            ).fetchall()
        )
    engine = engine_for(served.settings.decision_url)

    def key(role: Role, **kw) -> dict[str, str]:
        secret, _ = create_key(engine, role=role, rate_per_minute=100_000, label=f"review tests {role}", **kw)
        return {"Authorization": f"Bearer {secret}"}

    heads = {
        "bank": key(Role.BANK, bank_id="BANK_RV"),
        "other_bank": key(Role.BANK, bank_id="BANK_RW"),
        "a": key(Role.ENTERPRISE, uscc=a),
        "b": key(Role.ENTERPRISE, uscc=b),
        "reviewer": key(Role.REVIEWER),
        "regulator": key(Role.REGULATOR),
        "analyst": key(Role.ANALYST),
    }
    authorize(engine, uscc=a, bank_id="BANK_RV", purpose=Purpose.PRE_CREDIT)
    with TestClient(create_app(served.settings)) as client:
        decided = client.post("/v1/pre-credit", json={"uscc": a}, headers=heads["bank"])
        assert decided.status_code == 200, decided.text
        yield client, heads, decided.json(), engine


def test_the_enterprise_and_the_bank_ask_others_cannot(world) -> None:
    client, heads, decided, _ = world
    path = f"/v1/decisions/{decided['decision_id']}/reviews"
    by_enterprise = client.post(path, json={"reason": "处罚已完成信用修复，评价未反映"}, headers=heads["a"])
    assert by_enterprise.status_code == 201, by_enterprise.text
    assert by_enterprise.json()["status"] == "open" and by_enterprise.json()["requested_by"] == "enterprise"
    by_bank = client.post(path, json={"reason": "客户提交了新的纳税证明"}, headers=heads["bank"])
    assert by_bank.status_code == 201 and by_bank.json()["bank_id"] == "BANK_RV"
    for who in ("other_bank", "b"):  # not theirs: as for a decision that does not exist
        refused = client.post(path, json={"reason": "想看看别人的决定"}, headers=heads[who])
        assert refused.status_code == 404 and refused.json()["error"]["code"] == "unknown_decision", who
    assert client.post(path, json={"reason": "分析人员申请复核"}, headers=heads["analyst"]).status_code == 403
    again = client.post(path, json={"reason": "再提一次同样的申请"}, headers=heads["a"])
    assert again.status_code == 409 and again.json()["error"]["code"] == "review_pending"  # one open at a time
    assert client.post(path, json={"reason": "短"}, headers=heads["a"]).status_code == 422


def test_a_reviewer_concludes_once_with_a_reason_and_the_decision_stays_as_made(world) -> None:
    client, heads, _, engine = world
    decided = client.post("/v1/pre-credit", json={"uscc": world[2]["uscc"]}, headers=heads["bank"]).json()
    path = f"/v1/decisions/{decided['decision_id']}/reviews"
    asked = client.post(path, json={"reason": "请复核：已结清欠税"}, headers=heads["a"]).json()
    queue = client.get("/v1/reviews", headers=heads["reviewer"]).json()
    assert asked["review_id"] in [r["review_id"] for r in queue]
    assert client.get("/v1/reviews", headers=heads["bank"]).status_code == 403
    conclusion = f"/v1/reviews/{asked['review_id']}/conclusion"
    bad = client.post(conclusion, json={"outcome": "overridden", "reason": "没有说改成什么"}, headers=heads["reviewer"])
    assert bad.status_code == 422
    not_reviewer = {"outcome": "confirmed", "reason": "监管人员不作复核结论"}
    assert client.post(conclusion, json=not_reviewer, headers=heads["regulator"]).status_code == 403
    grade = "A" if decided["grade"] != "A" else "B"
    done = client.post(
        conclusion,
        json={"outcome": "overridden", "grade": grade, "reason": "欠税已结清，核实无误"},
        headers=heads["reviewer"],
    )
    assert done.status_code == 201, done.text
    assert (done.json()["status"], done.json()["outcome"], done.json()["grade"]) == ("decided", "overridden", grade)
    again = client.post(
        conclusion, json={"outcome": "confirmed", "reason": "再次复核该申请"}, headers=heads["reviewer"]
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_reviewed"
    assert asked["review_id"] not in [
        r["review_id"] for r in client.get("/v1/reviews", headers=heads["reviewer"]).json()
    ]

    stored = client.get(f"/v1/decisions/{decided['decision_id']}", headers=heads["bank"]).json()
    assert stored["evaluation"]["grade"] == decided["grade"]  # the decision as made
    mine = next(r for r in stored["reviews"] if r["review_id"] == asked["review_id"])
    assert mine["grade"] == grade and mine["decision_reason"] == "欠税已结清，核实无误"
    replay = client.post(f"/v1/decisions/{decided['decision_id']}/replay", headers=heads["regulator"]).json()
    assert replay["identical"] is True, replay["differences"]
    linked = events(engine, kinds=["review_decided"], ref_id=asked["review_id"])
    assert len(linked) == 1 and linked[0]["payload"]["decision_id"] == decided["decision_id"]
    assert verify_chain(engine).intact


def test_an_unknown_review_is_404(world) -> None:
    client, heads, _, _ = world
    answer = client.post(
        "/v1/reviews/01900000-0000-7000-8000-000000000000/conclusion",
        json={"outcome": "confirmed", "reason": "没有这个申请"},
        headers=heads["reviewer"],
    )
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "unknown_review"
