"""API keys: roles, creating, authenticating, revoking and listing keys.

API keys are stored as SHA-256 hashes; the key itself is shown once, when it is created. (A plain
hash suffices because keys are 192-bit random tokens, not passwords a person chose.)
"""

from __future__ import annotations

import datetime as dt
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
    ENTERPRISE = "enterprise"  # the enterprise a key is bound to (its USCC) reading about itself
    REVIEWER = "reviewer"  # decides requests for a human review (人工复核) of a decision


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    role: Role
    bank_id: str | None
    label: str | None
    rate_per_minute: int | None = None
    uscc: str | None = None  # an enterprise key's own enterprise; None for every other role

    def is_about(self, uscc: str) -> bool:
        """Whether this is the key of that enterprise."""
        return self.role == Role.ENTERPRISE and self.uscc == uscc


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
    uscc: str | None = None,
) -> tuple[str, ApiKey]:
    """A new API key: (the secret, shown once; its record). An enterprise key names its enterprise's
    USCC (checked by the caller: the format is the data layer's), and only an enterprise key does."""
    if role == Role.BANK and not bank_id:
        raise ValueError("a bank key needs the bank id (--bank-id)")
    if role != Role.BANK and bank_id:
        raise ValueError(f"only bank keys carry a bank id, not {role} keys")
    if role == Role.ENTERPRISE and not uscc:
        raise ValueError("an enterprise key needs its enterprise's USCC (--uscc)")
    if role != Role.ENTERPRISE and uscc:
        raise ValueError(f"only enterprise keys carry a USCC, not {role} keys")
    if rate_per_minute is not None and rate_per_minute <= 0:
        raise ValueError("rate_per_minute must be positive")
    secret, record = _new_key(role, bank_id, label, rate_per_minute, uscc)
    with engine.begin() as con:
        con.execute(api_keys.insert().values(**_key_row(secret, record)))
    return secret, record


def _new_key(
    role: str, bank_id: str | None, label: str | None, rate_per_minute: int | None, uscc: str | None
) -> tuple[str, ApiKey]:
    secret = "sk_" + secrets.token_urlsafe(24)
    record = ApiKey(
        key_id=uuid.uuid4().hex[:12],
        role=Role(role),
        bank_id=bank_id,
        label=label,
        rate_per_minute=rate_per_minute,
        uscc=uscc,
    )
    return secret, record


def _key_row(secret: str, record: ApiKey) -> dict[str, Any]:
    return {
        "key_id": record.key_id,
        "key_hash": secret_hash(secret),
        "role": record.role.value,
        "bank_id": record.bank_id,
        "uscc": record.uscc,
        "label": record.label,
        "rate_per_minute": record.rate_per_minute,
        "created_at": _now(),
    }


# the statements of every request, built once (building one costs as much as running it on SQLite)
# a key is live until its revoked_at: none, or a time still to come (a rotated key's overlap)
_LIVE = sa.or_(api_keys.c.revoked_at.is_(None), api_keys.c.revoked_at > sa.bindparam("now"))
_LIVE_KEY = sa.select(api_keys).where(api_keys.c.key_hash == sa.bindparam("key_hash"), _LIVE)


def authenticate(engine: sa.Engine, secret: str) -> ApiKey | None:
    """The key's record when the secret is a live key, else None."""
    with engine.connect() as con:
        row = con.execute(_LIVE_KEY, {"key_hash": secret_hash(secret), "now": _now()}).first()
    return None if row is None else _key_of(row)


def rotate_key(engine: sa.Engine, key_id: str, overlap: dt.timedelta) -> tuple[str, ApiKey, dt.datetime] | None:
    """A new key for the holder of live key ``key_id`` (same role, bank or enterprise, label and rate limit); the old
    one stays valid for ``overlap`` more, so that the holder can switch without a refused request, and is
    refused after (as a revoked key: within the service's key cache seconds). (the new secret, its
    record, when the old one ends), or None when ``key_id`` is not a live key."""
    if overlap < dt.timedelta(0):
        raise ValueError(f"the overlap cannot be negative: {overlap}")
    now = _now()
    with engine.begin() as con:
        old = con.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id, _LIVE), {"now": now}).first()
        if old is None:
            return None
        ends = now + overlap
        if old.revoked_at is not None:  # rotated before: its end is not put off
            ends = min(ends, old.revoked_at.replace(tzinfo=dt.UTC) if old.revoked_at.tzinfo is None else old.revoked_at)
        con.execute(api_keys.update().where(api_keys.c.key_id == key_id).values(revoked_at=ends))
        secret, record = _new_key(old.role, old.bank_id, old.label, old.rate_per_minute, old.uscc)
        con.execute(api_keys.insert().values(**_key_row(secret, record)))
    return secret, record, ends


def _key_of(row: Any) -> ApiKey:
    """An ``api_keys`` row as the key record."""
    return ApiKey(
        key_id=row.key_id,
        role=Role(row.role),
        bank_id=row.bank_id,
        label=row.label,
        rate_per_minute=row.rate_per_minute,
        uscc=row.uscc,
    )


def revoke_key(engine: sa.Engine, key_id: str) -> bool:
    with engine.begin() as con:
        done = con.execute(
            api_keys.update().where(api_keys.c.key_id == key_id, _LIVE).values(revoked_at=_now()),
            {"now": _now()},
        )
    return bool(done.rowcount)


def list_keys(engine: sa.Engine) -> list[dict[str, Any]]:
    with engine.connect() as con:
        rows = con.execute(sa.select(api_keys).order_by(api_keys.c.created_at)).mappings().all()
    return [{k: v for k, v in r.items() if k != "key_hash"} for r in rows]
