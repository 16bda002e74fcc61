"""The pre-credit limit policy: every rule that changes the limit is a step of the result."""

from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from scoring.domain.policy import PolicyError, decide_limit, load_policy

REPO = Path(__file__).resolve().parents[2]
POLICY = load_policy(REPO / "models" / "pre_credit_policy.yaml")
CLEAN = {"tax_sales_12m": 4_000_000.0, "serious_list_active": 0.0, "executee_list_active": 0.0}


def _changed(result) -> list[str]:
    return [s.step for s in result.steps if s.changed]


def test_a_clean_a_grade_firm_gets_the_model_amount_rounded_down() -> None:
    r = decide_limit(POLICY, amount_estimate=1_234_567, default_probability=0.01, grade="A", features=CLEAN)
    assert r.pre_credit_limit == 1_230_000 and r.decision == "approve"
    assert _changed(r) == ["amount_model", "rounding"]
    assert r.policy == "pre_credit_policy" and r.policy_version == POLICY.version


def test_the_sales_cap_the_ceiling_and_the_grade_each_show_as_a_step() -> None:
    capped = decide_limit(POLICY, amount_estimate=2_500_000, default_probability=0.01, grade="A", features=CLEAN)
    assert capped.pre_credit_limit == 2_000_000 and "sales_cap" in _changed(capped)  # 50 % of 4 million
    rich = {**CLEAN, "tax_sales_12m": 100_000_000.0}
    ceiling = decide_limit(POLICY, amount_estimate=9_000_000, default_probability=0.01, grade="A", features=rich)
    assert ceiling.pre_credit_limit == POLICY.product_ceiling and "product_ceiling" in _changed(ceiling)
    c = decide_limit(POLICY, amount_estimate=1_000_000, default_probability=0.01, grade="C", features=CLEAN)
    assert c.pre_credit_limit == 500_000 and "grade_factor" in _changed(c)
    assert next(s for s in c.steps if s.step == "grade_factor").before == 1_000_000


@pytest.mark.parametrize("listed", ["serious_list_active", "executee_list_active"])
def test_a_listed_entity_gets_zero_and_the_reason(listed: str) -> None:
    r = decide_limit(
        POLICY, amount_estimate=1_000_000, default_probability=0.01, grade="A", features={**CLEAN, listed: 1.0}
    )
    assert r.pre_credit_limit == 0 and r.decision == "decline"
    assert f"listed:{listed}" in _changed(r)
    assert "失信" in next(s.detail_zh for s in r.steps if s.step == f"listed:{listed}")


def test_no_sales_on_record_means_no_limit() -> None:
    r = decide_limit(
        POLICY, amount_estimate=800_000, default_probability=0.01, grade="A", features={**CLEAN, "tax_sales_12m": None}
    )
    assert r.pre_credit_limit == 0 and r.decision == "decline" and "sales_cap" in _changed(r)


def test_the_default_probability_decides_approve_refer_decline() -> None:
    def decision(p: float) -> str:
        return decide_limit(POLICY, amount_estimate=500_000, default_probability=p, grade="A", features=CLEAN).decision

    rule = POLICY.decision
    assert decision(rule.approve_max_probability) == "approve"
    assert decision(rule.approve_max_probability + 0.001) == "refer"
    declined = decide_limit(POLICY, amount_estimate=500_000, default_probability=0.5, grade="A", features=CLEAN)
    assert declined.decision == "decline" and declined.pre_credit_limit == 0
    assert _changed(declined)[-1] == "default_probability"


def test_a_small_limit_below_the_minimum_becomes_zero() -> None:
    r = decide_limit(POLICY, amount_estimate=45_000, default_probability=0.01, grade="A", features=CLEAN)
    assert r.pre_credit_limit == 0 and "min_limit" in _changed(r)


def test_an_unknown_grade_or_a_bad_policy_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="grade 'E'"):
        decide_limit(POLICY, amount_estimate=1, default_probability=0.01, grade="E", features=CLEAN)
    bad = tmp_path / "p.yaml"
    text = (REPO / "models" / "pre_credit_policy.yaml").read_text(encoding="utf-8")
    bad.write_text(text.replace("sales_multiple: 0.5", "sales_multiple: -1"), encoding="utf-8")
    with pytest.raises(PolicyError, match="sales_multiple"):
        load_policy(bad)


def test_rounding_is_exact_and_bad_inputs_are_refused() -> None:
    policy = POLICY.model_copy(update={"grade_factor": {**POLICY.grade_factor, "B": 0.7}})
    r = decide_limit(policy, amount_estimate=700_000, default_probability=0.01, grade="B", features=CLEAN)
    assert r.pre_credit_limit == 490_000  # 700000 * 0.7 is 489999.99999999994 in floating point
    with pytest.raises(ValueError, match="amount_estimate"):
        decide_limit(POLICY, amount_estimate=float("nan"), default_probability=0.01, grade="A", features=CLEAN)
    with pytest.raises(ValueError, match="default_probability"):
        decide_limit(POLICY, amount_estimate=1e6, default_probability=1.5, grade="A", features=CLEAN)


GRADES = ["A", "B", "C", "D"]  # best first
ORDER = ["amount_model", "sales_cap", "product_ceiling", "grade_factor", "rounding"]


