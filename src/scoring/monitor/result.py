"""The figures of one monitoring run and the flags they raise (``MonitorResult``).

Computed by :mod:`scoring.monitor.run`, rendered by :mod:`scoring.monitor.report`; both import it
from here, so neither imports the other's module to know its shape.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from scoring.monitor.drift import Flag, Thresholds

_ORDER = {Flag.GREEN: 0, Flag.AMBER: 1, Flag.RED: 2}


def worst(flags: list[Flag]) -> Flag:
    """The worst of the flags (green when there are none)."""
    return max(flags, key=_ORDER.__getitem__, default=Flag.GREEN)


@dataclass
class MonitorResult:
    """The figures of one run, what they were computed on, and where they were written."""

    as_of: dt.date
    reference_as_of: list[dt.date]
    migration_as_of: dt.date
    reference_is_training: bool  # False when an explicit reference date replaced the training snapshots
    model_name: str
    model_version: str
    model_run_id: str | None
    thresholds: Thresholds
    score_psi: float
    score_shift: float  # change of the mean score in reference standard deviations
    score_shift_z: float
    features: pd.DataFrame
    segments: pd.DataFrame
    migration: pd.DataFrame
    migration_segments: pd.DataFrame
    grade_shares: pd.DataFrame
    scores: pd.DataFrame  # score and segment columns of both sides, ``side`` = reference / current
    n_reference: int
    n_current: int
    reference_sampled: bool
    built: list[dt.date]
    data_matches_training: bool
    score_only: bool = False  # the old rule: only the score's flags alert, the features' are diagnostics
    run_id: str | None = None
    report_path: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def score_flag(self) -> Flag:
        """The whole population's score: the worse of its PSI and its mean shift."""
        limits = self.thresholds
        return worst([limits.psi_flag(self.score_psi), limits.shift_flag(self.score_shift, self.score_shift_z)])

    def flagged_segments(self, flag: Flag) -> pd.DataFrame:
        return self.segments[self.segments["flag"] == flag.value].sort_values("psi", ascending=False)

    @property
    def score_status(self) -> Flag:
        """The worst of the score's flags, overall and per segment."""
        return worst([self.score_flag, *(Flag(f) for f in self.segments["flag"].dropna())])

    @property
    def feature_status(self) -> Flag:
        """The worst of the features' PSI and missing-rate flags (features not compared have none)."""
        flags = (*self.features["psi_flag"], *self.features["missing_flag"])
        return worst([Flag(f) for f in flags if isinstance(f, str)])

    @property
    def alert(self) -> bool:
        """True when a scheduler should call someone: a red flag of the score (overall or in a segment)
        or of a feature (PSI or missing rate); with ``score_only``, of the score alone."""
        return self.score_status is Flag.RED or (not self.score_only and self.feature_status is Flag.RED)

    @property
    def reasons(self) -> list[str]:
        """What raised the alert, in words (empty when nothing did)."""
        out = []
        if self.score_flag is Flag.RED:
            out.append(f"score PSI {self.score_psi:.3f}, mean shift {self.score_shift:+.2f} sd")
        for row in self.flagged_segments(Flag.RED).itertuples():
            out.append(
                f"{row.segment}={row.value} ({row.n_current} enterprises): score PSI {row.psi:.3f}, "
                f"mean shift {row.shift_sd:+.2f} sd"
            )
        return out + ([] if self.score_only else self.feature_reasons)

    @property
    def feature_reasons(self) -> list[str]:
        """The red feature flags, in words, naming the features (the largest first)."""
        out = []
        red = self.features[self.features["psi_flag"] == Flag.RED.value]
        if len(red):
            out.append(f"{len(red)} feature(s) with PSI ≥ {self.thresholds.psi_red}: {_names(red, 'psi')}")
        missing = self.features[self.features["missing_flag"] == Flag.RED.value]
        if len(missing):
            missing = missing.assign(size=missing["missing_change"].abs())
            out.append(
                f"{len(missing)} feature(s) whose missing rate moved ≥ {self.thresholds.missing_red:.0%}: "
                f"{_names(missing, 'size')}"
            )
        return out

    @property
    def not_compared(self) -> list[str]:
        """The features without figures: every reference snapshot's window of them reached before their
        source's first records (so they were missing in all of them)."""
        return sorted(self.features.loc[~self.features["compared"].astype(bool), "feature"])

    def counts(self) -> dict[str, int]:
        """How many figures are amber and red, by kind."""
        seg = self.segments["flag"]
        out = {
            "n_red_segments": int((seg == Flag.RED.value).sum()),
            "n_amber_segments": int((seg == Flag.AMBER.value).sum()),
            "n_red_features": int((self.features["psi_flag"] == Flag.RED.value).sum()),
            "n_amber_features": int((self.features["psi_flag"] == Flag.AMBER.value).sum()),
            "n_red_missing": int((self.features["missing_flag"] == Flag.RED.value).sum()),
            "n_amber_missing": int((self.features["missing_flag"] == Flag.AMBER.value).sum()),
            "n_not_compared": len(self.not_compared),
        }
        score = self.score_flag
        out["n_red"] = out["n_red_segments"] + out["n_red_features"] + out["n_red_missing"] + (score is Flag.RED)
        out["n_amber"] = (
            out["n_amber_segments"] + out["n_amber_features"] + out["n_amber_missing"] + (score is Flag.AMBER)
        )
        return out


def _names(rows: pd.DataFrame, by: str, most: int = 5) -> str:
    """The features of ``rows`` with the largest ``by``, at most ``most`` of them, then how many more."""
    names = list(rows.sort_values(by, ascending=False)["feature"])
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")
