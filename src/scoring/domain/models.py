"""What is served together: a loaded model version and the set of champions with the limit policy."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from scoring.domain.policy import LimitPolicy
from scoring.domain.scorer import AmountConfig, AmountScorer, Scorer, ScorerConfig

EVALUATION = "credit_evaluation"
DEFAULT = "pre_credit_default"
AMOUNT = "pre_credit_amount"


@dataclass
class LoadedModel:
    """A registered model version loaded for scoring: the native booster behind a scorer."""

    name: str
    version: str
    alias: str | None
    run_id: str | None
    scorer: Scorer | AmountScorer
    signature: list[str] | None = None
    model_card: str | None = None

    @property
    def config(self) -> ScorerConfig | AmountConfig:
        return self.scorer.config

    @property
    def lineage(self) -> dict[str, Any]:
        return dict(self.scorer.config.lineage)


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
        return list(self._features)

    @cached_property
    def _features(self) -> tuple[str, ...]:  # the set never changes: every decision asks
        names: dict[str, None] = {}
        for m in self.members():
            names.update(dict.fromkeys(m.config.features))
        if self.policy is not None:
            names.update(dict.fromkeys(self.policy.features))
        return tuple(names)
