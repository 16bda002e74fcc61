"""The enterprise's own console page (我的信用): its evaluation with the reasons, and its query log.

Signed in with the enterprise's key (``scoring keys create --role enterprise --uscc …``); the page
is about that enterprise and no other. Looking is a request like any: the evaluation it shows is
computed and stored as the API's would be, and is itself in the query log (as 企业自查).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from scoring.errors import ApiError
from scoring.serve import flow
from scoring.serve.console.session import session_of
from scoring.serve.console.views import beijing_time, page
from scoring.serve.deps import ServiceDep
from scoring.store import ApiKey, Role, queries_about

router = APIRouter(prefix="/console", include_in_schema=False)

ROLE_OF_REQUESTER = {
    "bank": "银行",
    "analyst": "分析人员",
    "regulator": "监管部门",
    "admin": "管理员",
    "enterprise": "企业",
}


@router.get("/me", response_class=HTMLResponse)
def me(
    request: Request, key: Annotated[ApiKey, Depends(session_of(Role.ENTERPRISE))], service: ServiceDep
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
    return page(request, "me.html", key, uscc=key.uscc, evaluation=evaluation, unavailable=unavailable, entries=entries)
