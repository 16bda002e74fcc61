"""Loan outcomes a bank reports on its pre-credit decisions: idempotent per decision and report date."""

from __future__ import annotations

import datetime as dt

from scoring.errors import ApiError
from scoring.serve.schemas import OutcomePublic, OutcomeRequest, OutcomeResponse
from scoring.serve.state import Service
from scoring.serve.stored import visible_decision
from scoring.store import ApiKey, DuplicateEvent, Event, Role, append, events, find_idempotent


def report_outcome(service: Service, key: ApiKey, body: OutcomeRequest) -> OutcomeResponse:
    """Append the report; the same report again is a duplicate, other figures for the same date a 409."""
    stored = visible_decision(service, key, body.decision_id)
    if stored["kind"] != "pre_credit":
        raise ApiError(
            422,
            "not_pre_credit",
            "只能就预授信决定报送贷款结果",
            "outcomes are reported on pre-credit decisions",
            field="decision_id",
        )
    if body.report_date > dt.date.today():
        raise ApiError(422, "future_report", "报送日期晚于今天", "report_date is in the future", field="report_date")
    report = body.model_dump(mode="json")
    idem = f"{body.decision_id}|{body.report_date.isoformat()}"
    event = Event(
        kind="outcome",
        payload={"report": report, "uscc": stored["uscc"]},
        key=key,
        uscc=stored["uscc"],
        ref_id=body.decision_id,
        idem_key=idem,
    )
    try:
        [outcome_id] = append(service.engine, [event])
        duplicate = False
    except DuplicateEvent:
        earlier = find_idempotent(service.engine, idem)
        if earlier is None:  # the unique key held it a moment ago: the log keeps what it holds
            raise
        if earlier["payload"]["report"] != report:
            raise ApiError(
                409,
                "outcome_conflict",
                "该决定在该报送日期已报送了不同的数据",
                f"an outcome for decision {body.decision_id} on {body.report_date} was already reported "
                f"with other figures (outcome {earlier['event_id']})",
            ) from None
        outcome_id, duplicate = earlier["event_id"], True
    return OutcomeResponse(
        outcome_id=outcome_id, decision_id=body.decision_id, report_date=body.report_date, duplicate=duplicate
    )


def list_outcomes(service: Service, key: ApiKey, *, decision_id: str | None, limit: int) -> list[OutcomePublic]:
    """Outcome reports, newest first: a bank sees only its own; a regulator sees all."""
    if decision_id is not None:
        visible_decision(service, key, decision_id)
    rows = events(
        service.engine,
        kinds=["outcome"],
        ref_id=decision_id,
        bank_id=key.bank_id if key.role == Role.BANK else None,
        limit=limit,
    )
    return [
        OutcomePublic(
            outcome_id=r["event_id"],
            decision_id=r["ref_id"],
            bank_id=r["bank_id"],
            created_at=r["created_at"],
            report=r["payload"]["report"],
        )
        for r in rows
    ]
