"""The thin path of ``POST /v1/pre-credit``: the route's own function, called without FastAPI's
routing and dependency resolution when the request is the common case.

A bank's pre-credit request is the service's busiest, and under load FastAPI's work around it
(matching the path against every route, the request object, solving five dependencies, reading the
body through them) was most of the 0.5 ms of a request on the event loop: a core's worth at the
rates two cores reach. Here, a request whose body is JSON that :class:`PreCreditRequest` accepts,
whose bearer key is a bank's key in the live-key cache, is answered by
:func:`scoring.serve.routes.evaluations.pre_credit` itself, with the same rate limit, errors and
metrics. Every other request (no or an unknown key, another role, a malformed body, another
content type) goes on to FastAPI unchanged, which answers it exactly as before: a refusal's audit,
a validation error's wording and the OpenAPI document have one place each.

Sits inside the admission, the body limit and the request metrics (``app.add_middleware`` before
them), so the body it reads is whole and within the limit, and the request is counted and timed
under the route's own template.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import ValidationError

from scoring.errors import ScoringError
from scoring.serve.deps import take_rate
from scoring.serve.handlers import answer_error, count_refusal
from scoring.serve.middleware import ASGIApp, Receive, Scope, Send, replaying
from scoring.serve.routes import evaluations
from scoring.serve.schemas import PreCreditRequest
from scoring.serve.state import Service
from scoring.store import ApiKey, Role

log = logging.getLogger(__name__)

PATH = "/v1/pre-credit"


class ThinPreCredit:
    """Answer the common case of ``POST /v1/pre-credit`` directly; pass everything else on."""

    def __init__(self, app: ASGIApp, *, api: FastAPI):
        self.app, self.api = app, api
        self.route = next(r for r in evaluations.router.routes if getattr(r, "path", None) == PATH)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body = await _read(receive)
        if body is None:  # the client went away before its body was whole: nobody to answer
            return
        state = self.api.state
        key = _cached_bank_key(scope, state.service)
        request = _parsed(scope, body) if key is not None else None
        if key is None or request is None:
            await self.app(scope, replaying(body, receive), send)
            return
        scope["route"] = self.route  # the metrics label it as FastAPI would
        try:
            take_rate(state.service, key)
            response = await evaluations.pre_credit(request, key, state.decider, state.metrics)
        except ScoringError as exc:
            count_refusal(state.metrics, exc)
            response = answer_error(exc, "POST", PATH)
        await response(scope, receive, send)


async def _read(receive: Receive) -> bytes | None:
    """The request's body, whole; None when the client disconnected first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:  # the first, as Starlette's Headers.get
            return str(value.decode("latin-1"))
    return None


def _cached_bank_key(scope: Scope, service: Service) -> ApiKey | None:
    """The bearer key when it is a bank's and in the live-key cache; else None (FastAPI decides)."""
    scheme, credentials = get_authorization_scheme_param(_header(scope, b"authorization"))
    if scheme.lower() != "bearer" or not credentials:
        return None
    key = service.keys.get(credentials)
    return key if key is not None and key.role == Role.BANK else None


def _parsed(scope: Scope, body: bytes) -> PreCreditRequest | None:
    """The body as the route's request model when it is JSON the model accepts; else None."""
    content_type = (_header(scope, b"content-type") or "").split(";", 1)[0].strip().lower()
    if content_type != "application/json" or not body:
        return None
    try:
        return PreCreditRequest.model_validate_json(body)
    except ValidationError:
        return None
