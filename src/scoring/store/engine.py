"""Opening the decision store: the engine, the schema, the backfilled decision index, the chain head."""

from __future__ import annotations

import contextlib
import logging
import threading
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from scoring.store.index import _index_decisions
from scoring.store.tables import GENESIS, audit_head, metadata

log = logging.getLogger(__name__)


CHECKPOINT_SECONDS = 1.0


def engine_for(url: str, *, background_checkpoints: bool = False) -> sa.Engine:
    """An engine for the decision store, creating the SQLite folder, the tables and the chain head.

    Args:
        background_checkpoints: SQLite only: no checkpoint at commit (``wal_autocheckpoint=0``); the
            caller runs a :class:`Checkpointer` instead (the server: a checkpoint copies megabytes
            of the log into the file and syncs it, and at commit it lands on an answer's time).
    """
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

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
    _index_decisions(engine)
    with engine.begin() as con:
        if con.execute(sa.select(audit_head.c.id)).first() is None:
            try:
                with con.begin_nested():
                    con.execute(audit_head.insert().values(id=1, seq=0, hash=GENESIS))
            except sa.exc.IntegrityError:  # another process created it first
                pass
    return engine


class Checkpointer:
    """Checkpoints of a SQLite store's write-ahead log every ``seconds``, on a thread of its own.

    PASSIVE: it copies what no reader still needs and never waits for a writer or a reader, so it
    takes nothing from an answer; several processes may each run one (one at a time succeeds).
    Nothing for other databases.
    """

    def __init__(self, engine: sa.Engine, seconds: float = CHECKPOINT_SECONDS):
        self.engine, self.seconds = engine, seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if engine.dialect.name == "sqlite":
            self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.seconds):
            try:
                with self.engine.connect() as con:
                    con.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            except Exception:  # a busy or vanished file: the next round tries again
                log.warning("WAL checkpoint failed", exc_info=True)

    def stop(self) -> None:
        """Stop, after one last checkpoint."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            with contextlib.suppress(Exception), self.engine.connect() as con:
                con.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
