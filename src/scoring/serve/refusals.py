"""Refusals recorded before they are answered: every 403 of the service is in the audit log."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from scoring.errors import ApiError
from scoring.store import ApiKey, Event, Purpose, Role, append

ROLE_ZH = {
    Role.BANK: "银行",
    Role.ANALYST: "分析人员",
    Role.REGULATOR: "监管人员",
    Role.ADMIN: "管理员",
    Role.ENTERPRISE: "企业",
    Role.REVIEWER: "复核人员",
}


def refusal(key: ApiKey, *, code: str, zh: str, en: str, uscc: str | None, what: str) -> tuple[Event, ApiError]:
    """A 403 and the audit event that records it (to be appended before the 403 is answered)."""
    payload = {"code": code, "request": what, "message_en": en}
    return Event(kind="refusal", payload=payload, key=key, uscc=uscc), ApiError(403, code, zh, en)


def refuse(engine: sa.Engine, key: ApiKey, *, code: str, zh: str, en: str, uscc: str | None, what: str) -> ApiError:
    """A 403, appended to the audit log as a refusal first."""
    event, error = refusal(key, code=code, zh=zh, en=en, uscc=uscc, what=what)
    append(engine, [event])
    return error


def no_consent(key: ApiKey, uscc: str, purposes: tuple[Purpose, ...], on: dt.date, what: str) -> tuple[Event, ApiError]:
    """The refusal of a bank's request about an enterprise that has not authorized it for ``purposes``."""
    wanted = " or ".join(p.value for p in purposes)
    return refusal(
        key,
        code="no_consent",
        zh=f"该主体未授权本银行（{key.bank_id}）用于此用途，或授权已过期、已撤销",
        en=f"enterprise {uscc} has no unexpired, unrevoked authorization of bank {key.bank_id} for {wanted} on {on}",
        uscc=uscc,
        what=what,
    )


def only_itself(engine: sa.Engine, key: ApiKey, uscc: str, what: str) -> None:
    """An enterprise key reads about its own enterprise only: a 403, audited, for any other (the same
    answer whether that other enterprise exists or not). Keys of other roles pass."""
    if key.role == Role.ENTERPRISE and not key.is_about(uscc):
        raise refuse(
            engine,
            key,
            code="not_own_enterprise",
            zh="企业密钥只能查询本企业的信息",
            en="an enterprise key may read about its own enterprise only",
            uscc=uscc,
            what=what,
        )
