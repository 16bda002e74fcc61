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


def unavailable(exc: BaseException) -> StoreUnavailable | None:
    """The :class:`StoreUnavailable` that ``exc`` means, or None when it is another fault.

    The store is unavailable when the driver could not connect or lost its connection
    (``OperationalError``, ``InterfaceError``, or any DBAPI error SQLAlchemy marks as a disconnect).
    The driver's words (they name hosts and ports) stay with ``exc``, for the log; the answer says none.
    """
    if isinstance(exc, StoreUnavailable):
        return exc
    if isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError)) or (
        isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated
    ):
        return StoreUnavailable()
    return None
