"""Human review (人工复核): who may ask for one, who decides it, and how a review reads.

The enterprise a decision is about, or the bank that asked for it, may ask; a reviewer (or a
regulator) sees the queue and confirms or overrides with a written reason. The stored decision is
never changed (its replay still reproduces it); its reviews are read beside it.
"""

from __future__ import annotations

from typing import Any

from scoring.errors import ApiError
from scoring.serve.schemas_reviews import ReviewConclusion, ReviewPublic
from scoring.serve.state import Service
from scoring.serve.stored import visible_decision
from scoring.store import ApiKey, decide_review, request_review, review_request, reviews_about, reviews_of

NO_REVIEW = ApiError(404, "unknown_review", "没有该复核申请", "no such review request")


def ask(service: Service, key: ApiKey, decision_id: str, reason: str) -> ReviewPublic:
    """A review request of ``key`` (a bank's or an enterprise's: the route's roles) for the decision; 404
    for a decision it may not see (another bank's, another enterprise's), as for a missing one."""
    decision = visible_decision(service, key, decision_id)
    if any(r["key_id"] == key.key_id and r["decided"] is None for r in reviews_of(service.engine, decision_id)):
        raise ApiError(
            409,
            "review_pending",
            "该决定已有本方提出、尚未办结的复核申请",
            "this key's review request of the decision is still open",
        )
    return public({**request_review(service.engine, key, decision, reason), "decided": None})


def conclude(service: Service, key: ApiKey, review_id: str, conclusion: ReviewConclusion) -> ReviewPublic:
    """The reviewer's conclusion on a request; 409 when it has one already."""
    request = review_request(service.engine, review_id)
    if request is None:
        raise NO_REVIEW
    if conclusion.pre_credit_limit is not None and request["payload"]["decision_kind"] != "pre_credit":
        raise ApiError(
            422,
            "invalid_request",
            "评价决定没有预授信额度可改",
            "an evaluation has no pre-credit limit to override",
            field="pre_credit_limit",
        )
    decided = {**conclusion.model_dump(), "reviewer": key.label or key.key_id}
    return public({**request, "decided": decide_review(service.engine, key, request, decided)})


def public(review: dict[str, Any]) -> ReviewPublic:
    """A request as stored (with ``decided``, its conclusion or None) as the API shows it."""
    decided = review.get("decided")
    said = decided["payload"] if decided else {}
    return ReviewPublic(
        review_id=review["event_id"],
        decision_id=review["payload"]["decision_id"],
        requested_at=review["created_at"],
        requested_by=review["role"],
        bank_id=review["bank_id"],
        reason=review["payload"]["reason"],
        status="decided" if decided else "open",
        decided_at=decided["created_at"] if decided else None,
        outcome=said.get("outcome"),
        grade=said.get("grade"),
        pre_credit_limit=said.get("pre_credit_limit"),
        decision_reason=said.get("reason"),
    )


def of_decision(service: Service, decision_id: str) -> list[ReviewPublic]:
    """The reviews of a decision, oldest first."""
    return [public(r) for r in reviews_of(service.engine, decision_id)]


def about(service: Service, uscc: str) -> list[ReviewPublic]:
    """The review requests about an enterprise's decisions, newest first, with their conclusions."""
    return [public(r) for r in reviews_about(service.engine, uscc)]
