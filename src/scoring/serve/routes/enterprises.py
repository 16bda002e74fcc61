"""The enterprise's side: what the service shows an enterprise about itself (its query log)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from starlette.concurrency import run_in_threadpool

from scoring.serve.deps import EnterpriseReaderKey, ServiceDep
from scoring.serve.refusals import only_itself
from scoring.serve.responses import errors
from scoring.serve.schemas import USCC_PATTERN, QueryLogEntry, QueryLogResponse, uscc_shape
from scoring.store import queries_about

router = APIRouter(tags=["enterprises"])

UsccPath = Annotated[
    str,
    Path(
        description="统一社会信用代码 of the enterprise",
        json_schema_extra={"pattern": USCC_PATTERN, "format": "uscc"},
    ),
]


@router.get("/v1/enterprises/{uscc}/queries", response_model=QueryLogResponse, responses=errors(401, 403, 422, 429))
async def queries(
    uscc: UsccPath,
    key: EnterpriseReaderKey,
    service: ServiceDep,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="the `next_before` of the page before")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> QueryLogResponse:
    """查询记录: every request about the enterprise, newest first: who (role, bank), when, for what purpose,
    under which authorization, answered or refused. The enterprise's own key reads its own log; a
    regulator reads any."""
    code = uscc_shape(uscc)
    await run_in_threadpool(only_itself, service.engine, key, code, f"GET /v1/enterprises/{code}/queries")
    rows = await run_in_threadpool(queries_about, service.engine, code, before=before, limit=limit + 1)
    page = rows[:limit]
    return QueryLogResponse(
        uscc=code,
        entries=[QueryLogEntry(**r) for r in page],
        next_before=page[-1]["cursor"] if len(rows) > limit else None,
    )
