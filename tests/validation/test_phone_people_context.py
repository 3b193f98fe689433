"""Phones (libphonenumber's own example numbers), names, titles, devices, channels, countries."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from leadflow.validation.context import channel_of, country_code, device_of, locale_region
from leadflow.validation.people import Seniority, function_of, seniority_of, tidy_name
from leadflow.validation.phone import analyse_phone

REGIONS = ["US", "GB", "DE", "FR", "IN", "BR", "JP", "AU", "ZA", "MX", "NG", "SE", "PL", "SG", "AE"]


@pytest.mark.parametrize("region", REGIONS)
@pytest.mark.parametrize(
    ("number_type", "name"),
    [(PhoneNumberType.MOBILE, "mobile"), (PhoneNumberType.FIXED_LINE, "fixed_line")],
)
def test_example_numbers_of_many_regions_in_national_format(
    region: str, number_type: int, name: str
) -> None:
    example = phonenumbers.example_number_for_type(region, number_type)
    assert example is not None
    national = phonenumbers.format_number(example, PhoneNumberFormat.NATIONAL)

    quality = analyse_phone(national, [region])

    assert quality.valid
    assert quality.e164 == phonenumbers.format_number(example, PhoneNumberFormat.E164)
    assert quality.region == region
    assert quality.type in (name, "fixed_line_or_mobile")


def test_international_numbers_need_no_hint_and_hints_are_tried_in_order() -> None:
    assert analyse_phone("+44 20 7946 0958", [None]).region == "GB"
    # "030 901820" is a Berlin number, not a valid US one: the second hint wins.
    berlin = analyse_phone("030 901820", ["US", "DE"])
    assert (berlin.valid, berlin.e164, berlin.region) == (True, "+4930901820", "DE")


@pytest.mark.parametrize("raw", ["call me", "12", "+1 555", "+999 123456"])
def test_unusable_numbers_are_flagged_not_raised(raw: str) -> None:
    quality = analyse_phone(raw, ["US"])
    assert not quality.valid
    assert quality.e164 is None
    assert quality.error


@pytest.mark.parametrize(
    ("raw", "tidy"),
    [
        ("  JAN   VAN DER BERG ", "Jan van der Berg"),
        ("ronald mcdonald", "Ronald McDonald"),
        ("McDonald", "McDonald"),  # typed with care: left alone
        ("deGrasse Tyson", "deGrasse Tyson"),
        ("o'neil", "O'Neil"),
        ("ANA-MARIA", "Ana-Maria"),
        ("   ", None),
        ("李小龙", "李小龙"),
    ],
)
def test_names_are_cased_sensibly(raw: str, tidy: str | None) -> None:
    assert tidy_name(raw) == tidy


@pytest.mark.parametrize(
    ("title", "seniority", "function"),
    [
        ("CEO", Seniority.C_LEVEL, "executive"),
        ("Co-Founder & CTO", Seniority.C_LEVEL, "executive"),
        ("Geschäftsführer", Seniority.C_LEVEL, "executive"),
        ("VP Sales EMEA", Seniority.VP, "sales"),
        ("Vice President, Marketing", Seniority.VP, "marketing"),
        ("Head of Revenue Operations", Seniority.DIRECTOR, "revops"),
        ("Director of Engineering", Seniority.DIRECTOR, "engineering"),
        ("Marketing Manager", Seniority.MANAGER, "marketing"),
        ("Team Lead Customer Success", Seniority.MANAGER, "support"),
        ("Software Engineer", Seniority.INDIVIDUAL, "engineering"),
        ("Accountant", Seniority.INDIVIDUAL, "finance"),
        ("Astronaut", Seniority.INDIVIDUAL, "other"),
    ],
)
def test_titles_give_seniority_and_function(
    title: str, seniority: Seniority, function: str
) -> None:
    assert seniority_of(title) is seniority
    assert function_of(title) == function


def test_no_title_no_guess() -> None:
    assert seniority_of(None) is None
    assert seniority_of("  ") is None
    assert function_of("") is None


@pytest.mark.parametrize(
    ("user_agent", "kind", "os", "bot"),
    [
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
            "mobile",
            "iOS",
            False,
        ),
        (
            "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
            "tablet",
            "iOS",
            False,
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/131.0 Safari/537.36",
            "desktop",
            "Windows",
            False,
        ),
        (
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "bot",
            None,
            True,
        ),
        ("python-requests/2.32.3", "bot", None, True),
        (None, "unknown", None, False),
    ],
)
def test_user_agents(user_agent: str | None, kind: str, os: str | None, bot: bool) -> None:
    device = device_of(user_agent)
    assert (device.type, device.os, device.bot) == (kind, os, bot)


@pytest.mark.parametrize(
    ("medium", "gclid", "referrer", "channel"),
    [
        ("cpc", None, "https://www.google.com/", "paid"),
        (None, "Cj0KCQ", None, "paid"),
        ("email", None, None, "email"),
        ("newsletter", None, None, "email"),
        ("social", None, "https://t.co/x", "social"),
        (None, None, "https://www.google.de/search?q=crm", "search"),
        (None, None, "https://duckduckgo.com/", "search"),
        (None, None, "https://www.linkedin.com/feed/", "social"),
        (None, None, "https://mail.google.com/mail/u/0/", "email"),
        (None, None, None, "direct"),
        (None, None, "https://www.example.com/blog", "direct"),  # own site
        (None, None, "https://partner.example.org/review", "other"),
    ],
)
def test_channels(
    medium: str | None, gclid: str | None, referrer: str | None, channel: str
) -> None:
    assert (
        channel_of(
            utm_medium=medium,
            gclid=gclid,
            fbclid=None,
            referrer=referrer,
            landing_url="https://www.example.com/pricing",
        )
        == channel
    )


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("DE", "DE"),
        ("de", "DE"),
        ("DEU", "DE"),
        ("Germany", "DE"),
        ("United Kingdom", "GB"),
        ("UK", "GB"),
        ("Narnia", None),
        ("", None),
        (None, None),
        ("Korea", None),
    ],
)
def test_countries(value: str | None, code: str | None) -> None:
    assert country_code(value) == code


def test_locale_region() -> None:
    assert locale_region("de-AT,de;q=0.9,en;q=0.8") == "AT"
    assert locale_region("en") is None
    assert locale_region(None) is None


@given(st.text(), st.lists(st.one_of(st.none(), st.sampled_from(REGIONS)), max_size=3))
def test_phone_never_raises(raw: str, regions: list[str | None]) -> None:
    quality = analyse_phone(raw, regions)
    assert quality.valid == (quality.e164 is not None)


@given(st.text())
def test_text_helpers_never_raise(text: str) -> None:
    tidy_name(text)
    seniority_of(text)
    function_of(text)
    device_of(text)
    country_code(text)
    locale_region(text)
    channel_of(utm_medium=text, gclid=None, fbclid=None, referrer=text, landing_url=text)


def test_recasing_never_lengthens_a_name() -> None:
    assert tidy_name("ß ß") == "ß ß"  # "SS" would not fit where "ß" did
    assert len(tidy_name("ŉ" * 255) or "") == 255
