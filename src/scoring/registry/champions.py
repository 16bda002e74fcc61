"""The models the service serves, loaded by explicit version, checked, and swapped without downtime.

The service serves the registry's ``champion`` of each model. It resolves the alias to a version
number and loads that version (never "whatever the alias points at" while loading), checks it
(the booster's signature against the scorer config and the feature snapshot, and a smoke
decision on known inputs) and only then swaps the whole set in one assignment. A request takes
the set once at its start, so it never mixes two versions. When the registry cannot be reached,
the last good set keeps serving and /readyz says degraded.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from scoring.domain.check import ModelCheckError
from scoring.domain.models import AMOUNT, DEFAULT, EVALUATION, LoadedModel, ModelSet
from scoring.domain.policy import load_policy
from scoring.domain.scorer import SERVING_THREADS, AmountScorer, Scorer
from scoring.registry.versions import load_scorer, resolve_alias

log = logging.getLogger(__name__)


@dataclass
class Registry:
    """Reads champions from MLflow by explicit version; keeps recently used versions for replays."""

    policy_path: Path
    alias: str = "champion"
    cache_size: int = 6
    _cache: OrderedDict[tuple[str, str], LoadedModel] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def champions(self) -> dict[str, str | None]:
        """The version each alias points at now (None: no champion). Raises when the registry is unreachable."""
        out: dict[str, str | None] = {}
        for name in (EVALUATION, DEFAULT, AMOUNT):
            try:
                out[name] = resolve_alias(name, self.alias)
            except Exception as exc:
                if _not_found(exc):
                    out[name] = None
                else:
                    raise
        return out

    def version(self, name: str, version: str, *, alias: str | None = None) -> LoadedModel:
        """A loaded version, from the cache or the registry."""
        key = (name, version)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit if hit.alias == alias else _with_alias(hit, alias)
        loaded = load_scorer(name, version, alias=alias, card=True)
        loaded.scorer.num_threads = SERVING_THREADS
        with self._lock:
            self._cache[key] = loaded
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return loaded

    def load_set(self, versions: dict[str, str | None]) -> ModelSet:
        evaluation = versions.get(EVALUATION)
        if evaluation is None:
            raise ModelCheckError(f"no {self.alias} version of {EVALUATION} in the registry")
        default, amount = versions.get(DEFAULT), versions.get(AMOUNT)
        models = ModelSet(
            evaluation=self.version(EVALUATION, evaluation, alias=self.alias),
            default=self.version(DEFAULT, default, alias=self.alias) if default else None,
            amount=self.version(AMOUNT, amount, alias=self.alias) if amount else None,
            policy=load_policy(self.policy_path) if default and amount else None,
            loaded_at=dt.datetime.now(dt.UTC),
        )
        kinds = [(models.evaluation, Scorer), (models.default, Scorer), (models.amount, AmountScorer)]
        for model, kind in kinds:
            if model is not None and not isinstance(model.scorer, kind):
                raise ModelCheckError(
                    f"{model.name} v{model.version} holds a {type(model.scorer).__name__}, not a {kind.__name__}: "
                    "a version of another model was registered under this name"
                )
        return models


def _with_alias(model: LoadedModel, alias: str | None) -> LoadedModel:
    from dataclasses import replace

    return replace(model, alias=alias)


def _not_found(exc: Exception) -> bool:
    code = getattr(exc, "error_code", "")
    return code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE") or "not found" in str(exc).lower()
