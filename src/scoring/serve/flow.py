"""The decision flow the evaluation, pre-credit and batch endpoints share: feature row, consent, decide,
record, audit. Plain functions of the loaded service, callable and testable without HTTP.

A decision is answered only after its audit row is committed: ``evaluate`` and ``pre_credit``
return once :func:`scoring.store.append` has returned.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from scoring.data.uscc import UsccFault, validate
from scoring.domain.decide import (
    PreCreditResult,
    evaluation_record,
    evaluation_results,
    inputs_record,
    model_ref,
    pre_credit_record,
    pre_credit_results,
)
from scoring.domain.models import LoadedModel
from scoring.domain.outputs import Outputs
from scoring.errors import ApiError, ScoringError
from scoring.serve.refusals import no_consent, only_itself
from scoring.serve.schemas import (
    EvaluationResponse,
    ModelPublic,
    PreCreditResponse,
    RecordPublic,
    UsccValueError,
    uscc_shape,
)
from scoring.serve.state import Ready, Service
from scoring.store import (
    ApiKey,
    Event,
    Purpose,
    Role,
    append,
    append_each,
    live_consent,
    live_consents,
    time_ordered_id,
)

BATCH_CHUNK = 500

Records = tuple[list[dict[str, Any]], list[dict[str, Any]]]


def public(model: LoadedModel) -> ModelPublic:
    return ModelPublic(name=model.name, version=model.version, alias=model.alias)


def features_of(ready: Ready, uscc: str) -> tuple[dict[str, Any], list[str]]:
    """The enterprise's feature values (404 when it is not in the population) and warnings."""
    warnings = []
    values = ready.online.values(uscc)
    check = [p for p in validate(uscc) if p.fault == UsccFault.CHECK]
    if check:
        if values is None:
            raise ApiError(422, "invalid_uscc", check[0].message_zh, check[0].message_en, field="uscc")
        warnings.append(f"uscc fails its check character but is registered (early pilot code): {check[0].message}")
    if values is None:
        raise ApiError(
            404,
            "unknown_enterprise",
            "该主体不在当前评价范围内（未登记或已注销）",
            f"enterprise {uscc} is not in the evaluation population as of {ready.as_of}",
            field="uscc",
        )
    return values, warnings


def stored_of(ready: Ready, usccs: list[str]) -> Outputs | None:
    """The models' outputs of these enterprises as `scoring score` stored them, when current for the
    served models and snapshot (serve/precomputed.py); None: compute them."""
    if ready.precomputed is None or not usccs:
        return None
    return ready.precomputed.outputs_of(usccs)


PRE_CREDIT_REQUEST = "POST /v1/pre-credit"  # what a pre-credit refusal says was asked


def consent_for(
    service: Service, key: ApiKey, uscc: str, purposes: tuple[Purpose, ...], what: str
) -> dict[str, Any] | None:
    """The consent a bank's request is made under (None for other roles); a 403, audited, when there is none."""
    if key.role != Role.BANK:
        return None
    today = dt.date.today()
    bank_id = key.bank_id or ""  # a bank key always names its bank; without one nothing is authorized
    consent = live_consent(service.engine, uscc=uscc, bank_id=bank_id, purposes=purposes, on=today)
    if consent is None:
        event, error = no_consent(key, uscc, purposes, today, what)
        append(service.engine, [event])
        raise error
    return _consent_record(consent)


def _consent_record(consent: dict[str, Any]) -> dict[str, Any]:
    """The consent as a decision stores it."""
    return {
        "consent_id": consent["consent_id"],
        "purpose": consent["purpose"],
        "granted_on": str(consent["granted_on"]),
        "expires_on": str(consent["expires_on"]),
        "evidence": consent["evidence"],
    }


def records_of(ready: Ready, uscc: str) -> Records:
    """(disputed, excluded) records of the enterprise on the snapshot's date."""
    rows = ready.exceptions.get(uscc, [])
    return [r for r in rows if r["status"] == "disputed"], [r for r in rows if r["status"] != "disputed"]


