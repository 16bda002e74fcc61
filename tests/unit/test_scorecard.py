"""The additive scorecard of a flat table and the scorer's additive terms, called directly."""

import numpy as np
import pytest
from pydantic import ValidationError

from scoring.domain.scorer import AdditiveTerms, BinnedTerm
from scoring.training.scorecard import AdditiveScorecard, category_woe, rank_normal_knots


def test_each_kind_of_term_maps_a_column() -> None:
    column = np.array([-1.0, 0.0, 0.5, 2.0, 9.0, np.nan])
    steps = BinnedTerm(feature="a", kind="steps", edges=[0.0, 2.0], values=[1, 2, 3], missing=-5, center=0)
    assert steps.of(column).tolist() == [1, 2, 2, 3, 3, -5]  # a value at an edge falls in the bin above
    line = BinnedTerm(feature="a", kind="interpolated", edges=[0.0, 2.0], values=[0, 4], missing=7, center=0)
    assert line.of(column).tolist() == [0, 0, 1, 4, 4, 7]  # flat beyond the ends
    cats = BinnedTerm(feature="c", kind="category", edges=[], values=[0.1, 0.2], missing=0.5, center=0)
    assert cats.of(np.array([0.0, 1.0, 2.0, np.nan])).tolist() == [0.1, 0.2, 0.5, 0.5]  # unknown code 2
    with pytest.raises(ValidationError, match="values"):
        BinnedTerm(feature="a", kind="steps", edges=[0.0], values=[1.0], missing=0, center=0)


def test_terms_add_up_per_feature() -> None:
    x = np.array([[0.0, 1.0], [2.0, np.nan]])
    terms = AdditiveTerms(
        booster_weight=0.5,
        intercept=0.1,
        terms=[BinnedTerm(feature="b", kind="interpolated", edges=[0, 2], values=[0, 1], missing=3, center=1)],
    )
    assert terms.values(x, ["a", "b"]).tolist() == [[0.0, 0.5], [0.0, 3.0]]  # no term for a: zero
    assert terms.center == 1


def test_rank_normal_scores_are_monotone_and_centred() -> None:
    values = np.random.default_rng(0).lognormal(10, 2, 5000)  # a skewed amount
    knots, scores = rank_normal_knots(values, 100)
    assert np.all(np.diff(knots) > 0) and np.all(np.diff(scores) > 0)
    assert abs(np.median(np.interp(values, knots, scores))) < 0.05


def test_category_woe_shrinks_a_rare_level_towards_the_overall_rate() -> None:
    codes = np.array([0.0] * 200 + [1.0] * 200 + [2.0] * 2 + [np.nan] * 10)
    y = np.array([1] * 100 + [0] * 100 + [1] * 20 + [0] * 180 + [1, 1] + [0] * 10, dtype=float)
    woe, missing = category_woe(codes, y, 3, smoothing=10)
    assert woe[0] > 0 > woe[1]  # half bad against a tenth bad
    assert 0 < woe[2] < woe[0]  # two bad rows of two: shrunk, not infinite
    assert missing < 0


def test_the_scorecard_keeps_the_informative_columns_and_leaves_noise_out() -> None:
    rng = np.random.default_rng(3)
    n = 3000
    x = rng.normal(size=(n, 6))
    x[rng.random(n) < 0.1, 2] = np.nan
    missing = np.isnan(x[:, 2])
    logit = 1.2 * x[:, 0] - 0.8 * np.exp(x[:, 1]) / 2 + 1.5 * missing - 1.5
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    card = AdditiveScorecard([f"f{j}" for j in range(6)], {}).fit(x, y)
    kept = {(card.features[i.feature], i.kind) for i in card.inputs_}
    assert {("f0", "score"), ("f1", "score"), ("f2", "missing")} <= kept
    assert not kept & {("f3", "score"), ("f4", "score"), ("f5", "score")}
    terms = card.additive(weight=1.0, booster_weight=0.0, x=x)
    margin = terms.intercept + terms.values(x, card.features).sum(axis=1)
    np.testing.assert_allclose(margin, card.margin(x), atol=1e-9)  # the terms are the scorecard
