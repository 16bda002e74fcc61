"""What to generate: the one settings object the synthetic data depends on."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate. The output depends on these values only."""

    enterprises: int = 20_000
    months: int = 48
    start: str = "2022-01"
    seed: int = 7
    chunk_size: int = 50_000
    error_rate: float = 0.0002
    pilot_code_rate: float = 0.0002
    hazard_intercept: float = -5.6
    hazard_slope: float = 1.15
    # a bad spell for one industry: its latent risk rises by regime_shift for regime_months months,
    # starting regime_months before the end of the data unless regime_start (a month index) is set
    regime_industry: str = "F"
    regime_months: int = 6
    regime_shift: float = 0.8
    regime_start: int | None = None

    @property
    def regime_window(self) -> tuple[int, int]:
        start = self.months - self.regime_months if self.regime_start is None else self.regime_start
        return max(start, 0), min(start + self.regime_months, self.months)
