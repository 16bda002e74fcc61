"""The scorer: a LightGBM booster plus what turns its margin into a decision.

Margin -> Platt-calibrated log-odds of an adverse event -> probability -> 0-1000 score by
points-to-double-odds -> grade A/B/C/D by bands -> policy overrides. Because calibration is
linear in the margin, TreeSHAP contributions from the booster stay additive all the way to the
score: each feature's contribution in score points is ``-factor * slope * shap``.

A model of a flat table may add a WOE scorecard to the booster (:class:`AdditiveTerms`): the
margin is then ``booster_weight * booster margin + intercept + sum of one step function per
feature``. Each step function depends on one feature only, so it is that feature's exact
contribution, and the explanation stays exact: the points of all features add up to the score.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator


def _predict(booster: lgb.Booster, x: np.ndarray, num_threads: int | None, **kwargs: Any) -> np.ndarray:
    if num_threads is not None:
        kwargs["num_threads"] = num_threads
    return np.asarray(booster.predict(x, **kwargs))


# The server predicts on the calling thread (``num_threads = SERVING_THREADS`` on every scorer it
# loads). Many request threads call predict at once, and each would get an OpenMP team of its own
# spinning on the same two cores: at 64 concurrent requests that tripled a decision's CPU time,
# mostly system time. It is one value for every call of the process: LightGBM 4 keeps the thread
# count of the latest call in a process-wide variable, so calls with different counts at once race.
SERVING_THREADS = 1


class ScoreScaling(BaseModel):
    """Points to double the odds: ``score = offset + factor * ln(good:bad odds)``."""

    model_config = ConfigDict(extra="forbid")

    base_score: float
    base_odds: float
    pdo: float
    min: float = 0
    max: float = 1000

    @property
    def factor(self) -> float:
        return self.pdo / math.log(2)

    @property
    def offset(self) -> float:
        return self.base_score - self.factor * math.log(self.base_odds)


class GradeBand(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grade: str
    label_zh: str
    min_score: float


class Override(BaseModel):
    """A policy rule that forces a grade when a (binary) feature is set."""

    model_config = ConfigDict(extra="forbid")

    rule: str
    feature: str
    grade: str
    reason_zh: str


class Calibration(BaseModel):
    """Platt scaling: ``logit(p) = intercept + slope * margin``."""

    model_config = ConfigDict(extra="forbid")

    intercept: float
    slope: float


class BinnedTerm(BaseModel):
    """One feature's function in margin units: a scorecard's points for that feature.

    ``steps``: a number falls in bin ``searchsorted(edges, x, side="right")`` of ``values`` (WOE
    bins); ``interpolated``: linear between the points (``edges[k]``, ``values[k]``), flat beyond
    the ends; ``category``: a category's code indexes ``values``. Missing values and unknown
    categories get ``missing``. ``center`` is the term's mean over the training rows: an
    explanation counts a feature's points from it, so that a typical value carries none.
    """

    model_config = ConfigDict(extra="forbid")

    feature: str
    kind: Literal["steps", "interpolated", "category"]
    edges: list[float]
    values: list[float]
    missing: float
    center: float

    @model_validator(mode="after")
    def _lengths(self) -> BinnedTerm:
        want = {"steps": len(self.edges) + 1, "interpolated": len(self.edges), "category": len(self.values)}[self.kind]
        if len(self.values) != want or (self.kind == "interpolated" and not self.edges):
            raise ValueError(
                f"term of {self.feature}: {len(self.values)} values for {len(self.edges)} {self.kind} edges"
            )
        return self

    def of(self, column: np.ndarray) -> np.ndarray:
        """The term's value for one encoded feature column."""
        known = ~np.isnan(column)
        values = np.asarray(self.values)
        if self.kind == "category":
            codes = np.where(known, column, -1).astype(np.int64)
            inside = known & (codes >= 0) & (codes < len(values))
            return np.where(inside, values[np.clip(codes, 0, max(len(values) - 1, 0))], self.missing)
        filled = np.where(known, column, self.edges[0] if self.edges else 0.0)
        if self.kind == "interpolated":
            return np.where(known, np.interp(filled, np.asarray(self.edges), values), self.missing)
        return np.where(known, values[np.searchsorted(np.asarray(self.edges), filled, side="right")], self.missing)


