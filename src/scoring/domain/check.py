"""The check a model set passes before it is served: signatures, smoke decisions, additive points."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from scoring.domain.decide import pre_credit_result
from scoring.domain.models import LoadedModel, ModelSet
from scoring.domain.scorer import AmountScorer, Scorer
from scoring.errors import ScoringError


class ModelCheckError(ScoringError, RuntimeError):
    """A model version failed its check before being served."""

    code = "model_check_failed"
    status = 503
    title_zh = "模型版本未通过上线检查"


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
        for values in rows[:3]:
            result = pre_credit_result(models, values)
            if not math.isfinite(result.limit):
                raise ModelCheckError("the pre-credit policy gave no finite limit on a known input")
