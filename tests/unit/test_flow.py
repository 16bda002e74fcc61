"""The decision flow called directly, without HTTP: feature row, consent, decide, record, audit."""

from __future__ import annotations

import json

import pytest

from scoring.errors import ApiError
from scoring.serve import flow
from scoring.serve.state import Service
from scoring.serve.stored import replay
from scoring.store import ApiKey, Role, create_key, events, get_decision
from tests.conftest import authorize


@pytest.fixture(scope="module")
def service(served):
    opened = Service.open(served.settings.model_copy(update={"model_poll_seconds": 0}))
    yield opened
    opened.stop()


def _key(service: Service, role: Role, bank: str | None = None) -> ApiKey:
    return create_key(service.engine, role=role, bank_id=bank, label=f"flow {role}")[1]


def test_an_evaluation_is_in_the_audit_log_when_it_is_returned(service) -> None:
    analyst = _key(service, Role.ANALYST)
    uscc = service.ready().online.usccs[5]
    answer = flow.evaluate(service, analyst, uscc)
    stored = get_decision(service.engine, answer.decision_id)
    assert stored is not None and stored["kind"] == "evaluation" and stored["uscc"] == uscc
    ev = stored["payload"]["evaluation"]
    assert (ev["score"], ev["grade"]) == (answer.score, answer.grade)
    # base points plus every feature's points is the score before clipping to the scale
    scale = service.ready().models.evaluation_scorer.config.score
    total = ev["base_points"] + sum(ev["shap_points"].values())
    assert answer.score == pytest.approx(min(max(total, scale.min), scale.max), abs=1)


def test_a_bank_without_consent_is_refused_and_the_refusal_is_audited(service) -> None:
    bank = _key(service, Role.BANK, "BANK_FLOW")
    uscc = service.ready().online.usccs[6]
    before = len(events(service.engine, kinds=["refusal"], limit=10_000))
    with pytest.raises(ApiError) as refused:
        flow.pre_credit(service, bank, uscc, reference=None)
    assert refused.value.status == 403 and refused.value.code == "no_consent"
    assert len(events(service.engine, kinds=["refusal"], limit=10_000)) == before + 1


def test_a_pre_credit_decision_carries_its_consent_and_replays_identically(service) -> None:
    bank = _key(service, Role.BANK, "BANK_FLOW")
    uscc = service.ready().online.usccs[7]
    consent = authorize(service.engine, uscc=uscc, bank_id="BANK_FLOW")
    answer = flow.pre_credit(service, bank, uscc, reference="loan-7")
    assert answer.consent_id == str(consent["consent_id"])
    stored = get_decision(service.engine, answer.decision_id)
    assert stored["payload"]["reference"] == "loan-7"
    assert stored["payload"]["pre_credit"]["pre_credit_limit"] == answer.pre_credit_limit
    again = replay(service, stored)
    assert again.identical and again.differences == []


def test_an_unknown_enterprise_is_404_and_a_bad_check_character_422(service) -> None:
    ready = service.ready()
    with pytest.raises(ApiError) as unknown:
        flow.features_of(ready, "91320100748204660Q")  # a real code, not in the generated county
    assert unknown.value.status == 404 and unknown.value.field == "uscc"
    known = ready.online.usccs[0]
    wrong = known[:-1] + ("0" if known[-1] != "0" else "1")
    with pytest.raises(ApiError) as bad:
        flow.features_of(ready, wrong)
    assert bad.value.status in (404, 422)


def test_one_evaluation_alone_equals_the_same_within_a_batch(service) -> None:
    analyst = _key(service, Role.ANALYST)
    ready = service.ready()
    usccs = list(ready.online.usccs[10:20])
    lines = [
        json.loads(line)
        for chunk in flow.batch(service, ready, analyst, [*usccs, "bad"])
        for line in chunk.splitlines()
    ]
    assert [line["uscc"] for line in lines] == [*usccs, "bad"] and lines[-1]["error"]["code"] == "invalid_uscc"
    for line in lines[:3]:
        alone = flow.evaluate(service, analyst, line["uscc"])
        assert (alone.probability, alone.score, alone.grade) == (line["probability"], line["score"], line["grade"])
        batch_points = get_decision(service.engine, line["decision_id"])["payload"]["evaluation"]["shap_points"]
        alone_points = get_decision(service.engine, alone.decision_id)["payload"]["evaluation"]["shap_points"]
        assert alone_points == batch_points  # bit for bit


def _decided(service: Service, decision_id: str) -> dict:
    """A stored pre-credit decision's numbers and texts: everything but the id, the time and the requester."""
    p = get_decision(service.engine, decision_id)["payload"]
    return {k: p[k] for k in ("inputs", "evaluation", "pre_credit", "disputed_records", "excluded_records")}


def test_pre_credit_requests_decided_together_equal_each_decided_alone(service) -> None:
    bank = _key(service, Role.BANK, "BANK_TOGETHER")
    usccs = list(service.ready().online.usccs[30:70])
    for uscc in usccs[:-1]:  # the last has not authorized this bank
        authorize(service.engine, uscc=uscc, bank_id="BANK_TOGETHER")
    refusals = len(events(service.engine, kinds=["refusal"], limit=10_000))
    asks = [flow.PreCreditAsk(key=bank, uscc=u, reference=f"r{i}") for i, u in enumerate(usccs)]
    asks.insert(3, flow.PreCreditAsk(key=bank, uscc="91320100748204660Q"))  # not in the county
    together = flow.pre_credit_many(service, asks)
    assert len(together) == len(asks)
    assert isinstance(together[3], ApiError) and together[3].status == 404
    assert isinstance(together[-1], ApiError) and together[-1].code == "no_consent"
    assert len(events(service.engine, kinds=["refusal"], limit=10_000)) == refusals + 1  # audited before answered
    decided = [(a, t) for a, t in zip(asks, together, strict=True) if not isinstance(t, Exception)]
    assert len(decided) == len(usccs) - 1
    for ask, answer in decided:
        assert answer.uscc == ask.uscc
        alone = flow.pre_credit(service, bank, ask.uscc, reference=ask.reference)
        assert alone.decision_id != answer.decision_id
        # the answers and the stored decisions, bit for bit (floats compared exactly, SHAP values included)
        assert alone.model_dump(exclude={"decision_id"}) == answer.model_dump(exclude={"decision_id"})
        assert _decided(service, alone.decision_id) == _decided(service, answer.decision_id)
        assert get_decision(service.engine, answer.decision_id)["payload"]["reference"] == ask.reference
