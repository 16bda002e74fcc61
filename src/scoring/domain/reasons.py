"""Reasons in Chinese: TreeSHAP points per feature, rendered with the enterprise's own values.

The contributions come from the booster itself (``pred_contrib=True``, the TreeSHAP that
``shap.TreeExplainer`` also computes), scaled to score points by the scorer, so the base
points plus every feature's points add up to the score.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from scoring.domain.scorer import Scorer
from scoring.features.catalog import Catalog, Feature


@dataclass(frozen=True)
class Reason:
    feature: str
    label_zh: str
    value: float | str | None
    points: float  # score points; negative = raises the risk (lowers the score)
    text_zh: str

    @property
    def effect(self) -> str:
        return "raises_risk" if self.points < 0 else "lowers_risk"


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def render(feature: Feature, values: Mapping[str, Any]) -> str:
    """The feature's reason text with the enterprise's values filled in."""
    value = values.get(feature.name)
    if _missing(value):
        return feature.missing_template or f"{feature.label_zh}：无记录"
    if feature.absent_template and not feature.is_categorical and value == 0:
        return feature.absent_template
    names = feature.template_names() - {"value", "label"}
    if any(_missing(values.get(n)) for n in names):
        return feature.missing_template or f"{feature.label_zh}：无记录"
    label = value if isinstance(value, str) else (feature.value_labels or {}).get(int(float(str(value))), str(value))
    return feature.reason_template.format(value=value, label=label, **{n: values[n] for n in names})


def reasons_from(
    points: dict[str, float],
    catalog: Catalog,
    values: Mapping[str, Any],
    *,
    top: int = 5,
    effect_zh: tuple[str, str] = ("降低评分", "提高评分"),
    amounts: bool = True,
) -> list[Reason]:
    """The ``top`` reasons by absolute points, rendered with the enterprise's values.

    Args:
        points: every feature's contribution in points (negative raises the risk).
        catalog: the feature catalog (labels and templates).
        values: the enterprise's feature values.
        top: how many reasons.
        effect_zh: the words for a negative and a positive contribution.
        amounts: say how many points, as "（降低评分12分）"; else only the direction.
    """
    ranked = sorted(points.items(), key=lambda kv: -abs(kv[1]))[:top]  # stable: ties keep model order
    return ranked_reasons(ranked, catalog, values, effect_zh=effect_zh, amounts=amounts)


def ranked_reasons(
    ranked: Iterable[tuple[str, float]],
    catalog: Catalog,
    values: Mapping[str, Any],
    *,
    effect_zh: tuple[str, str] = ("降低评分", "提高评分"),
    amounts: bool = True,
) -> list[Reason]:
    """The reasons of features already ranked (name, points), rendered with the enterprise's values."""
    reasons = []
    for name, pts in ranked:
        feature = catalog.feature(name)
        effect = effect_zh[0] if pts < 0 else effect_zh[1]
        suffix = f"（{effect}{abs(pts):.0f}分）" if amounts else f"（{effect}）"
        reasons.append(
            Reason(
                feature=name,
                label_zh=feature.label_zh,
                value=None if _missing(values.get(name)) else values.get(name),
                points=round(pts, 1),
                text_zh=render(feature, values) + suffix,
            )
        )
    return reasons


def explain(
    scorer: Scorer, catalog: Catalog, values: dict[str, Any], x_row: np.ndarray, *, top: int = 5
) -> tuple[list[Reason], float, dict[str, float]]:
    """(top reasons by absolute points, base points, points of every model feature) for one row."""
    points, base = scorer.contributions(x_row.reshape(1, -1))
    per_feature = {name: float(points[0, j]) for j, name in enumerate(scorer.config.features)}
    return reasons_from(per_feature, catalog, values, top=top), float(base[0]), per_feature