@dataclass(frozen=True)
class Asked:
    """Who asked about which enterprise, and what the decision read: the parts of a stored decision's payload."""

    key: ApiKey
    uscc: str
    values: dict[str, Any]
    consent: dict[str, Any] | None
    records: Records
    warnings: list[str]
    reference: str | None = None


def payload(
    ready: Ready, asked: Asked, *, evaluation: dict[str, Any], pre_credit: dict[str, Any] | None
) -> dict[str, Any]:
    """The stored decision: requester, consent, labelled inputs, the decision parts, records and warnings."""
    key, models = asked.key, ready.models
    # the evaluation reads its model's features; a pre-credit decision every served model's and the policy's
    features = models.features() if pre_credit is not None else list(models.evaluation.config.features)
    return {
        "name": str(asked.values.get("name", "")),
        "as_of": str(ready.as_of),
        "requester": {"key_id": key.key_id, "role": key.role.value, "bank_id": key.bank_id, "label": key.label},
        "consent": asked.consent,
        "reference": asked.reference,
        "inputs": inputs_record(features, ready.catalog, asked.values),
        "evaluation": evaluation,
        "pre_credit": pre_credit,
        "disputed_records": asked.records[0],
        "excluded_records": asked.records[1],
        "warnings": asked.warnings,
    }


def record_decision(
    service: Service, ready: Ready, asked: Asked, *, evaluation: dict[str, Any], pre_credit: dict[str, Any] | None
) -> str:
    """Append one decision to the audit log (committed when this returns); its id."""
    decision_id = time_ordered_id()
    kind = "evaluation" if pre_credit is None else "pre_credit"
    stored = payload(ready, asked, evaluation=evaluation, pre_credit=pre_credit)
    append(service.engine, [Event(kind=kind, payload=stored, key=asked.key, uscc=asked.uscc, event_id=decision_id)])
    return decision_id


def _asked(service: Service, ready: Ready, key: ApiKey, uscc: str, purposes: tuple[Purpose, ...], what: str) -> Asked:
    only_itself(service.engine, key, uscc, what)
    values, warnings = features_of(ready, uscc)
    consent = consent_for(service, key, uscc, purposes, what)
    return Asked(key=key, uscc=uscc, values=values, consent=consent, records=records_of(ready, uscc), warnings=warnings)


def evaluate(service: Service, key: ApiKey, uscc: str) -> EvaluationResponse:
    """公共信用综合评价 of one enterprise, stored in the audit log before it is returned.

    A bank needs the enterprise's unexpired authorization for `evaluation` or `pre_credit`; an
    enterprise's key evaluates its own enterprise only.
    """
    ready = service.ready()
    asked = _asked(service, ready, key, uscc, (Purpose.EVALUATION, Purpose.PRE_CREDIT), "POST /v1/evaluations")
    result = evaluation_results(ready.models.evaluation, [asked.values], outputs=stored_of(ready, [uscc]))[0]
    record = evaluation_record(result, ready.catalog, asked.values)
    decision_id = record_decision(service, ready, asked, evaluation=record, pre_credit=None)
    return EvaluationResponse(
        decision_id=decision_id,
        uscc=uscc,
        name=str(asked.values.get("name", "")),
        as_of=ready.as_of,
        probability=round(result.probability, 6),
        score=result.score,
        grade=result.grade,
        grade_label_zh=result.grade_label_zh,
        model_grade=result.model_grade,
        overrides=record["overrides"],
        base_points=round(result.base_points, 1),
        reasons=record["reasons"],
        disputed_records=[RecordPublic(**r) for r in asked.records[0]],
        model=public(ready.models.evaluation),
        warnings=asked.warnings,
    )


@dataclass(frozen=True)
class PreCreditAsk:
    """One bank's request for a pre-credit decision."""

    key: ApiKey
    uscc: str
    reference: str | None = None


def pre_credit(service: Service, key: ApiKey, uscc: str, *, reference: str | None) -> PreCreditResponse:
    """信易贷预授信 for an enterprise that authorized this bank, stored in the audit log before it is returned."""
    (answer,) = pre_credit_many(service, [PreCreditAsk(key=key, uscc=uscc, reference=reference)])
    if isinstance(answer, Exception):
        raise answer
    return answer


