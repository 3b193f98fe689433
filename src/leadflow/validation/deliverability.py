"""Optional MX lookup: does the email's domain accept mail? Off by default.

email-validator does the lookup (MX, then A/AAAA fallback, null MX) with a
caching dnspython resolver; it runs in a thread with a timeout. A DNS failure is
a flag for a person and for scoring — never a reason to refuse a lead.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from functools import lru_cache
from typing import Literal

import dns.resolver
from email_validator import EmailNotValidError, caching_resolver, validate_email

Deliverability = Literal["deliverable", "undeliverable", "unknown"]


@lru_cache(maxsize=8)
def _resolver(timeout: float, nameservers: tuple[str, ...] | None) -> dns.resolver.Resolver:
    resolver = caching_resolver(timeout=int(timeout) or 1)
    if nameservers:
        resolver.nameservers = list(nameservers)
    return resolver


def _check(email: str, timeout: float, nameservers: tuple[str, ...] | None) -> Deliverability:
    try:
        result = validate_email(
            email,
            check_deliverability=True,
            dns_resolver=_resolver(timeout, nameservers),
        )
    except EmailNotValidError:
        return "undeliverable"
    return "deliverable" if getattr(result, "mx", None) else "unknown"


async def check_deliverability(
    email: str, *, dns_timeout: timedelta, nameservers: tuple[str, ...] | None = None
) -> Deliverability:
    seconds = dns_timeout.total_seconds()
    try:
        return await asyncio.wait_for(
            asyncio.to_thread(_check, email, seconds, nameservers), timeout=seconds + 1
        )
    except (TimeoutError, dns.exception.DNSException, OSError):
        return "unknown"
