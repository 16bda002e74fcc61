"""What a load did: per file and table (:class:`TableLoad`) and the data-quality report (:class:`LoadReport`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

QUALITY_TARGET = 0.0001  # the seeds' ceiling for duplicate and wrong-code records: 0.01 %


@dataclass
class TableLoad:
    """What one file did to one table."""

    table: str
    source_file: str
    rows_read: int = 0
    inserted: int = 0
    replaced: int = 0
    unchanged: int = 0
    duplicates_in_file: int = 0
    quarantined: int = 0
    bad_uscc: int = 0
    warnings: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def loaded(self) -> int:
        """Rows of this file now in the table (inserted or replacing an older version)."""
        return self.inserted + self.replaced

    @property
    def accounted(self) -> int:
        return self.loaded + self.unchanged + self.duplicates_in_file + self.quarantined


@dataclass
class LoadReport:
    """The data-quality report of one load (数据质量报告)."""

    load_id: str
    extract_date: dt.date
    tables: list[TableLoad]
    coverage: dict[str, float] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    interrupted: dict[str, Any] | None = None  # an earlier load killed half-way (nothing of it kept)

    @property
    def rows_read(self) -> int:
        return sum(t.rows_read for t in self.tables)

    @property
    def uscc_error_rate(self) -> float:
        return sum(t.bad_uscc for t in self.tables) / max(self.rows_read, 1)

    @property
    def duplicate_rate(self) -> float:
        return sum(t.duplicates_in_file for t in self.tables) / max(self.rows_read, 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "load_id": self.load_id,
            "extract_date": str(self.extract_date),
            "rows_read": self.rows_read,
            "uscc_error_rate": self.uscc_error_rate,
            "duplicate_rate": self.duplicate_rate,
            "target_rate": QUALITY_TARGET,
            "tables": [{**asdict(t), "loaded": t.loaded} for t in self.tables],
            "coverage": self.coverage,
            "failures": self.failures,
            "interrupted": self.interrupted,
        }

    def interrupted_text(self) -> str | None:
        """What the next load says of one killed half-way, or None."""
        if not self.interrupted:
            return None
        return (
            f"load {self.interrupted.get('load_id')} (started {self.interrupted.get('started')}) was interrupted "
            "before it finished; nothing of it was kept, and this load ran in its place"
        )

    def _interrupted_lines(self) -> list[str]:
        text = self.interrupted_text()
        return [f"Note: {text}.", ""] if text else []

    def to_markdown(self) -> str:
        def verdict(rate: float) -> str:
            return "within target" if rate <= QUALITY_TARGET else "ABOVE TARGET"

        lines = [
            f"# Data-quality report, load {self.load_id}",
            "",
            f"Extraction date {self.extract_date}; {self.rows_read:,} rows read.",
            "",
            *self._interrupted_lines(),
            f"- USCC error rate (malformed or unregistered codes): {self.uscc_error_rate:.4%} "
            f"({verdict(self.uscc_error_rate)}, target ≤ {QUALITY_TARGET:.2%})",
            f"- duplicate rate (same natural key twice in a file): {self.duplicate_rate:.4%} "
            f"({verdict(self.duplicate_rate)})",
            "",
            "| table | file | read | inserted | replaced | unchanged | duplicates | quarantined |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for t in self.tables:
            lines.append(
                f"| {t.table} | {Path(t.source_file).name} | {t.rows_read:,} | {t.inserted:,} | {t.replaced:,} | "
                f"{t.unchanged:,} | {t.duplicates_in_file:,} | {t.quarantined:,} |"
            )
        reasons = [(t.table, r, n) for t in self.tables for r, n in t.reasons.items()]
        if reasons:
            lines += ["", "## Quarantine reasons", "", "| table | field: reason | rows |", "|---|---|---:|"]
            lines += [f"| {t} | {r} | {n:,} |" for t, r, n in reasons]
        warnings = [(t.table, w, n) for t in self.tables for w, n in t.warnings.items()]
        if warnings:
            lines += ["", "## Warnings", "", "| table | warning | rows |", "|---|---|---:|"]
            lines += [f"| {t} | {w} | {n:,} |" for t, w, n in warnings]
        if self.coverage:
            lines += ["", "## Coverage among live enterprises", "", "| source | share |", "|---|---:|"]
            lines += [f"| {k} | {v:.1%} |" for k, v in self.coverage.items()]
        if self.failures:
            lines += ["", "## Files that could not be read", ""]
            lines += [f"- {k}: {v}" for k, v in self.failures.items()]
        return "\n".join(lines) + "\n"
