"""The decision store (SQLAlchemy: a SQLite file by default, PostgreSQL by URL): keys, consents, audit log.

Every decision, refusal, outcome report and consent change is appended to ``audit_log`` with a
hash chain: each row's hash covers its own content and the previous row's hash, and
``audit_head`` holds the last sequence number and hash. A changed row breaks its own hash; a
deleted row leaves a gap in the sequence (or, at the end, disagrees with the head). Nothing here
updates or deletes an audit row.

API keys are stored as SHA-256 hashes; the key itself is shown once, when it is created. (A plain
hash suffices because keys are 192-bit random tokens, not passwords a person chose.)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import threading
import uuid
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import sqlalchemy as sa

from scoring.errors import ScoringError

metadata = sa.MetaData()

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("bank_id", sa.String(32)),
    sa.Column("label", sa.String(200)),
    sa.Column("rate_per_minute", sa.Integer),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
)

consents = sa.Table(
    "consents",
    metadata,
    sa.Column("consent_id", sa.String(36), primary_key=True),
    sa.Column("uscc", sa.String(18), nullable=False),
    sa.Column("bank_id", sa.String(32), nullable=False),
    sa.Column("purpose", sa.String(32), nullable=False),
    sa.Column("granted_on", sa.Date, nullable=False),
    sa.Column("expires_on", sa.Date, nullable=False),
    sa.Column("evidence", sa.String(200)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
    sa.Index("ix_consents_lookup", "uscc", "bank_id", "purpose"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=False),
    sa.Column("event_id", sa.String(36), nullable=False, unique=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),  # ISO text: hashed as stored, on any backend
    sa.Column("uscc", sa.String(18), index=True),
    sa.Column("key_id", sa.String(32)),
    sa.Column("role", sa.String(16)),
    sa.Column("bank_id", sa.String(32), index=True),
    sa.Column("ref_id", sa.String(36), index=True),  # an outcome's decision, a consent change's consent
    sa.Column("idem_key", sa.String(120), unique=True),  # an outcome's (decision, report date)
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

# what the decision search reads: one row per decision, derived from its audit row in the same
# transaction (the audit row, covered by the chain, stays the record; this is an index of it)
decision_index = sa.Table(
    "decision_index",
    metadata,
    sa.Column("event_id", sa.String(36), primary_key=True),
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=False, unique=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False, index=True),
    sa.Column("uscc", sa.String(18), index=True),
    sa.Column("name", sa.String(200)),
    sa.Column("bank_id", sa.String(32), index=True),
    sa.Column("grade", sa.String(1), index=True),
    sa.Column("score", sa.Integer),
    sa.Column("pre_credit_limit", sa.Float),
    sa.Column("decision_zh", sa.String(16)),
    sa.Column("model", sa.String(80)),
)

console_sessions = sa.Table(
    "console_sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("key_id", sa.String(32), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ended_at", sa.DateTime(timezone=True)),
)

GENESIS = "0" * 64
DECISION_KINDS = ("evaluation", "pre_credit")
_HASHED = (
    "seq",
    "event_id",
    "kind",
    "created_at",
    "uscc",
    "key_id",
    "role",
    "bank_id",
    "ref_id",
    "idem_key",
    "payload",
)


class Role(StrEnum):
    BANK = "bank"
    ANALYST = "analyst"
    REGULATOR = "regulator"
    ADMIN = "admin"


class Purpose(StrEnum):
    """What an enterprise authorized a bank for (授权用途)."""

    PRE_CREDIT = "pre_credit"  # 信易贷预授信
    EVALUATION = "evaluation"  # 查询公共信用综合评价


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    role: Role
    bank_id: str | None
    label: str | None
    rate_per_minute: int | None = None


def engine_for(url: str) -> sa.Engine:
    """An engine for the decision store, creating the SQLite folder, the tables and the chain head."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_con: Any, _: Any) -> None:
            # WAL lets readers go on while one writer appends; NORMAL syncs at checkpoints, which
            # in WAL mode loses no committed row on a process crash (only on power loss)
            cur = dbapi_con.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

    else:
        engine = sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    metadata.create_all(engine)
    _index_decisions(engine)
    with engine.begin() as con:
        if con.execute(sa.select(audit_head.c.id)).first() is None:
            try:
                with con.begin_nested():
                    con.execute(audit_head.insert().values(id=1, seq=0, hash=GENESIS))
            except sa.exc.IntegrityError:  # another process created it first
                pass
    return engine