class AdditiveTerms(BaseModel):
    """A scorecard blended with the booster: ``margin = booster_weight * booster + intercept + sum(terms)``."""

    model_config = ConfigDict(extra="forbid")

    booster_weight: float = Field(ge=0)
    intercept: float
    terms: list[BinnedTerm]

    def values(self, x: np.ndarray, features: list[str]) -> np.ndarray:
        """Each term's value per row, in ``features`` order (zero for a feature without a term)."""
        out = np.zeros_like(x, dtype=np.float64)
        index = {name: j for j, name in enumerate(features)}
        for term in self.terms:
            j = index[term.feature]
            out[:, j] = term.of(x[:, j])
        return out

    @property
    def center(self) -> float:
        return float(sum(t.center for t in self.terms))


class ScorerConfig(BaseModel):
    """Everything besides the booster that a registered model needs to decide; stored as JSON."""

    model_config = ConfigDict(extra="forbid")

    model_name: str
    features: list[str]
    labels_zh: dict[str, str]
    categories: dict[str, list[str]]
    monotone: dict[str, int]
    calibration: Calibration
    score: ScoreScaling
    grades: list[GradeBand]
    overrides: list[Override]
    lineage: dict[str, Any]
    additive: AdditiveTerms | None = None


def encode_matrix(frame: pd.DataFrame, features: list[str], categories: dict[str, list[str]]) -> np.ndarray:
    """Feature rows as a float matrix in ``features`` order; a category becomes its code, unknown NaN."""
    out = np.empty((len(frame), len(features)), dtype=np.float64)
    for j, name in enumerate(features):
        cats = categories.get(name)
        if cats is not None:
            codes = pd.Categorical(frame[name], categories=cats).codes.astype(np.float64)
            codes[codes < 0] = np.nan
            out[:, j] = codes
        else:
            out[:, j] = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return out


def encode_values(values: dict[str, Any], features: list[str], categories: dict[str, list[str]]) -> np.ndarray:
    """One row of values as a 1 x k matrix by :func:`encode_matrix`'s rules, without a DataFrame."""
    row = np.empty((1, len(features)), dtype=np.float64)
    for j, name in enumerate(features):
        v = values.get(name)
        cats = categories.get(name)
        if cats is not None:
            row[0, j] = cats.index(v) if v in cats else np.nan
        else:
            row[0, j] = np.nan if v is None else float(v)
    return row


def encode_rows(rows: Sequence[Mapping[str, Any]], features: list[str], categories: dict[str, list[str]]) -> np.ndarray:
    """Many rows of values as an n x k matrix by :func:`encode_values`'s rules, a column at a time.

    The same numbers as stacking :func:`encode_values` of each row (a test holds it); a column
    built as a list and stored at once costs a fraction of an element stored at a time.
    """
    out = np.empty((len(rows), len(features)), dtype=np.float64)
    for j, name in enumerate(features):
        column = [row.get(name) for row in rows]
        cats = categories.get(name)
        if cats is not None:
            index: dict[Any, float] = {}
            for k, c in enumerate(cats):
                index.setdefault(c, float(k))  # the first place of a category, as list.index gives it
            out[:, j] = [index.get(v, np.nan) for v in column]
        else:
            out[:, j] = [np.nan if v is None else float(v) for v in column]
    return out


