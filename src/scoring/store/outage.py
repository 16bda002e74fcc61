"""When the decision store cannot be reached: one error, whatever the driver said.

A decision is answered only once its audit row is committed, so while the store is down (a
PostgreSQL server stopped or restarting, a SQLite file held past the busy timeout) every request
that needs it is refused at once with 503 ``store_unavailable`` and ``Retry-After``, and nothing is
answered without its row. The engine's pool drops the broken connections (``pool_pre_ping``, and
SQLAlchemy invalidates the pool on a disconnect), so service resumes by itself when the store is back.
"""

from __future__ import annotations

import sqlalchemy as sa

from scoring.errors import ScoringError

RETRY_AFTER_S = 5


class StoreUnavailable(ScoringError):
    """The decision store did not answer: nothing was decided or stored; ask again shortly."""

    code = "store_unavailable"
    status = 503
    title_zh = "决定存储暂时不可用，本次请求未作决定、未作记录，请稍后重试"

    def __init__(self) -> None:
        super().__init__(
            "the decision store is unavailable; nothing was decided or stored: ask again shortly",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )


# what says the store cannot be reached, and nothing else (a fault of the code stays a logged 500):
# PostgreSQL's connection exceptions (SQLSTATE class 08) and shutdowns (57P01-57P03); SQLite's locks
# held past the busy timeout and a file it cannot open
_PG_STATES = ("57P01", "57P02", "57P03")
_SQLITE_WORDS = ("database is locked", "database table is locked", "database is busy", "unable to open database")


def unavailable(exc: BaseException) -> StoreUnavailable | None:
    """The :class:`StoreUnavailable` that ``exc`` means, or None when it is another fault.

    The store is unavailable when SQLAlchemy marks the error a disconnect, when the driver could not
    connect at all (psycopg's errors without a SQLSTATE), when PostgreSQL names a connection failure or
    a shutdown, or when SQLite's lock was not released in time. The driver's words (they name hosts and
    ports) stay with ``exc``, for the log; the answer says none.
    """
    if isinstance(exc, StoreUnavailable):
        return exc
    if not isinstance(exc, sa.exc.DBAPIError):
        return None
    if exc.connection_invalidated or isinstance(exc, sa.exc.InterfaceError):
        return StoreUnavailable()
    state = getattr(exc.orig, "sqlstate", None)
    driver = type(exc.orig).__module__.split(".", 1)[0]
    if driver == "psycopg":
        down = state is None or state.startswith("08") or state in _PG_STATES
    else:
        down = isinstance(exc, sa.exc.OperationalError) and any(w in str(exc.orig).lower() for w in _SQLITE_WORDS)
    return StoreUnavailable() if down else None
