"""Console sessions: a browser's login on a live API key (only the token's hash is stored)."""

from __future__ import annotations

import datetime as dt
import secrets

import sqlalchemy as sa

from scoring.store.keys import ApiKey, _key_of, secret_hash
from scoring.store.tables import _now, api_keys, console_sessions


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