class Scorer:
    """Applies a booster and its config to feature rows. Built once per model version."""

    def __init__(self, booster: lgb.Booster, config: ScorerConfig):
        if config.calibration.slope <= 0:
            raise ValueError("calibration slope must be positive, or the score would not order risk")
        if list(booster.feature_name()) != config.features:
            raise ValueError("the booster's features differ from the scorer config's")
        self.booster = booster
        self.num_threads: int | None = None  # LightGBM's default (every core); see SERVING_THREADS
        self.config = config
        self._bands = sorted(config.grades, key=lambda g: -g.min_score)
        self._index = {name: i for i, name in enumerate(config.features)}
        if config.additive is not None:
            unknown = {t.feature for t in config.additive.terms} - set(config.features)
            if unknown:
                raise ValueError(f"additive terms of features the model does not have: {sorted(unknown)}")

    # ------------------------------------------------------------------ inputs
    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """Feature rows as the float matrix the booster takes (categories as their codes)."""
        return encode_matrix(frame, self.config.features, self.config.categories)

    def vector(self, values: dict[str, Any]) -> np.ndarray:
        """One enterprise's values as a 1 x k matrix, without building a DataFrame (the hot path)."""
        return encode_values(values, self.config.features, self.config.categories)

    def rows(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Many enterprises' values as an n x k matrix (requests decided together)."""
        return encode_rows(rows, self.config.features, self.config.categories)

    # ------------------------------------------------------------------ outputs
    def margin(self, x: np.ndarray) -> np.ndarray:
        raw = np.asarray(_predict(self.booster, x, self.num_threads, raw_score=True))
        add = self.config.additive
        if add is None:
            return raw
        return add.booster_weight * raw + add.intercept + add.values(x, self.config.features).sum(axis=1)

    def _margin_parts(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(per-feature margin contributions, base margin): TreeSHAP plus any additive terms,
        each term counted from its center; the parts add up to :meth:`margin` exactly."""
        raw = np.asarray(_predict(self.booster, x, self.num_threads, pred_contrib=True))
        add = self.config.additive
        if add is None:
            return raw[:, :-1], raw[:, -1]
        terms = add.values(x, self.config.features)
        centers = np.zeros(len(self.config.features))
        for term in add.terms:
            centers[self._index[term.feature]] = term.center
        parts = add.booster_weight * raw[:, :-1] + terms - centers
        return parts, add.booster_weight * raw[:, -1] + add.intercept + add.center

    def logit(self, x: np.ndarray) -> np.ndarray:
        c = self.config.calibration
        return c.intercept + c.slope * self.margin(x)

    def probability(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logit(x)))

    def score_from_logit(self, logit: np.ndarray) -> np.ndarray:
        s = self.config.score
        return np.clip(np.round(s.offset - s.factor * logit), s.min, s.max)

    def grades(self, scores: np.ndarray) -> np.ndarray:
        out = np.full(scores.shape, self._bands[-1].grade, dtype=object)
        for band in reversed(self._bands):
            out[scores >= band.min_score] = band.grade
        return out

    def overrides_for(self, x_row: np.ndarray) -> list[Override]:
        """The policy overrides that apply to one feature row."""
        hits = []
        for rule in self.config.overrides:
            value = x_row[self._index[rule.feature]]
            if not np.isnan(value) and value > 0:
                hits.append(rule)
        return hits

    def overrides_of(self, rows: Sequence[Mapping[str, Any]]) -> list[list[Override]]:
        """Each row's overrides (:meth:`overrides_for` of its encoded row), encoding only the features
        the overrides read: a decision whose numbers are stored needs no other."""
        names = list(dict.fromkeys(rule.feature for rule in self.config.overrides))
        x = encode_rows(rows, names, self.config.categories)
        at = {name: j for j, name in enumerate(names)}
        return [
            [rule for rule in self.config.overrides if not np.isnan(v := x[i, at[rule.feature]]) and v > 0]
            for i in range(len(rows))
        ]

    def decide_logit(self, logit: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(probability, score, model grade, final grade after overrides) from calibrated log-odds."""
        prob = 1.0 / (1.0 + np.exp(-logit))
        score = self.score_from_logit(logit)
        model_grade = self.grades(score)
        final = model_grade.copy()
        order = [b.grade for b in self._bands]
        for rule in self.config.overrides:
            col = x[:, self._index[rule.feature]]
            hit = np.nan_to_num(col) > 0
            worse = np.array([order.index(g) < order.index(rule.grade) for g in final], dtype=bool)
            final[hit & worse] = rule.grade
        return prob, score, model_grade, final

    def decide(self, x: np.ndarray) -> pd.DataFrame:
        """Probability, score, model grade and final grade (after overrides) per row."""
        prob, score, model_grade, final = self.decide_logit(self.logit(x), x)
        return pd.DataFrame({"probability": prob, "score": score, "model_grade": model_grade, "grade": final})

    def explained(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Decide and explain with one TreeSHAP pass (the serving path).

        The contributions sum to the margin, so one ``pred_contrib`` call gives both. Returns
        (probability, score, model grade, final grade, per-feature points, base points).
        """
        parts, base_margin = self._margin_parts(x)
        c, s = self.config.calibration, self.config.score
        logit = c.intercept + c.slope * (parts.sum(axis=1) + base_margin)
        prob, score, model_grade, final = self.decide_logit(logit, x)
        points = -s.factor * c.slope * parts
        base = s.offset - s.factor * (c.intercept + c.slope * base_margin)
        return prob, score, model_grade, final, points, base

    def contributions(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """TreeSHAP from the booster, in score points: (per-feature points, base points).

        ``base + sum(points)`` equals the unclipped score; a negative number of points
        means the feature raises the risk.
        """
        parts, base_margin = self._margin_parts(x)
        c, s = self.config.calibration, self.config.score
        points = -s.factor * c.slope * parts
        base = s.offset - s.factor * (c.intercept + c.slope * base_margin)
        return points, base

    def grade_label(self, grade: str) -> str:
        return next(b.label_zh for b in self._bands if b.grade == grade)


class AmountConfig(BaseModel):
    """What the 信易贷 amount model needs besides its booster; stored as JSON with the version."""

    model_config = ConfigDict(extra="forbid")

    model_name: str
    features: list[str]
    labels_zh: dict[str, str]
    categories: dict[str, list[str]]
    objective: str
    alpha: float | None
    lineage: dict[str, Any]


class AmountScorer:
    """The amount model: log of the amount lent and repaid by similar enterprises, back in CNY."""

    def __init__(self, booster: lgb.Booster, config: AmountConfig):
        if list(booster.feature_name()) != config.features:
            raise ValueError("the booster's features differ from the amount config's")
        self.booster = booster
        self.num_threads: int | None = None  # LightGBM's default (every core); see SERVING_THREADS
        self.config = config

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        return encode_matrix(frame, self.config.features, self.config.categories)

    def vector(self, values: dict[str, Any]) -> np.ndarray:
        return encode_values(values, self.config.features, self.config.categories)

    def rows(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        return encode_rows(rows, self.config.features, self.config.categories)

    def explained(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(amount in CNY, per-feature TreeSHAP on the log scale, base) from one TreeSHAP pass."""
        raw = np.asarray(_predict(self.booster, x, self.num_threads, pred_contrib=True))
        return np.exp(raw.sum(axis=1)), raw[:, :-1], raw[:, -1]

    def log_amount(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(_predict(self.booster, x, self.num_threads))

    def amount(self, x: np.ndarray) -> np.ndarray:
        """The estimate in CNY (the model's quantile of the amount, or exp of the mean log)."""
        return np.exp(self.log_amount(x))

    def contributions(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """TreeSHAP on the log scale: (per-feature, base); ``exp(base + sum)`` is the amount."""
        raw = np.asarray(_predict(self.booster, x, self.num_threads, pred_contrib=True))
        return raw[:, :-1], raw[:, -1]
