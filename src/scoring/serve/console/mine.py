"""The enterprise's own console page (我的信用): its evaluation with the reasons, its query log, and its
requests for a human review (人工复核) of a decision about it, with their conclusions.

Signed in with the enterprise's key (``scoring keys create --role enterprise --uscc …``); the page
is about that enterprise and no other. Looking is a request like any: the evaluation it shows is
computed and stored as the API's would be, and is itself in the query log (as 企业自查).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from scoring.errors import ApiError, ScoringError
from scoring.serve import flow, reviews
from scoring.serve.console.session import same_origin, session_of
from scoring.serve.console.views import BEIJING, beijing_time, no_store, page
from scoring.serve.deps import ServiceDep
from scoring.serve.schemas_reviews import ReviewAsk
from scoring.serve.state import Service
from scoring.store import ApiKey, Role, queries_about

router = APIRouter(prefix="/console", include_in_schema=False)

ROLE_OF_REQUESTER = {
    "bank": "银行",
    "analyst": "分析人员",
    "regulator": "监管部门",
    "admin": "管理员",
    "enterprise": "企业",
}


Enterprise = Annotated[ApiKey, Depends(session_of(Role.ENTERPRISE))]


@router.get("/me", response_class=HTMLResponse)
def me(request: Request, key: Enterprise, service: ServiceDep, asked: str = "") -> HTMLResponse:
    return _page(request, key, service, asked=asked)


@router.post("/me/reviews", response_class=HTMLResponse)
def ask_review(
    request: Request,
    key: Enterprise,
    service: ServiceDep,
    decision_id: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
) -> Response:
    """The enterprise asks for a human review of a decision about it (the API's request, from the page)."""
    same_origin(request)
    try:
        ask = ReviewAsk(reason=reason.strip())
        review = reviews.ask(service, key, decision_id.strip(), ask.reason)
    except ValidationError:
        return _page(request, key, service, status=422, error="请写明申请复核的理由（至少5个字）。")
    except ScoringError as exc:  # not a decision about it (404), one already open (409)
        return _page(request, key, service, status=exc.http_status_code(), error=exc.message_zh)
    return no_store(RedirectResponse(f"/console/me?asked={review.review_id}", status_code=303))


def _page(
    request: Request, key: ApiKey, service: Service, *, status: int = 200, asked: str = "", error: str = ""
) -> HTMLResponse:
    assert key.uscc is not None  # an enterprise key always names its enterprise (keys.create_key)
    try:
        evaluation = flow.evaluate(service, key, key.uscc)
        unavailable = None
    except ApiError as exc:  # not in the population, no model or snapshot yet: said on the page
        evaluation, unavailable = None, exc.message_zh
    entries = [
        {**e, "at": beijing_time(e["at"]), "who": ROLE_OF_REQUESTER.get(e["requester_role"], e["requester_role"])}
        for e in queries_about(service.engine, key.uscc, limit=100)
    ]
    mine = [
        {**r.model_dump(), "requested_at": r.requested_at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")}
        for r in reviews.about(service, key.uscc)
    ]
    return page(
        request,
        "me.html",
        key,
        status,
        uscc=key.uscc,
        evaluation=evaluation,
        unavailable=unavailable,
        entries=entries,
        reviews=mine,
        asked=asked,
        error=error,
    )
