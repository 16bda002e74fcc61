"""The pre-credit limit policy: every rule that changes the limit is a step of the result."""

from pathlib import Path

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
