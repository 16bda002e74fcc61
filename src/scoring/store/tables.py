"""The decision store's tables, on one ``MetaData``: what each table holds and how it is indexed."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

metadata = sa.MetaData()

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("bank_id", sa.String(32)),
    sa.Column("uscc", sa.String(18)),  # an enterprise key's enterprise (added to older stores by engine_for)
    sa.Column("label", sa.String(200)),
    sa.Column("rate_per_minute", sa.Integer),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
)

consents = sa.Table(
    "consents",
    metadata,
    sa.Column("consent_id", sa.String(36), primary_key=True),
    sa.Column("uscc", sa.String(18), nullable=False),
    sa.Column("bank_id", sa.String(32), nullable=False),
    sa.Column("purpose", sa.String(32), nullable=False),
    sa.Column("granted_on", sa.Date, nullable=False),
    sa.Column("expires_on", sa.Date, nullable=False),
    sa.Column("evidence", sa.String(200)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
    sa.Index("ix_consents_lookup", "uscc", "bank_id", "purpose"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=False),
    sa.Column("event_id", sa.String(36), nullable=False, unique=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),  # ISO text: hashed as stored, on any backend
    sa.Column("uscc", sa.String(18), index=True),
    sa.Column("key_id", sa.String(32)),
    sa.Column("role", sa.String(16)),
    sa.Column("bank_id", sa.String(32), index=True),
    sa.Column("ref_id", sa.String(36), index=True),  # an outcome's decision, a consent change's consent
    sa.Column("idem_key", sa.String(120), unique=True),  # an outcome's (decision, report date)
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

# what the decision search reads: one row per decision, derived from its audit row in the same
# transaction (the audit row, covered by the chain, stays the record; this is an index of it)
decision_index = sa.Table(
    "decision_index",
    metadata,
    sa.Column("event_id", sa.String(36), primary_key=True),
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=False, unique=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False, index=True),
    sa.Column("uscc", sa.String(18), index=True),
    sa.Column("name", sa.String(200)),
    sa.Column("bank_id", sa.String(32), index=True),
    sa.Column("grade", sa.String(1), index=True),
    sa.Column("score", sa.Integer),
    sa.Column("pre_credit_limit", sa.Float),
    sa.Column("decision_zh", sa.String(16)),
    sa.Column("model", sa.String(80)),
)

console_sessions = sa.Table(
    "console_sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("key_id", sa.String(32), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ended_at", sa.DateTime(timezone=True)),
)


# the previous hash of the first audit row: what the head holds while the log is empty
GENESIS = "0" * 64

# the audit kinds that are decisions (what ``decision_index`` lists)
DECISION_KINDS = ("evaluation", "pre_credit")


def _now() -> dt.datetime:
    """The time as the ``DateTime`` columns store it (timezone-aware, UTC)."""
    return dt.datetime.now(dt.UTC)
