"""Request and response schemas of the API (``…Request`` in, ``…Response`` / ``…Public`` out)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, Strict, model_validator

from scoring.data.uscc import UsccFault, UsccProblem, validate
from scoring.errors import ScoringError
from scoring.serve.schemas_reviews import ReviewPublic
from scoring.serve.times import UtcDatetime
from scoring.store import Purpose

EXAMPLE_USCC = "91320100748204660Q"
EXAMPLE_DECISION = "3f0c6a52-9f43-4d51-9a55-2c1e7c2f4b8e"


class UsccValueError(ScoringError, ValueError):
    """A malformed USCC; carries the problem so the error body can name the fault in both languages."""

    code = "invalid_uscc"
    status = 422
    title_zh = "统一社会信用代码不合法"

    def __init__(self, problem: UsccProblem):
        super().__init__(problem.message_en, message_zh=problem.message_zh, field="uscc")
        self.problem = problem

    def __str__(self) -> str:  # what pydantic shows: both languages, as before the error family
        return self.problem.message


def uscc_shape(v: str) -> str:
    """Upper-case and check the shape; the check character is verified by the endpoint.

    An early pilot code that fails its check character but is registered on the platform is
    still served (with a warning), so only the other faults are refused here.
    """
    v = v.strip().upper()
    problems = [p for p in validate(v) if p.fault != UsccFault.CHECK]
    if problems:
        raise UsccValueError(problems[0])
    return v


# What the schema says of a USCC: what ``uscc_shape`` accepts (either case, blanks around it); the two check
# characters (positions 17 and 18) cannot be said in a pattern: the custom format ``uscc`` names them
USCC_PATTERN = r"^\s*[0-9A-HJ-NP-RTUWXYa-hj-np-rtuwxy]{18}\s*$"
Uscc = Annotated[
    str,
    AfterValidator(uscc_shape),
    Field(
        description="统一社会信用代码 (18 characters of 0-9 and the letters but I, O, S, V, Z, GB 32100-2015; the "
        "organisation code's check character at position 17 is verified)",
        json_schema_extra={"pattern": USCC_PATTERN, "format": "uscc"},
    ),
]


def _iso_date(value: object) -> object:
    """Only what the schema says a date is: ``YYYY-MM-DD`` (pydantic would also take 0 as 1970-01-01)."""
    if isinstance(value, dt.date) or (isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)):
        return value
    raise ValueError("a date is written YYYY-MM-DD")


# a request's dates and numbers as the schema says them: no 0 for a date, no "12" or 12.0 for an integer
IsoDate = Annotated[dt.date, BeforeValidator(_iso_date)]
Integer = Annotated[int, Strict()]
Number = Annotated[float, Strict()]
DecisionId = Annotated[str, Field(description="a decision's id (a UUID)", json_schema_extra={"format": "uuid"})]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------------------- requests
class EvaluationRequest(_Strict):
    """Ask for the public credit evaluation (公共信用综合评价) of one enterprise."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"uscc": EXAMPLE_USCC}]})

    uscc: Uscc


class PreCreditRequest(_Strict):
    """A bank asks for the 信易贷 pre-credit limit (预授信额度) of an enterprise that authorized it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"uscc": EXAMPLE_USCC, "reference": "XYD-2026-000123"}]},
    )

    uscc: Uscc
    reference: str | None = Field(
        default=None, max_length=64, description="the bank's own application number, stored with the decision"
    )


class BatchEvaluationRequest(_Strict):
    """Evaluate up to 10,000 enterprises; the answer streams back one JSON line per USCC."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"usccs": [EXAMPLE_USCC, "91430122707233692A"]}]}
    )

    usccs: list[str] = Field(min_length=1, max_length=10_000, description="USCCs; a malformed one gets an error line")


