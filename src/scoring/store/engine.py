"""Opening the decision store: the engine, the schema, the backfilled decision index, the chain head."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from scoring.store.index import _index_decisions
from scoring.store.tables import GENESIS, audit_head, metadata

log = logging.getLogger(__name__)


CHECKPOINT_SECONDS = 1.0
RESTART_FRAMES = 16_384  # 64 MB of 4 KB pages: about 2,000 decisions, 1.3 s of the heaviest load
CATCH_UP_PASSES = 4  # passes without the lock before a restart, at most
CAUGHT_UP_SECONDS = 0.01  # a pass that short leaves little for the restart to copy under the lock
RESTART_WAIT_MS = 50  # how long a restart waits for a reader still in the log
BUSY_TIMEOUT_S = 30  # how long a statement waits for SQLite's locks


def engine_for(url: str, *, background_checkpoints: bool = False) -> sa.Engine:
    """An engine for the decision store, creating the SQLite folder, the tables and the chain head.

    Args:
        background_checkpoints: SQLite only: no checkpoint at commit (``wal_autocheckpoint=0``); the
            caller runs a :class:`Checkpointer` instead (the server: a checkpoint copies megabytes
            of the log into the file and syncs it, and at commit it lands on an answer's time).
    """
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_S})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_con: Any, _: Any) -> None:
            # WAL lets readers go on while one writer appends. FULL syncs the log at every commit, so
            # an answered decision survives a power cut as well as a crash of the process (NORMAL
            # syncs only at checkpoints: a crash loses nothing, a power cut the last commits); the
            # group commit (audit.py) shares one sync among the requests waiting at that moment
            cur = dbapi_con.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            if background_checkpoints:
                cur.execute("PRAGMA wal_autocheckpoint=0")
            cur.close()

    else:
        engine = sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    metadata.create_all(engine)
    _add_columns(engine)
    _index_decisions(engine)
    with engine.begin() as con:
        if con.execute(sa.select(audit_head.c.id)).first() is None:
            try:
                with con.begin_nested():
                    con.execute(audit_head.insert().values(id=1, seq=0, hash=GENESIS))
            except sa.exc.IntegrityError:  # another process created it first
                pass
    return engine


def _add_columns(engine: sa.Engine) -> None:
    """Columns added to a table after stores with that table were created: added to an older store.

    (``create_all`` creates missing tables only. The store's other changes added tables, so two
    columns do not call for a migration tool: each is a nullable column, added once, here.)
    """
    added = {"api_keys": [("uscc", "VARCHAR(18)")]}
    inspector = sa.inspect(engine)
    for table, columns in added.items():
        have = {c["name"] for c in inspector.get_columns(table)}
        for name, sql_type in columns:
            if name not in have:
                try:
                    with engine.begin() as con:
                        con.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {name} {sql_type}")
                except (sa.exc.OperationalError, sa.exc.ProgrammingError):
                    # another process added it first; anything else (a lock, no privilege) is raised
                    if name not in {c["name"] for c in sa.inspect(engine).get_columns(table)}:
                        raise


def placeholder(dialect: sa.Dialect) -> str:
    """A positional parameter's mark in SQL text for ``dialect``'s driver (``exec_driver_sql``):
    ``?`` for SQLite, ``%s`` for psycopg."""
    return "?" if dialect.paramstyle == "qmark" else "%s"


@contextmanager
def writers_lock(engine: sa.Engine) -> Iterator[None]:
    """Between the processes appending to one SQLite file: a lock they block on in the kernel.

    Without it the second writer polls for SQLite's write lock, and SQLite's busy handler sleeps
    1, 2, 5, 10, ... up to 100 ms between tries, so a writer may sleep tens of milliseconds after
    the lock is free: the tail of every answer's latency. PostgreSQL's row lock on the chain's head
    blocks in the server already, so there it is nothing.
    """
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    with open(f"{database}.append-lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed, a crash included
        yield


class Checkpointer:
    """Checkpoints of a SQLite store's write-ahead log every ``seconds``, on a thread of its own, and
    a log that stays under ``restart_frames`` pages however long the appends go on.

    PASSIVE: it copies what no reader still needs and never waits for a writer or a reader, so it
    takes nothing from an answer; several processes may each run one (one at a time succeeds).
    But a log is started again from its beginning only by a writer that finds every page of it
    copied, and under a steady load another commit has always come in while a pass ran: the log
    grew by 1.5 GB in 20 s at 1,400 decisions a second, and would fill the disk in a day. So when
    a pass leaves more than ``restart_frames`` pages in the log, the checkpointer takes the
    appenders' file lock (they wait in the kernel meanwhile), copies the few pages written since
    and has SQLite start the log again (RESTART); a reader still in the log (it waits at most
    ``RESTART_WAIT_MS`` for it) only puts that off to the next pass. Nothing for other databases.
    """

    def __init__(self, engine: sa.Engine, seconds: float = CHECKPOINT_SECONDS, restart_frames: int = RESTART_FRAMES):
        self.engine, self.seconds, self.restart_frames = engine, seconds, restart_frames
        self.restarts = 0  # logs started again (tests and /metrics read it)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if engine.dialect.name == "sqlite":
            self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.seconds):
            try:
                self.checkpoint()
            except Exception:  # a busy or vanished file: the next round tries again
                log.warning("WAL checkpoint failed", exc_info=True)

    def checkpoint(self) -> None:
        """One pass; the log started again when it holds more than ``restart_frames`` pages.

        Before the restart takes the appenders' lock, passes without it catch up on what came in
        while the last one ran, each shorter than the one before (copying is several times faster
        than appending), so that what the restart copies with the lock held is a few milliseconds'
        worth: right after a long pass it held the lock for over 100 ms, the tail of the answers.
        """
        with self.engine.connect() as con:
            _, frames, _ = con.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
            if frames <= self.restart_frames:
                return
            for _ in range(CATCH_UP_PASSES):
                started = time.perf_counter()
                con.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
                if time.perf_counter() - started < CAUGHT_UP_SECONDS:
                    break
            with writers_lock(self.engine):
                con.exec_driver_sql(f"PRAGMA busy_timeout={RESTART_WAIT_MS}")
                try:
                    busy, _, _ = con.exec_driver_sql("PRAGMA wal_checkpoint(RESTART)").one()
                finally:
                    con.exec_driver_sql(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
            self.restarts += 0 if busy else 1

    def stop(self) -> None:
        """Stop, after one last checkpoint."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            with contextlib.suppress(Exception), self.engine.connect() as con:
                con.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
