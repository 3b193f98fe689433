"""Per-IP and per-form rate limits (the ``limits`` library).

Counters live in memory by default, which is right for one process; with
``LEADFLOW_REDIS_URL`` they live in Redis and are shared by every API replica.
"""

from __future__ import annotations

import logging
import math
import time

import coredis
import limits
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from leadflow.config import Config
from leadflow.errors import RateLimited

logger = logging.getLogger(__name__)


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
            self.storage = MemoryStorage()
        self.limiter = MovingWindowRateLimiter(self.storage)

    def close(self) -> None:
        if self._redis_pool is not None:
            self._redis_pool.disconnect()

    async def check(self, config: Config, form_key: str, ip: str | None) -> None:
        """Count one submission; raise RateLimited (429 with Retry-After) over a limit."""
        rates = config.intake.rate_limits
        checks: list[tuple[limits.RateLimitItem, tuple[str, ...]]] = [
            (limits.parse(rates.per_form), ("form", form_key))
        ]
        if ip:
            checks.insert(0, (limits.parse(rates.per_ip), ("ip", form_key, ip)))
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
