"""Unified social credit code (统一社会信用代码, USCC) per GB 32100-2015.

Layout: position 1 registering authority, 2 entity type, 3-8 administrative division,
9-17 organisation code (with its own GB 11714 check at position 17), 18 check character.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE = {c: i for i, c in enumerate(CHARSET)}
USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


class UsccFault(StrEnum):
    """Why a string is not a well-formed USCC."""

    LENGTH = "length"
    CHARACTER = "character"
    ORG_CHECK = "org_check"
    CHECK = "check"


@dataclass(frozen=True)
class UsccProblem:
    """One fault found in a candidate code, with a message an operator can act on."""

    fault: UsccFault
    message_zh: str
    message_en: str
    position: int | None = None

    @property
    def message(self) -> str:
        return f"{self.message_zh} ({self.message_en})"


def check_character(first17: str) -> str:
    """The 18th character for the first 17 (C18 = charset[(31 - sum mod 31) mod 31])."""
    total = sum(_VALUE[c] * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return CHARSET[(31 - total % 31) % 31]


def org_check_character(body8: str) -> str:
    """GB 11714 check for the 8-character organisation code body (10 -> X, 11 -> 0)."""
    total = sum(_org_value(c) * w for c, w in zip(body8, ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


def _org_value(c: str) -> int:
    return int(c) if c.isdigit() else ord(c) - 55


def validate(code: str) -> list[UsccProblem]:
    """All faults of ``code``; an empty list means a valid USCC.

    Length and characters are checked first; the check characters only when the shape is right.
    """
    if len(code) != 18:
        return [
            UsccProblem(
                UsccFault.LENGTH,
                f"统一社会信用代码应为18位，实际为{len(code)}位",
                f"USCC must be 18 characters, got {len(code)}",
            )
        ]
    for i, c in enumerate(code):
        if c not in _VALUE:
            return [
                UsccProblem(
                    UsccFault.CHARACTER,
                    f"第{i + 1}位字符'{c}'不合法（只能使用0-9和除I、O、S、V、Z以外的大写字母）",
                    f"character '{c}' at position {i + 1} is not allowed (use 0-9 and A-Y without I, O, S, V, Z)",
                    position=i + 1,
                )
            ]
    problems = []
    expected = check_character(code[:17])
    if code[17] != expected:
        problems.append(
            UsccProblem(
                UsccFault.CHECK,
                f"校验码错误：第18位应为'{expected}'，实际为'{code[17]}'",
                f"check character at position 18 should be '{expected}', got '{code[17]}'",
                position=18,
            )
        )
    return problems


def org_code_ok(code: str) -> bool:
    """Whether positions 9-17 carry a correct GB 11714 organisation-code check."""
    body = code[8:16]
    return all(c.isdigit() or c.isupper() for c in body) and org_check_character(body) == code[16]


def make_uscc(*, authority: str, entity_type: str, division: str, org_body: str) -> str:
    """Build a valid USCC from its parts (both check characters computed)."""
    if len(division) != 6 or len(org_body) != 8:
        raise ValueError("division must have 6 characters and org_body 8")
    first17 = authority + entity_type + division + org_body + org_check_character(org_body)
    return first17 + check_character(first17)


def sql_check_expression(column: str) -> str:
    """A DuckDB expression that is TRUE when ``column`` has a correct 18th character.

    Written as SQL so that ingestion validates millions of codes set-based, without a
    Python call per row. Assumes the shape (length, charset) was checked before.
    """
    terms = " + ".join(
        f"(instr('{CHARSET}', substr({column}, {i + 1}, 1)) - 1) * {w}" for i, w in enumerate(USCC_WEIGHTS)
    )
    return f"substr('{CHARSET}', ((31 - (({terms}) % 31)) % 31) + 1, 1) = substr({column}, 18, 1)"


def sql_shape_expression(column: str) -> str:
    """A DuckDB expression that is TRUE when ``column`` has 18 characters from the USCC charset."""
    return f"regexp_full_match({column}, '[0-9A-HJ-NP-RTUW-Y]{{18}}')"
