"""The decision store (SQLAlchemy: a SQLite file by default, PostgreSQL by URL) and API keys.

Decisions are only ever inserted: nothing here updates or deletes one. API keys are stored as
SHA-256 hashes; the key itself is shown once, when it is created. (A plain hash suffices
because keys are 192-bit random tokens, not passwords a person chose.)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData()

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("bank_id", sa.String(32)),
    sa.Column("label", sa.String(200)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
)

decisions = sa.Table(
    "decisions",
    metadata,
    sa.Column("decision_id", sa.String(36), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("uscc", sa.String(18), nullable=False, index=True),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("model_name", sa.String(100), nullable=False),
    sa.Column("model_version", sa.String(20), nullable=False),
    sa.Column("key_id", sa.String(32), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("bank_id", sa.String(32)),
    sa.Column("grade", sa.String(2), nullable=False),
    sa.Column("score", sa.Integer, nullable=False),
    sa.Column("inputs", sa.Text, nullable=False),
    sa.Column("response", sa.Text, nullable=False),
)


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


def engine_for(url: str) -> sa.Engine:
    """An engine for the decision store, creating the SQLite folder and the tables."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False})
    else:
        engine = sa.create_engine(url, pool_pre_ping=True)
    metadata.create_all(engine)
    return engine


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(
    engine: sa.Engine, *, role: Role, bank_id: str | None = None, label: str | None = None
) -> tuple[str, ApiKey]:
    """A new API key: (the secret, shown once; its record)."""
    if role == Role.BANK and not bank_id:
        raise ValueError("a bank key needs the bank id (--bank-id)")
    secret = "sk_" + secrets.token_urlsafe(24)
    record = ApiKey(key_id=uuid.uuid4().hex[:12], role=role, bank_id=bank_id, label=label)
    with engine.begin() as con:
        con.execute(
            api_keys.insert().values(
                key_id=record.key_id,
                key_hash=_hash(secret),
                role=role.value,
                bank_id=bank_id,
                label=label,
                created_at=dt.datetime.now(dt.UTC),
            )
        )
    return secret, record


def authenticate(engine: sa.Engine, secret: str) -> ApiKey | None:
    """The key's record when the secret is a live key, else None."""
    with engine.connect() as con:
        row = con.execute(
            sa.select(api_keys).where(api_keys.c.key_hash == _hash(secret), api_keys.c.revoked_at.is_(None))
        ).first()
    if row is None:
        return None
    return ApiKey(key_id=row.key_id, role=Role(row.role), bank_id=row.bank_id, label=row.label)


def revoke_key(engine: sa.Engine, key_id: str) -> bool:
    with engine.begin() as con:
        done = con.execute(
            api_keys.update()
            .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=dt.datetime.now(dt.UTC))
        )
    return bool(done.rowcount)


def list_keys(engine: sa.Engine) -> list[dict[str, Any]]:
    with engine.connect() as con:
        rows = con.execute(sa.select(api_keys).order_by(api_keys.c.created_at)).mappings().all()
    return [{k: v for k, v in r.items() if k != "key_hash"} for r in rows]


def record_decision(
    engine: sa.Engine, *, kind: str, key: ApiKey, response: dict[str, Any], inputs: dict[str, Any]
) -> None:
    """Append one decision (its full response and the inputs it was made on)."""
    with engine.begin() as con:
        con.execute(
            decisions.insert().values(
                decision_id=response["decision_id"],
                created_at=dt.datetime.now(dt.UTC),
                kind=kind,
                uscc=response["uscc"],
                as_of=dt.date.fromisoformat(str(response["as_of"])),
                model_name=response["model"]["name"],
                model_version=response["model"]["version"],
                key_id=key.key_id,
                role=key.role.value,
                bank_id=key.bank_id,
                grade=response["grade"],
                score=int(response["score"]),
                inputs=json.dumps(inputs, ensure_ascii=False, default=str),
                response=json.dumps(response, ensure_ascii=False, default=str),
            )
        )


def get_decision(engine: sa.Engine, decision_id: str) -> dict[str, Any] | None:
    with engine.connect() as con:
        row = con.execute(sa.select(decisions).where(decisions.c.decision_id == decision_id)).mappings().first()
    return dict(row) if row else None
