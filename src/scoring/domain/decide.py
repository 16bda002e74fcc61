"""One decision, explained: the evaluation and the 信易贷 pre-credit limit, from feature values.

These functions are the whole decision: the endpoints, the batch, the replay and the in-process
benchmark all call them, so a replay recomputes exactly what was served. One TreeSHAP pass per
model gives both the prediction and its explanation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from scoring.domain.models import LoadedModel, ModelSet
from scoring.domain.outputs import Outputs, explain
from scoring.domain.policy import LimitDecision, LimitPolicy, decide_limit
from scoring.domain.reasons import Reason, reasons_from
from scoring.domain.scorer import Override, Scorer
from scoring.features.catalog import Catalog

TOP_REASONS = 5


@dataclass(frozen=True)
class EvaluationResult:
    """The public credit evaluation (公共信用综合评价) of one enterprise, with every contribution."""

    probability: float
    score: int
    grade: str
    grade_label_zh: str
    model_grade: str
    overrides: list[Override]
    base_points: float
    points: dict[str, float]
    model: LoadedModel

    def reasons(self, catalog: Catalog, values: dict[str, Any], top: int = TOP_REASONS) -> list[Reason]:
        return reasons_from(self.points, catalog, values, top=top)


@dataclass(frozen=True)
class PreCreditResult:
    """The 信易贷 pre-credit limit (预授信额度) and everything it was computed from."""

    evaluation: EvaluationResult
    default_probability: float
    default_points: dict[str, float]
    default_base: float
    amount_estimate: float
    amount_log_shap: dict[str, float]
    amount_base: float
    limit_decision: LimitDecision
    models: ModelSet

    @property
    def limit(self) -> float:
        return self.limit_decision.pre_credit_limit

    def reasons(self, catalog: Catalog, values: dict[str, Any], top: int = TOP_REASONS) -> list[Reason]:
        """Why the default risk is what it is, in the default model's points."""
        return reasons_from(
            self.default_points, catalog, values, top=top, effect_zh=("提高违约风险", "降低违约风险"), amounts=False
        )


def evaluation_result(model: LoadedModel, values: dict[str, Any]) -> EvaluationResult:
    """One evaluation: the many-row path with one row, so alone and in a batch it is the same."""
    return evaluation_results(model, [values])[0]


def evaluation_results(
    model: LoadedModel, rows: list[dict[str, Any]], *, outputs: Outputs | None = None
) -> list[EvaluationResult]:
    """Many evaluations in one booster call (the batch endpoint, and requests decided together).

    Each row's numbers are those of that row decided alone, bit for bit (see :func:`explain`).
    ``outputs``: the model's numbers for these rows when they are known already (stored by the batch
    scorer); the overrides are still read from the rows.
    """
    scorer = model.scorer
    assert isinstance(scorer, Scorer)
    if not rows:
        return []
    if outputs is None:
        prob, score, model_grade, grade, points, base = scorer.explained(scorer.rows(rows))
    else:
        o = outputs
        prob, score, model_grade, grade, points, base = o.probability, o.score, o.model_grade, o.grade, o.points, o.base
    names = scorer.config.features
    overrides = scorer.overrides_of(rows)
    return [
        EvaluationResult(
            probability=float(prob[i]),
            score=int(score[i]),
            grade=str(grade[i]),
            grade_label_zh=scorer.grade_label(str(grade[i])),
            model_grade=str(model_grade[i]),
            overrides=overrides[i],
            base_points=float(base[i]),
            points=dict(zip(names, points[i].tolist(), strict=True)),
            model=model,
        )
        for i in range(len(rows))
    ]


def pre_credit_result(
    models: ModelSet, values: dict[str, Any], *, policy: LimitPolicy | None = None
) -> PreCreditResult:
    """Evaluation, default probability, amount estimate and the policy's limit for one enterprise."""
    return pre_credit_results(models, [values], policy=policy)[0]


