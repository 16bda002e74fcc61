"""The validation report's figures on inputs whose answer is known."""

import numpy as np
import pandas as pd

from scoring.training.report import amount_metrics, decile_table, grades_ordered, psi


def test_psi_is_zero_for_the_same_scores_and_large_for_a_shift() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(600, 50, 20_000)
    assert psi(a, a) == 0
    assert psi(a, rng.normal(600, 50, 20_000)) < 0.01
    assert psi(a, a + 50) > 0.25
    assert psi(np.full(50, 5.0), np.full(9, 5.0)) == 0 and psi(np.full(50, 5.0), np.array([5.0, 6.0])) == float("inf")


def test_deciles_put_the_riskiest_first_and_capture_every_bad() -> None:
    p = np.linspace(0.01, 0.5, 1000)
    y = (np.random.default_rng(1).random(1000) < p).astype(int)
    table = decile_table(y, p)
    assert len(table) == 10 and table["n"].sum() == 1000
    assert table["mean_probability"].is_monotonic_decreasing and table["lift"].iloc[0] > 1.5
    assert table["cumulative_bad_share"].iloc[-1] == 1


def test_grades_ordered_needs_a_strict_rise() -> None:
    def table(rates):
        return pd.DataFrame({"n": [10] * len(rates), "bad_rate": rates}, index=list("ABCD")[: len(rates)])

    assert grades_ordered(table([0.01, 0.03, 0.08, 0.2]))
    assert not grades_ordered(table([0.01, 0.01, 0.08, 0.2]))
    assert not grades_ordered(table([0.05, 0.03, 0.08, 0.2]))


def test_quantile_coverage_and_loss() -> None:
    actual = np.log(np.full(1000, 100_000.0)) + np.random.default_rng(2).normal(0, 0.5, 1000)
    prudent = np.log(np.full(1000, 100_000.0)) - 0.5 * 0.5244  # the 30 % quantile of N(0, 0.5)
    m = amount_metrics(actual, prudent, 0.3)
    assert abs(m["coverage"] - 0.7) < 0.04 and m["coverage_target"] == 0.7
    assert m["pinball_loss"] < amount_metrics(actual, prudent + 1, 0.3)["pinball_loss"]
