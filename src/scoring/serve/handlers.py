"""The exception handlers: one for the whole error family, and FastAPI's own faults in the same shape."""

from __future__ import annotations

import logging
import re
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from scoring.errors import ApiError, ScoringError
from scoring.serve.middleware import error_body
from scoring.serve.schemas import UsccValueError
from scoring.store import StoreUnavailable, unavailable

log = logging.getLogger(__name__)

INTERNAL = ApiError(500, "internal_error", "服务内部错误，已记录", "internal error (logged)")


def error_response(exc: ScoringError) -> JSONResponse:
    """The error as answered: its status, ``{"error": {code, message_zh, message_en, field}}`` and headers."""
    return JSONResponse(status_code=exc.http_status_code(), content={"error": exc.detail()}, headers=exc.headers)


def answer_error(exc: ScoringError, method: str, path: str) -> JSONResponse:
    """A ScoringError as the request's answer: its own when it names a status, else a 500 (logged,
    its text kept inside: an error of the pipelines, not of the request)."""
    if exc.status is None:
        log.error("%s %s failed", method, path, exc_info=exc)
        return error_response(INTERNAL)
    return error_response(exc)


def count_refusal(metrics: Any, exc: ScoringError) -> None:
    """A request refused because the decision store is down is counted on ``/metrics`` by that reason."""
    if exc.code == StoreUnavailable.code and metrics is not None:
        metrics.refused.labels(StoreUnavailable.code).inc()


async def _scoring_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ScoringError)  # registered for ScoringError only
    count_refusal(getattr(request.app.state, "metrics", None), exc)
    return answer_error(exc, request.method, request.url.path)


async def _store_error(request: Request, exc: Exception) -> Response:
    """A driver's error out of a route: 503 ``store_unavailable`` when the store cannot be reached, else 500."""
    down = unavailable(exc)
    if down is None:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return error_response(INTERNAL)
    log.warning("%s %s refused: the decision store is unavailable: %s", request.method, request.url.path, exc)
    count_refusal(getattr(request.app.state, "metrics", None), down)
    return error_response(down)


_HTTP_ERRORS = {
    400: ("malformed_body", "请求体无法解析（应为UTF-8编码的JSON）", "the body cannot be parsed: send JSON in UTF-8"),
    404: ("not_found", "没有这个接口", None),
    405: ("method_not_allowed", "接口不支持该方法", None),
}


def _operations(app: Any) -> list[tuple[re.Pattern[str], set[str]]]:
    """Each documented path as a pattern, with its methods (read from the OpenAPI document once)."""
    if not hasattr(app.state, "operations"):
        app.state.operations = [
            (re.compile(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path))), {m.upper() for m in ops})
            for path, ops in app.openapi()["paths"].items()
        ]
    return app.state.operations


def allowed_methods(request: Request) -> str:
    """What the ``Allow`` of a 405 says: every method the OpenAPI document gives the request's path, and
    HEAD with GET (Starlette's own 405 names only the methods of the first route that matches the path)."""
    methods = set().union(*(m for pattern, m in _operations(request.app) if pattern.fullmatch(request.url.path)))
    return ", ".join(sorted(methods | ({"HEAD"} if "GET" in methods else set())))


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's and FastAPI's own faults (no route, no such method, a body that cannot be parsed)
    in the error body. A 400 is FastAPI's answer to a body it cannot decode (not UTF-8)."""
    assert isinstance(exc, StarletteHTTPException)
    code, zh, en = _HTTP_ERRORS.get(exc.status_code, ("http_error", "请求错误", None))
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == 405:
        headers["Allow"] = allowed_methods(request) or headers.get("Allow", "")  # the console is not documented
    return Response(
        error_body(code, zh, en or str(exc.detail)),
        status_code=exc.status_code,
        media_type="application/json",
        headers=headers,
    )


def _message(error: dict[str, Any]) -> str:
    return str(error.get("msg", "")).removeprefix("Value error, ")


def validation_error(exc: RequestValidationError) -> ApiError:
    """The first fault of a request that failed validation, named with its field, in both languages."""
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
    elif field is None and kind in ("model_attributes_type", "dict_type"):
        zh, en, code = (
            "请求体应为JSON对象（Content-Type: application/json）",
            "the body must be a JSON object sent with Content-Type: application/json",
            "invalid_body",
        )
    elif kind == "json_invalid":
        zh, en, code, field = "请求体不是合法的JSON", "the body is not valid JSON", "invalid_json", None
    elif field is None:  # a rule over several fields (dates in order): the message names them
        zh, en, code = f"请求不合法：{_message(first)}", f"invalid request: {_message(first)}", "invalid_request"
    else:
        msg = _message(first)
        zh, en, code = f"字段'{field}'不合法：{msg}", f"invalid field {field!r}: {msg}", "invalid_request"
    return ApiError(422, code, zh, en, field=field)


async def _validation(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return error_response(validation_error(exc))


def install_handlers(app: FastAPI) -> None:
    """Answer every ScoringError, unknown route or method, and invalid request with the error body."""
    app.add_exception_handler(ScoringError, _scoring_error)
    app.add_exception_handler(sa.exc.DBAPIError, _store_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation)
