"""How often a console sign-in may fail: per client address and per key prefix, then a lock-out.

Failed attempts are counted over a sliding window; past the limit the client (or everyone trying
keys that start alike) is locked out for a while, and the lock-out is audited by the caller. Counts
live in the worker process (each worker counts its own attempts: with two workers an attacker gets at
most twice the limit before both lock); a success clears its prefix's count.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

WINDOW_SECONDS = 15 * 60
LOCK_SECONDS = 15 * 60
PER_CLIENT = 20  # failures from one address within the window
PER_PREFIX = 5  # failures with keys that start alike (the same holder's key mistyped, or one key guessed at)
PREFIX = 8  # characters of a presented key that name its prefix ("sk_" and five more)
KEPT = 50_000  # names counted at most: past that, those without a failure in the window are forgotten


def prefix_of(secret: str) -> str:
    return secret.strip()[:PREFIX]


@dataclass
class SignInLimits:
    """Failed sign-ins per client and per key prefix; ``locked`` says until when one is refused."""

    clock: Callable[[], float] = time.monotonic
    failures: dict[str, deque[float]] = field(default_factory=dict)
    locked_until: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def locked(self, client: str, secret: str) -> float:
        """Seconds the attempt must wait (0: it may go on)."""
        now = self.clock()
        with self.lock:
            ends = [self.locked_until.get(k, 0.0) for k in (f"client:{client}", f"prefix:{prefix_of(secret)}")]
        return max(0.0, max(ends) - now)

    def failed(self, client: str, secret: str) -> list[str]:
        """Count a failed attempt; the names (``client:…`` or ``prefix:…``) it has just locked out."""
        now = self.clock()
        newly = []
        with self.lock:
            for name, limit in ((f"client:{client}", PER_CLIENT), (f"prefix:{prefix_of(secret)}", PER_PREFIX)):
                seen = self.failures.setdefault(name, deque())
                seen.append(now)
                while seen and seen[0] <= now - WINDOW_SECONDS:
                    seen.popleft()
                if len(seen) >= limit and self.locked_until.get(name, 0.0) <= now:
                    self.locked_until[name] = now + LOCK_SECONDS
                    seen.clear()
                    newly.append(name)
            if len(self.failures) > KEPT:
                self.failures = {k: v for k, v in self.failures.items() if v and v[-1] > now - WINDOW_SECONDS}
                self.locked_until = {k: t for k, t in self.locked_until.items() if t > now}
        return newly

    def succeeded(self, secret: str) -> None:
        with self.lock:
            self.failures.pop(f"prefix:{prefix_of(secret)}", None)
