"""What intake refuses and what it quarantines (pure)."""

from __future__ import annotations

from leadflow.config import Form
from leadflow.intake.guards import contact_errors, required_errors, spam_reasons
from leadflow.intake.mapping import map_payload

FORM = Form.model_validate(
    {
        "default_region": "US",
        "required": ["email", "full_name"],
        "min_fill_seconds": 3,
        "consent": [
            {"purpose": "terms", "text": "I accept", "policy_version": "1", "required": True}
        ],
    }
)


def test_contact_needs_a_usable_email_or_phone() -> None:
    assert contact_errors(map_payload(FORM, {"email": "ana@acme.com"}), FORM) == []
    assert contact_errors(map_payload(FORM, {"phone": "(201) 555-0123"}), FORM) == []
    assert contact_errors(map_payload(FORM, {"email": "x", "phone": "(201) 555-0123"}), FORM) == []
    errors = contact_errors(map_payload(FORM, {"email": "ana@", "phone": "abc"}), FORM)
    assert [e.field for e in errors] == ["email", "phone"]
    assert [e.field for e in contact_errors(map_payload(FORM, {}), FORM)] == ["email"]


def test_required_fields_and_consent_are_enforced_server_side() -> None:
    missing = required_errors(map_payload(FORM, {"email": "a@b.co"}), FORM)
    complete = required_errors(
        map_payload(FORM, {"email": "a@b.co", "full_name": "Ana W", "consent_terms": "yes"}), FORM
    )

    assert [e.field for e in missing] == ["full_name", "consent_terms"]
    assert complete == []


def test_spam_reasons_name_the_honeypot_and_the_fill_time() -> None:
    now_ms = 1_800_000_000_000
    quick = map_payload(FORM, {"_gotcha": "buy now", "_lf_rendered_at": str(now_ms - 1000)})
    future = map_payload(FORM, {"_lf_rendered_at": str(now_ms + 60_000)})
    human = map_payload(FORM, {"_lf_rendered_at": str(now_ms - 45_000)})
    no_timing = map_payload(FORM, {})

    assert spam_reasons(quick, FORM, now_ms) == [
        "honeypot field '_gotcha' was filled",
        "form filled in 1.0s, faster than 3s",
    ]
    assert spam_reasons(future, FORM, now_ms) == []  # clocks disagree: unknown, not spam
    measured = map_payload(FORM, {"_lf_fill_ms": "900", "_lf_rendered_at": str(now_ms - 60_000)})
    assert spam_reasons(measured, FORM, now_ms) == ["form filled in 0.9s, faster than 3s"]
    assert spam_reasons(human, FORM, now_ms) == []
    assert spam_reasons(no_timing, FORM, now_ms) == []
