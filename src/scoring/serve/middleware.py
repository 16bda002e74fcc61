"""Plain ASGI middleware: admission under overload, the body-size limit (chunked bodies too) and
Prometheus request metrics.

Written as raw ASGI rather than ``@app.middleware("http")``: Starlette's BaseHTTPMiddleware
wraps every response in a stream, which costs a noticeable share of a 2 ms request.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def error_body(code: str, zh: str, en: str, field: str | None = None) -> bytes:
    body = {"error": {"code": code, "message_zh": zh, "message_en": en, "field": field}}
    return json.dumps(body, ensure_ascii=False).encode()


async def send_error(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Refuse a body over the limit with 413, whether it declares its length or comes chunked.

    The body is read before the app sees it (up to the limit), so a chunked body that grows
    past the limit is refused as soon as it does, and the app never reads a partial body.
    """

    def __init__(self, app: ASGIApp, *, default: int, per_path: dict[str, int]):
        self.app, self.default, self.per_path = app, default, per_path
        self.refusals = {n: _too_large(n) for n in (default, *per_path.values())}  # encoded once, not per request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.per_path.get(scope["path"], self.default)
        too_large = self.refusals[limit]
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await send_error(send, 413, too_large, [(b"connection", b"close")])
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await send_error(send, 413, too_large, [(b"connection", b"close")])
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, replaying(b"".join(chunks), receive), send)


def replaying(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the app a body already read, whole, then whatever comes next."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _too_large(limit: int) -> bytes:
    return error_body("body_too_large", f"请求体超过{limit}字节", f"request body over {limit} bytes", field=None)


# always answered, however busy the process: a balancer's probes and the metrics that show the overload
UNLIMITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
RETRY_AFTER_SECONDS = 1


class Admission:
    """Refuse a request at once, with 503 and ``Retry-After``, while ``limit`` requests are in the works.

    In a burst, requests beyond what the process answers within its latency target would wait in
    the thread pool's queue for seconds, each holding its memory; refused at the door, the admitted
    ones stay fast, memory stays bounded and the client knows when to come back. (uvicorn's
    ``--limit-concurrency`` counts connections, idle keep-alive ones too, and answers a plain-text
    503 without ``Retry-After`` or the stable error code.) The count needs no lock: the event loop
    runs one callback at a time.
    """

    def __init__(self, app: ASGIApp, *, limit: int, metrics: Metrics):
        self.app, self.limit, self.metrics = app, limit, metrics
        self.in_flight = 0
        metrics.in_flight.set_function(lambda: self.in_flight)  # read when scraped, not set twice a request
        self.refusal = error_body(
            "overloaded",
            f"服务繁忙，请{RETRY_AFTER_SECONDS}秒后重试",
            f"the service is at capacity: retry after {RETRY_AFTER_SECONDS} s",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNLIMITED_PATHS:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            self.metrics.refused.labels("overloaded").inc()
            await send_error(send, 503, self.refusal, [(b"retry-after", str(RETRY_AFTER_SECONDS).encode())])
            return
        self.in_flight += 1
        done = False

        def leave() -> None:
            nonlocal done
            if not done:
                done = True
                self.in_flight -= 1

        async def sending(message: Message) -> None:
            # a request is out of the works once its last byte is sent: the client's next request on
            # the same connection may arrive before this call has returned, and must not count it twice
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                leave()

        try:
            await self.app(scope, receive, sending)
        finally:
            leave()


class Metrics:
    """The service's Prometheus metrics, in a registry of its own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "scoring_requests", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "scoring_request_seconds",
            "HTTP request latency",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
            registry=self.registry,
        )
        self.decisions = Counter(
            "scoring_decisions", "decisions made", ["kind", "grade", "decision"], registry=self.registry
        )
        self.model = Gauge(
            "scoring_model_info", "the model versions being served (1)", ["name", "version"], registry=self.registry
        )
        self.refused = Counter(
            "scoring_refused", "requests refused at once, by reason", ["reason"], registry=self.registry
        )
        self.decided_together = Histogram(
            "scoring_decided_together",
            "pre-credit requests decided in one batch (one consent query, one TreeSHAP pass per model)",
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=self.registry,
        )
        self.log_restarts = Gauge(
            "scoring_store_log_restarts",
            "times this process's checkpointer started the SQLite store's write-ahead log again (it stays bounded)",
            registry=self.registry,
        )
        self.in_flight = Gauge("scoring_in_flight", "requests being worked on by this process", registry=self.registry)
        # each server process answers /metrics with its own counts: its pid says whose they are
        self.worker = Gauge("scoring_worker", "this server process (1), by pid", ["pid"], registry=self.registry)
        self.worker.labels(str(os.getpid())).set(1)
        self.registry_up = Gauge(
            "scoring_registry_reachable", "1 when the last registry check succeeded", registry=self.registry
        )
        self.objections_overdue = Gauge(
            "scoring_objections_overdue",
            "objections still open more than 20 days after they were raised, as of the warehouse's extraction date",
            registry=self.registry,
        )
        self.registry_refused = Gauge(
            "scoring_registry_refused",
            "1 for each champion set the registry asks for and this process refuses to serve (it keeps the last "
            "good set), by the versions and the kind of fault (e.g. CorruptArtifact, ModelCheckError)",
            ["versions", "fault"],
            registry=self.registry,
        )


class RequestMetrics:
    """Count every request and time it, labelled by its route template (not the raw path)."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(scope["method"], template, str(status)).inc()
            self.metrics.latency.labels(template).observe(time.perf_counter() - started)
