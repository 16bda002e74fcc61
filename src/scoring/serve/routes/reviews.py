"""Human review (人工复核): asked for on a decision, queued for reviewers, concluded with a written reason."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from scoring.serve import reviews
from scoring.serve.deps import DecisionIdPath, ReviewAskerKey, ReviewerKey, ReviewIdPath, ReviewQueueKey, ServiceDep
from scoring.serve.responses import errors
from scoring.serve.schemas_reviews import ReviewAsk, ReviewConclusion, ReviewPublic
from scoring.store import open_reviews

router = APIRouter(tags=["reviews"])


@router.post(
    "/v1/decisions/{decision_id}/reviews",
    response_model=ReviewPublic,
    status_code=201,
    responses=errors(400, 401, 403, 404, 413, 422, 429),
)
async def ask_review(
    decision_id: DecisionIdPath, body: ReviewAsk, key: ReviewAskerKey, service: ServiceDep
) -> ReviewPublic:
    """Ask for a human review of a decision, with the reason: the enterprise it is about, or the bank
    that asked for it. The decision itself never changes; the review is read beside it."""
    return await run_in_threadpool(reviews.ask, service, key, decision_id, body.reason)


@router.get("/v1/reviews", response_model=list[ReviewPublic], responses=errors(401, 403, 429))
async def queue(key: ReviewQueueKey, service: ServiceDep) -> list[ReviewPublic]:
    """The reviewers' queue: review requests without a conclusion, oldest first (up to 200)."""
    found = await run_in_threadpool(open_reviews, service.engine)
    return [reviews.public({**r, "decided": None}) for r in found]


@router.post(
    "/v1/reviews/{review_id}/conclusion",
    response_model=ReviewPublic,
    status_code=201,
    responses=errors(400, 401, 403, 404, 409, 413, 422, 429),
)
async def conclude(
    review_id: ReviewIdPath, body: ReviewConclusion, key: ReviewerKey, service: ServiceDep
) -> ReviewPublic:
    """A reviewer confirms the decision or overrides its grade or limit, with a written reason (once per
    request: 409 `already_reviewed` after). Audited as its own event, linked to the request."""
    return await run_in_threadpool(reviews.conclude, service, key, review_id, body)
