"""The dependencies endpoints declare: the service, the caller's key, and one alias per set of roles.

Who may do what (DESIGN.md, "Who uses it"): a bank asks for pre-credit limits and evaluations of
enterprises that authorized it, reads its own decisions and reports outcomes; an analyst
evaluates (one or a batch); a regulator reads and replays every decision and changes nothing; an
admin manages consents and model reloads; an enterprise reads about itself (its evaluation, its
query log) and nothing of any other, and asks for a human review of a decision about it, as a bank
may of its own; a reviewer decides reviews. A key of another role gets a 403, audited.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from scoring.errors import ApiError
from scoring.serve.decider import Decider
from scoring.serve.middleware import Metrics
from scoring.serve.refusals import ROLE_ZH, refuse
from scoring.serve.state import Service
from scoring.store import ApiKey, Role, authenticate


async def get_service(request: Request) -> Service:
    # async, like the dependencies below that do no I/O: FastAPI runs a sync dependency on the
    # thread pool, and each hop there cost more than the work it does
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


async def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


MetricsDep = Annotated[Metrics, Depends(get_metrics)]


async def get_decider(request: Request) -> Decider:
    decider: Decider = request.app.state.decider
    return decider


DeciderDep = Annotated[Decider, Depends(get_decider)]

_bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer sk_...`")


async def current_key(
    service: ServiceDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> ApiKey:
    if credentials is None or not credentials.credentials:
        raise ApiError(
            401,
            "missing_api_key",
            "缺少API密钥",
            "missing API key: send Authorization: Bearer <key>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    key = service.keys.get(credentials.credentials)
    if key is None:
        asked = time.monotonic()  # the key was live no later than this: its time in the cache starts here
        key = await run_in_threadpool(authenticate, service.engine, credentials.credentials)
        if key is not None:
            service.keys.put(credentials.credentials, key, since=asked)
    if key is None:
        raise ApiError(
            401,
            "invalid_api_key",
            "API密钥无效或已吊销",
            "invalid or revoked API key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    take_rate(service, key)
    return key


def take_rate(service: Service, key: ApiKey) -> None:
    """One request of ``key``'s rate; a 429 with ``Retry-After`` when its bucket is empty."""
    wait = service.limiter.take(key.key_id, key.rate_per_minute or service.settings.rate_limit_per_minute)
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        raise ApiError(
            429,
            "rate_limited",
            f"请求过于频繁，请{seconds}秒后重试",
            f"too many requests for this key: retry after {seconds} s",
            headers={"Retry-After": str(seconds)},
        )


CurrentKey = Annotated[ApiKey, Depends(current_key)]


def require(*roles: Role) -> Callable[..., Awaitable[ApiKey]]:
    """A dependency that lets only ``roles`` through (a 403, audited, for the others)."""
    allowed = ", ".join(r.value for r in roles)

    async def check(key: CurrentKey, service: ServiceDep, request: Request) -> ApiKey:
        if key.role not in roles:
            raise await run_in_threadpool(
                functools.partial(
                    refuse,
                    service.engine,
                    key,
                    code="forbidden_role",
                    zh=f"{ROLE_ZH[key.role]}密钥无权调用此接口（限{'、'.join(ROLE_ZH[r] for r in roles)}）",
                    en=f"a {key.role.value} key may not call {request.method} {request.url.path} (allowed: {allowed})",
                    uscc=None,
                    what=f"{request.method} {request.url.path}",
                )
            )
        return key

    return check


BankKey = Annotated[ApiKey, Depends(require(Role.BANK))]
EvaluatorKey = Annotated[ApiKey, Depends(require(Role.BANK, Role.ANALYST, Role.REGULATOR, Role.ENTERPRISE))]
DecisionReaderKey = Annotated[ApiKey, Depends(require(Role.BANK, Role.REGULATOR))]
DecisionViewerKey = Annotated[ApiKey, Depends(require(Role.BANK, Role.REGULATOR, Role.REVIEWER))]  # one decision
ReviewAskerKey = Annotated[ApiKey, Depends(require(Role.BANK, Role.ENTERPRISE))]
ReviewQueueKey = Annotated[ApiKey, Depends(require(Role.REVIEWER, Role.REGULATOR))]
ReviewerKey = Annotated[ApiKey, Depends(require(Role.REVIEWER))]
RegulatorKey = Annotated[ApiKey, Depends(require(Role.REGULATOR))]
AnalystKey = Annotated[ApiKey, Depends(require(Role.ANALYST))]
AdminKey = Annotated[ApiKey, Depends(require(Role.ADMIN))]
ConsentReaderKey = Annotated[ApiKey, Depends(require(Role.ADMIN, Role.REGULATOR))]
EnterpriseReaderKey = Annotated[ApiKey, Depends(require(Role.ENTERPRISE, Role.REGULATOR))]
AnyKey = Annotated[ApiKey, Depends(require(Role.BANK, Role.ANALYST, Role.REGULATOR, Role.ADMIN, Role.ENTERPRISE))]

# ids in paths: what the schema says they are (a stored record's id is a UUID; any other text finds nothing: 404)
DecisionIdPath = Annotated[str, Path(description="a decision's id (a UUID)", json_schema_extra={"format": "uuid"})]
ReviewIdPath = Annotated[str, Path(description="a review request's id (a UUID)", json_schema_extra={"format": "uuid"})]
ConsentIdPath = Annotated[str, Path(description="a consent's id (a UUID)", json_schema_extra={"format": "uuid"})]
