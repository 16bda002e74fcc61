"""Reading the audit log: one event, one decision, an outcome by its idempotency key, filtered events."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from scoring.store.tables import DECISION_KINDS, audit_log


def _event(row: Any) -> dict[str, Any]:
    out = dict(row)
    out["payload"] = json.loads(out["payload"])
    return out


def get_event(engine: sa.Engine, event_id: str, *, kinds: Sequence[str] | None = None) -> dict[str, Any] | None:
    """One audit event with its payload parsed, or None."""
    q = sa.select(audit_log).where(audit_log.c.event_id == event_id)
    if kinds:
        q = q.where(audit_log.c.kind.in_(kinds))
    with engine.connect() as con:
        row = con.execute(q).mappings().first()
    return _event(row) if row else None


def get_decision(engine: sa.Engine, decision_id: str) -> dict[str, Any] | None:
    return get_event(engine, decision_id, kinds=DECISION_KINDS)


def find_idempotent(engine: sa.Engine, idem_key: str) -> dict[str, Any] | None:
    with engine.connect() as con:
        row = con.execute(sa.select(audit_log).where(audit_log.c.idem_key == idem_key)).mappings().first()
    return _event(row) if row else None


def events(
    engine: sa.Engine,
    *,
    kinds: Sequence[str] | None = None,
    ref_id: str | None = None,
    bank_id: str | None = None,
    uscc: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Audit events, newest first, filtered."""
    q = sa.select(audit_log).order_by(audit_log.c.seq.desc()).limit(limit)
    if kinds:
        q = q.where(audit_log.c.kind.in_(kinds))
    if ref_id:
        q = q.where(audit_log.c.ref_id == ref_id)
    if bank_id:
        q = q.where(audit_log.c.bank_id == bank_id)
    if uscc:
        q = q.where(audit_log.c.uscc == uscc)
    with engine.connect() as con:
        return [_event(r) for r in con.execute(q).mappings()]
