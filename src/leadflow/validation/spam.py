"""Spam signals: each one adds to a 0-100 score with a reason a person can read.

A lead at or above ``validation.spam.quarantine_at`` is quarantined: kept,
visible, never routed, and releasable by a person. Nothing is deleted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_LINK = re.compile(r"(https?://|www\.)\S+|\b[\w-]+\.(com|net|org|ru|xyz|top|info|biz)/\S*", re.I)
_WORD = re.compile(r"[^\W\d_]{6,}", re.UNICODE)
_VOWELS = set("aeiouyäöüàâéèêëîïôùûåæøáíóúAEIOUY")

# Points per signal. Honeypot and fill time are decided at intake already (the
# lead is quarantined there); they are here so a score always tells the whole story.
WEIGHTS = {
    "honeypot": 100,
    "fill_time": 60,
    "known_spam_term": 40,
    "another_spam_term": 15,
    "many_links": 40,
    "link": 15,
    "gibberish": 30,
    "disposable_email": 30,
    "blocked_domain": 100,
    "bot_user_agent": 40,
    "locale_mismatch": 10,
}


@dataclass(frozen=True, slots=True)
class SpamVerdict:
    score: int
    reasons: list[str]


def links_in(text: str) -> int:
    return len(_LINK.findall(text))


def looks_gibberish(text: str) -> bool:
    """Keyboard mash like "asdkjhqwe" or "xcvbnmrtz": long words with (almost) no vowels,
    or long consonant runs. Latin scripts only; other scripts are never called gibberish."""
    words = _WORD.findall(text)
    if not words:
        return False
    bad = 0
    for word in words:
        if not word.isascii():
            continue
        vowels = sum(ch in _VOWELS for ch in word)
        longest_run = max(len(run) for run in re.split(r"[aeiouyAEIOUY]+", word))
        if vowels / len(word) < 0.15 or longest_run >= 6:
            bad += 1
    return bad > 0 and bad >= len(words) / 2


def spam_terms_in(text: str, terms: Iterable[str]) -> list[str]:
    lowered = text.lower()
    return [term for term in terms if term in lowered]


def judge(
    *,
    free_text: str,
    names: str,
    intake_reasons: list[str],
    disposable_email: bool,
    email_domain: str | None,
    blocked_domains: frozenset[str],
    bot: bool,
    locale_region: str | None,
    contact_country: str | None,
    terms: Iterable[str],
) -> SpamVerdict:
    score = 0
    reasons: list[str] = []

    def add(signal: str, reason: str, points: int | None = None) -> None:
        nonlocal score
        score += WEIGHTS[signal] if points is None else points
        reasons.append(reason)

    for reason in intake_reasons:
        add("honeypot" if "honeypot" in reason else "fill_time", reason)
    found = spam_terms_in(f"{free_text} {names}", terms)
    if found:
        points = WEIGHTS["known_spam_term"] + WEIGHTS["another_spam_term"] * (len(found) - 1)
        add("known_spam_term", f"known spam phrases: {', '.join(found[:5])}", points)
    links = links_in(free_text) + links_in(names)
    if links >= 3:
        add("many_links", f"{links} links in the free text")
    elif links:
        add("link", "a link in the free text")
    if looks_gibberish(names) or looks_gibberish(free_text):
        add("gibberish", "text looks like keyboard mash")
    if disposable_email:
        add("disposable_email", f"disposable email domain {email_domain}")
    if email_domain and email_domain in blocked_domains:
        add("blocked_domain", f"email domain {email_domain} is blocked")
    if bot:
        add("bot_user_agent", "the browser says it is a bot")
    if locale_region and contact_country and locale_region != contact_country:
        add("locale_mismatch", f"browser locale {locale_region} but contact in {contact_country}")
    return SpamVerdict(min(score, 100), reasons)