def secret_hash(key: str) -> str:
    """How an API key is stored and looked up: its SHA-256, in hex."""
    return hashlib.sha256(key.encode()).hexdigest()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# ---------------------------------------------------------------------------- API keys
def create_key(
    engine: sa.Engine,
    *,
    role: Role,
    bank_id: str | None = None,
    label: str | None = None,
    rate_per_minute: int | None = None,
) -> tuple[str, ApiKey]:
    """A new API key: (the secret, shown once; its record)."""
    if role == Role.BANK and not bank_id:
        raise ValueError("a bank key needs the bank id (--bank-id)")
    if role != Role.BANK and bank_id:
        raise ValueError(f"only bank keys carry a bank id, not {role} keys")
    if rate_per_minute is not None and rate_per_minute <= 0:
        raise ValueError("rate_per_minute must be positive")
    secret = "sk_" + secrets.token_urlsafe(24)
    record = ApiKey(
        key_id=uuid.uuid4().hex[:12], role=role, bank_id=bank_id, label=label, rate_per_minute=rate_per_minute
    )
    with engine.begin() as con:
        con.execute(
            api_keys.insert().values(
                key_id=record.key_id,
                key_hash=secret_hash(secret),
                role=role.value,
                bank_id=bank_id,
                label=label,
                rate_per_minute=rate_per_minute,
                created_at=_now(),
            )
        )
    return secret, record


# the statements of every request, built once (building one costs as much as running it on SQLite)
_LIVE_KEY = sa.select(api_keys).where(api_keys.c.key_hash == sa.bindparam("key_hash"), api_keys.c.revoked_at.is_(None))


def authenticate(engine: sa.Engine, secret: str) -> ApiKey | None:
    """The key's record when the secret is a live key, else None."""
    with engine.connect() as con:
        row = con.execute(_LIVE_KEY, {"key_hash": secret_hash(secret)}).first()
    return None if row is None else _key_of(row)


def _key_of(row: Any) -> ApiKey:
    """An ``api_keys`` row as the key record."""
    return ApiKey(
        key_id=row.key_id,
        role=Role(row.role),
        bank_id=row.bank_id,
        label=row.label,
        rate_per_minute=row.rate_per_minute,
    )


def revoke_key(engine: sa.Engine, key_id: str) -> bool:
    with engine.begin() as con:
        done = con.execute(
            api_keys.update()
            .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=_now())
        )
    return bool(done.rowcount)


def list_keys(engine: sa.Engine) -> list[dict[str, Any]]:
    with engine.connect() as con:
        rows = con.execute(sa.select(api_keys).order_by(api_keys.c.created_at)).mappings().all()
    return [{k: v for k, v in r.items() if k != "key_hash"} for r in rows]