def pre_credit_many(service: Service, asks: list[PreCreditAsk]) -> list[PreCreditResponse | Exception]:
    """Requests that arrived together, decided together (:func:`decide_pre_credit`) and stored in
    one audit transaction: per request, in the order asked, its answer or its error. None is
    returned before its audit row is committed."""
    decided = decide_pre_credit(service, asks)
    return decided.answers(append_each(service.engine, decided.groups()))


@dataclass(frozen=True)
class Decided:
    """Requests decided and not yet stored: each request's answer, and the audit event that must be
    committed before it is given (a decision, or a refusal); a request without an event (a 404)
    has nothing to store."""

    settled: list[tuple[PreCreditResponse | ApiError, Event | None]]

    def groups(self) -> list[list[Event]]:
        """The events to append, one group per request that has one."""
        return [[event] for _, event in self.settled if event is not None]

    def answers(self, outcomes: list[list[str] | Exception]) -> list[PreCreditResponse | Exception]:
        """Each request's answer, given what :func:`scoring.store.append_each` did with the groups:
        the answer where its event is committed, else the fault that kept it out."""
        told = iter(outcomes)
        out: list[PreCreditResponse | Exception] = []
        for answer, event in self.settled:
            outcome = next(told) if event is not None else None
            out.append(outcome if isinstance(outcome, Exception) else answer)
        return out


def decide_pre_credit(service: Service, asks: list[PreCreditAsk]) -> Decided:
    """Requests that arrived together, decided together: one consent query and one TreeSHAP pass per
    model for all of them; per request its answer (a decision, a 404, or a 403 refusal) and its
    audit event. A request's decision is the one it would get alone, bit for bit.

    Raises:
        ApiError: 503 for all of them, when no model, no snapshot or no pre-credit champion is loaded.
    """
    ready = service.ready()
    if not ready.models.pre_credit_ready:
        raise ApiError(
            503,
            "no_pre_credit_model",
            "预授信模型尚未加载",
            "no pre-credit champions loaded (pre_credit_default, pre_credit_amount)",
        )
    today = dt.date.today()
    pairs = [(a.uscc, a.key.bank_id or "") for a in asks]  # a bank key names its bank; without one, no consent
    consents = live_consents(service.engine, pairs, purposes=(Purpose.PRE_CREDIT,), on=today)
    settled: list[tuple[PreCreditResponse | ApiError, Event | None] | None] = [None] * len(asks)
    todo: list[tuple[int, Asked]] = []
    for i, (ask, pair) in enumerate(zip(asks, pairs, strict=True)):
        try:
            values, warnings = features_of(ready, ask.uscc)
        except ApiError as exc:
            settled[i] = (exc, None)
            continue
        consent = consents.get(pair)
        if consent is None or ask.key.role != Role.BANK:
            event, refusal = no_consent(ask.key, ask.uscc, (Purpose.PRE_CREDIT,), today, PRE_CREDIT_REQUEST)
            settled[i] = (refusal, event)
            continue
        records = records_of(ready, ask.uscc)
        todo.append((i, Asked(ask.key, ask.uscc, values, _consent_record(consent), records, warnings, ask.reference)))
    results = pre_credit_results(
        ready.models, [a.values for _, a in todo], outputs=stored_of(ready, [a.uscc for _, a in todo])
    )
    for (i, asked), result in zip(todo, results, strict=True):
        event, answer = _pre_credit_decision(ready, asked, result, time_ordered_id())
        settled[i] = (answer, event)
    return Decided(settled=[s for s in settled if s is not None])


