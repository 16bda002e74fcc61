"""The 信易贷 pre-credit limit policy (预授信额度政策): model outputs in, a limit and a decision out.

The policy is explicit and versioned (models/pre_credit_policy.yaml). Every step is kept in the
result with the limit before and after it, so an explanation can show a bank or a regulator which
rule set the limit, and a replay under the same policy version gives the same limit.
"""

from __future__ import annotations

import math
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from scoring.errors import ScoringError


class PolicyError(ScoringError, ValueError):
    """The policy file is invalid; the message names the file and field."""

    code = "invalid_policy"
    status = None
    title_zh = "策略文件有误"


class ListRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    feature: str
    reason_zh: str


class DecisionRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve_max_probability: float = Field(gt=0, lt=1)
    refer_max_probability: float = Field(gt=0, lt=1)

    @model_validator(mode="after")
    def _ordered(self) -> DecisionRule:
        if self.refer_max_probability < self.approve_max_probability:
            raise ValueError("refer_max_probability must not be below approve_max_probability")
        return self


class LimitPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    version: int
    description: str
    currency: Literal["CNY"] = "CNY"
    sales_feature: str
    sales_multiple: float = Field(gt=0)
    product_ceiling: float = Field(gt=0)
    grade_factor: dict[str, float]
    zero_when_listed: list[ListRule] = []
    rounding: float = Field(gt=0)
    min_limit: float = Field(ge=0)
    decision: DecisionRule

    @model_validator(mode="after")
    def _factors(self) -> LimitPolicy:
        bad = {g: f for g, f in self.grade_factor.items() if not 0 <= f <= 1}
        if bad:
            raise ValueError(f"grade_factor must lie in [0, 1]: {bad}")
        return self

    @property
    def features(self) -> list[str]:
        """The catalog features the policy reads."""
        return [self.sales_feature, *(r.feature for r in self.zero_when_listed)]


class PolicyStep(BaseModel):
    """One policy step: the limit before and after it, and why, in Chinese."""

    step: str
    label_zh: str
    before: float
    after: float
    detail_zh: str

    @property
    def changed(self) -> bool:
        return self.before != self.after


class LimitDecision(BaseModel):
    """The pre-credit result: the limit, approve / refer / decline, and every step that led to it."""

    pre_credit_limit: float
    decision: Literal["approve", "refer", "decline"]
    decision_zh: str
    default_probability: float
    grade: str
    policy: str
    policy_version: int
    steps: list[PolicyStep]


DECISION_ZH = {"approve": "通过", "refer": "转人工审核", "decline": "不予预授信"}


class InspectionRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    share: float = Field(ge=0, le=1)
    measure_zh: str


class AlertRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    window_months: int = Field(ge=1, le=60)
    repeat_in_domain: int = Field(ge=2)
    several_domains: int = Field(ge=2)
    score_drop_points: float = Field(gt=0)


class SupervisionPolicy(BaseModel):
    """分级分类监管 and 风险预警 (models/supervision_policy.yaml): what each grade means for supervision."""

    model_config = ConfigDict(extra="forbid")

    name: str
    version: int
    description: str
    inspection: dict[str, InspectionRule]
    alerts: AlertRules
    departments: dict[str, str]
    default_department: str
    divisions: dict[str, str] = {}

    @model_validator(mode="after")
    def _ordered(self) -> SupervisionPolicy:
        if sorted(self.inspection) != ["A", "B", "C", "D"]:
            raise ValueError(f"inspection must give exactly the grades A, B, C and D, not {sorted(self.inspection)}")
        shares = [self.inspection[g].share for g in sorted(self.inspection)]
        if shares != sorted(shares):
            raise ValueError("inspection shares must not fall from grade A to D: a worse grade is inspected more")
        return self

    def department(self, domain: str | None) -> str:
        return self.departments.get(domain or "", self.default_department)


_T = TypeVar("_T", bound=BaseModel)