def test_the_steps_chain_in_order_from_the_model_amount_to_the_limit() -> None:
    r = decide_limit(POLICY, amount_estimate=2_345_678, default_probability=0.07, grade="B", features=CLEAN)
    assert [s.step for s in r.steps] == ORDER  # nothing listed, above the minimum, referred not declined
    assert r.steps[0].before == 0 and r.steps[0].after == 2_345_678
    for previous, current in pairwise(r.steps):
        assert current.before == previous.after
    assert r.pre_credit_limit == r.steps[-1].after == 1_600_000  # 50 % of 4 million, then 80 % for B
    assert r.decision == "refer" and r.decision_zh == "转人工审核" and r.grade == "B"
    assert all(s.label_zh and s.detail_zh for s in r.steps)


def test_the_ceiling_applies_before_the_grade_reduction() -> None:
    rich = {**CLEAN, "tax_sales_12m": 100_000_000.0}
    r = decide_limit(POLICY, amount_estimate=9_000_000, default_probability=0.01, grade="B", features=rich)
    assert r.pre_credit_limit == POLICY.product_ceiling * POLICY.grade_factor["B"]
    d = decide_limit(POLICY, amount_estimate=9_000_000, default_probability=0.01, grade="D", features=rich)
    assert d.pre_credit_limit == 0 and d.decision == "decline"


def test_the_limit_is_a_whole_multiple_of_the_rounding_never_above_any_cap() -> None:
    rng = np.random.default_rng(14)
    for _ in range(300):
        amount = float(rng.lognormal(13, 1.5))
        sales = float(rng.lognormal(15, 1.5))
        grade = str(rng.choice(GRADES))
        r = decide_limit(
            POLICY,
            amount_estimate=amount,
            default_probability=0.01,
            grade=grade,
            features={**CLEAN, "tax_sales_12m": sales},
        )
        bound = min(amount, POLICY.sales_multiple * sales, POLICY.product_ceiling) * POLICY.grade_factor[grade]
        assert r.pre_credit_limit % POLICY.rounding == 0
        assert r.pre_credit_limit <= bound
        if bound >= POLICY.min_limit:
            assert bound - r.pre_credit_limit < POLICY.rounding  # rounded down, by less than one unit
        else:
            assert r.pre_credit_limit == 0


def test_refer_holds_up_to_the_refer_threshold_and_keeps_the_limit() -> None:
    rule = POLICY.decision
    at = decide_limit(
        POLICY, amount_estimate=500_000, default_probability=rule.refer_max_probability, grade="A", features=CLEAN
    )
    assert at.decision == "refer" and at.pre_credit_limit == 500_000
    above = decide_limit(
        POLICY,
        amount_estimate=500_000,
        default_probability=rule.refer_max_probability + 1e-6,
        grade="A",
        features=CLEAN,
    )
    assert above.decision == "decline" and above.pre_credit_limit == 0
    step = above.steps[-1]
    assert step.step == "default_probability" and step.before == 500_000 and step.after == 0


def test_a_listed_entity_is_declined_even_with_a_low_default_probability_and_grade_a() -> None:
    both = {**CLEAN, "serious_list_active": 1.0, "executee_list_active": 1.0}
    r = decide_limit(POLICY, amount_estimate=2_000_000, default_probability=0.001, grade="A", features=both)
    assert r.pre_credit_limit == 0 and r.decision == "decline"
    assert _changed(r) == ["amount_model", "listed:serious_list_active"]  # the second list finds nothing left
    assert [s.step for s in r.steps if s.step.startswith("listed:")] == [
        "listed:serious_list_active",
        "listed:executee_list_active",
    ]


@pytest.mark.parametrize("sales", [float("nan"), 0.0, -5.0])
def test_missing_or_non_positive_sales_is_no_limit(sales: float) -> None:
    r = decide_limit(
        POLICY, amount_estimate=800_000, default_probability=0.01, grade="A", features={**CLEAN, "tax_sales_12m": sales}
    )
    assert r.pre_credit_limit == 0 and r.decision == "decline"
    assert next(s for s in r.steps if s.step == "sales_cap").after == 0


def test_a_higher_default_probability_never_raises_the_limit() -> None:
    probabilities = np.linspace(0.0, 0.3, 61)
    rank = {"approve": 0, "refer": 1, "decline": 2}
    for amount in (60_000.0, 750_000.0, 2_600_000.0):
        for grade in GRADES:
            results = [
                decide_limit(POLICY, amount_estimate=amount, default_probability=float(p), grade=grade, features=CLEAN)
                for p in probabilities
            ]
            limits = [r.pre_credit_limit for r in results]
            assert limits == sorted(limits, reverse=True), (amount, grade, limits)
            decisions = [rank[r.decision] for r in results]
            assert decisions == sorted(decisions), (amount, grade)


def test_a_better_grade_never_lowers_the_limit() -> None:
    rng = np.random.default_rng(15)
    for _ in range(200):
        amount = float(rng.lognormal(13, 1.5))
        p = float(rng.uniform(0, 0.15))
        features = {**CLEAN, "tax_sales_12m": float(rng.lognormal(15, 1.5))}
        limits = [
            decide_limit(
                POLICY, amount_estimate=amount, default_probability=p, grade=g, features=features
            ).pre_credit_limit
            for g in GRADES
        ]
        assert limits == sorted(limits, reverse=True), (amount, p, limits)
    assert list(POLICY.grade_factor) == GRADES  # every grade is covered, best first
