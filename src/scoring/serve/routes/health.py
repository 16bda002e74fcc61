"""Operations: liveness, readiness with its problems, and the Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from scoring.serve.deps import MetricsDep, ServiceDep
from scoring.serve.flow import public
from scoring.serve.schemas import ReadyResponse

router = APIRouter(tags=["ops"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up (it may still have no model: see /readyz)."""
    return {"status": "ok"}


@router.get("/readyz", response_model=ReadyResponse, responses={503: {"model": ReadyResponse}})
def readyz(service: ServiceDep) -> JSONResponse:
    """200 ready, 200 degraded (serving the last good models; the registry is unreachable or refused a
    new champion), or 503 not_ready (no model or no features), with the problems."""
    m = service.models
    rs = service.registry_status
    body = ReadyResponse(
        status=service.status,  # type: ignore[arg-type]
        model=public(m.evaluation) if m else None,
        models=[public(x) for x in m.members()] if m else [],
        features_as_of=service.online.as_of if service.online else None,
        enterprises=len(service.online) if service.online else None,
        stored_outputs=len(service.precomputed.rows) if service.precomputed else 0,
        registry={"reachable": rs.reachable, "checked_at": rs.checked_at, "refused": dict(rs.refused)},
        problems=service.all_problems(),
    )
    return JSONResponse(status_code=200 if service.is_ready else 503, content=body.model_dump(mode="json"))


@router.get("/metrics", response_class=PlainTextResponse)
def prometheus(service: ServiceDep, metrics: MetricsDep) -> Response:
    """Prometheus metrics: requests, latency histogram, decisions by grade, model versions."""
    metrics.registry_up.set(1 if service.registry_status.reachable else 0)
    metrics.objections_overdue.set(len(service.overdue))
    metrics.registry_refused.clear()
    for versions, why in dict(service.registry_status.refused).items():
        metrics.registry_refused.labels(versions, why.split(":", 1)[0]).set(1)
    if service.checkpointer is not None:
        metrics.log_restarts.set(service.checkpointer.restarts)
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
