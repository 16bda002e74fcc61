"""Model specifications (models/*.yaml) read into strict pydantic models."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scoring.registry.scorer import GradeBand, Override, ScoreScaling


class SpecError(ValueError):
    """A model specification is invalid; the message names the file and field."""


class SplitSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    train_offsets_months: list[int] = Field(min_length=1)
    min_history_months: int = 6
    holdout_fraction: float = Field(default=0.2, gt=0, lt=0.5)


class ModelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str
    target: Literal["adverse_12m"]
    features: Literal["all"] | list[str]
    split: SplitSpec
    lightgbm: dict[str, Any]
    calibration: Literal["platt"]
    score: ScoreScaling
    grades: list[GradeBand] = Field(min_length=2)
    overrides: list[Override] = []


def load_spec(path: Path) -> ModelSpec:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return ModelSpec.model_validate(raw)
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError(f"{path}: cannot read: {exc}") from exc
    except ValidationError as exc:
        raise SpecError("\n".join(f"{path}: {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from exc


def spec_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
