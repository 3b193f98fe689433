"""Spam signals and the score, on real-world samples of spam and of genuine enquiries."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leadflow.validation.lists import builtin_spam_terms
from leadflow.validation.spam import judge, links_in, looks_gibberish

DATA = Path(__file__).parent / "data"
TERMS = builtin_spam_terms()


def samples(name: str) -> list[str]:
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


def score(message: str, **overrides: object) -> tuple[int, list[str]]:
    arguments: dict[str, object] = {
        "free_text": message,
        "names": "Ana Weber",
        "intake_reasons": [],
        "disposable_email": False,
        "email_domain": "acme.de",
        "blocked_domains": frozenset(),
        "bot": False,
        "locale_region": None,
        "contact_country": None,
        "terms": TERMS,
    } | overrides
    verdict = judge(**arguments)  # type: ignore[arg-type]
    return verdict.score, verdict.reasons


@pytest.mark.parametrize("message", samples("spam_samples.txt"))
def test_spam_samples_reach_the_quarantine_threshold(message: str) -> None:
    points, reasons = score(message)
    assert points >= 60, reasons


@pytest.mark.parametrize("message", samples("ham_samples.txt"))
def test_genuine_enquiries_stay_well_below_it(message: str) -> None:
    points, reasons = score(message)
    assert points < 30, reasons


def test_each_signal_has_a_reason() -> None:
    points, reasons = score(
        "see www.a.example",
        names="Xkcdqwrtz Bvnmxz",
        intake_reasons=["honeypot field '_gotcha' was filled"],
        disposable_email=True,
        email_domain="mailinator.com",
        bot=True,
        locale_region="RU",
        contact_country="US",
    )
    assert points == 100  # capped
    assert reasons == [
        "honeypot field '_gotcha' was filled",
        "a link in the free text",
        "text looks like keyboard mash",
        "disposable email domain mailinator.com",
        "the browser says it is a bot",
        "browser locale RU but contact in US",
    ]


def test_blocked_domains_and_custom_terms() -> None:
    blocked, _ = score(
        "hello", email_domain="spam.example", blocked_domains=frozenset({"spam.example"})
    )
    custom, reasons = score("Selling solar panels cheap", terms=("solar panels",))
    assert blocked == 100
    assert custom == 40
    assert reasons == ["known spam phrases: solar panels"]


def test_links_and_gibberish() -> None:
    assert links_in("see https://a.example and www.b.example and c.com/x") == 3
    assert links_in("we are acme-logistics.com") == 0
    assert looks_gibberish("asdkjhqwe xcvbnmrtz")
    assert not looks_gibberish("Please call me tomorrow")
    assert not looks_gibberish("Straße Müller Schmidt")
    assert not looks_gibberish("Рыбников Алексей")


@given(st.text(), st.text())
def test_judging_never_raises(message: str, names: str) -> None:
    points, _ = score(message, names=names)
    assert 0 <= points <= 100
