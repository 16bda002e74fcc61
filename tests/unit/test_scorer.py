import math

import numpy as np

from scoring.domain.scorer import ScoreScaling


def test_points_to_double_odds() -> None:
    s = ScoreScaling(base_score=600, base_odds=20, pdo=80)
    score = lambda good_bad_odds: s.offset + s.factor * math.log(good_bad_odds)  # noqa: E731
    assert np.isclose(score(20), 600)
    assert np.isclose(score(40) - score(20), 80)
    assert np.isclose(score(10) - score(20), -80)
