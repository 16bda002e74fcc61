"""Appending to the audit log: events, their hash chain, and the group commit that writes them.

Every decision, refusal, outcome report and consent change is appended to ``audit_log`` with a
hash chain: each row's hash covers its own content and the previous row's hash, and
``audit_head`` holds the last sequence number and hash. A changed row breaks its own hash; a
deleted row leaves a gap in the sequence (or, at the end, disagrees with the head). Nothing here
updates or deletes an audit row.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import sqlalchemy as sa

from scoring.errors import ScoringError
from scoring.store.engine import placeholder, writers_lock
from scoring.store.ids import time_ordered_id
from scoring.store.index import _index_row, _summary
from scoring.store.keys import ApiKey
from scoring.store.tables import _now, audit_log, decision_index

# what a row's hash covers, besides the previous row's hash
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


def _row_hash(prev: str, row: dict[str, Any]) -> str:
    """SHA-256 of ``json.dumps([prev, *fields], ensure_ascii=False, separators=(",", ":"))`` in UTF-8.

    Encoded by orjson, which gives those bytes exactly for these values (strings, integers and
    None; tests/unit/test_audit.py holds it on every kind of character): the standard library
    spent a tenth of a millisecond escaping a decision's 24 KB payload text.
    """
    return hashlib.sha256(orjson.dumps([prev, *(row.get(k) for k in _HASHED)])).hexdigest()


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
    status = None  # an internal fault where it reaches a request: each endpoint handles its own duplicates
    title_zh = "该事件已记录"


# one writer at a time within a process; across processes the UPDATE of the head row is the lock
# (SQLite's write lock, PostgreSQL's row lock), so the chain has no forks with several workers
_append_lock = threading.Lock()


def _rows(events: Sequence[Event]) -> list[dict[str, Any]]:
    """The events as audit rows, without their place in the chain (seq, time, hashes)."""
    return [
        {
            "event_id": e.event_id or time_ordered_id(),
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

    def append(self, engine: sa.Engine, groups: Sequence[Sequence[Event]]) -> list[list[str] | Exception]:
        """Each group's event ids, or the error that kept that group (alone) out of the log."""
        mine: list[_Pending | Exception] = []
        for events in groups:
            try:
                mine.append(_Pending(_rows(events)))  # a payload that cannot be encoded fails here, alone
            except Exception as exc:
                mine.append(exc)
        queued = [p for p in mine if isinstance(p, _Pending)]
        with self._queue_lock:  # queued together, so one leader writes them in one transaction
            self._queue.extend(queued)
            if queued and not self._leading:
                self._leading = queued[0].lead = True
        for p in queued:
            if not p.lead:
                p.wake.wait()  # until written by a leader (its siblings' at once), or made the leader
            if p.lead and not p.written and p.error is None:
                self._lead(engine)
        return [p if isinstance(p, Exception) else _outcome(p) for p in mine]

    def _lead(self, engine: sa.Engine) -> None:
        batch: list[_Pending] = []
        try:
            with _append_lock, writers_lock(engine):
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


def _outcome(p: _Pending) -> list[str] | Exception:
    if p.error is not None:
        return p.error
    if not p.written:  # never expected: the lead ended without a word about these rows
        return RuntimeError("the audit append did not complete")
    return [r["event_id"] for r in p.rows]


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
    (outcome,) = append_each(engine, [events])
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def append_each(engine: sa.Engine, groups: Sequence[Sequence[Event]]) -> list[list[str] | Exception]:
    """Append several callers' events at once (requests decided together), committed before this
    returns: per group, its event ids, or the error that kept that group out of the log.

    The groups are written in one transaction; when it fails, each group in its own, so a faulty
    group fails alone and takes no other with it.
    """
    with _appenders_lock:
        appender = _appenders.get(engine)
        if appender is None:
            appender = _appenders[engine] = _GroupAppender()
    return appender.append(engine, groups)


def _append_in(con: sa.Connection, events: Sequence[Event]) -> list[str]:
    """Append events inside the caller's transaction (a consent change and its audit row together)."""
    rows = _rows(events)
    _append_rows(con, rows)
    return [r["event_id"] for r in rows]


@dataclass(frozen=True)
class _Statements:
    """The append's statements as SQL text for the driver, in its parameter style.

    Run with ``exec_driver_sql``: through SQLAlchemy's statement objects the five statements of an
    append cost 0.3 ms more than on the driver (each compiled-cache lookup, parameter processing and
    result set-up), spent while the appenders' lock is held, so every other process waited for it too.
    The columns take strings, integers and floats, which the drivers pass as they are.
    """

    lock_head: str | None  # take the write lock and read the head in one statement, where the database can
    touch_head: str
    read_head: str
    insert_row: str
    insert_index: str
    set_head: str

    @classmethod
    def of(cls, dialect: sa.Dialect) -> _Statements:
        mark = placeholder(dialect)

        def insert(table: sa.Table) -> str:
            names = [c.name for c in table.columns]
            return f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join([mark] * len(names))})"  # nosec B608 # names of the Table's metadata and the driver's marks

        return cls(
            lock_head="UPDATE audit_head SET seq = seq WHERE id = 1 RETURNING seq, hash"
            if dialect.update_returning
            else None,
            touch_head="UPDATE audit_head SET seq = seq WHERE id = 1",
            read_head="SELECT seq, hash FROM audit_head WHERE id = 1",
            insert_row=insert(audit_log),
            insert_index=insert(decision_index),
            set_head=f"UPDATE audit_head SET seq = {mark}, hash = {mark} WHERE id = 1",  # nosec B608 # the driver's marks only; values bound
        )


_statements: dict[tuple[str, str, bool], _Statements] = {}
_ROW_COLUMNS = tuple(c.name for c in audit_log.columns)
_INDEX_COLUMNS = tuple(c.name for c in decision_index.columns)


def _statements_for(con: sa.Connection) -> _Statements:
    d = con.dialect
    key = (d.name, d.paramstyle, bool(d.update_returning))
    if key not in _statements:
        _statements[key] = _Statements.of(d)
    return _statements[key]


def _append_rows(con: sa.Connection, prepared: list[dict[str, Any]]) -> None:
    sql = _statements_for(con)
    created = _now().isoformat(timespec="microseconds")
    # take the write lock first, then read the head under it (in one statement where the database can)
    if sql.lock_head is not None:
        head = con.exec_driver_sql(sql.lock_head).one()
    else:  # SQLite before 3.35
        con.exec_driver_sql(sql.touch_head)
        head = con.exec_driver_sql(sql.read_head).one()
    seq, prev = int(head[0]), str(head[1])
    rows, summaries = [], []
    for p in prepared:
        seq += 1
        row = {"seq": seq, "created_at": created, **{k: v for k, v in p.items() if k != "summary"}}
        summaries.append(p["summary"])
        digest = _row_hash(prev, row)
        rows.append({**row, "prev_hash": prev, "hash": digest})
        prev = digest
    try:  # a duplicate aborts the whole transaction: nothing of it is kept
        con.exec_driver_sql(sql.insert_row, [tuple(r[c] for c in _ROW_COLUMNS) for r in rows])
    except sa.exc.IntegrityError as exc:
        raise DuplicateEvent(str(exc.orig)) from exc
    indexed = [_index_row(r, s) for r, s in zip(rows, summaries, strict=True) if s is not None]
    if indexed:
        con.exec_driver_sql(sql.insert_index, [tuple(i.get(c) for c in _INDEX_COLUMNS) for i in indexed])
    con.exec_driver_sql(sql.set_head, (seq, prev))
