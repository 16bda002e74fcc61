"""The decision store (SQLAlchemy: a SQLite file by default, PostgreSQL by URL).

It holds the API keys and console sessions, the consents, the hash-chained audit log of every
decision, refusal, outcome report and consent change, and the decision index the console searches.
The service, the CLI and the notebooks use it through the names re-exported here; each concern
lives in its own module: ``tables`` (the schema), ``engine`` (opening a store), ``ids`` (time-ordered ids), ``keys``,
``sessions``, ``consents``, ``audit`` (appending), ``audit_read``, ``audit_verify``, ``index``
(the decision index and search) and ``outcomes``.
"""

from scoring.store.audit import DuplicateEvent, Event, append, append_each
from scoring.store.audit_read import events, find_idempotent, get_decision, get_event
from scoring.store.audit_verify import ChainReport, verify_chain
from scoring.store.consents import (
    Purpose,
    grant_consent,
    list_consents,
    live_consent,
    live_consents,
    revoke_consent,
)
from scoring.store.engine import engine_for
from scoring.store.ids import time_ordered_id
from scoring.store.index import search_decisions
from scoring.store.keys import ApiKey, Role, authenticate, create_key, list_keys, revoke_key, rotate_key, secret_hash
from scoring.store.outage import StoreUnavailable, unavailable
from scoring.store.outcomes import LOAN_COLUMNS, reported_loans
from scoring.store.query_log import queries_about
from scoring.store.reviews import (
    AlreadyReviewed,
    decide_review,
    open_reviews,
    request_review,
    review_request,
    reviews_about,
    reviews_of,
)
from scoring.store.sessions import end_session, open_session, session_key
from scoring.store.tables import DECISION_KINDS, GENESIS, decision_index, metadata

__all__ = [
    "DECISION_KINDS",
    "GENESIS",
    "LOAN_COLUMNS",
    "AlreadyReviewed",
    "ApiKey",
    "ChainReport",
    "DuplicateEvent",
    "Event",
    "Purpose",
    "Role",
    "StoreUnavailable",
    "append",
    "append_each",
    "authenticate",
    "create_key",
    "decide_review",
    "decision_index",
    "end_session",
    "engine_for",
    "events",
    "find_idempotent",
    "get_decision",
    "get_event",
    "grant_consent",
    "list_consents",
    "list_keys",
    "live_consent",
    "live_consents",
    "metadata",
    "open_reviews",
    "open_session",
    "queries_about",
    "reported_loans",
    "request_review",
    "review_request",
    "reviews_about",
    "reviews_of",
    "revoke_consent",
    "revoke_key",
    "rotate_key",
    "search_decisions",
    "secret_hash",
    "session_key",
    "time_ordered_id",
    "unavailable",
    "verify_chain",
]
