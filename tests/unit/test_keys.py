"""Rotating an API key: the new key at once, the old one beside it for the overlap, refused after."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from scoring.store import Role, authenticate, create_key, engine_for, revoke_key, rotate_key


@pytest.fixture()
def engine(tmp_path: Path):
    made = engine_for(f"sqlite:///{tmp_path / 'decisions.db'}")
    yield made
    made.dispose()


def test_both_keys_work_during_the_overlap_and_the_new_one_is_the_same_holders(engine) -> None:
    old_secret, old = create_key(engine, role=Role.BANK, bank_id="B1", label="bank one", rate_per_minute=600)
    rotated = rotate_key(engine, old.key_id, dt.timedelta(hours=24))
    assert rotated is not None
    new_secret, new, ends = rotated
    assert new_secret != old_secret and new.key_id != old.key_id
    assert (new.role, new.bank_id, new.label, new.rate_per_minute) == (Role.BANK, "B1", "bank one", 600)
    assert authenticate(engine, old_secret) == old and authenticate(engine, new_secret) == new
    assert dt.timedelta(hours=23) < ends - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=24)
    again = rotate_key(engine, old.key_id, dt.timedelta(hours=48))  # a second rotation does not put off the end
    assert again is not None and again[2] == ends


def test_the_old_key_is_refused_once_the_overlap_is_over(engine) -> None:
    old_secret, old = create_key(engine, role=Role.REGULATOR, label="inspector")
    rotated = rotate_key(engine, old.key_id, dt.timedelta(seconds=0.3))
    assert rotated is not None and authenticate(engine, old_secret) == old
    time.sleep(max(0.0, (rotated[2] - dt.datetime.now(dt.UTC)).total_seconds()) + 0.05)  # past the end
    assert authenticate(engine, old_secret) is None
    assert authenticate(engine, rotated[0]) == rotated[1]
    assert rotate_key(engine, old.key_id, dt.timedelta(hours=1)) is None  # no longer live: nothing to rotate


def test_a_key_revoked_during_its_overlap_is_refused_at_once(engine) -> None:
    old_secret, old = create_key(engine, role=Role.ANALYST)
    assert rotate_key(engine, old.key_id, dt.timedelta(hours=1)) is not None
    assert revoke_key(engine, old.key_id)
    assert authenticate(engine, old_secret) is None
    with pytest.raises(ValueError, match="negative"):
        rotate_key(engine, create_key(engine, role=Role.ADMIN)[1].key_id, dt.timedelta(hours=-1))
