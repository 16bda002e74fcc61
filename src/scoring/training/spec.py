"""Model specifications (models/*.yaml) read into strict pydantic models."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from scoring.domain.scorer import GradeBand, Override, ScoreScaling
from scoring.errors import ScoringError

S = TypeVar("S", bound=BaseModel)


class SpecError(ScoringError, ValueError):
    """A model specification is invalid; the message names the file and field."""

    code = "invalid_model_spec"
    status = None
    title_zh = "模型规格文件有误"


class SplitSpec(BaseModel):
    """Enterprise snapshots out of time: test at the latest as-of date with a complete outcome window,
    train at as-of dates this many months before it."""

    model_config = ConfigDict(extra="forbid")

    train_offsets_months: list[int] = Field(min_length=1)
    min_history_months: int = 6
    holdout_fraction: float = Field(default=0.2, gt=0, lt=0.5)


class VintageSplit(BaseModel):
    """Loans out of time by vintage (start month): test on the latest vintages whose 12-month outcome
    is complete, train on the vintages before them. A loan's features come from the latest snapshot on
    a grid of month starts every ``snapshot_every_months`` at or before its start month."""

    model_config = ConfigDict(extra="forbid")

    test_vintage_months: int = Field(default=6, ge=1)
    train_vintage_months: int = Field(default=24, ge=1)
    snapshot_every_months: int = Field(default=3, ge=1)
    min_history_months: int = 6
    holdout_fraction: float = Field(default=0.2, gt=0, lt=0.5)


class LargeData(BaseModel):
    """How a city's millions of rows are fitted within the time budget: above ``above_rows`` fitting
    rows, each tree grows on a fresh random sample of ``rows_per_tree`` of them (bagging) and the
    ``lightgbm`` settings here replace the spec's (a larger learning rate: fewer, stronger trees).

    A province's rows do not fit one node's memory as they are: above ``sample_above_rows`` fitting
    rows, every positive is kept and a seeded sample of the negatives, so that about ``sample_rows``
    remain, each kept negative weighted by the inverse of its sampling rate. The holdout (early
    stopping and the Platt calibration) is never sampled."""

    model_config = ConfigDict(extra="forbid")

    above_rows: int = Field(ge=1)
    rows_per_tree: int = Field(ge=1)
    lightgbm: dict[str, Any] = {}
    sample_above_rows: int | None = Field(default=None, ge=1)
    sample_rows: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _sampling_complete(self) -> LargeData:
        if (self.sample_above_rows is None) != (self.sample_rows is None):
            raise ValueError("sample_above_rows and sample_rows are set together")
        if (
            self.sample_rows is not None
            and self.sample_above_rows is not None
            and self.sample_rows >= self.sample_above_rows
        ):
            raise ValueError(f"sample_rows ({self.sample_rows}) must be below sample_above_rows")
        return self


class ModelSpec(BaseModel):
    """A binary risk model: the credit evaluation (adverse_12m) or the loan default model (default_12m)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str
    target: Literal["adverse_12m", "default_12m"]
    features: Literal["all"] | list[str]
    split: SplitSpec | VintageSplit
    lightgbm: dict[str, Any]
    large_data: LargeData | None = None
    calibration: Literal["platt"]
    score: ScoreScaling
    grades: list[GradeBand] = Field(min_length=2)
    overrides: list[Override] = []

    @model_validator(mode="after")
    def _split_fits_target(self) -> ModelSpec:
        want = SplitSpec if self.target == "adverse_12m" else VintageSplit
        if not isinstance(self.split, want):
            raise ValueError(f"target {self.target} needs a split with the fields of {want.__name__}")
        return self


class AmountSpec(BaseModel):
    """The 信易贷 amount model: LightGBM on the log of the amount lent on loans that were repaid.

    ``objective: quantile`` with ``alpha`` below 0.5 estimates a lower quantile, so that the limit
    it starts from is prudent; ``regression`` estimates the mean of the log.
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str
    target: Literal["log_repaid_amount"]
    features: Literal["all"] | list[str]
    split: VintageSplit
    objective: Literal["quantile", "regression"]
    alpha: float | None = Field(default=None, gt=0, lt=1)
    lightgbm: dict[str, Any]

    @model_validator(mode="after")
    def _alpha(self) -> AmountSpec:
        if (self.objective == "quantile") != (self.alpha is not None):
            raise ValueError("alpha is required with objective quantile, and only with it")
        return self


class ShareBand(BaseModel):
    """A grade that takes ``share`` of a table's rows, by its own out-of-fold scores."""

    model_config = ConfigDict(extra="forbid")

    grade: str
    label_zh: str
    share: float = Field(gt=0, lt=1)


class TableSpec(BaseModel):
    """A flat table's model (`scoring train-table`): score scaling, and grade bands by shares of rows."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str
    score: ScoreScaling
    grades: list[ShareBand] = Field(min_length=2)

    @model_validator(mode="after")
    def _shares(self) -> TableSpec:
        total = sum(g.share for g in self.grades)
        if abs(total - 1) > 1e-6:
            raise ValueError(f"the grades' shares add up to {total:g}, not 1")
        return self

    def bands(self, scores: np.ndarray) -> list[GradeBand]:
        """Grade bands cut from ``scores`` so that each grade takes its share, best first."""
        bands: list[GradeBand] = []
        taken = 0.0
        floor = self.score.min
        for g in self.grades[:-1]:
            taken += g.share
            cut = float(np.ceil(np.quantile(scores, 1 - taken))) if len(scores) else self.score.max
            cut = min(cut, bands[-1].min_score - 1) if bands else cut
            bands.append(GradeBand(grade=g.grade, label_zh=g.label_zh, min_score=max(cut, floor + 1)))
        last = self.grades[-1]
        return [*bands, GradeBand(grade=last.grade, label_zh=last.label_zh, min_score=floor)]


def load_spec(path: Path) -> ModelSpec:
    return _load(path, ModelSpec)


def load_table_spec(path: Path) -> TableSpec:
    return _load(path, TableSpec)


def load_amount_spec(path: Path) -> AmountSpec:
    return _load(path, AmountSpec)


def _load(path: Path, kind: type[S]) -> S:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return kind.model_validate(raw)
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError(f"{path}: cannot read: {exc}") from exc
    except ValidationError as exc:
        raise SpecError("\n".join(f"{path}: {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from exc


def spec_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
