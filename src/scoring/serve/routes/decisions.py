"""Stored decisions: read one in full, and replay it with the versions and policy it used."""

from __future__ import annotations

from fastapi import APIRouter

from scoring.serve import reviews, stored
from scoring.serve.deps import DecisionIdPath, DecisionViewerKey, RegulatorKey, ServiceDep
from scoring.serve.responses import errors
from scoring.serve.schemas import DecisionResponse, ReplayResponse

router = APIRouter(tags=["decisions"])


@router.get(
    "/v1/decisions/{decision_id}",
    response_model=DecisionResponse,
    response_model_exclude_none=False,
    responses=errors(401, 403, 404, 429),
)
def decision(decision_id: DecisionIdPath, key: DecisionViewerKey, service: ServiceDep) -> DecisionResponse:
    """A stored decision in full: inputs, every SHAP value, reasons, policy steps, model versions,
    requester, consent, excluded and disputed records, and its human reviews. A bank sees only its own
    decisions."""
    found = stored.visible_decision(service, key, decision_id)
    return stored.decision_response(found, key, reviews.of_decision(service, decision_id))


@router.post(
    "/v1/decisions/{decision_id}/replay", response_model=ReplayResponse, responses=errors(401, 403, 404, 429, 503)
)
def replay(decision_id: DecisionIdPath, key: RegulatorKey, service: ServiceDep) -> ReplayResponse:
    """Recompute a stored decision from its stored inputs with the model versions and policy it used,
    and say whether the result is identical (changes nothing)."""
    return stored.replay(service, stored.visible_decision(service, key, decision_id))