def _load(path: Path, model: type[_T]) -> _T:
    """A policy file read into its model; a fault names the file and the field."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return model.model_validate(raw)
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyError(f"{path}: cannot read: {exc}") from exc
    except ValidationError as exc:
        raise PolicyError(
            "\n".join(f"{path}: {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        ) from exc


def load_policy(path: Path) -> LimitPolicy:
    return _load(path, LimitPolicy)


def load_supervision_policy(path: Path) -> SupervisionPolicy:
    return _load(path, SupervisionPolicy)


def _yuan(x: float) -> str:
    return f"{x / 10000:,.1f}万元" if x >= 10000 else f"{x:,.0f}元"


def _is_set(value: float | None) -> bool:
    return value is not None and not math.isnan(value) and value > 0


def _check_inputs(policy: LimitPolicy, *, amount_estimate: float, default_probability: float, grade: str) -> None:
    """The model outputs are finite, the probability lies in [0, 1], and the policy has a factor for the grade."""
    for name, value in (("amount_estimate", amount_estimate), ("default_probability", default_probability)):
        if value is None or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, not {value!r}")
    if not 0 <= default_probability <= 1:
        raise ValueError(f"default_probability must lie in [0, 1], not {default_probability!r}")
    if grade not in policy.grade_factor:
        raise ValueError(f"grade {grade!r} has no factor in policy {policy.name} v{policy.version}")


def _round_down(limit: float, rounding: float) -> float:
    """``limit`` to the cent, then down to a whole multiple of ``rounding``."""
    # decimal arithmetic: 700000 * 0.7 is 489999.99999999994 in binary floating point
    exact = Decimal(repr(limit)).quantize(Decimal("0.01"))
    units = (exact / Decimal(repr(rounding))).to_integral_value(ROUND_FLOOR)
    return float(units * Decimal(repr(rounding)))


def decide_limit(
    policy: LimitPolicy,
    *,
    amount_estimate: float,
    default_probability: float,
    grade: str,
    features: dict[str, float | None],
) -> LimitDecision:
    """Apply the policy to one enterprise.

    Args:
        policy: the limit policy.
        amount_estimate: the amount model's (prudent) estimate in CNY.
        default_probability: the default model's 12-month probability of 90+ days past due.
        grade: the enterprise's public credit evaluation grade.
        features: the enterprise's catalog values (the policy reads ``policy.features``).
    """
    _check_inputs(policy, amount_estimate=amount_estimate, default_probability=default_probability, grade=grade)
    steps: list[PolicyStep] = []

    def step(name: str, label: str, after: float, detail: str) -> None:
        before = steps[-1].after if steps else 0.0
        steps.append(PolicyStep(step=name, label_zh=label, before=before, after=after, detail_zh=detail))

    limit = max(float(amount_estimate), 0.0)
    step("amount_model", "额度模型测算", limit, f"同类企业借款并按期归还的审慎额度约{_yuan(limit)}")
    sales = features.get(policy.sales_feature)
    if sales is None or math.isnan(sales) or sales <= 0:
        step("sales_cap", "销售额上限", 0.0, "近12个月无应税销售额记录，无法核定额度")
    else:
        cap = policy.sales_multiple * sales
        step(
            "sales_cap",
            "销售额上限",
            min(steps[-1].after, cap),
            f"不超过近12个月应税销售额{_yuan(sales)}的{policy.sales_multiple:.0%}（{_yuan(cap)}）",
        )
    step(
        "product_ceiling",
        "产品上限",
        min(steps[-1].after, policy.product_ceiling),
        f"单户预授信上限{_yuan(policy.product_ceiling)}",
    )
    factor = policy.grade_factor[grade]
    step("grade_factor", "信用等级调整", steps[-1].after * factor, f"公共信用综合评价{grade}级，按{factor:.0%}核定")
    for rule in policy.zero_when_listed:
        if _is_set(features.get(rule.feature)):
            step(f"listed:{rule.feature}", "名单限制", 0.0, rule.reason_zh)
    rounded = _round_down(steps[-1].after, policy.rounding)
    step("rounding", "取整", rounded, f"向下取整到{_yuan(policy.rounding)}的整数倍")
    if 0 < rounded < policy.min_limit:
        step("min_limit", "最低额度", 0.0, f"低于最低预授信额度{_yuan(policy.min_limit)}")
    thresholds = policy.decision
    if steps[-1].after <= 0:
        decision = "decline"
    elif default_probability > thresholds.refer_max_probability:
        decision = "decline"
        step(
            "default_probability",
            "违约概率",
            0.0,
            f"12个月违约概率{default_probability:.1%}，高于{thresholds.refer_max_probability:.0%}，不予预授信",
        )
    elif default_probability > thresholds.approve_max_probability:
        decision = "refer"
    else:
        decision = "approve"
    return LimitDecision(
        pre_credit_limit=steps[-1].after,
        decision=decision,  # type: ignore[arg-type]
        decision_zh=DECISION_ZH[decision],
        default_probability=float(default_probability),
        grade=grade,
        policy=policy.name,
        policy_version=policy.version,
        steps=steps,
    )
