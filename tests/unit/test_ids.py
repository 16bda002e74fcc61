"""Decision ids: UUIDs of version 7, whose order is the order of their milliseconds."""

from __future__ import annotations

import time
import uuid

from scoring.store import time_ordered_id


def test_an_id_is_a_version_7_uuid_holding_the_time_it_was_made() -> None:
    before = time.time_ns() // 1_000_000
    made = uuid.UUID(time_ordered_id())
    after = time.time_ns() // 1_000_000
    assert made.version == 7
    assert made.variant == uuid.RFC_4122
    assert before <= made.int >> 80 <= after


def test_ids_of_later_milliseconds_sort_after_earlier_ones() -> None:
    made = []
    for _ in range(5):
        ms = time.time_ns() // 1_000_000
        while time.time_ns() // 1_000_000 == ms:  # the next millisecond
            pass
        made.append(time_ordered_id())
    assert made == sorted(made)
    assert len({uuid.UUID(m).int & ((1 << 74) - 1) for m in made}) == 5  # the random part differs
