"""The service state and the dependencies endpoints declare (``ServiceDep``, ``CurrentKey``, ``require``)."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import duckdb
import sqlalchemy as sa
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from scoring.domain.check import ModelCheckError, check_set
from scoring.domain.models import ModelSet
from scoring.errors import ApiError
from scoring.features.catalog import Catalog, load_catalog
from scoring.features.online import OnlineFeatures, OnlineFeaturesError, load_online
from scoring.features.records import record_exceptions
from scoring.registry.champions import Registry
from scoring.registry.versions import configure
from scoring.settings import Settings
from scoring.store import ApiKey, Event, Role, append, authenticate, engine_for, secret_hash

log = logging.getLogger(__name__)


class RateLimiter:
    """A token bucket per API key: ``rate`` requests a minute, bursts up to a minute's worth.

    Per process: with several server workers each keeps its own buckets, so a key's effective
    limit is the rate times the number of workers (serve/scoring.service runs two).
    """

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key_id: str, rate_per_minute: int) -> float:
        """0 when the request may go ahead, else the seconds until it may."""
        now = time.monotonic()
        per_second = rate_per_minute / 60.0
        with self._lock:
            tokens, last = self._buckets.get(key_id, (float(rate_per_minute), now))
            tokens = min(float(rate_per_minute), tokens + (now - last) * per_second)
            if tokens >= 1.0:
                self._buckets[key_id] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key_id] = (tokens, now)
            return (1.0 - tokens) / per_second


class KeyCache:
    """Live API keys recently authenticated, for ``seconds`` (0: none kept).

    Keys are revoked with `scoring keys revoke`, in another process: a revoked key is refused
    at most ``seconds`` later. Only live keys are kept (by the secret's hash), at most ``size``.
    """

    def __init__(self, seconds: float, size: int = 10_000) -> None:
        self.seconds, self.size = seconds, size
        self._keys: dict[str, tuple[ApiKey, float]] = {}

    def get(self, secret: str) -> ApiKey | None:
        if self.seconds <= 0:
            return None
        hit = self._keys.get(secret_hash(secret))
        if hit is None or hit[1] < time.monotonic():
            return None
        return hit[0]

    def put(self, secret: str, key: ApiKey, *, since: float) -> None:
        """Remember a key found live at ``since`` (a ``time.monotonic()`` reading)."""
        if self.seconds <= 0:
            return
        if len(self._keys) >= self.size:
            self._keys.clear()
        self._keys[secret_hash(secret)] = (key, since + self.seconds)


@dataclass
class RegistryStatus:
    reachable: bool = True
    checked_at: dt.datetime | None = None
    error: str | None = None
    refused: dict[str, str] = field(default_factory=dict)  # "name vN" -> why it was not swapped in


@dataclass
class ServiceState:
    """What the service loaded: settings, catalog, the model set, online features, the decision store."""

    settings: Settings
    catalog: Catalog | None = None
    models: ModelSet | None = None
    online: OnlineFeatures | None = None
    exceptions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    engine: sa.Engine | None = None
    registry: Registry | None = None
    registry_status: RegistryStatus = field(default_factory=RegistryStatus)
    problems: list[str] = field(default_factory=list)
    limiter: RateLimiter = field(default_factory=RateLimiter)
    keys: KeyCache = field(default_factory=lambda: KeyCache(0))
    on_swap: list[Callable[[ModelSet], None]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _swap_lock: threading.Lock = field(default_factory=threading.Lock)
    _poller: threading.Thread | None = None

    def load(self) -> None:
        s = self.settings
        self.problems = []
        self.engine = engine_for(s.decision_url)
        self.keys = KeyCache(s.key_cache_seconds)
        self.catalog = load_catalog(s.catalog_path)
        self.registry = Registry(policy_path=s.model_spec_path("pre_credit_policy"), alias=s.model_alias)
        try:
            self.online = load_online(s.warehouse_path, self.catalog)
            self.exceptions = _exceptions(s, self.catalog, self.online.as_of)
        except OnlineFeaturesError as exc:
            log.warning("no online features: %s", exc)
            self.problems.append(str(exc))
        configure(s)
        self.refresh()

    # ------------------------------------------------------------------ models
    def refresh(self) -> bool:
        """Ask the registry for the champions; load, check and swap in any new version. True when swapped."""
        assert self.registry is not None
        with self._swap_lock:
            status = self.registry_status
            status.checked_at = dt.datetime.now(dt.UTC)
            try:
                wanted = self.registry.champions()
            except Exception as exc:  # unreachable: keep serving what we have
                status.reachable, status.error = False, f"{type(exc).__name__}: {exc}"
                log.warning("registry unreachable, serving the last good models: %s", exc)
                return False
            status.reachable, status.error = True, None
            current = self.models.versions() if self.models else {}
            if {k: v for k, v in wanted.items() if v} == current:
                status.refused = {}  # the registry asks for what is served: earlier refusals are moot
                return False
            label = ", ".join(f"{k} v{v}" for k, v in wanted.items() if v) or "nothing"
            try:
                candidate = self.registry.load_set(wanted)
                check_set(candidate, columns=self._columns(), rows=self._known_rows())
            except (ModelCheckError, Exception) as exc:
                # only what the registry asks for now: a refusal of an earlier champion is moot
                status.refused = {label: f"{type(exc).__name__}: {exc}"}
                log.error("not serving %s: %s", label, exc)
                return False
            status.refused = {}  # a new dict: readers on other threads hold the old one
            self.models = candidate  # one assignment: a request sees the old set or the new, never a mix
            log.info("serving %s", label)
        for hook in self.on_swap:
            hook(candidate)
        return True

    def _columns(self) -> set[str]:
        return set(self.online.columns) if self.online is not None else set()

    def _known_rows(self, n: int = 8) -> list[dict[str, Any]]:
        """Known inputs for the smoke check: the first enterprises of the snapshot (a fixed choice)."""
        if self.online is None:
            return []
        return [v for u in self.online.usccs[:n] if (v := self.online.values(u)) is not None]

    def start_polling(self) -> None:
        interval = self.settings.model_poll_seconds
        if interval <= 0 or self._poller is not None:
            return

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.refresh()
                except Exception:  # the poller must outlive any one failure
                    log.exception("model refresh failed")

        self._poller = threading.Thread(target=loop, name="model-poller", daemon=True)
        self._poller.start()

    def stop(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=5)
        if self.engine is not None:
            self.engine.dispose()

    # ------------------------------------------------------------------ state
    @property
    def ready(self) -> bool:
        return self.models is not None and self.online is not None

    @property
    def status(self) -> str:
        if not self.ready:
            return "not_ready"
        if not self.registry_status.reachable or self.registry_status.refused:
            return "degraded"
        return "ready"

    def all_problems(self) -> list[str]:
        out = list(self.problems)
        rs = self.registry_status
        if not rs.reachable:
            out.append(f"model registry unreachable since the last check: {rs.error}")
        out += [f"refused {label}: {why}" for label, why in dict(rs.refused).items()]
        if self.models is None:
            out.append(f"no {self.settings.model_alias} model {self.settings.model_name!r} loaded")
        elif not self.models.pre_credit_ready:
            out.append("no pre-credit champions (pre_credit_default and pre_credit_amount): /v1/pre-credit answers 503")
        return out


def _exceptions(settings: Settings, catalog: Catalog, as_of: dt.date) -> dict[str, list[dict[str, Any]]]:
    """Per enterprise, its records repaired, deleted after objection or disputed on the snapshot's date."""
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        frame = record_exceptions(con, catalog, as_of=as_of)
    finally:
        con.close()
    out: dict[str, list[dict[str, Any]]] = {}
    for row in frame.to_dict(orient="records"):
        uscc = row.pop("uscc")
        row["date"] = (
            None
            if row["date"] is None or (isinstance(row["date"], float) and math.isnan(row["date"]))
            else (str(row["date"])[:10])
        )
        out.setdefault(uscc, []).append(row)
    return out


async def get_service(request: Request) -> ServiceState:
    # async, like the dependencies below that do no I/O: FastAPI runs a sync dependency on the
    # thread pool, and each hop there cost more than the work it does
    return request.app.state.service


ServiceDep = Annotated[ServiceState, Depends(get_service)]

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
    assert service.engine is not None
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
    return key


CurrentKey = Annotated[ApiKey, Depends(current_key)]

ROLE_ZH = {Role.BANK: "银行", Role.ANALYST: "分析人员", Role.REGULATOR: "监管人员", Role.ADMIN: "管理员"}


def refuse(service: ServiceState, key: ApiKey, *, code: str, zh: str, en: str, uscc: str | None, what: str) -> ApiError:
    """A 403, appended to the audit log as a refusal first."""
    assert service.engine is not None
    append(
        service.engine,
        [Event(kind="refusal", payload={"code": code, "request": what, "message_en": en}, key=key, uscc=uscc)],
    )
    return ApiError(403, code, zh, en)


def require(*roles: Role) -> Callable[..., Awaitable[ApiKey]]:
    """A dependency that lets only ``roles`` through (a 403, audited, for the others)."""
    allowed = ", ".join(r.value for r in roles)

    async def check(key: CurrentKey, service: ServiceDep, request: Request) -> ApiKey:
        if key.role not in roles:
            raise await run_in_threadpool(
                functools.partial(
                    refuse,
                    service,
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
