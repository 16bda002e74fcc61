"""The error every training step raises when the data cannot train a model."""

from __future__ import annotations

from scoring.errors import ScoringError


class TrainingError(ScoringError, RuntimeError):
    """Training cannot proceed on this data (too little history, no positives, ...)."""

    code = "training_failed"
    status = None
    title_zh = "无法在该数据上训练"
