"""The scorer called directly: margin -> calibrated log-odds -> 0-1000 score -> grade -> overrides.

Tiny LightGBM boosters on seeded synthetic data (300 rows, 10 trees); the score scaling, grade
bands and overrides are the repository's own (models/credit_evaluation.yaml).
"""

import math
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import yaml

from scoring.domain.scorer import (
    AmountConfig,
    AmountScorer,
    Calibration,
    GradeBand,
    Override,
    Scorer,
    ScorerConfig,
    ScoreScaling,
    encode_matrix,
    encode_values,
)

REPO = Path(__file__).resolve().parents[2]
FEATURES = ["penalty_count_12m", "tax_sales_12m", "industry", "serious_list_active"]
INDUSTRIES = ["C", "F", "I"]
CATEGORIES = {"industry": INDUSTRIES}
PARAMS = {
    "num_leaves": 7,
    "min_data_in_leaf": 10,
    "learning_rate": 0.3,
    "seed": 7,
    "deterministic": True,
    "force_row_wise": True,
    "num_threads": 1,
    "verbosity": -1,
}


def test_points_to_double_odds() -> None:
    s = ScoreScaling(base_score=600, base_odds=20, pdo=80)
    score = lambda good_bad_odds: s.offset + s.factor * math.log(good_bad_odds)  # noqa: E731
    assert np.isclose(score(20), 600)
    assert np.isclose(score(40) - score(20), 80)
    assert np.isclose(score(10) - score(20), -80)


