"""The FastAPI application: ``create_app`` builds it; uvicorn serves it (``--factory``)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from scoring import __version__
from scoring.data.uscc import UsccFault, validate
from scoring.explain.reasons import explain
from scoring.serve.deps import ApiError, CurrentKey, ServiceDep, ServiceState
from scoring.serve.schemas import (
    ErrorResponse,
    EvaluationRequest,
    EvaluationResponse,
    ModelPublic,
    OverridePublic,
    ReadyResponse,
    ReasonPublic,
    UsccValueError,
)
from scoring.serve.store import record_decision
from scoring.settings import Settings

log = logging.getLogger(__name__)

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "missing or invalid API key"},
    404: {"model": ErrorResponse, "description": "enterprise not in the current evaluation population"},
    413: {"model": ErrorResponse, "description": "request body too large"},
    422: {"model": ErrorResponse, "description": "malformed request (the field and fault are named)"},
    503: {"model": ErrorResponse, "description": "no model or no feature snapshot loaded"},
}


def _error(exc: ApiError) -> JSONResponse:
    body = {"error": {"code": exc.code, "message_zh": exc.message_zh, "message_en": exc.message_en, "field": exc.field}}
    return JSONResponse(status_code=exc.status, content=body, headers=exc.headers)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the champion model and the latest features are loaded at start-up."""
    state = ServiceState(settings or Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.load()
        yield
        if state.engine is not None:
            state.engine.dispose()

    app = FastAPI(
        title="信用评价与信易贷预授信服务 (credit evaluation and pre-credit service)",
        version=__version__,
        description="公共信用综合评价 with explanations for banks, analysts and regulators.",
        lifespan=lifespan,
    )
    app.state.service = state

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first: dict[str, Any] = dict(exc.errors()[0]) if exc.errors() else {"loc": (), "msg": "invalid request"}
        loc = [str(p) for p in first.get("loc", ()) if p != "body"]
        field = ".".join(loc) or None
        kind = first.get("type")
        ctx = first.get("ctx") or {}
        problem = ctx.get("error")
        if isinstance(problem, UsccValueError):
            zh, en, code = problem.problem.message_zh, problem.problem.message_en, "invalid_uscc"
        elif kind == "extra_forbidden":
            zh, en, code = f"不允许的字段'{field}'", f"unknown field {field!r}", "unknown_field"
        elif kind == "missing":
            zh, en, code = f"缺少必填字段'{field}'", f"field {field!r} is required", "missing_field"
        elif kind == "json_invalid":
            zh, en, code, field = "请求体不是合法的JSON", "the body is not valid JSON", "invalid_json", None
        else:
            msg = str(first.get("msg", ""))
            zh, en, code = f"字段'{field}'不合法：{msg}", f"invalid field {field!r}: {msg}", "invalid_request"
        return _error(ApiError(422, code, zh, en, field=field))

    @app.middleware("http")
    async def _limit_body(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > state.settings.max_body_bytes:
            return _error(
                ApiError(
                    413, "body_too_large", "请求体过大", f"request body over {state.settings.max_body_bytes} bytes"
                )
            )
        return await call_next(request)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        """The process is up (it may still have no model: see /readyz)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], response_model=ReadyResponse, responses={503: {"model": ReadyResponse}})
    def readyz(service: ServiceDep) -> JSONResponse:
        """200 once a model and a feature snapshot are loaded, else 503 with the problems."""
        body = ReadyResponse(
            status="ready" if service.ready else "not_ready",
            model=_model_public(service) if service.model else None,
            features_as_of=service.online.as_of if service.online else None,
            enterprises=len(service.online) if service.online else None,
            problems=service.problems,
        )
        return JSONResponse(status_code=200 if service.ready else 503, content=body.model_dump(mode="json"))

    @app.post("/v1/evaluations", response_model=EvaluationResponse, tags=["evaluation"], responses=ERRORS)
    def evaluate(body: EvaluationRequest, key: CurrentKey, service: ServiceDep) -> EvaluationResponse:
        """公共信用综合评价 of one enterprise: probability, score, grade and the reasons behind them."""
        if not service.ready:
            raise ApiError(
                503,
                "not_ready",
                "服务尚未加载模型或特征",
                "no model or feature snapshot loaded: " + "; ".join(service.problems),
            )
        assert service.model is not None and service.online is not None and service.catalog is not None
        warnings = []
        values = service.online.values(body.uscc)
        check = [p for p in validate(body.uscc) if p.fault == UsccFault.CHECK]
        if check:
            if values is None:
                raise ApiError(422, "invalid_uscc", check[0].message_zh, check[0].message_en, field="uscc")
            warnings.append(f"uscc fails its check character but is registered (early pilot code): {check[0].message}")
        if values is None:
            raise ApiError(
                404,
                "unknown_enterprise",
                "该主体不在当前评价范围内（未登记或已注销）",
                f"enterprise {body.uscc} is not in the evaluation population as of {service.online.as_of}",
                field="uscc",
            )
        response = _evaluate(service, body.uscc, values, warnings)
        inputs = {name: values.get(name) for name in service.model.config.features}
        assert service.engine is not None
        record_decision(
            service.engine, kind="evaluation", key=key, response=response.model_dump(mode="json"), inputs=inputs
        )
        return response

    return app


def _model_public(service: ServiceState) -> ModelPublic:
    assert service.model is not None
    return ModelPublic(name=service.model.name, version=service.model.version, alias=service.model.alias)


def _evaluate(service: ServiceState, uscc: str, values: dict, warnings: list[str]) -> EvaluationResponse:
    assert service.model is not None and service.online is not None and service.catalog is not None
    scorer = service.model.scorer
    x = scorer.vector(values)
    decided = scorer.decide(x).iloc[0]
    reasons, base, _ = explain(scorer, service.catalog, values, x[0], top=5)
    overrides = scorer.overrides_for(x[0])
    return EvaluationResponse(
        decision_id=str(uuid.uuid4()),
        uscc=uscc,
        name=str(values.get("name", "")),
        as_of=service.online.as_of,
        probability=round(float(decided["probability"]), 6),
        score=int(decided["score"]),
        grade=str(decided["grade"]),
        grade_label_zh=scorer.grade_label(str(decided["grade"])),
        model_grade=str(decided["model_grade"]),
        overrides=[OverridePublic(rule=o.rule, grade=o.grade, reason_zh=o.reason_zh) for o in overrides],
        base_points=round(base, 1),
        reasons=[
            ReasonPublic(
                feature=r.feature,
                label_zh=r.label_zh,
                value=r.value,
                points=r.points,
                effect=r.effect,
                text_zh=r.text_zh,
            )
            for r in reasons
        ],
        model=_model_public(service),
        warnings=warnings,
    )
