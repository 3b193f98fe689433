"""Email: syntax (vectors from the email-validator and isemail suites), match keys, kinds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leadflow.validation.email import EmailKind, analyse_email, kind_of, match_key

# Valid addresses a web form may receive (email-validator's test_syntax.py).
VALID = [
    ("Abc@example.tld", "Abc@example.tld"),
    ("Abc.123@test-example.com", "Abc.123@test-example.com"),
    (
        "user+mailbox/department=shipping@example.tld",
        "user+mailbox/department=shipping@example.tld",
    ),
    ("!#$%&'*+-/=?^_`.{|}~@example.tld", "!#$%&'*+-/=?^_`.{|}~@example.tld"),
    ("jeff@臺網中心.tw", "jeff@臺網中心.tw"),
    ("伊昭傑@郵件.商務", "伊昭傑@郵件.商務"),
    ("юзер@екзампл.ком", "юзер@екзампл.ком"),
    ("ñoñó@example.tld", "ñoñó@example.tld"),
    ("Ana.Weber@ACME.DE", "Ana.Weber@acme.de"),  # the domain is case-insensitive
]

# Invalid ones (email-validator's test_syntax.py and the isemail suite), with why.
INVALID = [
    ("my@localhost", "should have a period"),
    ("my@.leadingdot.com", "period immediately after the @-sign"),
    ("my@twodots..com", "two periods in a row"),
    ("my@trailingdot.com.", "cannot end with a period"),
    ("me@-leadingdash", "hyphen immediately after the @-sign"),
    ("me@x!", "invalid characters"),
    (".leadingdot@domain.com", "cannot start with a period"),
    ("twodots..here@domain.com", "two periods in a row"),
    ("@example.com", "something before the @-sign"),
    ("white space@test", "invalid characters before the @-sign"),
    ('bad"quotes"@example.com', "invalid characters before the @-sign"),
    ("me@" + "a" * 64 + "." + "b" * 200 + ".com", "too long"),
    ("test", "must have an @-sign"),  # isemail: ISEMAIL_ERR_NODOMAIN
    ("test@", "There must be something after the @-sign"),
    ("test@@iana.org", "part after the @-sign"),
    ("test.@iana.org", "period immediately before the @-sign"),
    ("test@iana..com", "two periods in a row"),
    ("test@[255.255.255.255]", "bracketed IP address after the @-sign is not allowed"),
]


@pytest.mark.parametrize(("raw", "normalized"), VALID)
def test_valid_addresses_are_normalized(raw: str, normalized: str) -> None:
    quality = analyse_email(raw)
    assert quality.valid
    assert quality.normalized == normalized
    assert quality.error is None


@pytest.mark.parametrize(("raw", "why"), INVALID)
def test_invalid_addresses_say_why(raw: str, why: str) -> None:
    quality = analyse_email(raw)
    assert not quality.valid
    assert quality.error is not None
    assert why.lower() in quality.error.lower()
    assert quality.key is None


def test_match_key_folds_gmail_dots_and_tags_but_the_address_is_kept() -> None:
    quality = analyse_email("Ana.Weber+webinar@googlemail.com")

    assert quality.normalized == "Ana.Weber+webinar@googlemail.com"
    assert quality.key == "anaweber@gmail.com"
    assert match_key("ana.weber+x", "acme.de") == "ana.weber@acme.de"  # dots matter elsewhere


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("ana@acme-corp.de", EmailKind.BUSINESS),
        ("ana@gmail.com", EmailKind.FREE),
        ("ana@yahoo.co.uk", EmailKind.FREE),
        ("ana@mailinator.com", EmailKind.DISPOSABLE),
        ("x@sub.mailinator.com", EmailKind.DISPOSABLE),
        ("info@acme-corp.de", EmailKind.ROLE),
        ("no-reply@acme-corp.de", EmailKind.ROLE),
        ("sales+eu@acme-corp.de", EmailKind.ROLE),
        ("info@gmail.com", EmailKind.ROLE),  # role wins over free
        ("info@mailinator.com", EmailKind.DISPOSABLE),  # disposable wins over role
        ("ana@10minutemail.com", EmailKind.DISPOSABLE),  # in both lists: disposable first
    ],
)
def test_kinds_follow_the_precedence(address: str, kind: EmailKind) -> None:
    local, domain = address.split("@")
    assert kind_of(local, domain) is kind
    assert analyse_email(address).kind is kind


@given(st.text())
def test_any_text_gives_an_answer_not_an_exception(text: str) -> None:
    quality = analyse_email(text)
    assert quality.valid == (quality.error is None)
