"""What the human-review endpoints take and answer (人工复核)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, model_validator

from scoring.serve.times import UtcDatetime

GRADES = Literal["A", "B", "C", "D"]


class ReviewAsk(BaseModel):
    """Ask for a human review of a decision: why it should be looked at again."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "处罚已于上月完成信用修复，评价未反映"}]}
    )

    reason: str = Field(min_length=5, max_length=2000, description="why the decision should be reviewed")


class ReviewConclusion(BaseModel):
    """A reviewer's conclusion: the decision confirmed, or overridden (a grade, or a pre-credit outcome), and why."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"outcome": "overridden", "grade": "B", "reason": "修复记录核实无误，等级调整为良"}]
        },
    )

    outcome: Literal["confirmed", "overridden"]
    grade: GRADES | None = Field(default=None, description="the grade that stands instead (an override)")
    pre_credit_limit: Annotated[float, Strict()] | None = Field(
        default=None, ge=0, le=1e9, description="the pre-credit limit that stands instead, in yuan (an override)"
    )
    reason: str = Field(min_length=5, max_length=2000, description="the reviewer's written reason")

    @model_validator(mode="after")
    def _an_override_says_what(self) -> ReviewConclusion:
        changed = self.grade is not None or self.pre_credit_limit is not None
        if self.outcome == "overridden" and not changed:
            raise ValueError("an override names the grade or the pre-credit limit that stands instead")
        if self.outcome == "confirmed" and changed:
            raise ValueError("a confirmation changes nothing: no grade or limit with it")
        return self


class ReviewPublic(BaseModel):
    """A review request and, once decided, the reviewer's conclusion."""

    review_id: str
    decision_id: str
    requested_at: UtcDatetime
    requested_by: str = Field(description="the role that asked: enterprise or bank")
    bank_id: str | None
    reason: str
    status: Literal["open", "decided"]
    decided_at: UtcDatetime | None = None
    outcome: Literal["confirmed", "overridden"] | None = None
    grade: GRADES | None = None
    pre_credit_limit: float | None = None
    decision_reason: str | None = None
