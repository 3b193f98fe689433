"""Per-IP and per-form rate limits (the ``limits`` library).

Counters live in memory by default, which is right for one process; with
``LEADFLOW_REDIS_URL`` they live in Redis and are shared by every API replica.
"""

from __future__ import annotations

import math
import time

import limits
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from leadflow.config import Config
from leadflow.errors import RateLimited


def storage_for(redis_url: str | None) -> Storage:
    if not redis_url:
        return MemoryStorage()
    scheme, _, rest = redis_url.partition("://")
    return RedisStorage(f"async+{scheme}://{rest}", key_prefix="leadflow")


class IntakeRateLimiter:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.limiter = MovingWindowRateLimiter(storage)

    async def check(self, config: Config, form_key: str, ip: str | None) -> None:
        """Count one submission; raise RateLimited (429 with Retry-After) over a limit."""
        rates = config.intake.rate_limits
        checks = [(limits.parse(rates.per_form), ("form", form_key))]
        if ip:
            checks.insert(0, (limits.parse(rates.per_ip), ("ip", form_key, ip)))
        for rate, identifiers in checks:
            if not await self.limiter.hit(rate, "leadflow-intake", *identifiers):
                stats = await self.limiter.get_window_stats(rate, "leadflow-intake", *identifiers)
                retry_after = max(1, math.ceil(stats.reset_time - time.time()))
                scope = "this address" if identifiers[0] == "ip" else "this form"
                raise RateLimited(
                    f"Too many submissions from {scope} ({rate}); retry in {retry_after}s.",
                    headers={"Retry-After": str(retry_after)},
                )

    async def healthy(self) -> bool:
        return bool(await self.storage.check())