class OutcomeRequest(_Strict):
    """What a bank actually lent on a pre-credit decision and how the loan performs, as of a report date."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "decision_id": EXAMPLE_DECISION,
                    "report_date": "2026-06-30",
                    "loan_id": "L-3413001-000123",
                    "start_date": "2026-01-15",
                    "term_months": 12,
                    "maturity_date": "2027-01-15",
                    "amount": 300000,
                    "max_dpd": 0,
                    "dpd90_date": None,
                    "settled_date": None,
                    "status": "正常",
                }
            ]
        },
    )

    decision_id: str = Field(
        description="the pre-credit decision the loan was made on (a UUID)", json_schema_extra={"format": "uuid"}
    )
    report_date: IsoDate = Field(description="the date the figures are as of; one report per decision and date")
    loan_id: str = Field(min_length=1, max_length=64, description="贷款编号")
    start_date: IsoDate = Field(description="放款日期")
    term_months: Integer = Field(ge=1, le=120, description="期限(月)")
    maturity_date: IsoDate = Field(description="到期日期")
    amount: Number = Field(ge=0, description="贷款金额(元); 0 when the bank did not lend")
    max_dpd: Integer = Field(ge=0, description="最长逾期天数 so far")
    dpd90_date: IsoDate | None = Field(default=None, description="逾期满90天日期 (the default event), if any")
    settled_date: IsoDate | None = Field(default=None, description="结清日期, if settled")
    status: Literal["正常", "结清", "逾期", "违约"] = Field(description="贷款状态")

    @model_validator(mode="after")
    def _dates(self) -> OutcomeRequest:
        if self.maturity_date < self.start_date:
            raise ValueError("maturity_date is before start_date")
        for name in ("dpd90_date", "settled_date"):
            day = getattr(self, name)
            if day is not None and day < self.start_date:
                raise ValueError(f"{name} is before start_date")
            if day is not None and day > self.report_date:
                raise ValueError(f"{name} is after report_date")
        if self.start_date > self.report_date:
            raise ValueError("start_date is after report_date")
        if self.dpd90_date is not None and self.max_dpd < 90:
            raise ValueError("dpd90_date is set but max_dpd is under 90")
        if self.status == "结清" and self.settled_date is None:
            raise ValueError("status 结清 needs settled_date")
        return self


class ConsentRequest(_Strict):
    """Record that an enterprise authorized a bank (授权) for a purpose until a date."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "uscc": EXAMPLE_USCC,
                    "bank_id": "B3413001",
                    "purpose": "pre_credit",
                    "granted_on": "2026-11-01",
                    "expires_on": "2027-11-01",
                    "evidence": "授权书编号 SQ-2026-0457",
                }
            ]
        },
    )

    uscc: Uscc
    bank_id: str = Field(min_length=1, max_length=32)
    purpose: Purpose = Field(description="pre_credit (信易贷预授信) or evaluation (查询信用评价)")
    granted_on: IsoDate
    expires_on: IsoDate
    evidence: str | None = Field(default=None, max_length=200, description="the signed authorization's reference")


# ---------------------------------------------------------------------------- responses
class ModelPublic(BaseModel):
    name: str
    version: str
    alias: str | None


class OverridePublic(BaseModel):
    rule: str
    grade: str
    reason_zh: str


class ReasonPublic(BaseModel):
    feature: str = Field(description="catalog feature name")
    label_zh: str
    value: float | str | None = Field(description="the enterprise's value of the feature (null: no record)")
    points: float = Field(description="TreeSHAP contribution in the model's score points; negative raises the risk")
    effect: str = Field(description="raises_risk or lowers_risk")
    text_zh: str


class RecordPublic(BaseModel):
    """A record that does not simply count: repaired (信用修复), deleted after an objection, or disputed (异议)."""

    table: str
    record_id: str
    date: dt.date | None
    description: str
    counts: bool = Field(description="whether the features count it")
    status: str = Field(description="repaired, deleted_after_objection or disputed")
    reason_zh: str


class EvaluationResponse(BaseModel):
    decision_id: str
    uscc: str
    name: str
    as_of: dt.date = Field(description="features use records dated before this date")
    probability: float = Field(description="probability of an adverse credit event in the next 12 months")
    score: int = Field(ge=0, le=1000)
    grade: str = Field(description="A/B/C/D after policy overrides")
    grade_label_zh: str
    model_grade: str = Field(description="the grade the score alone gives")
    overrides: list[OverridePublic]
    base_points: float = Field(description="score points before any feature; base + all feature points = score")
    reasons: list[ReasonPublic]
    disputed_records: list[RecordPublic] = Field(
        default=[], description="records under objection on the as-of date: the decision was made while they were"
    )
    model: ModelPublic
    warnings: list[str] = []


class PolicyStepPublic(BaseModel):
    step: str
    label_zh: str
    before: float
    after: float
    detail_zh: str


class PreCreditResponse(BaseModel):
    decision_id: str
    uscc: str
    name: str
    as_of: dt.date
    pre_credit_limit: float = Field(description="预授信额度 in CNY, a multiple of the policy's rounding")
    decision: Literal["approve", "refer", "decline"]
    decision_zh: str
    grade: str
    grade_label_zh: str
    score: int
    probability: float = Field(description="probability of an adverse credit event (the evaluation)")
    default_probability: float = Field(description="probability of 90+ days past due within 12 months of a loan")
    reasons: list[ReasonPublic] = Field(description="why the default risk is what it is (default model TreeSHAP)")
    evaluation_reasons: list[ReasonPublic] = Field(description="why the score is what it is")
    policy: str
    policy_version: int
    policy_steps: list[PolicyStepPublic]
    disputed_records: list[RecordPublic] = []
    models: list[ModelPublic]
    consent_id: str
    warnings: list[str] = []


class InputPublic(BaseModel):
    feature: str
    label_zh: str
    value: float | str | None


