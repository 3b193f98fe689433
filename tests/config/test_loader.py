"""The config file: every mistake named with its file, line and field."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from leadflow.config import ConfigError, load_config, load_config_text
from leadflow.config.durations import format_duration, parse_duration
from leadflow.config.loader import STARTER_CONFIG, builtin_text


def issues_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, "leadflow.yaml")
    return [str(issue) for issue in caught.value.issues]


def test_demo_and_starter_configs_are_valid() -> None:
    demo = load_config(None)
    starter = load_config_text(builtin_text(STARTER_CONFIG), "starter.yaml")

    assert "demo" in demo.forms
    assert {o.regions[0] for o in demo.owners} == {"EMEA", "AMER"}
    assert demo.scoring.thresholds.hot == 70
    assert demo.sla["fast-track"].first_contact == timedelta(minutes=15)
    assert "contact-sales" in starter.forms


def test_each_mistake_points_at_its_line_and_field() -> None:
    text = """\
forms:
  contact:
    fields: {email: email, org: organisation}
    default_region: XX
    allowed_origins: [https://www.example.com/page]
    consent:
      - purpose: news
        text: News please
owners:
  - {email: ana@example.com, timezone: Mars/Olympus}
sla:
  standard: {first_contact: soon}
scoring:
  tresholds: {warm: 40}
"""
    assert issues_of(text) == [
        "leadflow.yaml:3: forms.contact.fields: org: 'organisation' is not a lead field (one of: "
        "budget_range, city, company, country, deadline, email, fbclid, first_name, full_name, "
        "gclid, landing_url, last_name, message, phone, postcode, product_interest, referrer, "
        "street, title, utm_campaign, utm_content, utm_medium, utm_source, utm_term, website)",
        "leadflow.yaml:4: forms.contact.default_region: "
        "'XX' is not a country code like US, DE or GB",
        "leadflow.yaml:5: forms.contact.allowed_origins: 'https://www.example.com/page' is an URL, "
        "not an origin: drop the path",
        "leadflow.yaml:7: forms.contact.consent[0].policy_version: Field required",
        "leadflow.yaml:10: owners[0].timezone: "
        "'Mars/Olympus' is not an IANA time zone like Europe/Berlin",
        "leadflow.yaml:12: sla.standard.first_contact: "
        "'soon' is not a duration; write a number and "
        "a unit (s, m, h, d, w), e.g. '15m', '4h', '1h30m', '7d'",
        "leadflow.yaml:14: scoring.tresholds: unknown setting (check the spelling)",
    ]


def test_yaml_syntax_errors_and_wrong_shapes() -> None:
    assert issues_of("forms:\n  a: [1,\n") == [
        "leadflow.yaml:3: not valid YAML: expected the node content, but found '<stream end>'"
    ]
    assert issues_of("- a\n- b\n") == ["leadflow.yaml:1: the file must be a mapping of sections"]
    assert issues_of("intake:\n  rate_limits: {per_ip: lots}\n") == [
        "leadflow.yaml:2: intake.rate_limits.per_ip: 'lots' is not a rate limit; write it like "
        "'30/minute' or '1000 per hour'"
    ]
    assert issues_of("scoring:\n  thresholds: {warm: 80, hot: 70}\n") == [
        "leadflow.yaml:2: scoring.thresholds: the warm threshold must be below the hot threshold"
    ]


def test_an_unreadable_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.yaml: cannot be read"):
        load_config(tmp_path / "missing.yaml")


def test_an_empty_file_is_a_config_with_defaults() -> None:
    config = load_config_text("", "empty.yaml")
    assert config.forms == {}
    assert config.intake.duplicate_window == timedelta(minutes=10)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("15m", 900),
        ("4h", 14400),
        ("1h30m", 5400),
        ("7d", 604800),
        ("2w", 1209600),
        (30, 30),
    ],
)
def test_durations(text: str | int, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


def test_durations_round_trip_and_refuse_nonsense() -> None:
    assert format_duration(parse_duration("1h30m")) == "1h30m"
    assert format_duration(timedelta(days=2, minutes=5)) == "2d5m"
    for bad in ("", "15", "m15", "1.5h", "-5m", True, None):
        with pytest.raises(ValueError):  # noqa: PT011 - the message is checked above
            parse_duration(bad)
