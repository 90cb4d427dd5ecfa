"""Pacing for remote chat requests: a requests-per-minute token bucket and retry backoff.

``TokenBucket`` admits one request per token; tokens refill continuously at ``rate_per_s`` up to
``capacity`` (capacity 1 spaces requests evenly, larger capacities allow short bursts). ``Backoff`` computes
exponential backoff with full jitter (a uniform draw in ``[0, min(max_s, base_s * 2**attempt)]``), raised to
the server's ``retry-after`` hint when one is given.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from lvlm.construction.backends.clients.base import PerLoop
from lvlm.errors import ConfigError


class TokenBucket:
    """An asyncio token bucket; ``acquire()`` waits until a token is available and takes it."""

    def __init__(
        self, rate_per_s: float, capacity: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate_per_s <= 0 or capacity < 1:
            raise ConfigError(
                f"token bucket needs rate_per_s > 0 and capacity >= 1, got {rate_per_s}, {capacity}"
            )
        self.rate_per_s = rate_per_s
        self.capacity = float(capacity)
        self._clock = clock
        self._tokens = float(capacity)
        self._updated = clock()
        self._lock = PerLoop(asyncio.Lock)

    @classmethod
    def per_minute(cls, requests_per_minute: float, burst: int = 1) -> TokenBucket:
        if requests_per_minute <= 0:
            raise ConfigError(f"requests_per_minute must be > 0, got {requests_per_minute}")
        return cls(requests_per_minute / 60.0, capacity=burst)

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate_per_s)
        self._updated = now

    async def acquire(self) -> float:
        """Take one token, sleeping as needed; return the seconds waited. Waiters are served in order."""
        waited = 0.0
        async with self._lock.get():
            self._refill()
            while self._tokens < 1.0:
                delay = (1.0 - self._tokens) / self.rate_per_s
                await asyncio.sleep(delay)
                waited += delay
                self._refill()
            self._tokens -= 1.0
        return waited


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter, capped at ``max_s``."""

    base_s: float = 1.0
    max_s: float = 60.0

    def __post_init__(self) -> None:
        if self.base_s < 0 or self.max_s < 0:
            raise ConfigError(f"backoff times must be >= 0, got base_s={self.base_s}, max_s={self.max_s}")

    def delay(self, attempt: int, rng: random.Random, retry_after_s: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based), honouring a server hint."""
        ceiling = min(self.max_s, self.base_s * (2.0**attempt))
        delay = rng.uniform(0.0, ceiling)
        if retry_after_s is not None:
            delay = max(delay, min(max(retry_after_s, 0.0), self.max_s))
        return delay
