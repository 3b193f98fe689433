"""Where the lead came from and on what: device, channel, country."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

import phonenumbers
import pycountry
from ua_parser import parse as parse_user_agent

from leadflow.validation.lists import SEARCH_HOSTS, SOCIAL_HOSTS, WEBMAIL_HOSTS

_BOT_WORDS = re.compile(
    r"bot|crawl|spider|slurp|headless|python-requests|curl/|wget|httpclient|scrapy|go-http",
    re.IGNORECASE,
)
_TABLET = re.compile(r"ipad|tablet|kindle|silk|sm-t\d", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Device:
    type: str  # desktop, mobile, tablet, bot, unknown
    os: str | None
    browser: str | None
    bot: bool


@lru_cache(maxsize=4096)
def device_of(user_agent: str | None) -> Device:
    if not user_agent:
        return Device("unknown", None, None, False)
    result = parse_user_agent(user_agent)
    browser = result.user_agent.family if result.user_agent else None
    os_name = result.os.family if result.os else None
    device = result.device.family if result.device else None
    bot = device == "Spider" or bool(_BOT_WORDS.search(user_agent))
    if bot:
        kind = "bot"
    elif _TABLET.search(user_agent):
        kind = "tablet"
    elif os_name in ("iOS", "Android") or "Mobile" in user_agent:
        kind = "mobile"
    elif os_name:
        kind = "desktop"
    else:
        kind = "unknown"
    return Device(kind, os_name, browser, bot)


PAID_MEDIUMS = {
    "cpc",
    "ppc",
    "paid",
    "paidsearch",
    "paid_search",
    "paid-search",
    "display",
    "cpm",
    "paidsocial",
    "paid_social",
    "paid-social",
    "retargeting",
    "affiliate",
}
EMAIL_MEDIUMS = {"email", "e-mail", "newsletter", "mail"}
SOCIAL_MEDIUMS = {"social", "social-media", "social_media", "sm", "organic_social"}
SEARCH_MEDIUMS = {"organic", "seo", "search"}


def _host(url: str | None) -> str | None:
    if not url:
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host.lower() if host else None


def _matches(host: str, patterns: tuple[str, ...]) -> bool:
    for pattern in patterns:
        if pattern.endswith("."):
            if host.startswith(pattern) or f".{pattern}" in host:
                return True
        elif host == pattern or host.endswith(f".{pattern}"):
            return True
    return False


def channel_of(
    *,
    utm_medium: str | None,
    gclid: str | None,
    fbclid: str | None,
    referrer: str | None,
    landing_url: str | None,
) -> str:
    """search, social, paid, email, direct or other — the medium first, then the referrer."""
    medium = (utm_medium or "").strip().lower()
    if medium in PAID_MEDIUMS or gclid or (fbclid and medium not in SOCIAL_MEDIUMS):
        return "paid"
    if medium in EMAIL_MEDIUMS:
        return "email"
    if medium in SOCIAL_MEDIUMS:
        return "social"
    if medium in SEARCH_MEDIUMS:
        return "search"
    host = _host(referrer)
    if host is None or host == _host(landing_url):
        return "direct"
    if _matches(host, WEBMAIL_HOSTS):  # before search: mail.google.com is not a search
        return "email"
    if _matches(host, SEARCH_HOSTS):
        return "search"
    if _matches(host, SOCIAL_HOSTS):
        return "social"
    return "other"


@lru_cache(maxsize=1024)
def country_code(value: str | None) -> str | None:
    """ISO 3166 alpha-2 for "DE", "DEU" or "Germany" (English names); None when unsure."""
    if not value or not value.strip():
        return None
    text = value.strip()
    if len(text) == 2 and text.upper() in phonenumbers.SUPPORTED_REGIONS:
        return text.upper()
    if text.upper() == "UK":
        return "GB"
    try:  # exact codes and official names only: fuzzy matching guesses ("Korea" -> KP)
        return str(pycountry.countries.lookup(text).alpha_2)
    except LookupError:
        return None


def locale_region(accept_language: str | None) -> str | None:
    """The region of the browser's first language: "de-AT,de;q=0.9" -> "AT"."""
    if not accept_language:
        return None
    first = accept_language.split(",", 1)[0].split(";", 1)[0].strip()
    parts = re.split(r"[-_]", first)
    if len(parts) >= 2 and len(parts[-1]) == 2 and parts[-1].isalpha():
        return parts[-1].upper()
    return None


def locale_language(accept_language: str | None) -> str | None:
    if not accept_language:
        return None
    first = accept_language.split(",", 1)[0].split(";", 1)[0].strip()
    language = re.split(r"[-_]", first)[0].lower()
    return language if language.isalpha() and 2 <= len(language) <= 3 else None
