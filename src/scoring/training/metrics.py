"""Validation figures for a binary risk model."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, roc_auc_score, roc_curve


def ks_statistic(y: np.ndarray, p: np.ndarray) -> float:
    """Kolmogorov-Smirnov: the largest gap between the score distributions of bads and goods."""
    fpr, tpr, _ = roc_curve(y, p)
    return float(np.max(tpr - fpr))


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Mean |observed - predicted| over probability deciles, weighted by their size."""
    frame = pd.DataFrame({"y": y, "p": p})
    frame["bin"] = pd.qcut(frame["p"], bins, labels=False, duplicates="drop")
    g = frame.groupby("bin").agg(y=("y", "mean"), p=("p", "mean"), n=("y", "size"))
    return float((g["n"] * (g["y"] - g["p"]).abs()).sum() / g["n"].sum())


def binary_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    auc = float(roc_auc_score(y, p))
    return {
        "auc": auc,
        "gini": 2 * auc - 1,
        "ks": ks_statistic(y, p),
        "brier": float(brier_score_loss(y, p)),
        "ece": expected_calibration_error(y, p),
        "bad_rate": float(np.mean(y)),
        "mean_probability": float(np.mean(p)),
        "n": float(len(y)),
    }


def grade_table(y: np.ndarray, grades: np.ndarray, order: list[str]) -> pd.DataFrame:
    """Share of enterprises and observed bad rate per grade, in grade order."""
    frame = pd.DataFrame({"y": y, "grade": grades})
    g = frame.groupby("grade")["y"].agg(["size", "mean"]).reindex(order).fillna(0)
    g.columns = ["n", "bad_rate"]
    g["share"] = g["n"] / max(len(frame), 1)
    return g
