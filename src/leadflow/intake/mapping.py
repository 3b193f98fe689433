"""Turning a form's own input names into lead fields (pure: values in, values out)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from leadflow.config import Form
from leadflow.fields import (
    FILL_MS,
    FIRST_TOUCH,
    LAST_TOUCH,
    LEAD_FIELDS,
    NEXT_URL,
    RENDERED_AT,
    SOURCE_FIELDS,
    TZ_OFFSET,
    URL_SOURCE_FIELDS,
)

TRUE_WORDS = frozenset({"on", "true", "1", "yes", "y", "checked", "accepted", "agree"})
TOUCH_KEYS = frozenset((*SOURCE_FIELDS, "at"))


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason}


@dataclass(slots=True)
class Mapped:
    """A submission read through its form's mapping."""

    fields: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    consents: dict[str, bool] = field(default_factory=dict)
    honeypot: str | None = None
    rendered_at_ms: int | None = None
    fill_ms: int | None = None
    tz_offset_minutes: int | None = None
    first_touch: dict[str, str] | None = None
    last_touch: dict[str, str] | None = None
    next_url: str | None = None
    ignored: list[str] = field(default_factory=list)
    errors: list[FieldError] = field(default_factory=list)


def truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        return value.strip().lower() in TRUE_WORDS
    if isinstance(value, list):
        return any(truthy(v) for v in value)
    return False


def _scalar_text(value: Any) -> str | None:
    """Text of a value meant for a lead field; None when it is not a plain value."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value).strip()
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        # a group of checkboxes ("products of interest") reads as one list
        return ", ".join(str(v).strip() for v in value if str(v).strip())
    return None


def storable(text: str) -> bool:
    """Text PostgreSQL can store: no NUL, no lone surrogate."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _int(value: Any, low: int, high: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    if not math.isfinite(number) or not low <= number <= high:
        return None
    return int(number)


def _touch(value: Any) -> dict[str, str] | None:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):  # not JSON, or JSON no form would send
            return None
    if not isinstance(value, dict):
        return None
    touch = {}
    for key, item in value.items():
        if key in TOUCH_KEYS and isinstance(item, str | int | float) and str(item).strip():
            text = str(item).strip()
            if storable(text):
                limit = LEAD_FIELDS[key].max_length if key in LEAD_FIELDS else 64
                touch[key] = text[:limit]
    return touch or None


def split_full_name(full_name: str) -> tuple[str, str | None]:
    """ "Ana Weber" -> ("Ana", "Weber"); "Jan van der Berg" -> ("Jan", "van der Berg")."""
    first, _, last = " ".join(full_name.split()).partition(" ")
    return first, last or None


def utm_from_url(url: str) -> dict[str, str]:
    try:
        query = urlsplit(url).query
    except ValueError:
        return {}
    return {k: v for k, v in parse_qsl(query) if k in URL_SOURCE_FIELDS and v and storable(v)}


def _target(form: Form, name: str) -> str | None:
    if name in form.fields:
        return form.fields[name]
    lowered = name.strip().lower()
    for source, target in form.fields.items():
        if source.lower() == lowered:
            return target
    return lowered if lowered in LEAD_FIELDS else None


def map_payload(form: Form, payload: dict[str, Any]) -> Mapped:
    mapped = Mapped()
    consent_inputs = {c.input_name: c for c in form.consent}
    for name, value in payload.items():
        if name == form.honeypot_field:
            mapped.honeypot = _scalar_text(value) or ""
        elif name in consent_inputs:
            mapped.consents[name] = truthy(value)
        elif name == RENDERED_AT:
            mapped.rendered_at_ms = _int(value, 0, 10**14)
            if mapped.rendered_at_ms is None:
                mapped.ignored.append(f"{RENDERED_AT}: not a time in epoch milliseconds")
        elif name == FILL_MS:
            mapped.fill_ms = _int(value, 0, 10**10)
            if mapped.fill_ms is None:
                mapped.ignored.append(f"{FILL_MS}: not a duration in milliseconds")
        elif name == TZ_OFFSET:
            mapped.tz_offset_minutes = _int(value, -840, 840)
            if mapped.tz_offset_minutes is None:
                mapped.ignored.append(f"{TZ_OFFSET}: not an offset in minutes")
        elif name in (FIRST_TOUCH, LAST_TOUCH):
            touch = _touch(value)
            if touch is None:
                mapped.ignored.append(f"{name}: not a JSON object of source fields")
            elif name == FIRST_TOUCH:
                mapped.first_touch = touch
            else:
                mapped.last_touch = touch
        elif name == NEXT_URL:
            mapped.next_url = _scalar_text(value) or None
        elif (target := _target(form, name)) is not None:
            _set_field(mapped, name, target, value)
        else:
            mapped.extra[name] = value
    _complete(mapped)
    return mapped


def _set_field(mapped: Mapped, name: str, target: str, value: Any) -> None:
    text = _scalar_text(value)
    if text is None:
        mapped.errors.append(FieldError(name, "must be a single value, not an object"))
        return
    limit = LEAD_FIELDS[target].max_length
    if len(text) > limit and target in SOURCE_FIELDS:
        # Attribution is never a reason to refuse a person: keep what fits.
        mapped.ignored.append(f"{name}: cut to {limit} characters")
        text = text[:limit]
    elif len(text) > limit:
        mapped.errors.append(FieldError(name, f"is {len(text)} characters long; at most {limit}"))
        return
    if text and not mapped.fields.get(target):
        mapped.fields[target] = text


def _complete(mapped: Mapped) -> None:
    fields = mapped.fields
    full_name = fields.pop("full_name", None)
    if full_name and not fields.get("first_name") and not fields.get("last_name"):
        first, last = split_full_name(full_name)
        fields["first_name"] = first
        if last:
            fields["last_name"] = last
    # UTM parameters on the landing page count when the form did not post them.
    if landing := fields.get("landing_url"):
        for key, value in utm_from_url(landing).items():
            fields.setdefault(key, value[: LEAD_FIELDS[key].max_length])
    own_touch = {k: fields[k] for k in SOURCE_FIELDS if fields.get(k)}
    if mapped.last_touch is None and own_touch:
        mapped.last_touch = own_touch
    if mapped.first_touch is None and mapped.last_touch is not None:
        mapped.first_touch = mapped.last_touch
    # The lead's source columns are its last touch, unless the form said otherwise.
    for key, value in (mapped.last_touch or {}).items():
        if key in LEAD_FIELDS:
            fields.setdefault(key, value)
