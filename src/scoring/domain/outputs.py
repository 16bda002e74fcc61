"""What the served models say of some enterprises, as arrays: the numbers a decision is made from.

Each model's one TreeSHAP pass (``pred_contrib``) gives its prediction and every feature's share of
it. :func:`explain` runs the three passes; :class:`Outputs` holds what they gave, row ``i`` for the
``i``-th enterprise, and is also what `scoring score` stored for a whole snapshot (the ``scores``
table), so a served decision can take its numbers from there instead of computing them again
(``scoring.batch.stored.stored_outputs``): the same numbers, bit for bit, checked when loaded.
Everything after these numbers (overrides, the limit policy, reasons, records) is made per request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from scoring.domain.models import ModelSet
from scoring.domain.scorer import AmountScorer, Scorer


@dataclass(frozen=True)
class Outputs:
    """The three models' outputs for n enterprises (the pre-credit ones None when only evaluating).

    Evaluation: probability, score, the model's grade and the grade after overrides, every feature's
    points and the base points. Default model: probability, points, base. Amount model: the estimate
    in CNY, every feature's share of the log amount, the base.
    """

    probability: np.ndarray
    score: np.ndarray
    model_grade: np.ndarray
    grade: np.ndarray
    points: np.ndarray
    base: np.ndarray
    default_probability: np.ndarray | None = None
    default_points: np.ndarray | None = None
    default_base: np.ndarray | None = None
    amount_estimate: np.ndarray | None = None
    amount_shap: np.ndarray | None = None
    amount_base: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.probability)

    @property
    def has_pre_credit(self) -> bool:
        return self.default_probability is not None and self.amount_estimate is not None

    def take(self, rows: Sequence[int] | np.ndarray) -> Outputs:
        """The outputs of ``rows``, in that order."""
        index = np.asarray(rows, dtype=np.int64)
        taken: dict[str, Any] = {f.name: _take(getattr(self, f.name), index) for f in fields(self)}
        return Outputs(**taken)

    def same_as(self, other: Outputs) -> bool:
        """Whether both hold the very same numbers and grades (NaN equal to NaN), bit for bit."""
        return all(_same(getattr(self, f.name), getattr(other, f.name)) for f in fields(self))


def _take(column: np.ndarray | None, index: np.ndarray) -> np.ndarray | None:
    return None if column is None else column[index]


def _same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if a.dtype.kind == "f" or b.dtype.kind == "f":
        return a.shape == b.shape and bool(np.array_equal(a.astype(np.float64), b.astype(np.float64), equal_nan=True))
    return a.shape == b.shape and bool(np.array_equal(a.astype(str), b.astype(str)))


def explain(models: ModelSet, rows: Sequence[Mapping[str, Any]], *, pre_credit: bool) -> Outputs:
    """One TreeSHAP pass per model over ``rows`` (the evaluation's, and with ``pre_credit`` the
    default and amount models' too). Each row's numbers are those of that row alone, bit for bit:
    the booster predicts row by row, and every NumPy step here is per row (a test holds it)."""
    scorer = models.evaluation_scorer
    prob, score, model_grade, grade, points, base = scorer.explained(scorer.rows(rows))
    evaluation = {
        "probability": prob,
        "score": score,
        "model_grade": model_grade,
        "grade": grade,
        "points": points,
        "base": base,
    }
    if not pre_credit:
        return Outputs(**evaluation)
    assert models.default is not None and models.amount is not None
    default, amount = models.default.scorer, models.amount.scorer
    assert isinstance(default, Scorer) and isinstance(amount, AmountScorer)
    d_prob, _, _, _, d_points, d_base = default.explained(default.rows(rows))
    estimate, a_shap, a_base = amount.explained(amount.rows(rows))
    return Outputs(
        **evaluation,
        default_probability=d_prob,
        default_points=d_points,
        default_base=d_base,
        amount_estimate=estimate,
        amount_shap=a_shap,
        amount_base=a_base,
    )
