"""The per-key protections called directly: the token bucket and the cache of authenticated keys."""

from __future__ import annotations

import pytest

from scoring.serve import auth
from scoring.store import ApiKey, Role

KEY = ApiKey(key_id="k1", role=Role.BANK, bank_id="BANK_A", label=None)


@pytest.fixture()
def clock(monkeypatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr(auth.time, "monotonic", lambda: now[0])
    return now


def test_a_burst_of_a_minutes_worth_then_one_request_per_token(clock) -> None:
    limiter = auth.RateLimiter()
    assert all(limiter.take("k1", 60) == 0 for _ in range(60))
    wait = limiter.take("k1", 60)
    assert wait == pytest.approx(1.0)  # 60 a minute: the next token in one second
    clock[0] += 0.5
    assert limiter.take("k1", 60) == pytest.approx(0.5)
    clock[0] += 0.5
    assert limiter.take("k1", 60) == 0


def test_each_key_has_its_own_bucket(clock) -> None:
    limiter = auth.RateLimiter()
    for _ in range(10):
        limiter.take("busy", 10)
    assert limiter.take("busy", 10) > 0
    assert limiter.take("quiet", 10) == 0


def test_the_bucket_never_holds_more_than_a_minutes_worth(clock) -> None:
    limiter = auth.RateLimiter()
    limiter.take("k1", 6)
    clock[0] += 3600  # an hour idle
    assert sum(limiter.take("k1", 6) == 0 for _ in range(10)) == 6


def test_the_key_cache_keeps_a_live_key_for_its_seconds_from_when_it_was_found(clock) -> None:
    cache = auth.KeyCache(5)
    cache.put("sk_secret", KEY, since=clock[0] - 2)
    assert cache.get("sk_secret") == KEY and cache.get("sk_other") is None
    clock[0] += 2.9
    assert cache.get("sk_secret") == KEY
    clock[0] += 0.2
    assert cache.get("sk_secret") is None


def test_a_cache_of_zero_seconds_keeps_nothing_and_a_full_one_starts_over(clock) -> None:
    off = auth.KeyCache(0)
    off.put("sk_secret", KEY, since=clock[0])
    assert off.get("sk_secret") is None
    small = auth.KeyCache(60, size=2)
    small.put("a", KEY, since=clock[0])
    small.put("b", KEY, since=clock[0])
    small.put("c", KEY, since=clock[0])  # full: cleared before this one goes in
    assert small.get("a") is None and small.get("b") is None and small.get("c") == KEY
