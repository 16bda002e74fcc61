"""Every enterprise of a snapshot graded at once: the rows `scoring score` writes, on either engine.

Pure: feature rows and the loaded champions in, one row of decisions out per enterprise, made by
the functions that make a served decision (the scorer's one TreeSHAP pass, the reasons, the limit
policy). A row holds the evaluation (probability, score, grade, the model's grade before overrides,
the base points and every feature's points), the top reasons in Chinese, and, when the 信易贷
models are served, the default probability, the amount estimate, the pre-credit limit and the
decision with the default model's points and base, and the amount model's shares of the log amount
and its base: every number a served decision is made from (``scoring.domain.outputs``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd

from scoring.domain.decide import TOP_REASONS, clean, number
from scoring.domain.models import ModelSet
from scoring.domain.policy import decide_limit
from scoring.domain.reasons import ranked_reasons
from scoring.domain.scorer import AmountScorer, Scorer
from scoring.features.catalog import Catalog

SCORES_TABLE = "scores"  # the warehouse table, and the Parquet folder, of the graded rows
SHAP = "shap__"  # the evaluation's points of a feature: shap__<feature>
DEFAULT_SHAP = "default_shap__"  # the 信易贷 default model's points
AMOUNT_SHAP = "amount_shap__"  # the amount model's contribution to the log amount


class _Row(Mapping[str, Any]):
    """One row's feature values as a served decision reads them (``clean``ed), read when asked:
    a reason reads a handful of the 130-odd columns, and making every row's dict took a fifth of a
    batch's Python time."""

    __slots__ = ("_columns", "_i")

    def __init__(self, columns: dict[str, np.ndarray], i: int) -> None:
        self._columns, self._i = columns, i

    def __getitem__(self, name: str) -> Any:
        return clean(self._columns[name][self._i])

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)


def _rows(frame: pd.DataFrame) -> list[_Row]:
    """Each row as a mapping; numbers and booleans as NumPy columns, other columns as Python objects
    (a date stays a date, as ``to_dict`` gives it)."""
    columns = {
        str(c): frame[c].to_numpy() if frame[c].dtype.kind in "fiub" else frame[c].to_numpy(dtype=object)
        for c in frame.columns
    }
    return [_Row(columns, i) for i in range(len(frame))]


def _reasons(
    points: np.ndarray, names: list[str], catalog: Catalog, rows: list[_Row], *, top: int, **kw: Any
) -> list[str]:
    """Each row's reason texts as JSON. The ranking is ``reasons_from``'s for every row at once: a
    stable sort by descending absolute points, so ties keep the model's feature order as there."""
    order = np.argsort(-np.abs(points), axis=1, kind="stable")[:, :top]
    return [
        json.dumps(
            [
                r.text_zh
                for r in ranked_reasons([(names[j], float(points[i, j])) for j in order[i]], catalog, row, **kw)
            ],
            ensure_ascii=False,
        )
        for i, row in enumerate(rows)
    ]


def grade_frame(models: ModelSet, catalog: Catalog, frame: pd.DataFrame, *, top: int = TOP_REASONS) -> pd.DataFrame:
    """The decisions of every row of ``frame`` (a snapshot's rows: uscc, as_of and the features)."""
    scorer = models.evaluation_scorer
    names = scorer.config.features
    rows = _rows(frame)
    prob, score, model_grade, grade, points, base = scorer.explained(scorer.matrix(frame))
    out = pd.DataFrame(
        {
            "uscc": frame["uscc"].to_numpy(),
            "as_of": frame["as_of"].to_numpy(),
            "evaluation_version": models.evaluation.version,
            "probability": prob,
            "score": score.astype("int64"),
            "grade": grade.astype(str),
            "grade_label_zh": [scorer.grade_label(str(g)) for g in grade],
            "model_grade": model_grade.astype(str),
            "base_points": base,
            "reasons_zh": _reasons(points, names, catalog, rows, top=top),
        }
    )
    columns = {f"{SHAP}{n}": points[:, j] for j, n in enumerate(names)}
    if models.pre_credit_ready:
        columns.update(_pre_credit(models, catalog, frame, rows, grade, out, top=top))
    return pd.concat([out, pd.DataFrame(columns, index=out.index)], axis=1)


def _pre_credit(
    models: ModelSet,
    catalog: Catalog,
    frame: pd.DataFrame,
    rows: list[_Row],
    grade: np.ndarray,
    out: pd.DataFrame,
    *,
    top: int,
) -> dict[str, np.ndarray]:
    """Adds the limit and decision columns to ``out``; returns the two models' per-feature columns."""
    assert models.default is not None and models.amount is not None and models.policy is not None
    default, amount, policy = models.default.scorer, models.amount.scorer, models.policy
    assert isinstance(default, Scorer) and isinstance(amount, AmountScorer)
    d_prob, _, _, _, d_points, d_base = default.explained(default.matrix(frame))
    estimate, a_shap, a_base = amount.explained(amount.matrix(frame))
    decisions = [
        decide_limit(
            policy,
            amount_estimate=float(estimate[i]),
            default_probability=float(d_prob[i]),
            grade=str(grade[i]),
            features={n: number(row.get(n)) for n in policy.features},
        )
        for i, row in enumerate(rows)
    ]
    out["default_version"] = models.default.version
    out["amount_version"] = models.amount.version
    out["default_probability"] = d_prob
    out["default_base_points"] = d_base
    out["amount_estimate"] = estimate
    out["amount_base"] = a_base
    out["pre_credit_limit"] = [d.pre_credit_limit for d in decisions]
    out["decision"] = [d.decision for d in decisions]
    out["decision_zh"] = [d.decision_zh for d in decisions]
    d_names, a_names = default.config.features, amount.config.features
    out["default_reasons_zh"] = _reasons(
        d_points, d_names, catalog, rows, top=top, effect_zh=("提高违约风险", "降低违约风险"), amounts=False
    )
    columns = {f"{DEFAULT_SHAP}{n}": d_points[:, j] for j, n in enumerate(d_names)}
    columns.update({f"{AMOUNT_SHAP}{n}": a_shap[:, j] for j, n in enumerate(a_names)})
    return columns
