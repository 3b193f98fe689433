"""The ``lead.validate`` stage: every check and enrichment, in one place, on one lead."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.config import Config
from leadflow.leads import repository as leads
from leadflow.models import Lead, LeadStatus
from leadflow.stage import Batch, StageResult
from leadflow.validation.context import (
    channel_of,
    country_code,
    device_of,
    locale_language,
    locale_region,
)
from leadflow.validation.deliverability import check_deliverability
from leadflow.validation.email import EmailKind, EmailQuality, analyse_email
from leadflow.validation.lists import builtin_spam_terms
from leadflow.validation.people import function_of, seniority_of, tidy_company, tidy_name
from leadflow.validation.phone import PhoneQuality, analyse_phone
from leadflow.validation.spam import judge

BUILTIN_TERMS = builtin_spam_terms()
RELEASED = "released_by"


def website_domain(url: str | None) -> str | None:
    if not url:
        return None
    try:
        host = urlsplit(url if "://" in url else f"https://{url}").hostname
    except ValueError:
        return None
    return host.lower().removeprefix("www.") if host else None


def company_domain(email: EmailQuality, website: str | None) -> str | None:
    """The company's own domain: a business email's, else the website's."""
    return email.domain if email.kind is EmailKind.BUSINESS else website_domain(website)


def contact_flags(
    email: EmailQuality, phone: PhoneQuality, *, given_email: str | None, given_phone: str | None
) -> list[str]:
    """What is wrong with a lead's email and phone, or missing: ``invalid_email``,
    ``no_phone``, ``free_email`` ..."""
    flags = []
    if not email.valid:
        flags.append("invalid_email" if given_email else "no_email")
    elif email.kind is not EmailKind.BUSINESS and email.kind is not None:
        flags.append(f"{email.kind.value}_email")
    if not phone.valid:
        flags.append("invalid_phone" if given_phone else "no_phone")
    return flags


async def validate_lead(
    session: AsyncSession, batch: Batch, lead: Lead, config: Config
) -> StageResult:
    """Clean the lead's contact data, attach its context and quality, judge spam."""
    submissions = await leads.submissions(session, batch, lead.id)
    latest = submissions[-1] if submissions else None
    headers: dict[str, Any] = (latest.request_meta or {}).get("headers", {}) if latest else {}
    user_agent = latest.user_agent if latest else None
    accept_language = headers.get("accept-language")
    form = config.forms.get(lead.form_key)

    email = analyse_email(lead.email)
    explicit_country = country_code(lead.country)
    browser_region = locale_region(accept_language)
    phone = analyse_phone(
        lead.phone, [form.default_region if form else None, explicit_country, browser_region]
    )
    if email.valid and email.normalized:
        lead.email = email.normalized
    if phone.valid and phone.e164:
        lead.phone = phone.e164
    lead.first_name = tidy_name(lead.first_name)
    lead.last_name = tidy_name(lead.last_name)
    lead.company = tidy_company(lead.company)
    country = explicit_country or phone.region
    if country:
        lead.country = country

    deliverability = None
    if config.validation.check_deliverability and email.valid and email.normalized:
        deliverability = await check_deliverability(
            email.normalized, dns_timeout=config.validation.dns_timeout
        )

    device = device_of(user_agent)
    spam_settings = config.validation.spam
    verdict = judge(
        free_text=" ".join(filter(None, [lead.message, lead.company, lead.title])),
        names=" ".join(filter(None, [lead.first_name, lead.last_name])),
        intake_reasons=list(latest.spam_reasons) if latest else [],
        disposable_email=email.kind is EmailKind.DISPOSABLE,
        email_domain=email.domain,
        blocked_domains=frozenset(spam_settings.blocked_domains),
        bot=device.bot,
        locale_region=browser_region,
        contact_country=phone.region or explicit_country,
        terms=(*BUILTIN_TERMS, *spam_settings.terms),
    )

    flags = contact_flags(email, phone, given_email=lead.email, given_phone=lead.phone)
    if deliverability in ("undeliverable", "unknown"):
        flags.append(f"email_domain_{deliverability}")
    previous = lead.quality or {}
    released = previous.get(RELEASED)
    if released:
        flags.append("released_from_quarantine")

    seniority = seniority_of(lead.title)
    lead.company_domain = company_domain(email, lead.website)
    lead.quality = {
        "email_valid": email.valid,
        "email_kind": email.kind.value if email.kind else None,
        "email_normalized": email.normalized,
        "email_key": email.key,
        "email_domain": email.domain,
        "email_error": email.error if lead.email else None,
        "email_deliverability": deliverability,
        "phone_e164": phone.e164,
        "phone_valid": phone.valid,
        "phone_type": phone.type,
        "phone_region": phone.region,
        "country": country,
        "company_domain": lead.company_domain,
        "seniority": seniority.value if seniority else None,
        "function": function_of(lead.title),
        "device": {
            "type": device.type,
            "os": device.os,
            "browser": device.browser,
            "bot": device.bot,
        },
        "channel": channel_of(
            utm_medium=lead.utm_medium,
            gclid=lead.gclid,
            fbclid=lead.fbclid,
            referrer=lead.referrer,
            landing_url=lead.landing_url,
        ),
        "locale_region": browser_region,
        "language": locale_language(accept_language),
        "spam_score": verdict.score,
        "spam_reasons": verdict.reasons,
        "flags": flags,
        **({RELEASED: released, "released_at": previous.get("released_at")} if released else {}),
    }
    detail = {
        "outcome": "passed",
        "email_kind": lead.quality["email_kind"],
        "phone_valid": phone.valid,
        "spam_score": verdict.score,
        "flags": flags,
    }
    if verdict.score >= spam_settings.quarantine_at and not released:
        detail |= {"outcome": "quarantined", "spam_reasons": verdict.reasons}
        return StageResult(detail, halt=LeadStatus.QUARANTINED)
    return StageResult(detail)
