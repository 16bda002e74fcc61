"""Consents: an enterprise's authorization of a bank for a purpose, granted, revoked and looked up.

Every grant and revocation is audited in the same transaction as the change itself.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from scoring.store.audit import Event, _append_in, _append_lock
from scoring.store.engine import placeholder, writers_lock
from scoring.store.keys import ApiKey
from scoring.store.tables import _now, consents


class Purpose(StrEnum):
    """What an enterprise authorized a bank for (授权用途)."""

    PRE_CREDIT = "pre_credit"  # 信易贷预授信
    EVALUATION = "evaluation"  # 查询公共信用综合评价


def grant_consent(
    engine: sa.Engine,
    *,
    uscc: str,
    bank_id: str,
    purpose: Purpose,
    granted_on: dt.date,
    expires_on: dt.date,
    evidence: str | None,
    created_by: str,
    key: ApiKey | None = None,
) -> dict[str, Any]:
    """Record an enterprise's authorization of a bank for a purpose (and audit it)."""
    if expires_on <= granted_on:
        raise ValueError(f"expires_on {expires_on} must be after granted_on {granted_on}")
    record = {
        "consent_id": str(uuid.uuid4()),
        "uscc": uscc,
        "bank_id": bank_id,
        "purpose": purpose.value,
        "granted_on": granted_on,
        "expires_on": expires_on,
        "evidence": evidence,
        "created_at": _now(),
        "created_by": created_by,
        "revoked_at": None,
    }
    with _append_lock, writers_lock(engine), engine.begin() as con:
        con.execute(consents.insert().values(**record))
        _append_in(
            con, [Event(kind="consent_granted", payload=record, key=key, uscc=uscc, ref_id=str(record["consent_id"]))]
        )
    return record


def revoke_consent(engine: sa.Engine, consent_id: str, *, by: str, key: ApiKey | None = None) -> dict[str, Any] | None:
    """Revoke a consent from now on; the revoked record, or None when there is no live consent of that id."""
    with _append_lock, writers_lock(engine), engine.begin() as con:
        done = con.execute(
            consents.update()
            .where(consents.c.consent_id == consent_id, consents.c.revoked_at.is_(None))
            .values(revoked_at=_now())
        )
        if not done.rowcount:
            return None
        row = dict(con.execute(sa.select(consents).where(consents.c.consent_id == consent_id)).mappings().one())
        event = Event(kind="consent_revoked", payload={**row, "by": by}, key=key, uscc=row["uscc"], ref_id=consent_id)
        _append_in(con, [event])
    return row


def list_consents(
    engine: sa.Engine, *, uscc: str | None = None, bank_id: str | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    q = sa.select(consents).order_by(consents.c.created_at.desc()).limit(limit)
    if uscc:
        q = q.where(consents.c.uscc == uscc)
    if bank_id:
        q = q.where(consents.c.bank_id == bank_id)
    with engine.connect() as con:
        return [dict(r) for r in con.execute(q).mappings()]


def live_consent(
    engine: sa.Engine, *, uscc: str, bank_id: str, purposes: Sequence[Purpose], on: dt.date
) -> dict[str, Any] | None:
    """The unrevoked consent in force on ``on`` that expires last, for any of ``purposes``; else None."""
    return live_consents(engine, [(uscc, bank_id)], purposes=purposes, on=on).get((uscc, bank_id))


def live_consents(
    engine: sa.Engine, pairs: Sequence[tuple[str, str]], *, purposes: Sequence[Purpose], on: dt.date
) -> dict[tuple[str, str], dict[str, Any]]:
    """:func:`live_consent` of many (uscc, bank_id) pairs in one query: the pairs that have one, each
    with its ``consent_id``, ``uscc``, ``bank_id``, ``purpose``, ``granted_on``, ``expires_on`` (dates)
    and ``evidence``.

    Of several live consents of a pair, the one that expires last (then the latest granted, then
    the greatest id, so the choice never depends on the database's row order).
    """
    if not pairs:
        return {}
    usccs, banks = sorted({u for u, _ in pairs}), sorted({b for _, b in pairs})
    wanted = [p.value for p in purposes]
    with engine.connect() as con:
        # the SQL text on the driver: SQLAlchemy's statement with its expanding IN lists cost 0.1 ms a
        # request more to render and run, a sixth of a lone pre-credit decision's time
        mark = placeholder(con.dialect)
        day: dt.date | str = on.isoformat() if con.dialect.name == "sqlite" else on  # SQLite keeps dates as text
        rows = con.exec_driver_sql(
            _LIVE_CONSENTS_SQL.format(
                usccs=", ".join([mark] * len(usccs)),
                banks=", ".join([mark] * len(banks)),
                purposes=", ".join([mark] * len(wanted)),
                on=mark,
            ),
            (*usccs, *banks, *wanted, day, day),
        ).all()
    want, out = set(pairs), {}
    for row in rows:
        record = dict(zip(_LIVE_COLUMNS, row, strict=True))
        pair = (record["uscc"], record["bank_id"])
        if pair in want and pair not in out:  # the first of a pair is the one that expires last
            for k in ("granted_on", "expires_on"):
                record[k] = dt.date.fromisoformat(record[k]) if isinstance(record[k], str) else record[k]
            out[pair] = record
    return out


_LIVE_COLUMNS = ("consent_id", "uscc", "bank_id", "purpose", "granted_on", "expires_on", "evidence")
_LIVE_CONSENTS_SQL = (
    f"SELECT {', '.join(_LIVE_COLUMNS)} FROM consents "  # nosec B608 # constant column names; values bound
    "WHERE uscc IN ({usccs}) AND bank_id IN ({banks}) AND purpose IN ({purposes}) AND revoked_at IS NULL "
    "AND granted_on <= {on} AND expires_on > {on} "
    "ORDER BY expires_on DESC, granted_on DESC, consent_id DESC"
)
