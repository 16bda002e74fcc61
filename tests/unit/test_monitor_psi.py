"""PSI on known distributions, its bins, the flags, the mean shift and the grade migration; which
reference rows a feature is compared on; which flags raise the alert."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from scoring.monitor.drift import (
    MISSING,
    OTHER,
    Flag,
    Thresholds,
    feature_drift,
    fit_bins,
    mean_shift,
    migration_matrix,
    psi,
    segment_psi,
)
from scoring.monitor.result import MonitorResult


def test_identical_distributions_have_no_psi() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=5000)
    assert psi(x, x) == 0.0
    assert psi(x, rng.normal(size=200_000)) < 0.005  # two samples of one distribution


def test_a_known_shift_of_shares_gives_its_psi() -> None:
    reference = np.repeat(np.arange(10), 100)  # ten values, 10 % each: every value is a bin
    current = np.concatenate([np.repeat(np.arange(5), 150), np.repeat(np.arange(5, 10), 50)])
    expected = 5 * 0.05 * math.log(1.5) + 5 * -0.05 * math.log(0.5)  # 0.2747
    assert psi(reference, current) == pytest.approx(expected, abs=1e-12)


def test_a_mean_shift_of_half_a_standard_deviation_matches_the_normal_deciles() -> None:
    rng = np.random.default_rng(5)
    cuts = norm.ppf(np.linspace(0, 1, 11)[1:-1])
    shares = np.diff(np.concatenate([[0.0], norm.cdf(cuts - 0.5), [1.0]]))
    exact = float(np.sum((shares - 0.1) * np.log(shares / 0.1)))  # 0.2435
    assert psi(rng.normal(size=400_000), rng.normal(0.5, 1, size=400_000)) == pytest.approx(exact, abs=0.005)


def test_an_empty_reference_bin_counts_as_epsilon() -> None:
    reference = np.repeat(np.arange(10), 100)
    current = np.concatenate([reference[:900], np.full(100, np.nan)])  # 10 % missing, never in the reference
    e = np.clip(np.array([0.1] * 10 + [0.0]), 1e-4, None)
    a = np.clip(np.array([0.1] * 9 + [0.0, 0.1]), 1e-4, None)
    assert psi(reference, current) == pytest.approx(float(np.sum((a - e) * np.log(a / e))))
    assert math.isfinite(psi(reference, current))


def test_a_value_most_rows_share_is_a_bin_of_its_own() -> None:
    """A count that is 0 for 70 % of the enterprises: a move from 0 to small values must show."""
    rng = np.random.default_rng(9)
    reference = np.where(rng.random(20_000) < 0.7, 0.0, rng.exponential(5, 20_000))
    current = np.where(rng.random(20_000) < 0.5, 0.0, rng.exponential(5, 20_000))
    bins = fit_bins(reference)
    assert bins.index(np.array([0.0]))[0] != bins.index(np.array([1e-9]))[0]
    assert psi(reference, current) > 0.1


def test_categories_unseen_and_missing_have_their_bins() -> None:
    bins = fit_bins(pd.Series(["C", "F", "G", None]), categorical=True)
    assert bins.labels == ["C", "F", "G", OTHER, MISSING]
    assert list(bins.index(pd.Series(["G", "Z", None, "C"]))) == [2, 3, 4, 0]
    assert psi(pd.Series(["F"] * 50 + ["G"] * 50), pd.Series(["F"] * 50 + ["G"] * 50), categorical=True) == 0.0


def test_flags_turn_at_point_one_and_point_two_five() -> None:
    t = Thresholds()
    assert [t.psi_flag(v) for v in (0.0999, 0.1, 0.2499, 0.25)] == [Flag.GREEN, Flag.AMBER, Flag.AMBER, Flag.RED]
    assert t.missing_flag(-0.12) is Flag.RED and t.missing_flag(0.06) is Flag.AMBER
    assert t.shift_flag(-0.4, z=-2.0) is Flag.GREEN  # a large shift in a few rows is noise
    assert t.shift_flag(-0.4, z=-5.0) is Flag.RED


def test_mean_shift_is_in_reference_standard_deviations() -> None:
    rng = np.random.default_rng(1)
    shift, z = mean_shift(rng.normal(500, 100, 100_000), rng.normal(470, 100, 100_000))
    assert shift == pytest.approx(-0.3, abs=0.01) and z < -50


def test_migration_counts_the_same_enterprises() -> None:
    before = pd.Series(["A", "B", "C", "D"], index=["u1", "u2", "u3", "u4"])
    after = pd.Series(["B", "B", "D", "A"], index=["u1", "u2", "u3", "u5"])  # u4 left, u5 is new
    table = migration_matrix(before, after, ["A", "B", "C", "D"])
    assert table.loc["A", "B"] == 1 and table.loc["B", "B"] == 1 and table.loc["C", "D"] == 1
    assert int(table.to_numpy().sum()) == 3


def _drift(reference: pd.DataFrame, current: pd.DataFrame, comparable=None) -> pd.DataFrame:
    return feature_drift(
        reference,
        current,
        list(current.columns),
        categorical=set(),
        labels_zh={},
        thresholds=Thresholds(),
        comparable=comparable,
    ).set_index("feature")


def test_a_feature_is_compared_on_the_reference_snapshots_whose_window_was_complete() -> None:
    """A 24-month count missing at the earlier reference dates (its window reached before the data)
    is compared on the complete date alone: its missing rate does not move from 75% to 0."""
    rng = np.random.default_rng(2)
    counts = rng.poisson(1.0, 4000).astype(float)
    reference = pd.DataFrame({"count_24m": np.where(np.arange(4000) < 3000, np.nan, counts)})
    current = pd.DataFrame({"count_24m": rng.poisson(1.0, 1000).astype(float)})
    everything = _drift(reference, current).loc["count_24m"]
    assert everything["missing_flag"] == "red" and everything["psi_flag"] == "red"
    complete = _drift(reference, current, {"count_24m": np.arange(4000) >= 3000}).loc["count_24m"]
    assert complete["compared"] and complete["missing_reference"] == 0.0
    assert complete["psi_flag"] == "green" and complete["missing_flag"] == "green"


def test_a_feature_missing_in_every_reference_snapshot_is_not_compared() -> None:
    reference = pd.DataFrame({"count_36m": np.full(100, np.nan), "count_12m": np.ones(100)})
    current = pd.DataFrame({"count_36m": np.ones(50), "count_12m": np.ones(50)})
    drift = feature_drift(
        reference,
        current,
        ["count_36m", "count_12m"],
        categorical=set(),
        labels_zh={},
        thresholds=Thresholds(),
        comparable={"count_36m": np.zeros(100, dtype=bool)},
    )
    assert list(drift["feature"]) == ["count_12m", "count_36m"]  # the compared first
    row = drift.set_index("feature").loc["count_36m"]
    assert not row["compared"] and math.isnan(row["psi"]) and row["psi_flag"] is None and row["missing_flag"] is None


def _result(features: pd.DataFrame, *, score_only: bool = False) -> MonitorResult:
    """A run whose score is stable (the same scores on both sides) and whose features are ``features``."""
    scores = pd.DataFrame({"score": np.linspace(300, 900, 400), "industry": ["C"] * 400})
    segments = segment_psi(scores, scores, segments=["industry"], value="score", thresholds=Thresholds())
    return MonitorResult(
        as_of=dt.date(2025, 4, 1),
        reference_as_of=[dt.date(2024, 1, 1)],
        migration_as_of=dt.date(2024, 1, 1),
        reference_is_training=True,
        model_name="m",
        model_version="1",
        model_run_id=None,
        thresholds=Thresholds(),
        score_psi=0.0,
        score_shift=0.0,
        score_shift_z=0.0,
        features=features,
        segments=segments,
        migration=pd.DataFrame(),
        migration_segments=pd.DataFrame(),
        grade_shares=pd.DataFrame(),
        scores=scores,
        n_reference=400,
        n_current=400,
        reference_sampled=False,
        built=[],
        data_matches_training=True,
        score_only=score_only,
    )


def test_a_red_feature_raises_the_alert_unless_score_only() -> None:
    rng = np.random.default_rng(3)
    reference = pd.DataFrame({"sales": rng.normal(0, 1, 2000), "age": rng.normal(0, 1, 2000)})
    shifted = pd.DataFrame({"sales": rng.normal(1.0, 1, 2000), "age": rng.normal(0, 1, 2000)})
    quiet = _result(_drift(reference, reference.iloc[:1000]).reset_index())
    assert quiet.score_status is Flag.GREEN and not quiet.alert and quiet.reasons == []
    red = _result(_drift(reference, shifted).reset_index())
    assert red.score_status is Flag.GREEN and red.feature_status is Flag.RED and red.alert
    assert red.reasons == ["1 feature(s) with PSI ≥ 0.25: sales"]
    old_rule = _result(_drift(reference, shifted).reset_index(), score_only=True)
    assert not old_rule.alert and old_rule.reasons == [] and old_rule.feature_reasons == red.reasons


def test_a_feature_not_compared_raises_nothing() -> None:
    reference = pd.DataFrame({"count_36m": np.full(100, np.nan)})
    current = pd.DataFrame({"count_36m": np.ones(50)})
    result = _result(_drift(reference, current, {"count_36m": np.zeros(100, dtype=bool)}).reset_index())
    assert not result.alert and result.not_compared == ["count_36m"] and result.counts()["n_not_compared"] == 1
    # the same feature compared on its all-missing reference would be red (missing rate 100% -> 0%)
    assert _result(_drift(reference, current).reset_index()).alert
