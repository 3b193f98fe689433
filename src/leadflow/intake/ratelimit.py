"""Per-IP and per-form rate limits (the ``limits`` library).

Counters live in memory by default, which is right for one process; with
``LEADFLOW_REDIS_URL`` they live in Redis and are shared by every API replica.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections import deque

import coredis
import limits
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from leadflow.config import Config
from leadflow.errors import RateLimited

logger = logging.getLogger(__name__)
SWEEP_SECONDS = 60.0


class MovingWindows(MemoryStorage):
    """The moving windows in memory: each key's hits, oldest first, expired ones dropped.

    ``limits``' own memory storage keeps each key's hits newest first in a list, so a
    hit copies the whole list (as many entries as the limit allows per window), and
    drops the expired ones with a list copy in a worker thread after nearly every hit:
    at a few hundred submissions a second under a high limit that was a tenth of the
    API's CPU, and the thread held the GIL the event loop was waiting for. Here a hit
    costs the same whatever the limit; keys that are no longer hit are swept once a
    minute. Same rule: a hit is refused when ``limit`` hits are within the window."""

    def __init__(self) -> None:
        super().__init__()
        self._hits: dict[str, tuple[int, deque[float]]] = {}
        self._swept = time.time()

    def _window(self, key: str, expiry: int, now: float) -> deque[float]:
        if now - self._swept > SWEEP_SECONDS:
            self._sweep(now)
        _, hits = self._hits.setdefault(key, (expiry, deque()))
        while hits and hits[0] < now - expiry:
            hits.popleft()
        return hits

    def _sweep(self, now: float) -> None:
        self._swept = now
        for key, (expiry, hits) in list(self._hits.items()):
            if not hits or hits[-1] < now - expiry:
                del self._hits[key]

    async def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        now = time.time()
        hits = self._window(key, expiry, now)
        if len(hits) + amount > limit:
            return False
        hits.extend([now] * amount)
        return True

    async def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        now = time.time()
        hits = self._window(key, expiry, now)
        return (hits[0], len(hits)) if hits else (now, 0)

    async def clear(self, key: str) -> None:
        self._hits.pop(key, None)

    async def reset(self) -> int | None:
        count = len(self._hits)
        self._hits.clear()
        return count


@functools.lru_cache(maxsize=64)
def _rate(text: str) -> limits.RateLimitItem:
    return limits.parse(text)


class IntakeRateLimiter:
    def __init__(self, redis_url: str | None = None) -> None:
        self._redis_pool: coredis.ConnectionPool | None = None
        self.storage: Storage
        if redis_url:
            # Our own pool, so that closing the runtime closes its connections.
            self._redis_pool = coredis.ConnectionPool.from_url(redis_url)
            scheme, _, rest = redis_url.partition("://")
            self.storage = RedisStorage(
                f"async+{scheme}://{rest}",
                key_prefix="leadflow",
                connection_pool=self._redis_pool,  # type: ignore[arg-type]  # typed too narrowly
            )
        else:
            self.storage = MovingWindows()
        self.limiter = MovingWindowRateLimiter(self.storage)

    def close(self) -> None:
        if self._redis_pool is not None:
            self._redis_pool.disconnect()

    async def check(self, config: Config, form_key: str, ip: str | None) -> None:
        """Count one submission; raise RateLimited (429 with Retry-After) over a limit."""
        rates = config.intake.rate_limits
        checks: list[tuple[limits.RateLimitItem, tuple[str, ...]]] = [
            (_rate(rates.per_form), ("form", form_key))
        ]
        if ip:
            checks.insert(0, (_rate(rates.per_ip), ("ip", form_key, ip)))
        for rate, identifiers in checks:
            try:
                allowed = await self.limiter.hit(rate, "leadflow-intake", *identifiers)
            except Exception:  # the counters' store (Redis) is down
                # Fail open: a lead refused is a lead lost; an unthrottled minute is not.
                logger.warning(
                    "rate-limit store unreachable; letting the submission in", exc_info=True
                )
                return
            if not allowed:
                stats = await self.limiter.get_window_stats(rate, "leadflow-intake", *identifiers)
                retry_after = max(1, math.ceil(stats.reset_time - time.time()))
                scope = "this address" if identifiers[0] == "ip" else "this form"
                raise RateLimited(
                    f"Too many submissions from {scope} ({rate}); retry in {retry_after}s.",
                    headers={"Retry-After": str(retry_after)},
                )

    async def healthy(self) -> bool:
        return bool(await self.storage.check())
