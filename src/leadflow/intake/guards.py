"""What intake refuses, and what it quietly quarantines (pure functions).

Only a structurally unusable submission is refused: one that gives no way to
contact the person. Everything else is stored; bots are answered like people
and their leads kept in quarantine, so they learn nothing.
"""

from __future__ import annotations

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from leadflow.config import Form
from leadflow.intake.mapping import FieldError, Mapped


def email_usable(email: str) -> bool:
    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def phone_usable(phone: str, region: str | None) -> bool:
    try:
        number = phonenumbers.parse(phone, region)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_possible_number(number)


def contact_errors(mapped: Mapped, form: Form) -> list[FieldError]:
    """Errors when the submission has neither a usable email nor a usable phone."""
    email = mapped.fields.get("email")
    phone = mapped.fields.get("phone")
    region = form.default_region
    if (email and email_usable(email)) or (phone and phone_usable(phone, region)):
        return []
    errors = []
    if email:
        errors.append(FieldError("email", "is not a valid email address"))
    if phone:
        errors.append(FieldError("phone", "is not a possible phone number"))
    if not errors:
        errors.append(FieldError("email", "an email address or a phone number is required"))
    return errors


def required_errors(mapped: Mapped, form: Form) -> list[FieldError]:
    errors = []
    for name in form.required:
        present = mapped.fields.get(name) or (
            name == "full_name"
            and (mapped.fields.get("first_name") or mapped.fields.get("last_name"))
        )
        if not present:
            errors.append(FieldError(name, "is required"))
    for item in form.consent:
        if item.required and not mapped.consents.get(item.input_name):
            errors.append(FieldError(item.input_name, f"consent to {item.purpose} is required"))
    return errors


def spam_reasons(mapped: Mapped, form: Form, now_ms: int) -> list[str]:
    reasons = []
    if mapped.honeypot:
        reasons.append(f"honeypot field {form.honeypot_field!r} was filled")
    seconds = fill_seconds(mapped, now_ms)
    if seconds is not None and seconds < form.min_fill_seconds:
        reasons.append(f"form filled in {seconds:.1f}s, faster than {form.min_fill_seconds:g}s")
    return reasons


def fill_seconds(mapped: Mapped, now_ms: int) -> float | None:
    """How long the person took, when it can be known.

    The snippet measures it with the browser's own timer (``_lf_fill_ms``), so a
    wrong clock on the visitor's computer does not matter. The hosted form sends
    the server's render time; a time in the future means clocks disagree (or
    tampering), which proves nothing about the person: unknown, never spam.
    """
    if mapped.fill_ms is not None:
        return mapped.fill_ms / 1000
    if mapped.rendered_at_ms is not None and mapped.rendered_at_ms <= now_ms:
        return (now_ms - mapped.rendered_at_ms) / 1000
    return None