def pre_credit_results(
    models: ModelSet,
    rows: list[dict[str, Any]],
    *,
    policy: LimitPolicy | None = None,
    outputs: Outputs | None = None,
) -> list[PreCreditResult]:
    """:func:`pre_credit_result` of many enterprises: one TreeSHAP pass per model for all of them, or
    none when ``outputs`` holds the three models' numbers for these rows already. The limit policy
    is applied here either way."""
    assert models.default is not None and models.amount is not None
    policy = policy or models.policy
    assert policy is not None
    if not rows:
        return []
    o = outputs if outputs is not None else explain(models, rows, pre_credit=True)
    assert o.has_pre_credit and len(o) == len(rows)
    assert o.default_points is not None and o.default_base is not None and o.default_probability is not None
    assert o.amount_shap is not None and o.amount_base is not None and o.amount_estimate is not None
    evaluations = evaluation_results(models.evaluation, rows, outputs=o)
    d_names, a_names = models.default.scorer.config.features, models.amount.scorer.config.features
    out = []
    for i, (values, evaluation) in enumerate(zip(rows, evaluations, strict=True)):
        decision = decide_limit(
            policy,
            amount_estimate=float(o.amount_estimate[i]),
            default_probability=float(o.default_probability[i]),
            grade=evaluation.grade,
            features={name: number(values.get(name)) for name in policy.features},
        )
        out.append(
            PreCreditResult(
                evaluation=evaluation,
                default_probability=float(o.default_probability[i]),
                default_points=dict(zip(d_names, o.default_points[i].tolist(), strict=True)),
                default_base=float(o.default_base[i]),
                amount_estimate=float(o.amount_estimate[i]),
                amount_log_shap=dict(zip(a_names, o.amount_shap[i].tolist(), strict=True)),
                amount_base=float(o.amount_base[i]),
                limit_decision=decision,
                models=models,
            )
        )
    return out


def number(v: Any) -> float | None:
    """A feature value as the policy reads it: a number, or None (missing, or a category)."""
    if v is None:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def clean(value: Any) -> Any:
    """A JSON-safe feature value: NaN and numpy scalars become None and Python numbers."""
    if value.__class__ is float:  # most values, first: a decision cleans 130 of them
        return None if value != value else value
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def model_ref(model: LoadedModel) -> dict[str, Any]:
    return {"name": model.name, "version": model.version, "alias": model.alias, "run_id": model.run_id}


def _reason(r: Reason) -> dict[str, Any]:
    return {
        "feature": r.feature,
        "label_zh": r.label_zh,
        "value": clean(r.value),
        "points": r.points,
        "effect": r.effect,
        "text_zh": r.text_zh,
    }


def evaluation_record(result: EvaluationResult, catalog: Catalog, values: dict[str, Any]) -> dict[str, Any]:
    """The evaluation as stored: the decision, every contribution and the top reasons."""
    return {
        "probability": result.probability,
        "score": result.score,
        "grade": result.grade,
        "grade_label_zh": result.grade_label_zh,
        "model_grade": result.model_grade,
        "overrides": [o.model_dump() for o in result.overrides],
        "base_points": result.base_points,
        "shap_points": result.points,
        "reasons": [_reason(r) for r in result.reasons(catalog, values)],
        "model": model_ref(result.model),
    }


def pre_credit_record(result: PreCreditResult, catalog: Catalog, values: dict[str, Any]) -> dict[str, Any]:
    """The pre-credit decision as stored: limit, steps, both models' contributions, the policy itself."""
    m = result.models
    assert m.default is not None and m.amount is not None and m.policy is not None
    decision = result.limit_decision
    return {
        "pre_credit_limit": decision.pre_credit_limit,
        "decision": decision.decision,
        "decision_zh": decision.decision_zh,
        "default_probability": result.default_probability,
        "policy": {"name": decision.policy, "version": decision.policy_version},
        "policy_steps": [s.model_dump() for s in decision.steps],
        "reasons": [_reason(r) for r in result.reasons(catalog, values)],
        "default_model": {
            **model_ref(m.default),
            "base_points": result.default_base,
            "shap_points": result.default_points,
        },
        "amount_model": {
            **model_ref(m.amount),
            "estimate": result.amount_estimate,
            "base_log": result.amount_base,
            "shap_log": result.amount_log_shap,
        },
        "policy_document": m.policy.model_dump(mode="json"),
    }


def inputs_record(features: list[str], catalog: Catalog, values: dict[str, Any]) -> list[dict[str, Any]]:
    """The inputs a decision was made on: every feature a served model reads, labelled."""
    labels = catalog.labels_zh
    return [{"feature": n, "label_zh": labels[n], "value": clean(values.get(n))} for n in features]


# what a replay compares: everything the decision says, not the reasons' wording or the time
EVALUATION_FIELDS = ("probability", "score", "grade", "model_grade", "overrides", "base_points", "shap_points")
PRE_CREDIT_FIELDS = ("pre_credit_limit", "decision", "default_probability", "policy_steps")


def differences(stored: dict[str, Any], again: dict[str, Any], fields: tuple[str, ...], prefix: str) -> list[str]:
    """The fields whose values differ between a stored decision part and its recomputation."""
    out = []
    for f in fields:
        if _normal(stored.get(f)) != _normal(again.get(f)):
            out.append(f"{prefix}.{f}")
    return out


def _normal(value: Any) -> Any:
    """The value as it reads back from JSON, so stored and recomputed compare like for like."""
    import json

    return json.loads(json.dumps(value, default=str, sort_keys=True))
