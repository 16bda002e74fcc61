"""The loaded service: settings, catalog, decision store, registry, features and the served model set.

``Service.open`` builds it at start-up (the app's lifespan), so everything a request needs is
there and typed: the catalog, the engine, the registry and the key cache are never missing. Two
things can still be absent on a running service, and both answer 503: the champions (none in the
registry, or every new one refused) and the feature snapshot (none in the warehouse). A request
takes both at once with :meth:`Service.ready` and decides with that :class:`Ready`, so a swap
during the request never mixes versions.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import duckdb
import sqlalchemy as sa

from scoring.data.ingest import extract_date_of
from scoring.domain.check import check_set
from scoring.domain.models import ModelSet
from scoring.errors import ApiError
from scoring.features.catalog import Catalog, load_catalog
from scoring.features.online import OnlineFeatures, OnlineFeaturesError, load_online
from scoring.features.records import overdue_objections, record_exceptions
from scoring.registry.champions import Registry
from scoring.registry.versions import configure
from scoring.serve.auth import KeyCache, RateLimiter
from scoring.serve.precomputed import Precomputed, load_precomputed
from scoring.settings import Settings
from scoring.store import engine_for
from scoring.store.engine import Checkpointer

log = logging.getLogger(__name__)

SwapHook = Callable[["Service", ModelSet], None]


@dataclass
class RegistryStatus:
    reachable: bool = True
    checked_at: dt.datetime | None = None
    error: str | None = None
    refused: dict[str, str] = field(default_factory=dict)  # "name vN" -> why it was not swapped in


@dataclass(frozen=True)
class Ready:
    """What one request decides with, taken once at its start: models, features and the catalog."""

    models: ModelSet
    online: OnlineFeatures
    exceptions: dict[str, list[dict[str, Any]]]
    catalog: Catalog
    precomputed: Precomputed | None = None  # the models' stored outputs of this snapshot, when current

    @property
    def as_of(self) -> dt.date:
        return self.online.as_of


@dataclass
class Service:
    """What the service loaded; the model set is swapped in place when the registry's champions change."""

    settings: Settings
    catalog: Catalog
    engine: sa.Engine
    registry: Registry
    keys: KeyCache
    online: OnlineFeatures | None = None
    exceptions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    overdue: list[dict[str, Any]] = field(default_factory=list)  # open objections past their 20 days
    models: ModelSet | None = None
    registry_status: RegistryStatus = field(default_factory=RegistryStatus)
    problems: list[str] = field(default_factory=list)
    limiter: RateLimiter = field(default_factory=RateLimiter)
    on_swap: list[SwapHook] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _swap_lock: threading.Lock = field(default_factory=threading.Lock)
    _poller: threading.Thread | None = None
    checkpointer: Checkpointer | None = None
    precomputed: Precomputed | None = None

    @classmethod
    def open(cls, settings: Settings, *, on_swap: list[SwapHook] | None = None) -> Service:
        """Connect the decision store, read the catalog and the latest snapshot, and load the champions."""
        catalog = load_catalog(settings.catalog_path)
        service = cls(
            settings=settings,
            catalog=catalog,
            engine=engine_for(settings.decision_url, background_checkpoints=True),
            registry=Registry(policy_path=settings.model_spec_path("pre_credit_policy"), alias=settings.model_alias),
            keys=KeyCache(settings.key_cache_seconds),
            on_swap=list(on_swap or []),
        )
        service.load_features()
        configure(settings)
        service.checkpointer = Checkpointer(service.engine)
        service.refresh()
        service.take_stored_outputs()
        return service

    def ready(self) -> Ready:
        """The models and features to decide with now; 503 when either is missing."""
        # taken once: a swap during this request does not mix versions
        models, online, precomputed = self.models, self.online, self.precomputed
        if models is None or online is None:
            raise ApiError(
                503,
                "not_ready",
                "服务尚未加载模型或特征",
                "no model or feature snapshot loaded: " + "; ".join(self.all_problems()),
            )
        if precomputed is not None and not precomputed.serves(models, online):
            precomputed = None  # of the models before a swap
        return Ready(
            models=models, online=online, exceptions=self.exceptions, catalog=self.catalog, precomputed=precomputed
        )

    def load_features(self) -> bool:
        """Read the latest snapshot when none is loaded yet (at start, and again by the poller: a warehouse
        locked by a writer at start is read once it is released). True when features are loaded."""
        if self.online is not None:
            return True
        try:
            online = load_online(self.settings.warehouse_path, self.catalog)
            self.exceptions, self.overdue = load_exceptions(self.settings, self.catalog, online.as_of)
        except (OnlineFeaturesError, duckdb.Error) as exc:  # duckdb's: a writer came between the two reads
            log.warning("no online features: %s", exc)
            self.problems = [str(exc)]
            return False
        self.online, self.problems = online, []
        return True

    # ------------------------------------------------------------------ models
    def refresh(self) -> bool:
        """Ask the registry for the champions; load, check and swap in any new version. True when swapped."""
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
            if self.online is None:  # a set is checked on the snapshot's rows: none to check it on yet
                status.refused = {}
                return False
            current = self.models.versions() if self.models else {}
            if {k: v for k, v in wanted.items() if v} == current:
                status.refused = {}  # the registry asks for what is served: earlier refusals are moot
                return False
            label = ", ".join(f"{k} v{v}" for k, v in wanted.items() if v) or "nothing"
            try:
                candidate = self.registry.load_set(wanted)
                check_set(candidate, columns=self._columns(), rows=self._known_rows())
            except Exception as exc:
                # only what the registry asks for now: a refusal of an earlier champion is moot
                status.refused = {label: f"{type(exc).__name__}: {exc}"}
                log.error("not serving %s: %s", label, exc)
                return False
            status.refused = {}  # a new dict: readers on other threads hold the old one
            self.models = candidate  # one assignment: a request sees the old set or the new, never a mix
            log.info("serving %s", label)
        self.take_stored_outputs()
        for hook in self.on_swap:
            hook(self, candidate)
        return True

    def take_stored_outputs(self) -> None:
        """Take the models' outputs of the served snapshot from the stored scores when they are current
        for the served models (see precomputed.py); otherwise decisions compute them."""
        models, online = self.models, self.online
        if models is None or online is None or not models.pre_credit_ready or not self.settings.stored_outputs:
            self.precomputed = None
        elif self.precomputed is None or not self.precomputed.serves(models, online):
            self.precomputed = load_precomputed(str(self.settings.warehouse_path), models, online)

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
                    self.load_features()
                    if not self.refresh() and self.precomputed is None:
                        self.take_stored_outputs()  # `scoring score` may have graded the served snapshot since
                except Exception:  # the poller must outlive any one failure
                    log.exception("model refresh failed")

        self._poller = threading.Thread(target=loop, name="model-poller", daemon=True)
        self._poller.start()

    def stop(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=5)
        if self.checkpointer is not None:
            self.checkpointer.stop()
        self.engine.dispose()

    # ------------------------------------------------------------------ state
    @property
    def is_ready(self) -> bool:
        return self.models is not None and self.online is not None

    @property
    def status(self) -> str:
        if not self.is_ready:
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


def load_exceptions(
    settings: Settings, catalog: Catalog, as_of: dt.date
) -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
    """(per enterprise, its records repaired, deleted after objection or disputed on the snapshot's date;
    the objections overdue as of the latest data, the warehouse's extraction date)."""
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        frame = record_exceptions(con, catalog, as_of=as_of)
        overdue = overdue_objections(con, as_of=extract_date_of(con))
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
    return out, overdue
