"""Refusals recorded before they are answered: every 403 of the service is in the audit log."""

from __future__ import annotations

import sqlalchemy as sa

from scoring.errors import ApiError
from scoring.store import ApiKey, Event, Role, append

ROLE_ZH = {Role.BANK: "银行", Role.ANALYST: "分析人员", Role.REGULATOR: "监管人员", Role.ADMIN: "管理员"}


def refuse(engine: sa.Engine, key: ApiKey, *, code: str, zh: str, en: str, uscc: str | None, what: str) -> ApiError:
    """A 403, appended to the audit log as a refusal first."""
    append(
        engine, [Event(kind="refusal", payload={"code": code, "request": what, "message_en": en}, key=key, uscc=uscc)]
    )
    return ApiError(403, code, zh, en)
