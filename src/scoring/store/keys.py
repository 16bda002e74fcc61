"""API keys: roles, creating, authenticating, revoking and listing keys.

API keys are stored as SHA-256 hashes; the key itself is shown once, when it is created. (A plain
hash suffices because keys are 192-bit random tokens, not passwords a person chose.)
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from scoring.store.tables import _now, api_keys


class Role(StrEnum):
    BANK = "bank"
    ANALYST = "analyst"
    REGULATOR = "regulator"
    ADMIN = "admin"


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    role: Role
    bank_id: str | None
    label: str | None
    rate_per_minute: int | None = None


def secret_hash(key: str) -> str:
    """How an API key is stored and looked up: its SHA-256, in hex."""
    return hashlib.sha256(key.encode()).hexdigest()


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
