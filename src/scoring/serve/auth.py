"""Per-key protections of the API: the rate limit and the short cache of authenticated keys."""

from __future__ import annotations

import threading
import time

from scoring.store import ApiKey, secret_hash


class RateLimiter:
    """A token bucket per API key: ``rate`` requests a minute, bursts up to a minute's worth.

    Per process: with several server workers each keeps its own buckets, so a key's effective
    limit is the rate times the number of workers (serve/scoring.service runs two).
    """

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key_id: str, rate_per_minute: int) -> float:
        """0 when the request may go ahead, else the seconds until it may."""
        now = time.monotonic()
        per_second = rate_per_minute / 60.0
        with self._lock:
            tokens, last = self._buckets.get(key_id, (float(rate_per_minute), now))
            tokens = min(float(rate_per_minute), tokens + (now - last) * per_second)
            if tokens >= 1.0:
                self._buckets[key_id] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key_id] = (tokens, now)
            return (1.0 - tokens) / per_second


class KeyCache:
    """Live API keys recently authenticated, for ``seconds`` (0: none kept).

    Keys are revoked with `scoring keys revoke`, in another process: a revoked key is refused
    at most ``seconds`` later. Only live keys are kept (by the secret's hash), at most ``size``.
    """

    def __init__(self, seconds: float, size: int = 10_000) -> None:
        self.seconds, self.size = seconds, size
        self._keys: dict[str, tuple[ApiKey, float]] = {}

    def get(self, secret: str) -> ApiKey | None:
        if self.seconds <= 0:
            return None
        hit = self._keys.get(secret_hash(secret))
        if hit is None or hit[1] < time.monotonic():
            return None
        return hit[0]

    def put(self, secret: str, key: ApiKey, *, since: float) -> None:
        """Remember a key found live at ``since`` (a ``time.monotonic()`` reading)."""
        if self.seconds <= 0:
            return
        if len(self._keys) >= self.size:
            self._keys.clear()
        self._keys[secret_hash(secret)] = (key, since + self.seconds)
