"""Reject inference's parts on small arrays: parcelling, the figures, the bootstrap rule, old warehouses."""

import datetime as dt

import duckdb
import numpy as np
import pytest

from scoring.training import reject


def test_parcelling_draws_bads_at_the_inflated_expected_rate_of_each_band() -> None:
    rng = np.random.default_rng(0)
    p_funded = rng.uniform(0.0, 0.2, 5000)
    p_declined = np.r_[np.full(20_000, 0.02), np.full(20_000, 0.3)]
    bad = reject.parcel(p_funded, p_declined, rng=np.random.default_rng(1))
    assert set(np.unique(bad)) == {0, 1}
    assert bad[:20_000].mean() == pytest.approx(reject.PARCEL_FACTOR * 0.02, abs=0.005)
    assert bad[20_000:].mean() == pytest.approx(min(1.0, reject.PARCEL_FACTOR * 0.3), abs=0.01)


def test_the_figures_of_a_population() -> None:
    y = np.array([0, 0, 1, 0, 1, 0, 0, 0, 0, 0])
    p = np.linspace(0.05, 0.5, 10)
    f = reject.figures_of(y, p)
    assert set(f) == {"n", "bads", "bad_rate", "mean_probability", "auc", "brier", "ece"}
    assert (f["n"], f["bads"], f["bad_rate"]) == (10, 2, 0.2) and f["mean_probability"] == pytest.approx(0.275)
    assert 0 < f["auc"] < 1 and np.isnan(reject.figures_of(np.zeros(5), np.full(5, 0.1))["auc"])


def _applicants(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p_true = 1 / (1 + np.exp(-(-3 + 1.5 * rng.standard_normal(n))))
    y = (rng.random(n) < p_true).astype(float)
    uscc = np.array([f"U{k // 2:06d}" for k in range(n)])  # two applications an enterprise
    return y, p_true, uscc


def test_a_model_that_ranks_and_calibrates_better_helps_and_an_equal_one_does_not() -> None:
    y, p_true, uscc = _applicants()
    noisy = np.clip(p_true * np.exp(np.random.default_rng(1).normal(0, 1.5, len(y))) * 0.5, 1e-4, 0.99)
    better = reject._deltas(y, noisy, p_true, uscc, seed=0)
    assert better["delta_auc_lo"] > 0 and better["delta_ece_hi"] < 0 and better["helps"] == 1.0
    assert better["delta_auc_lo"] <= better["delta_auc"] <= better["delta_auc_hi"]
    assert reject._deltas(y, noisy, noisy, uscc, seed=0)["helps"] == 0.0
    # the same ranking, three times the probability: nothing better, calibration worse
    assert reject._deltas(y, p_true, np.clip(p_true * 3, 0, 1), uscc, seed=0)["helps"] == 0.0


def test_a_warehouse_without_the_applications_tables_has_no_declined_applications() -> None:
    con = duckdb.connect()
    frame = reject.declined_labels(con, start_from=dt.date(2023, 1, 1), start_before=dt.date(2024, 1, 1))
    assert frame.empty and {"loan_id", "uscc", "as_of", "default_12m"} <= set(frame.columns)


def test_the_declined_labels_read_the_counterfactual_window_and_only_declined_applications() -> None:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE loan_applications (application_id VARCHAR, uscc VARCHAR, bank_id VARCHAR, applied_date DATE,"
        " requested_amount DOUBLE, requested_term_months INTEGER, decision VARCHAR, decision_date DATE,"
        " loan_id VARCHAR)"
    )
    con.execute(
        "CREATE TABLE synthetic_declined_outcomes (application_id VARCHAR, uscc VARCHAR,"
        " would_default_12m BOOLEAN, would_dpd90_date DATE)"
    )
    con.execute(
        """INSERT INTO loan_applications VALUES
           ('A1', 'U1', 'B', '2023-03-01', 1e5, 12, '拒绝', '2023-03-10', NULL),
           ('A2', 'U2', 'B', '2023-03-01', 1e5, 12, '拒绝', '2023-03-10', NULL),
           ('A3', 'U3', 'B', '2023-03-01', 1e5, 12, '拒绝', '2023-03-10', NULL),
           ('A4', 'U4', 'B', '2023-03-01', 1e5, 12, '批准', '2023-03-10', 'L4'),
           ('A5', 'U5', 'B', '2023-03-01', 1e5, 12, '拒绝', '2022-12-31', NULL)"""
    )
    con.execute(
        """INSERT INTO synthetic_declined_outcomes VALUES
           ('A1', 'U1', true, '2024-03-09'), ('A2', 'U2', false, '2024-03-10'), ('A5', 'U5', false, NULL)"""
    )
    frame = reject.declined_labels(con, start_from=dt.date(2023, 1, 1), start_before=dt.date(2024, 1, 1))
    got = dict(zip(frame["loan_id"], frame["default_12m"].astype("float64"), strict=True))
    assert list(got) == ["A1", "A2", "A3"]  # not the approved one, not one decided before the vintages
    assert got["A1"] == 1 and got["A2"] == 0 and np.isnan(got["A3"])  # A3: no truth, as on real data
    assert str(frame["as_of"].iloc[0])[:10] == "2023-03-01"


def test_the_card_says_what_was_measured_and_when_nothing_could_be() -> None:
    nothing = reject.RejectInference(n_declined_train=0, n_declined_test=0, approval_rate_test=1.0, measured=False)
    assert "no declined application" in " ".join(reject.summary(nothing))
    unmeasured = reject.RejectInference(n_declined_train=40, n_declined_test=9, approval_rate_test=0.7, measured=False)
    assert "not measured" in " ".join(reject.summary(unmeasured))
    assert reject.summary(None) == reject.summary(nothing)
