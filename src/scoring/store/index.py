"""The decision index: what it keeps of each decision, the backfill of older stores, the decision search."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import orjson
import sqlalchemy as sa

from scoring.store.tables import DECISION_KINDS, audit_log, decision_index


def _summary(kind: str, payload: dict[str, Any]) -> dict[str, Any] | None:
    """What ``decision_index`` keeps of a decision's payload (None for other events)."""
    if kind not in DECISION_KINDS:
        return None
    ev, pc = payload.get("evaluation") or {}, payload.get("pre_credit") or {}
    model = ev.get("model") or {}
    return {  # cut to the columns' lengths: an index entry must never fail the append it belongs to
        "name": str(payload.get("name", ""))[:200],
        "grade": str(ev["grade"])[:1] if ev.get("grade") else None,
        "score": ev.get("score"),
        "pre_credit_limit": pc.get("pre_credit_limit"),
        "decision_zh": str(pc["decision_zh"])[:16] if pc.get("decision_zh") else None,
        "model": f"{model.get('name')} v{model.get('version')}"[:80] if model else None,
    }


def _index_row(row: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
    keep = ("event_id", "seq", "kind", "created_at", "uscc", "bank_id")
    return {**{k: row[k] for k in keep}, **summary}


def _index_decisions(engine: sa.Engine, batch: int = 2000) -> None:
    """Index every decision the index lacks: those of a store written before ``decision_index`` existed.

    Later decisions are indexed with their audit rows. Cheap when nothing is missing (two counts);
    otherwise the missing rows are found by an anti-join, batch by batch, so a backfill that was
    cut short, or raced by another process, is completed by the next start. A row another process
    indexed meanwhile is skipped, not an error.
    """
    decisions = sa.select(sa.func.count()).select_from(audit_log).where(audit_log.c.kind.in_(DECISION_KINDS))
    with engine.connect() as con:
        if (
            con.execute(decisions).scalar()
            == con.execute(sa.select(sa.func.count()).select_from(decision_index)).scalar()
        ):
            return
    missing = (
        sa.select(audit_log)
        .outerjoin(decision_index, decision_index.c.event_id == audit_log.c.event_id)
        .where(audit_log.c.kind.in_(DECISION_KINDS), decision_index.c.event_id.is_(None))
        .order_by(audit_log.c.seq)
        .limit(batch)
    )
    insert: Any
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    while True:
        with engine.begin() as con:
            rows = con.execute(missing).mappings().all()
            indexed = [
                _index_row(dict(r), s)
                for r in rows
                if (s := _summary(r["kind"], orjson.loads(r["payload"]))) is not None
            ]
            if indexed:
                con.execute(insert(decision_index).on_conflict_do_nothing(), indexed)
        if len(rows) < batch:
            return


def search_decisions(
    engine: sa.Engine,
    *,
    decision_id: str | None = None,
    usccs: Sequence[str] | None = None,
    bank_id: str | None = None,
    day_from: dt.date | None = None,
    day_to: dt.date | None = None,
    grade: str | None = None,
    name: str | None = None,
    kinds: Sequence[str] = DECISION_KINDS,
    bank_requests: bool = True,
    tz: dt.tzinfo = dt.UTC,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], bool]:
    """Summaries of stored decisions, newest first, that match every filter given; and whether more follow.

    ``usccs`` (an empty sequence matches nothing), ``day_from`` and ``day_to`` (inclusive, by the
    day in ``tz`` the decision was made), ``grade`` (the evaluation's final grade) and ``name`` (part
    of the enterprise's name) narrow the search; ``bank_requests=False`` leaves out what banks asked.
    Reads ``decision_index``; the decision itself is read with :func:`get_decision`.
    """
    d = decision_index.c
    q = sa.select(decision_index).where(d.kind.in_(list(kinds))).order_by(d.seq.desc())
    if not bank_requests:
        q = q.where(d.bank_id.is_(None))
    if decision_id:
        q = q.where(d.event_id == decision_id)
    if usccs is not None:
        q = q.where(d.uscc.in_(list(usccs)))
    if bank_id:
        q = q.where(d.bank_id == bank_id)
    if name:
        pattern = "%" + name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        q = q.where(d.name.like(pattern, escape="\\"))
    if day_from:
        q = q.where(d.created_at >= _utc_text(day_from, tz))
    if day_to:
        q = q.where(d.created_at < _utc_text(day_to + dt.timedelta(days=1), tz))
    if grade:
        q = q.where(d.grade == grade)
    with engine.connect() as con:
        rows = [dict(r) for r in con.execute(q.limit(limit + 1).offset(offset)).mappings()]
    return rows[:limit], len(rows) > limit


def _utc_text(day: dt.date, tz: dt.tzinfo) -> str:
    """The start of ``day`` in ``tz`` as the audit log writes its UTC times (ISO text, compared as text)."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=tz).astimezone(dt.UTC)
    return start.isoformat(timespec="microseconds")
