"""A penalties exchange file wrong the way real ones are, with the answer key of where each fault is.

Every tenth record is bad in one of five ways (a negative amount, a malformed USCC, a record cut
short, an impossible date, a stray quote); a seventh of the records carry a note that runs over two
lines inside quotes, and a blank line follows every thousandth record, so physical lines and record
numbers part ways as they do in files exported by hand. Used by the test that checks every bad record
is quarantined at its exact line, and by ``benchmarks/exchange_csv.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

HEADER = "处罚决定书文号,统一社会信用代码,处罚领域,违法程度,罚没金额(元),处罚决定日期,公示截止日期,信用修复日期,备注"
FAULT_FIELDS = ("amount", "uscc", "(line)", "decision_date", "(line)")


@dataclass
class MessyFile:
    """Where each record went in the file: good ones by id, bad ones by line with the field at fault."""

    path: Path
    good: dict[str, int] = field(default_factory=dict)  # penalty_id -> physical line
    bad: dict[int, str] = field(default_factory=dict)  # physical line -> field of the fault
    blank_lines: int = 0


def _record(i: int, code: str) -> tuple[str, str | None]:
    """Record ``i`` of the file and the field of its fault (None when it is good)."""
    note = '"两行\n备注"' if i % 7 == 0 else ""
    kind = (i // 10) % 5 if i % 10 == 9 else None
    rows = (
        f"P{i},{code},市场监管,一般,-1,2024-03-01,2025-03-01,,{note}",
        f"P{i},{code[:-1]}I,市场监管,一般,1,2024-03-01,2025-03-01,,{note}",
        f"P{i},{code},市场监管,一般,1,2024-03-01",
        f"P{i},{code},市场监管,一般,1,2024-13-01,2025-03-01,,{note}",
        f'P{i},{code},市场监管,一般,1,2024-03-01,2025-03-01,,"x"y',
    )
    if kind is None:
        return f"P{i},{code},市场监管,一般,{i % 900},2024-03-01,2025-03-01,,{note}", None
    return rows[kind], FAULT_FIELDS[kind]


def write_messy_penalties(path: Path, codes: list[str], records: int) -> MessyFile:
    """Write ``records`` penalties of the enterprises ``codes`` (registered, live) to ``path`` in UTF-8."""
    out = MessyFile(path)
    line = 2
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write(HEADER + "\n")
        for i in range(records):
            row, fault = _record(i, codes[i % len(codes)])
            f.write(row + "\n")
            if fault is None:
                out.good[f"P{i}"] = line
            else:
                out.bad[line] = fault
            line += row.count("\n") + 1
            if i % 1000 == 999:
                f.write("\n")
                line += 1
                out.blank_lines += 1
    return out