# ---------------------------------------------------------------------------- audit log
def _row_hash(prev: str, row: dict[str, Any]) -> str:
    body = json.dumps([prev, *(row.get(k) for k in _HASHED)], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


_DUMP_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def _dump(payload: dict[str, Any]) -> str:
    """The payload as stored and hashed (the hash covers this text, so a reader never re-encodes it).

    orjson, since a decision's payload is 24 KB of mostly floats: the standard library took
    0.75 ms for one, as long as the three TreeSHAP passes of the decision together.
    """
    return orjson.dumps(payload, option=_DUMP_OPTIONS, default=str).decode()


@dataclass(frozen=True)
class Event:
    """One audit event to append."""

    kind: str
    payload: dict[str, Any]
    key: ApiKey | None = None
    uscc: str | None = None
    event_id: str | None = None
    ref_id: str | None = None
    idem_key: str | None = None


class DuplicateEvent(ScoringError):
    """An event with the same idempotency key is already in the log."""

    code = "duplicate_event"
    status = 409
    title_zh = "该事件已记录"


# one writer at a time within a process; across processes the UPDATE of the head row is the lock
# (SQLite's write lock, PostgreSQL's row lock), so the chain has no forks with several workers
_append_lock = threading.Lock()


def _rows(events: Sequence[Event]) -> list[dict[str, Any]]:
    """The events as audit rows, without their place in the chain (seq, time, hashes)."""
    return [
        {
            "event_id": e.event_id or str(uuid.uuid4()),
            "kind": e.kind,
            "uscc": e.uscc,
            "key_id": e.key.key_id if e.key else None,
            "role": e.key.role.value if e.key else None,
            "bank_id": e.key.bank_id if e.key else None,
            "ref_id": e.ref_id,
            "idem_key": e.idem_key,
            "payload": _dump(e.payload),
            "summary": _summary(e.kind, e.payload),  # for decision_index, not a column of audit_log
        }
        for e in events
    ]


@dataclass
class _Pending:
    rows: list[dict[str, Any]]
    wake: threading.Event = field(default_factory=threading.Event)
    lead: bool = False
    written: bool = False
    error: Exception | None = None


class _GroupAppender:
    """Group commit: requests appending at the same time share one transaction.

    Each caller encodes its rows on its own thread and queues them. One caller at a time leads:
    it takes the write lock, then every batch queued by then, writes them in one transaction,
    wakes their callers and hands the lead to the first caller queued meanwhile. No caller returns
    before its rows are committed, so "appended before answered" holds, and 64 concurrent decisions
    cost a few commits instead of 64. (SQLAlchemy and the databases have no group commit that a
    client can ask for; PostgreSQL's commit_delay groups only the WAL flush.)
    """

    def __init__(self) -> None:  # no reference to the engine: it keys a weak dictionary
        self._queue_lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._leading = False

    def append(self, engine: sa.Engine, events: Sequence[Event]) -> list[str]:
        mine = _Pending(_rows(events))  # a payload that cannot be encoded fails here, alone
        with self._queue_lock:
            self._queue.append(mine)
            if not self._leading:
                self._leading = mine.lead = True
        if not mine.lead:
            mine.wake.wait()  # until written by a leader, or made the leader
        if mine.lead and not mine.written and mine.error is None:
            self._lead(engine)
        if mine.error is not None:
            raise mine.error
        if not mine.written:  # never expected: the lead ended without a word about these rows
            raise RuntimeError("the audit append did not complete")
        return [r["event_id"] for r in mine.rows]

    def _lead(self, engine: sa.Engine) -> None:
        batch: list[_Pending] = []
        try:
            with _append_lock:
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                _write(engine, batch)
        finally:
            with self._queue_lock:
                if self._queue:
                    following = self._queue[0]
                    following.lead = True
                    following.wake.set()
                else:
                    self._leading = False
            for p in batch:
                p.wake.set()


def _write(engine: sa.Engine, batch: list[_Pending]) -> None:
    """Write the batches in one transaction; when that fails, each on its own, so only a faulty one fails."""
    try:
        with engine.begin() as con:
            _append_rows(con, [r for p in batch for r in p.rows])
    except Exception as exc:
        if len(batch) == 1:
            batch[0].error = exc
            return
        for p in batch:
            try:
                with engine.begin() as con:
                    _append_rows(con, p.rows)
            except Exception as own:
                p.error = own
            else:
                p.written = True
        return
    for p in batch:
        p.written = True


_appenders: weakref.WeakKeyDictionary[sa.Engine, _GroupAppender] = weakref.WeakKeyDictionary()
_appenders_lock = threading.Lock()


def append(engine: sa.Engine, events: Sequence[Event]) -> list[str]:
    """Append events to the audit log, committed before this returns; their event ids, in order.

    The events of one call are written in one transaction (with those of concurrent calls).

    Raises:
        DuplicateEvent: an event's ``idem_key`` is already in the log (none of this call's events is appended).
    """
    with _appenders_lock:
        appender = _appenders.get(engine)
        if appender is None:
            appender = _appenders[engine] = _GroupAppender()
    return appender.append(engine, events)


def _append_in(con: sa.Connection, events: Sequence[Event]) -> list[str]:
    """Append events inside the caller's transaction (a consent change and its audit row together)."""
    rows = _rows(events)
    _append_rows(con, rows)
    return [r["event_id"] for r in rows]


_LOCK_HEAD = (
    audit_head.update()
    .where(audit_head.c.id == 1)
    .values(seq=audit_head.c.seq)
    .returning(audit_head.c.seq, audit_head.c.hash)
)
_TOUCH_HEAD = audit_head.update().where(audit_head.c.id == 1).values(seq=audit_head.c.seq)
_READ_HEAD = sa.select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
_SET_HEAD = (
    audit_head.update().where(audit_head.c.id == 1).values(seq=sa.bindparam("head_seq"), hash=sa.bindparam("head_hash"))
)


def _append_rows(con: sa.Connection, prepared: list[dict[str, Any]]) -> None:
    created = _now().isoformat(timespec="microseconds")
    # take the write lock first, then read the head under it (in one statement where the database can)
    if con.dialect.update_returning:
        head = con.execute(_LOCK_HEAD).one()
    else:  # SQLite before 3.35
        con.execute(_TOUCH_HEAD)
        head = con.execute(_READ_HEAD).one()
    seq, prev = int(head.seq), str(head.hash)
    rows, summaries = [], []
    for p in prepared:
        seq += 1
        row = {"seq": seq, "created_at": created, **{k: v for k, v in p.items() if k != "summary"}}
        summaries.append(p["summary"])
        digest = _row_hash(prev, row)
        rows.append({**row, "prev_hash": prev, "hash": digest})
        prev = digest
    try:  # a duplicate aborts the whole transaction: nothing of it is kept
        con.execute(audit_log.insert(), rows)
    except sa.exc.IntegrityError as exc:
        raise DuplicateEvent(str(exc.orig)) from exc
    indexed = [_index_row(r, s) for r, s in zip(rows, summaries, strict=True) if s is not None]
    if indexed:
        con.execute(decision_index.insert(), indexed)
    con.execute(_SET_HEAD, {"head_seq": seq, "head_hash": prev})


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


# ---------------------------------------------------------------------------- console sessions
def open_session(engine: sa.Engine, key: ApiKey, *, hours: float) -> str:
    """A console session for a live key: the token for the cookie (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    now = _now()
    with engine.begin() as con:
        con.execute(
            console_sessions.insert().values(
                token_hash=secret_hash(token),
                key_id=key.key_id,
                created_at=now,
                expires_at=now + dt.timedelta(hours=hours),
            )
        )
    return token


def session_key(engine: sa.Engine, token: str) -> ApiKey | None:
    """The key of an open, unexpired session whose key is still live; else None."""
    q = (
        sa.select(api_keys, console_sessions.c.expires_at)
        .join(console_sessions, console_sessions.c.key_id == api_keys.c.key_id)
        .where(
            console_sessions.c.token_hash == secret_hash(token),
            console_sessions.c.ended_at.is_(None),
            api_keys.c.revoked_at.is_(None),
        )
    )
    with engine.connect() as con:
        row = con.execute(q).first()
    if row is None:
        return None
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=dt.UTC)  # SQLite drops it
    return None if expires <= _now() else _key_of(row)


def end_session(engine: sa.Engine, token: str) -> None:
    with engine.begin() as con:
        con.execute(
            console_sessions.update()
            .where(console_sessions.c.token_hash == secret_hash(token), console_sessions.c.ended_at.is_(None))
            .values(ended_at=_now())
        )


@dataclass
class ChainReport:
    rows: int
    head_seq: int
    problems: list[str]

    @property
    def intact(self) -> bool:
        return not self.problems


def _ordered(engine: sa.Engine, batch: int = 5000) -> Iterator[dict[str, Any]]:
    last = 0
    while True:
        with engine.connect() as con:
            rows = (
                con.execute(sa.select(audit_log).where(audit_log.c.seq > last).order_by(audit_log.c.seq).limit(batch))
                .mappings()
                .all()
            )
        if not rows:
            return
        yield from (dict(r) for r in rows)
        last = int(rows[-1]["seq"])


def verify_chain(engine: sa.Engine, *, max_problems: int = 50) -> ChainReport:
    """Recompute the chain: every row's hash, the links, the sequence and the head; and check that the
    decision index (what the console searches) says of each decision what its audit row says."""
    problems: list[str] = []
    prev, expected, n = GENESIS, 1, 0
    with engine.connect() as con:
        index = {r["event_id"]: dict(r) for r in con.execute(sa.select(decision_index)).mappings()}
    for row in _ordered(engine):
        n += 1
        seq = int(row["seq"])
        if seq != expected:
            problems.append(f"rows {expected}..{seq - 1} are missing (deleted)")
        if row["prev_hash"] != prev:
            problems.append(f"row {seq} ({row['event_id']}): does not link to the row before it")
        if _row_hash(row["prev_hash"], row) != row["hash"]:
            problems.append(f"row {seq} ({row['event_id']}): its content does not match its hash (changed)")
        summary = _summary(row["kind"], orjson.loads(row["payload"]))
        if summary is not None:
            entry = index.pop(row["event_id"], None)
            if entry is None:
                problems.append(f"row {seq} ({row['event_id']}): the decision index lacks it (search cannot find it)")
            elif entry != _index_row(row, summary):
                problems.append(f"row {seq} ({row['event_id']}): the decision index disagrees with it (changed)")
        prev, expected = row["hash"], seq + 1
        if len(problems) >= max_problems:
            break
    else:
        problems += [f"the decision index lists {e}, which the log does not hold" for e in list(index)[:max_problems]]
    with engine.connect() as con:
        head = con.execute(sa.select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)).one()
    if len(problems) < max_problems:
        if int(head.seq) != expected - 1:
            problems.append(f"the head says {head.seq} rows, the log ends at {expected - 1} (rows deleted at the end)")
        elif head.hash != prev:
            problems.append("the head's hash differs from the last row's")
    return ChainReport(rows=n, head_seq=int(head.seq), problems=problems)


# ---------------------------------------------------------------------------- consents
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
    with _append_lock, engine.begin() as con:
        con.execute(consents.insert().values(**record))
        _append_in(
            con, [Event(kind="consent_granted", payload=record, key=key, uscc=uscc, ref_id=str(record["consent_id"]))]
        )
    return record


def revoke_consent(engine: sa.Engine, consent_id: str, *, by: str, key: ApiKey | None = None) -> dict[str, Any] | None:
    """Revoke a consent from now on; the revoked record, or None when there is no live consent of that id."""
    with _append_lock, engine.begin() as con:
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
    params = {"uscc": uscc, "bank_id": bank_id, "purposes": [p.value for p in purposes], "on": on}
    with engine.connect() as con:
        row = con.execute(_LIVE_CONSENT, params).mappings().first()
    return dict(row) if row else None


_LIVE_CONSENT = (
    sa.select(consents)
    .where(
        consents.c.uscc == sa.bindparam("uscc"),
        consents.c.bank_id == sa.bindparam("bank_id"),
        consents.c.purpose.in_(sa.bindparam("purposes", expanding=True)),
        consents.c.revoked_at.is_(None),
        consents.c.granted_on <= sa.bindparam("on", type_=sa.Date),
        consents.c.expires_on > sa.bindparam("on", type_=sa.Date),
    )
    .order_by(consents.c.expires_on.desc())
    .limit(1)
)


# ---------------------------------------------------------------------------- outcomes
LOAN_COLUMNS = (
    "loan_id",
    "uscc",
    "bank_id",
    "start_date",
    "term_months",
    "maturity_date",
    "amount",
    "max_dpd",
    "dpd90_date",
    "settled_date",
    "status",
)


def reported_loans(engine: sa.Engine) -> pd.DataFrame:
    """Every reported loan at its latest report date, in the warehouse's ``loans`` format.

    The file this makes is ingested like any platform file (the loan id is the key, so a later
    report replaces an earlier one), and the pre-credit models retrain on it.
    """
    with engine.connect() as con:
        rows = con.execute(
            sa.select(audit_log.c.bank_id, audit_log.c.uscc, audit_log.c.payload).where(audit_log.c.kind == "outcome")
        ).all()
    records = []
    for bank_id, uscc, payload in rows:
        report = json.loads(payload)["report"]
        records.append({**report, "bank_id": bank_id, "uscc": uscc})
    if not records:
        return pd.DataFrame(columns=list(LOAN_COLUMNS))
    frame = pd.DataFrame.from_records(records).sort_values(["loan_id", "report_date"])
    frame = frame.drop_duplicates(["bank_id", "loan_id"], keep="last")
    for col in ("start_date", "maturity_date", "dpd90_date", "settled_date"):
        frame[col] = pd.to_datetime(frame[col]).dt.date
    return frame[list(LOAN_COLUMNS)].reset_index(drop=True)
