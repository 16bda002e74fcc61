"""What a grading process or a Spark task needs: the champions carried as model strings and rebuilt.

A worker imports this module only (not the registry's MLflow): a spawned process starts in seconds.
"""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import pandas as pd

from scoring.domain.batch import grade_frame
from scoring.domain.models import LoadedModel, ModelSet
from scoring.domain.scorer import AmountConfig, AmountScorer, Scorer, ScorerConfig
from scoring.features.catalog import Catalog


def payload_of(models: ModelSet) -> dict[str, Any]:
    """What a task needs to rebuild the champions: each booster's model string and scorer config."""
    out: dict[str, Any] = {"policy": models.policy, "loaded_at": models.loaded_at}
    for role in ("evaluation", "default", "amount"):
        model: LoadedModel | None = getattr(models, role)
        if model is not None:
            out[role] = {
                "name": model.name,
                "version": model.version,
                "alias": model.alias,
                "booster": model.scorer.booster.model_to_string(),
                "config": model.scorer.config.model_dump_json(),
                "amount": isinstance(model.scorer, AmountScorer),
            }
    return out


def rebuilt(payload: dict[str, Any]) -> ModelSet:
    """The champions of ``payload_of``, each booster predicting on one thread (a worker has one core)."""

    def one(role: str) -> LoadedModel | None:
        item = payload.get(role)
        if item is None:
            return None
        booster = lgb.Booster(model_str=item["booster"])
        scorer: Scorer | AmountScorer = (
            AmountScorer(booster, AmountConfig.model_validate_json(item["config"]))
            if item["amount"]
            else Scorer(booster, ScorerConfig.model_validate_json(item["config"]))
        )
        scorer.num_threads = 1  # a task has one core
        return LoadedModel(name=item["name"], version=item["version"], alias=item["alias"], run_id=None, scorer=scorer)

    evaluation = one("evaluation")
    assert evaluation is not None
    return ModelSet(
        evaluation=evaluation,
        default=one("default"),
        amount=one("amount"),
        policy=payload["policy"],
        loaded_at=payload["loaded_at"],
    )


_WORKER: dict[str, Any] = {}  # a grading process's champions and catalog, set once by start_worker


def start_worker(payload: dict[str, Any], catalog: Catalog) -> None:
    _WORKER.update(models=rebuilt(payload), catalog=catalog)


def grade_chunk(chunk: pd.DataFrame) -> pd.DataFrame:
    return grade_frame(_WORKER["models"], _WORKER["catalog"], chunk)