def _pre_credit_decision(
    ready: Ready, asked: Asked, result: PreCreditResult, decision_id: str
) -> tuple[Event, PreCreditResponse]:
    """One decided request: its audit event (the stored decision) and its answer."""
    evaluation = evaluation_record(result.evaluation, ready.catalog, asked.values)
    record = pre_credit_record(result, ready.catalog, asked.values)
    body = payload(ready, asked, evaluation=evaluation, pre_credit=record)
    event = Event(kind="pre_credit", payload=body, key=asked.key, uscc=asked.uscc, event_id=decision_id)
    assert asked.consent is not None
    answer = PreCreditResponse(
        decision_id=decision_id,
        uscc=asked.uscc,
        name=body["name"],
        as_of=ready.as_of,
        pre_credit_limit=record["pre_credit_limit"],
        decision=record["decision"],
        decision_zh=record["decision_zh"],
        grade=result.evaluation.grade,
        grade_label_zh=result.evaluation.grade_label_zh,
        score=result.evaluation.score,
        probability=round(result.evaluation.probability, 6),
        default_probability=round(result.default_probability, 6),
        reasons=record["reasons"],
        evaluation_reasons=evaluation["reasons"],
        policy=record["policy"]["name"],
        policy_version=record["policy"]["version"],
        policy_steps=record["policy_steps"],
        disputed_records=[RecordPublic(**r) for r in asked.records[0]],
        models=[public(m) for m in ready.models.members()],
        consent_id=str(asked.consent["consent_id"]),
        warnings=asked.warnings,
    )
    return event, answer


def batch(service: Service, ready: Ready, key: ApiKey, usccs: list[str]) -> Iterator[bytes]:
    """Evaluate in chunks, store each chunk in one transaction, and yield JSON lines as they are ready."""
    for start in range(0, len(usccs), BATCH_CHUNK):
        lines = _batch_chunk(service, ready, key, usccs[start : start + BATCH_CHUNK], start)
        yield b"".join(json.dumps(line, ensure_ascii=False, default=str).encode() + b"\n" for line in lines)


def _batch_chunk(service: Service, ready: Ready, key: ApiKey, usccs: list[str], start: int) -> list[dict[str, Any]]:
    """One chunk's answer lines in the order asked; its evaluations appended in one transaction."""
    lines: list[tuple[int, dict[str, Any]]] = []
    todo: list[tuple[int, Asked]] = []
    for i, raw in enumerate(usccs, start=start):
        try:
            uscc = uscc_shape(raw)
            values, warnings = features_of(ready, uscc)
        except (UsccValueError, ApiError) as exc:
            code = "invalid_uscc" if isinstance(exc, UsccValueError) else exc.code
            lines.append((i, {"uscc": raw, "error": _error_line(exc, code)}))
            continue
        asked = Asked(
            key=key, uscc=uscc, values=values, consent=None, records=records_of(ready, uscc), warnings=warnings
        )
        todo.append((i, asked))
    results = evaluation_results(
        ready.models.evaluation, [a.values for _, a in todo], outputs=stored_of(ready, [a.uscc for _, a in todo])
    )
    stored = []
    for (i, asked), result in zip(todo, results, strict=True):
        record = evaluation_record(result, ready.catalog, asked.values)
        decision_id = time_ordered_id()
        body = payload(ready, asked, evaluation=record, pre_credit=None)
        stored.append(Event(kind="evaluation", payload=body, key=key, uscc=asked.uscc, event_id=decision_id))
        line = {
            "decision_id": decision_id,
            "uscc": asked.uscc,
            "name": body["name"],
            "as_of": body["as_of"],
            "probability": round(result.probability, 6),
            "score": result.score,
            "grade": result.grade,
            "model_grade": result.model_grade,
            "overrides": record["overrides"],
            "reasons": record["reasons"],
            "disputed_records": asked.records[0],
            "model": model_ref(ready.models.evaluation),
            "warnings": asked.warnings,
        }
        lines.append((i, line))
    if stored:
        append(service.engine, stored)
    lines.sort(key=lambda t: t[0])
    return [line for _, line in lines]


def _error_line(exc: ScoringError, code: str) -> dict[str, str]:
    if isinstance(exc, UsccValueError):
        return {"code": code, "message_zh": exc.problem.message_zh, "message_en": exc.problem.message_en}
    return {"code": code, "message_zh": exc.message_zh, "message_en": exc.message_en}
