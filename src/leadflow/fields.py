"""The lead fields a submission can fill: their names are the API.

Each form maps its own input names onto these (``forms.<key>.fields`` in the
config); a field with one of these names is taken as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    TEXT = "text"
    LONG_TEXT = "long_text"
    EMAIL = "email"
    PHONE = "phone"
    URL = "url"


@dataclass(frozen=True, slots=True)
class LeadField:
    name: str
    kind: Kind = Kind.TEXT
    max_length: int = 255
    label: str = ""
    autocomplete: str = "off"  # the HTML autocomplete token a browser fills the input with
    stored: bool = True  # a column of the lead; False for an input intake turns into others


_FIELDS = [
    # identity
    LeadField("email", Kind.EMAIL, 320, "Work email", "email"),
    LeadField("phone", Kind.PHONE, 64, "Phone", "tel"),
    LeadField("first_name", label="First name", autocomplete="given-name"),
    LeadField("last_name", label="Last name", autocomplete="family-name"),
    # split into first/last name on intake
    LeadField("full_name", label="Name", autocomplete="name", stored=False),
    LeadField("company", label="Company", autocomplete="organization"),
    LeadField("title", label="Job title", autocomplete="organization-title"),
    LeadField("country", Kind.TEXT, 64, "Country", "country-name"),
    LeadField("website", Kind.URL, 2048, "Website", "url"),
    LeadField("street", label="Street address"),
    LeadField("city", label="City"),
    LeadField("postcode", max_length=32, label="Postcode"),
    # context
    LeadField("product_interest", label="Product of interest"),
    LeadField("budget_range", label="Budget"),
    LeadField("deadline", label="Timeline"),
    LeadField("message", Kind.LONG_TEXT, 10_000, "Message"),
    # source
    LeadField("utm_source"),
    LeadField("utm_medium"),
    LeadField("utm_campaign"),
    LeadField("utm_term"),
    LeadField("utm_content"),
    LeadField("gclid", max_length=512),
    LeadField("fbclid", max_length=512),
    LeadField("landing_url", Kind.URL, 2048),
    LeadField("referrer", Kind.URL, 2048),
]

LEAD_FIELDS: dict[str, LeadField] = {f.name: f for f in _FIELDS}
STORED_FIELDS: tuple[str, ...] = tuple(f.name for f in _FIELDS if f.stored)  # lead columns

SOURCE_FIELDS = (
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "gclid",
    "fbclid",
    "landing_url",
    "referrer",
)
# The source fields a landing page's query string carries (``?utm_source=...&gclid=...``).
URL_SOURCE_FIELDS = tuple(f for f in SOURCE_FIELDS if f not in ("landing_url", "referrer"))

# Inputs every form understands, set by the hosted form and the JS snippet.
HONEYPOT_DEFAULT = "_gotcha"
RENDERED_AT = "_lf_rendered_at"  # epoch ms when the form was shown, by the server's clock
FILL_MS = "_lf_fill_ms"  # ms between showing and sending the form, by the browser's own timer
TZ_OFFSET = "_lf_tz_offset"  # minutes east of UTC, as the browser reports it
FIRST_TOUCH = "_lf_first_touch"  # JSON: the visit that first brought the person
LAST_TOUCH = "_lf_last_touch"  # JSON: the visit that brought them this time
NEXT_URL = "_next"  # where a plain HTML post is redirected after success
ANONYMOUS_ID = "_lf_anonymous_id"  # the browser's id in POST /v1/events, kept in extra
CONTROL_FIELDS = frozenset({RENDERED_AT, FILL_MS, TZ_OFFSET, FIRST_TOUCH, LAST_TOUCH, NEXT_URL})
