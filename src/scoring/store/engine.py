"""Opening the decision store: the engine, the schema, the backfilled decision index, the chain head."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from scoring.store.index import _index_decisions
from scoring.store.tables import GENESIS, audit_head, metadata


def engine_for(url: str) -> sa.Engine:
    """An engine for the decision store, creating the SQLite folder, the tables and the chain head."""
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
