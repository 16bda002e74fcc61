"""Identifiers of stored records: time-ordered UUIDs (version 7, RFC 9562).

A decision's id is the key of two B-tree indexes written with every decision (``audit_log.event_id``
and ``decision_index.event_id``). A random UUID (version 4) lands each insert on a random page of
them, so once they outgrow the page cache every commit dirties and logs a page per index and per
decision; a version 7 UUID starts with the time in milliseconds, so inserts land on the rightmost
pages, as the rowid's do. The Python standard library gains ``uuid.uuid7`` only in 3.14, and the
layout takes a few lines, so it is written here rather than added as a dependency.
"""

from __future__ import annotations

import secrets
import time
import uuid

_VERSION = 0x7 << 76
_VARIANT = 0b10 << 62


def time_ordered_id() -> str:
    """A new UUID, version 7: 48 bits of Unix time in milliseconds, then 74 random bits.

    Ids of different milliseconds sort by time; within one millisecond their order is random. The
    time in it is the time of the decision, which its record holds anyway.
    """
    ms = time.time_ns() // 1_000_000
    rand_a = secrets.randbits(12)
    rand_b = secrets.randbits(62)
    return str(uuid.UUID(int=(ms & (1 << 48) - 1) << 80 | _VERSION | rand_a << 64 | _VARIANT | rand_b))
