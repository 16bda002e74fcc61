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
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scoring.registry.policy import LimitPolicy, load_policy
from scoring.registry.scorer import SERVING_THREADS, AmountScorer, Scorer
from scoring.registry.store import LoadedModel, load_scorer, resolve_alias

log = logging.getLogger(__name__)

EVALUATION = "credit_evaluation"
DEFAULT = "pre_credit_default"
AMOUNT = "pre_credit_amount"


class ModelCheckError(RuntimeError):
    """A model version failed its check before being served."""


@dataclass(frozen=True)
class ModelSet:
    """The models served together: the evaluation, and the pre-credit pair with its policy."""

    evaluation: LoadedModel
    default: LoadedModel | None
    amount: LoadedModel | None
    policy: LimitPolicy | None
    loaded_at: dt.datetime

    @property
    def evaluation_scorer(self) -> Scorer:
        assert isinstance(self.evaluation.scorer, Scorer)
        return self.evaluation.scorer

    @property
    def pre_credit_ready(self) -> bool:
        return self.default is not None and self.amount is not None and self.policy is not None

    def members(self) -> list[LoadedModel]:
        return [m for m in (self.evaluation, self.default, self.amount) if m is not None]

    def versions(self) -> dict[str, str]:
        return {m.name: m.version for m in self.members()}

    def features(self) -> list[str]:
        """Every feature any served model or the policy reads, in a stable order."""
        names: dict[str, None] = {}
        for m in self.members():
            names.update(dict.fromkeys(m.config.features))
        if self.policy is not None:
            names.update(dict.fromkeys(self.policy.features))
        return list(names)


def check_model(model: LoadedModel, *, columns: set[str], rows: list[dict[str, Any]]) -> None:
    """Refuse a version whose signature or smoke decisions are wrong.

    Args:
        model: the loaded version.
        columns: the feature snapshot's columns (every model feature must be among them).
        rows: known inputs (feature values) to decide on; an all-missing row is added.

    Raises:
        ModelCheckError: naming the version and the fault.
    """
    name = f"{model.name} v{model.version}"
    features = list(model.config.features)
    if model.signature is not None and model.signature != features:
        raise ModelCheckError(f"{name}: its MLflow signature differs from its scorer config's features")
    missing = [f for f in features if f not in columns]
    if missing:
        raise ModelCheckError(f"{name}: the feature snapshot lacks {missing}")
    scorer = model.scorer
    probe = [*rows, {}]
    if isinstance(scorer, Scorer):
        x = np.vstack([scorer.vector(r) for r in probe])
        prob, score, _, grade, points, base = scorer.explained(x)
        bands = {b.grade for b in scorer.config.grades}
        s = scorer.config.score
        if not np.all(np.isfinite(prob)) or not np.all((prob > 0) & (prob < 1)):
            raise ModelCheckError(f"{name}: smoke probabilities outside (0, 1): {prob.tolist()}")
        if not np.all((score >= s.min) & (score <= s.max)) or not set(grade) <= bands:
            raise ModelCheckError(f"{name}: smoke scores or grades out of range")
        unclipped = s.offset - s.factor * scorer.logit(x)
        if not np.allclose(base + points.sum(axis=1), unclipped, atol=1e-6):
            raise ModelCheckError(f"{name}: TreeSHAP points do not add up to the score")
    elif isinstance(scorer, AmountScorer):
        x = np.vstack([scorer.vector(r) for r in probe])
        amount = scorer.amount(x)
        if not np.all(np.isfinite(amount)) or not np.all(amount >= 0):
            raise ModelCheckError(f"{name}: smoke amounts not finite and non-negative: {amount.tolist()}")
    else:  # pragma: no cover - load_scorer returns one of the two
        raise ModelCheckError(f"{name}: unknown scorer {type(scorer).__name__}")


def check_set(models: ModelSet, *, columns: set[str], rows: list[dict[str, Any]]) -> None:
    """Check each member, then one pre-credit decision per known row through the policy."""
    for m in models.members():
        check_model(m, columns=columns, rows=rows)
    if models.pre_credit_ready:
        from scoring.serve.decide import pre_credit_result  # decide imports this module

        for values in rows[:3]:
            result = pre_credit_result(models, values)
            if not math.isfinite(result.limit):
                raise ModelCheckError("the pre-credit policy gave no finite limit on a known input")


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