# ---------------------------------------------------------------------------- fixtures
def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    industry = rng.choice(np.array(INDUSTRIES, dtype=object), size=n)
    industry[rng.random(n) < 0.1] = None
    sales = rng.lognormal(14, 1, size=n)
    sales[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame(
        {
            "penalty_count_12m": rng.poisson(1.0, size=n).astype(float),
            "tax_sales_12m": sales,
            "industry": industry,
            "serious_list_active": (rng.random(n) < 0.05).astype(float),
        }
    )


def _spec() -> dict:
    return yaml.safe_load((REPO / "models" / "credit_evaluation.yaml").read_text(encoding="utf-8"))


def _config(**update) -> ScorerConfig:
    spec = _spec()
    config = ScorerConfig(
        model_name="credit_evaluation",
        features=FEATURES,
        labels_zh={n: n for n in FEATURES},
        categories=CATEGORIES,
        monotone={"penalty_count_12m": 1, "tax_sales_12m": -1, "industry": 0, "serious_list_active": 1},
        calibration=Calibration(intercept=-0.4, slope=0.9),
        score=ScoreScaling(**spec["score"]),
        grades=[GradeBand(**g) for g in spec["grades"]],
        overrides=[Override(**o) for o in spec["overrides"]],
        lineage={},
    )
    return config.model_copy(update=update)


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return _frame(300, seed=7)


@pytest.fixture(scope="module")
def booster(data: pd.DataFrame) -> lgb.Booster:
    x = encode_matrix(data, FEATURES, CATEGORIES)
    rng = np.random.default_rng(8)
    logit = -2.0 + 0.9 * data["penalty_count_12m"] - 0.5 * (np.log(data["tax_sales_12m"].fillna(1e6)) - 14)
    y = (rng.random(len(data)) < 1 / (1 + np.exp(-logit))).astype(float)
    train = lgb.Dataset(x, y, feature_name=FEATURES, categorical_feature=["industry"])
    return lgb.train({**PARAMS, "objective": "binary"}, train, num_boost_round=10)


@pytest.fixture(scope="module")
def scorer(booster: lgb.Booster) -> Scorer:
    return Scorer(booster, _config())


# ---------------------------------------------------------------------------- config checks
def test_a_scorer_refuses_a_non_positive_slope_or_other_features(booster: lgb.Booster) -> None:
    with pytest.raises(ValueError, match="slope must be positive"):
        Scorer(booster, _config(calibration=Calibration(intercept=0.0, slope=-0.5)))
    with pytest.raises(ValueError, match="features differ"):
        Scorer(booster, _config(features=list(reversed(FEATURES))))


# ---------------------------------------------------------------------------- encoding
def test_missing_values_and_unknown_categories_are_encoded_as_nan() -> None:
    frame = pd.DataFrame(
        {
            "penalty_count_12m": [2.0, None, np.nan],
            "tax_sales_12m": [1e6, 5e5, None],
            "industry": ["F", "Z", None],  # Z is no known industry: treated as missing
            "serious_list_active": [1.0, 0.0, None],
        }
    )
    expected = np.array([[2.0, 1e6, 1.0, 1.0], [np.nan, 5e5, np.nan, 0.0], [np.nan, np.nan, np.nan, np.nan]])
    np.testing.assert_array_equal(encode_matrix(frame, FEATURES, CATEGORIES), expected)
    for i, row in enumerate(frame.to_dict(orient="records")):
        np.testing.assert_array_equal(encode_values(row, FEATURES, CATEGORIES), expected[i : i + 1])
    # a feature absent from the values is missing too
    np.testing.assert_array_equal(encode_values({}, FEATURES, CATEGORIES), np.full((1, 4), np.nan))


def test_a_category_is_its_position_in_the_known_list() -> None:
    frame = pd.DataFrame({"industry": ["I", "C", "F"]})
    np.testing.assert_array_equal(encode_matrix(frame, ["industry"], CATEGORIES), [[2.0], [0.0], [1.0]])
    assert encode_values({"industry": "I"}, ["industry"], CATEGORIES)[0, 0] == 2.0


# ---------------------------------------------------------------------------- score and points
def test_the_score_follows_points_to_double_odds_from_the_calibrated_log_odds(scorer: Scorer) -> None:
    s = scorer.config.score
    # good:bad odds of base_odds is base_score; doubling them adds pdo points
    at_base = scorer.score_from_logit(np.array([-math.log(s.base_odds), -math.log(2 * s.base_odds)]))
    np.testing.assert_array_equal(at_base, [s.base_score, s.base_score + s.pdo])
    x = scorer.matrix(_frame(50, seed=3))
    c = scorer.config.calibration
    logit = c.intercept + c.slope * scorer.booster.predict(x, raw_score=True)
    np.testing.assert_allclose(scorer.probability(x), 1 / (1 + np.exp(-logit)), rtol=1e-12)
    np.testing.assert_array_equal(scorer.decide(x)["score"], np.clip(np.round(s.offset - s.factor * logit), 0, 1000))


def test_every_feature_s_points_plus_the_base_add_up_to_the_unclipped_score(scorer: Scorer) -> None:
    x = scorer.matrix(_frame(50, seed=4))
    points, base = scorer.contributions(x)
    assert points.shape == (50, len(FEATURES)) and base.shape == (50,)
    s = scorer.config.score
    unclipped = s.offset - s.factor * scorer.logit(x)
    np.testing.assert_allclose(base + points.sum(axis=1), unclipped, rtol=0, atol=1e-9)
    _, score, _, _, e_points, e_base = scorer.explained(x)
    np.testing.assert_allclose(e_points, points, rtol=0, atol=1e-12)
    np.testing.assert_allclose(e_base, base, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(score, np.round(unclipped))  # none clipped at these odds
    # the booster's own margin has its SHAP sign flipped into points: risk up is points down
    raw = scorer.booster.predict(x, pred_contrib=True)[:, :-1]
    assert np.all(np.sign(points) == -np.sign(raw))


def test_the_score_is_clipped_to_min_and_max_while_the_points_still_add_up(booster: lgb.Booster) -> None:
    x = encode_matrix(_frame(20, seed=5), FEATURES, CATEGORIES)
    for intercept, bound in ((-30.0, 1000.0), (30.0, 0.0)):
        scorer = Scorer(booster, _config(calibration=Calibration(intercept=intercept, slope=1.0)))
        _, score, _, _, points, base = scorer.explained(x)
        assert np.all(score == bound)
        unclipped = base + points.sum(axis=1)
        assert np.all(unclipped > 1000) if bound == 1000 else np.all(unclipped < 0)
    narrow = Scorer(booster, _config(score=ScoreScaling(base_score=600, base_odds=20, pdo=80, min=300, max=850)))
    wide = np.array([-40.0, -5.0, 0.0, 2.0, 40.0])
    scores = narrow.score_from_logit(wide)
    assert scores.min() == 300 and scores.max() == 850
    assert np.all(np.diff(scores) <= 0)  # more risk, never a higher score


# ---------------------------------------------------------------------------- grades and overrides
def test_grades_follow_the_bands_from_the_best_and_a_higher_score_never_gets_a_worse_grade(scorer: Scorer) -> None:
    bands = _spec()["grades"]
    order = [b["grade"] for b in bands]
    assert order == ["A", "B", "C", "D"]
    scores = np.arange(0, 1001, dtype=float)
    grades = scorer.grades(scores)
    rank = np.array([order.index(g) for g in grades])
    assert np.all(np.diff(rank) <= 0)
    for b in bands[:-1]:
        at, below = scorer.grades(np.array([b["min_score"], b["min_score"] - 1.0]))
        assert at == b["grade"] and below != b["grade"]
    # the bands are read by their min_score, not by the order they are listed in
    shuffled = Scorer(scorer.booster, _config(grades=[GradeBand(**b) for b in reversed(bands)]))
    np.testing.assert_array_equal(shuffled.grades(scores), grades)
    assert scorer.grade_label("A") == "优" and scorer.grade_label("D") == "差"


def test_an_enterprise_on_the_serious_list_is_d_whatever_the_model_says_and_it_is_reported(
    booster: lgb.Booster,
) -> None:
    # an intercept this low puts every enterprise far above the A band
    scorer = Scorer(booster, _config(calibration=Calibration(intercept=-30.0, slope=1.0)))
    rows = [
        {"penalty_count_12m": 0.0, "tax_sales_12m": 2e6, "industry": "C", "serious_list_active": 1.0},
        {"penalty_count_12m": 0.0, "tax_sales_12m": 2e6, "industry": "C", "serious_list_active": 0.0},
        {"penalty_count_12m": 0.0, "tax_sales_12m": 2e6, "industry": "C", "serious_list_active": None},
    ]
    x = scorer.matrix(pd.DataFrame(rows))
    decided = scorer.decide(x)
    assert list(decided["model_grade"]) == ["A", "A", "A"]
    assert list(decided["grade"]) == ["D", "A", "A"]
    assert decided["score"].iloc[0] == decided["score"].iloc[1]  # the override leaves the score alone
    (hit,) = scorer.overrides_for(x[0])
    assert hit.rule == "serious_dishonesty_list" and hit.grade == "D" and "严重失信" in hit.reason_zh
    assert scorer.overrides_for(x[1]) == [] and scorer.overrides_for(x[2]) == []
    assert scorer.overrides_of(rows) == [scorer.overrides_for(row) for row in x]  # its features alone read


def test_an_override_never_improves_a_grade(booster: lgb.Booster) -> None:
    to_c = Override(rule="watch", feature="serious_list_active", grade="C", reason_zh="关注名单")
    # an intercept this high puts every enterprise at score 0, grade D
    scorer = Scorer(booster, _config(calibration=Calibration(intercept=30.0, slope=1.0), overrides=[to_c]))
    x = scorer.vector({"penalty_count_12m": 5.0, "tax_sales_12m": 1e5, "industry": "F", "serious_list_active": 1.0})
    decided = scorer.decide(x)
    assert decided["model_grade"].iloc[0] == "D" and decided["grade"].iloc[0] == "D"


# ---------------------------------------------------------------------------- one row or a batch
def test_one_row_scored_alone_equals_the_same_row_in_a_batch_bit_for_bit(scorer: Scorer) -> None:
    frame = _frame(40, seed=6)
    batch = scorer.explained(scorer.matrix(frame))
    for i, values in enumerate(frame.to_dict(orient="records")):
        alone = scorer.explained(scorer.vector(values))
        for whole, one in zip(batch, alone, strict=True):
            np.testing.assert_array_equal(one, whole[i : i + 1])
    np.testing.assert_array_equal(scorer.decide(scorer.matrix(frame.iloc[[7]]))["score"], batch[1][7:8])


# ---------------------------------------------------------------------------- the amount model
@pytest.fixture(scope="module")
def amount_scorer(data: pd.DataFrame) -> AmountScorer:
    features = ["tax_sales_12m", "penalty_count_12m", "industry"]
    x = encode_matrix(data, features, CATEGORIES)
    rng = np.random.default_rng(9)
    log_amount = 0.7 * np.log(data["tax_sales_12m"].fillna(1e6)) + 3 - 0.1 * data["penalty_count_12m"]
    y = log_amount + rng.normal(0, 0.3, size=len(data))
    train = lgb.Dataset(x, y, feature_name=features, categorical_feature=["industry"])
    booster = lgb.train({**PARAMS, "objective": "quantile", "alpha": 0.3}, train, num_boost_round=10)
    config = AmountConfig(
        model_name="pre_credit_amount",
        features=features,
        labels_zh={n: n for n in features},
        categories=CATEGORIES,
        objective="quantile",
        alpha=0.3,
        lineage={},
    )
    return AmountScorer(booster, config)


def test_the_amount_is_exp_of_the_log_margin_and_its_shap_adds_up_on_the_log_scale(
    amount_scorer: AmountScorer,
) -> None:
    x = amount_scorer.matrix(_frame(30, seed=10))
    log_margin = amount_scorer.booster.predict(x, raw_score=True)
    amount = amount_scorer.amount(x)
    np.testing.assert_allclose(amount, np.exp(log_margin), rtol=1e-12)
    shap, base = amount_scorer.contributions(x)
    np.testing.assert_allclose(base + shap.sum(axis=1), log_margin, rtol=0, atol=1e-9)
    estimate, e_shap, e_base = amount_scorer.explained(x)
    np.testing.assert_allclose(estimate, amount, rtol=1e-9)
    np.testing.assert_allclose(e_shap, shap, rtol=0, atol=1e-12)
    np.testing.assert_allclose(e_base, base, rtol=0, atol=1e-12)


def test_the_amount_scorer_refuses_a_booster_with_other_features(amount_scorer: AmountScorer) -> None:
    config = amount_scorer.config.model_copy(update={"features": ["tax_sales_12m", "industry", "penalty_count_12m"]})
    with pytest.raises(ValueError, match="features differ"):
        AmountScorer(amount_scorer.booster, config)


def test_rows_encoded_a_column_at_a_time_equal_each_row_encoded_alone() -> None:
    """encode_rows is encode_values of every row, stacked: NaN where missing, a category's first place."""
    from scoring.domain.scorer import encode_rows, encode_values

    features = ["a", "b", "kind", "flag"]
    categories = {"kind": ["x", "y", "x", "z"]}
    rows = [
        {"a": 1.5, "b": 2, "kind": "y", "flag": True},
        {"a": float("nan"), "b": None, "kind": "x", "flag": False},
        {"a": -0.0, "kind": "unknown", "flag": 1},
        {"a": 1e300, "b": 7, "kind": None},
        {},
    ]
    many = encode_rows(rows, features, categories)
    alone = np.vstack([encode_values(r, features, categories) for r in rows])
    assert many.shape == (5, 4) and many.tobytes() == alone.tobytes()  # bit for bit, NaNs and -0.0 included
    assert many[0, 2] == 1.0 and many[1, 2] == 0.0 and np.isnan(many[2, 2])
