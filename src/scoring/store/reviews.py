"""Human review (人工复核) of a stored decision: asked for with a reason, decided by a reviewer with a reason.

Both are audit events of their own, linked by id: ``review_requested`` (its ``ref_id`` the decision)
and ``review_decided`` (its ``ref_id`` the request, its idempotency key ``review:<request>``, so a
request is decided once, whichever worker two reviewers reach). The decision's own row never changes:
a replay still reproduces it, and what a reviewer confirmed or overrode is read beside it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from scoring.errors import ScoringError
from scoring.store.audit import DuplicateEvent, Event, append
from scoring.store.audit_read import events, get_event
from scoring.store.ids import time_ordered_id
from scoring.store.keys import ApiKey
from scoring.store.tables import audit_log

REQUESTED, DECIDED = "review_requested", "review_decided"


class AlreadyReviewed(ScoringError):
    """The review request was decided already."""

    code = "already_reviewed"
    status = 409
    title_zh = "该复核申请已有复核结论"


def request_review(engine: sa.Engine, key: ApiKey, decision: dict[str, Any], reason: str) -> dict[str, Any]:
    """Append a request to review ``decision`` (a stored decision as read); the request as stored."""
    review_id = time_ordered_id()
    payload = {"decision_id": decision["event_id"], "decision_kind": decision["kind"], "reason": reason}
    append(
        engine,
        [Event(REQUESTED, payload, key=key, uscc=decision["uscc"], event_id=review_id, ref_id=decision["event_id"])],
    )
    stored = get_event(engine, review_id, kinds=[REQUESTED])
    assert stored is not None  # (just appended)
    return stored


def decide_review(engine: sa.Engine, key: ApiKey, request: dict[str, Any], decided: dict[str, Any]) -> dict[str, Any]:
    """Append the reviewer's conclusion on ``request`` (``decided``: outcome, changes, reason); the event stored.

    Raises:
        AlreadyReviewed: the request has a conclusion already.
    """
    payload = {"decision_id": request["payload"]["decision_id"], **decided}
    event = Event(
        DECIDED,
        payload,
        key=key,
        uscc=request["uscc"],
        ref_id=request["event_id"],
        idem_key=f"review:{request['event_id']}",
    )
    try:
        append(engine, [event])
    except DuplicateEvent as exc:
        raise AlreadyReviewed(f"review request {request['event_id']} has been decided already") from exc
    found = events(engine, kinds=[DECIDED], ref_id=request["event_id"], limit=1)
    return found[0]


def reviews_of(engine: sa.Engine, decision_id: str) -> list[dict[str, Any]]:
    """The review requests of a decision, oldest first, each with its conclusion (``decided``, or None)."""
    requests = sorted(events(engine, kinds=[REQUESTED], ref_id=decision_id, limit=1000), key=lambda e: e["seq"])
    return [{**r, "decided": _decided(engine, r["event_id"])} for r in requests]


def reviews_about(engine: sa.Engine, uscc: str, *, limit: int = 100) -> list[dict[str, Any]]:
    """The review requests about an enterprise's decisions, newest first, each with its conclusion."""
    requests = events(engine, kinds=[REQUESTED], uscc=uscc, limit=limit)
    return [{**r, "decided": _decided(engine, r["event_id"])} for r in requests]


def open_reviews(engine: sa.Engine, *, limit: int = 200) -> list[dict[str, Any]]:
    """Review requests without a conclusion, oldest first (the reviewers' queue)."""
    decided = sa.select(audit_log.c.ref_id).where(audit_log.c.kind == DECIDED)
    query = (
        sa.select(audit_log.c.event_id)
        .where(audit_log.c.kind == REQUESTED, audit_log.c.event_id.not_in(decided))
        .order_by(audit_log.c.seq)
        .limit(limit)
    )
    with engine.connect() as con:
        ids = [r[0] for r in con.execute(query)]
    found = [get_event(engine, i, kinds=[REQUESTED]) for i in ids]
    return [f for f in found if f is not None]


def review_request(engine: sa.Engine, review_id: str) -> dict[str, Any] | None:
    """One review request with its conclusion, or None."""
    found = get_event(engine, review_id, kinds=[REQUESTED])
    return None if found is None else {**found, "decided": _decided(engine, review_id)}


def _decided(engine: sa.Engine, review_id: str) -> dict[str, Any] | None:
    found = events(engine, kinds=[DECIDED], ref_id=review_id, limit=1)
    return found[0] if found else None
