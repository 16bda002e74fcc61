"""Loan outcomes: a bank reports what it lent on a pre-credit decision and how the loan performs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from scoring.serve import outcomes as service_outcomes
from scoring.serve.deps import BankKey, DecisionReaderKey, ServiceDep
from scoring.serve.responses import errors
from scoring.serve.schemas import OutcomePublic, OutcomeRequest, OutcomeResponse

router = APIRouter(tags=["outcomes"])


@router.post(
    "/v1/outcomes",
    response_model=OutcomeResponse,
    responses={**errors(400, 401, 403, 404, 409, 413, 422, 429), 201: {"model": OutcomeResponse}},
    status_code=201,
)
def report_outcome(body: OutcomeRequest, key: BankKey, service: ServiceDep, response: Response) -> OutcomeResponse:
    """What the bank lent on one of its pre-credit decisions and how the loan performs, as of a date.

    Idempotent per decision and report date: the same report again answers 200 with
    `duplicate: true`; different figures for the same date are a 409.
    """
    answer = service_outcomes.report_outcome(service, key, body)
    if answer.duplicate:
        response.status_code = 200
    return answer


@router.get("/v1/outcomes", response_model=list[OutcomePublic], responses=errors(401, 403, 404, 429))
def outcomes(
    key: DecisionReaderKey,
    service: ServiceDep,
    decision_id: Annotated[
        str | None, Query(description="only this decision's reports (a UUID)", json_schema_extra={"format": "uuid"})
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[OutcomePublic]:
    """Outcome reports, newest first: a bank sees only its own; a regulator sees all."""
    return service_outcomes.list_outcomes(service, key, decision_id=decision_id, limit=limit)