class RequesterPublic(BaseModel):
    key_id: str | None
    role: str | None
    bank_id: str | None


class DecisionResponse(BaseModel):
    """A stored decision in full: what was decided, on which inputs, by which model versions, and why."""

    decision_id: str
    kind: Literal["evaluation", "pre_credit"]
    created_at: str
    uscc: str
    name: str
    as_of: dt.date
    requester: RequesterPublic
    consent: dict[str, Any] | None = Field(description="the authorization the decision was made under (banks)")
    reference: str | None = None
    inputs: list[InputPublic] = Field(description="every feature a served model read, with its label and value")
    evaluation: dict[str, Any] = Field(
        description="probability, score, grades, overrides, base_points, every feature's shap_points, reasons, model"
    )
    pre_credit: dict[str, Any] | None = Field(
        default=None,
        description="limit, decision, policy steps and document, both models' versions and every SHAP value",
    )
    excluded_records: list[RecordPublic] | None = Field(
        default=None, description="records not counted (repaired or deleted after objection); regulators only"
    )
    disputed_records: list[RecordPublic]
    warnings: list[str]
    audit: dict[str, Any] = Field(description="the decision's place in the audit hash chain: seq, hash")
    reviews: list[ReviewPublic] = Field(
        default_factory=list, description="human reviews asked for, and their conclusions (the decision stays as made)"
    )


class ReplayResponse(BaseModel):
    decision_id: str
    identical: bool = Field(description="the recomputation equals the stored decision in every decided figure")
    differences: list[str] = Field(description="the fields that differ, if any")
    models: list[ModelPublic]
    recomputed: dict[str, Any]


class OutcomeResponse(BaseModel):
    outcome_id: str
    decision_id: str
    report_date: dt.date
    duplicate: bool = Field(description="true when this very report was already stored (nothing new was stored)")


class OutcomePublic(BaseModel):
    outcome_id: str
    decision_id: str
    bank_id: str | None
    created_at: str
    report: dict[str, Any]


class ConsentPublic(BaseModel):
    consent_id: str
    uscc: str
    bank_id: str
    purpose: str
    granted_on: IsoDate
    expires_on: IsoDate
    evidence: str | None
    created_at: UtcDatetime
    created_by: str
    revoked_at: UtcDatetime | None


class ServedModelPublic(BaseModel):
    name: str
    version: str
    alias: str | None
    run_id: str | None
    training_window: dict[str, Any] = Field(description="the data and dates the version was trained and tested on")
    model_card_url: str | None = Field(description="GET this for the model card (Markdown)")


class ModelsResponse(BaseModel):
    models: list[ServedModelPublic]
    policy: dict[str, Any] | None
    loaded_at: UtcDatetime | None
    registry: dict[str, Any]


class ErrorBody(BaseModel):
    code: str = Field(description="stable, for programs")
    message_zh: str
    message_en: str
    field: str | None = None


class ErrorResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "code": "invalid_uscc",
                        "message_zh": "统一社会信用代码应为18位，实为17位",
                        "message_en": "uscc must have 18 characters, not 17",
                        "field": "uscc",
                    }
                }
            ]
        }
    )

    error: ErrorBody


class ReadyResponse(BaseModel):
    status: Literal["ready", "degraded", "not_ready"]
    model: ModelPublic | None = None
    models: list[ModelPublic] = []
    features_as_of: dt.date | None = None
    enterprises: int | None = None
    stored_outputs: int = Field(
        default=0,
        description="enterprises whose model outputs are taken from the rows `scoring score` stored for the served "
        "snapshot and models (0: every decision computes them)",
    )
    registry: dict[str, Any] = {}
    problems: list[str] = []


class QueryLogEntry(BaseModel):
    """One request about the enterprise: who made it, when, for what, under which authorization."""

    cursor: int = Field(description="pass as `before` for the entries older than this one")
    event_id: str = Field(description="the decision's id (or the refusal's)")
    at: UtcDatetime
    kind: str = Field(description="evaluation, pre_credit, or refusal (a request refused, and why)")
    kind_zh: str
    request: str | None = Field(description="what a refused request asked for")
    requester_role: str = Field(description="bank, analyst, regulator, admin, or enterprise")
    bank_id: str | None = Field(description="the bank, when a bank asked")
    purpose: str = Field(description="the authorized purpose (a bank's), or the role's own (supervision, ...)")
    purpose_zh: str
    consent_id: str | None = Field(description="the authorization the request was made under")
    answered: bool
    refusal_code: str | None


class QueryLogResponse(BaseModel):
    """An enterprise's query log (查询记录), newest first; the bank's decision itself is not part of it."""

    uscc: str
    entries: list[QueryLogEntry]
    next_before: int | None = Field(description="the `before` of the next page; none when this is the last")
