"""Request and response schemas of the API."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field, field_validator

from scoring.data.uscc import UsccFault, UsccProblem, validate

EXAMPLE_USCC = "91320100748204660Q"


class UsccValueError(ValueError):
    """A malformed USCC; carries the problem so the error body can name the fault in both languages."""

    def __init__(self, problem: UsccProblem):
        super().__init__(problem.message)
        self.problem = problem


class EvaluationRequest(BaseModel):
    """Ask for the public credit evaluation (公共信用综合评价) of one enterprise."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"uscc": EXAMPLE_USCC}]})

    uscc: str = Field(description="统一社会信用代码 (18 characters, GB 32100-2015)")

    @field_validator("uscc")
    @classmethod
    def _shape(cls, v: str) -> str:
        v = v.strip().upper()
        # the check character is verified by the endpoint: an early pilot code that fails it but is
        # registered on the platform is still served (with a warning)
        problems = [p for p in validate(v) if p.fault != UsccFault.CHECK]
        if problems:
            raise UsccValueError(problems[0])
        return v


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
    points: float = Field(description="TreeSHAP contribution in score points; negative raises the risk")
    effect: str = Field(description="raises_risk or lowers_risk")
    text_zh: str


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
    model: ModelPublic
    warnings: list[str] = []


class ErrorBody(BaseModel):
    code: str
    message_zh: str
    message_en: str
    field: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class ReadyResponse(BaseModel):
    status: str
    model: ModelPublic | None = None
    features_as_of: dt.date | None = None
    enterprises: int | None = None
    problems: list[str] = []
