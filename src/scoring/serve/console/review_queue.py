"""The reviewers' queue (人工复核) in the console: each open request with the decision it is about, and a
form to confirm or override it with a written reason (the same conclusion as the API's)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from scoring.errors import ScoringError
from scoring.serve import reviews
from scoring.serve.console.session import same_origin, session_of
from scoring.serve.console.views import beijing_time, no_store, page
from scoring.serve.deps import ServiceDep
from scoring.serve.schemas_reviews import ReviewConclusion
from scoring.serve.state import Service
from scoring.store import ApiKey, Role, get_decision, open_reviews

router = APIRouter(prefix="/console", include_in_schema=False)
Reviewer = Annotated[ApiKey, Depends(session_of(Role.REVIEWER))]


def _queue(service: Service) -> list[dict[str, Any]]:
    """The open requests, oldest first, each with what its decision said."""
    out = []
    for r in open_reviews(service.engine):
        decision = get_decision(service.engine, r["payload"]["decision_id"]) or {"payload": {}, "kind": ""}
        p = decision["payload"]
        out.append(
            {
                "review_id": r["event_id"],
                "asked_at": beijing_time(str(r["created_at"])),
                "asked_by": "企业" if r["role"] == "enterprise" else f"银行 {r['bank_id']}",
                "reason": r["payload"]["reason"],
                "decision_id": r["payload"]["decision_id"],
                "kind_zh": "信易贷预授信" if decision["kind"] == "pre_credit" else "公共信用综合评价",
                "uscc": r["uscc"],
                "name": p.get("name", ""),
                "grade": (p.get("evaluation") or {}).get("grade"),
                "score": (p.get("evaluation") or {}).get("score"),
                "limit": (p.get("pre_credit") or {}).get("pre_credit_limit"),
                "reasons": [x["text_zh"] for x in (p.get("evaluation") or {}).get("reasons", [])[:3]],
            }
        )
    return out


@router.get("/reviews", response_class=HTMLResponse)
def queue(request: Request, key: Reviewer, service: ServiceDep, done: str = "", error: str = "") -> HTMLResponse:
    return page(request, "reviews.html", key, queue=_queue(service), done=done, error=error)


@router.post("/reviews/{review_id}", response_class=HTMLResponse)
def conclude(
    request: Request,
    key: Reviewer,
    service: ServiceDep,
    review_id: str,
    outcome: Annotated[str, Form()] = "",
    grade: Annotated[str, Form()] = "",
    limit: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
) -> Response:
    same_origin(request)
    try:
        conclusion = ReviewConclusion.model_validate(
            {
                "outcome": outcome,
                "grade": grade or None,
                "pre_credit_limit": float(limit) if limit.strip() else None,
                "reason": reason.strip(),
            }
        )
        reviews.conclude(service, key, review_id, conclusion)
    except (ValidationError, ValueError) as exc:
        errors = exc.errors() if isinstance(exc, ValidationError) else [{"msg": str(exc)}]
        said = "；".join(str(e["msg"]).removeprefix("Value error, ") for e in errors)
        return page(request, "reviews.html", key, 422, queue=_queue(service), done="", error=said)
    except ScoringError as exc:  # a request decided meanwhile (409) or gone (404)
        return page(
            request, "reviews.html", key, exc.http_status_code(), queue=_queue(service), done="", error=exc.message_zh
        )
    return no_store(RedirectResponse(f"/console/reviews?done={review_id}", status_code=303))
