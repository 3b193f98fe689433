"""The hosted form (``/f/{form_key}``), rendered from the form's config."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlencode

from leadflow.config import Form
from leadflow.fields import LEAD_FIELDS, NEXT_URL, RENDERED_AT, Kind
from leadflow.rendering import render

DEFAULT_INPUTS = ("full_name", "email", "company", "phone", "message")
REFERENCE = "ref"  # the thank-you page's query parameter: the lead id, shown as a reference
_INPUT_TYPES = {Kind.EMAIL: "email", Kind.PHONE: "tel", Kind.URL: "url", Kind.TEXT: "text"}


@dataclass(frozen=True, slots=True)
class Input:
    name: str
    label: str
    type: str  # an <input> type, or "textarea"
    required: bool
    autocomplete: str


def inputs_for(form: Form) -> list[Input]:
    """One input per mapped field (the form's own names), else a sensible default set."""
    pairs = list(form.fields.items()) or [(name, name) for name in DEFAULT_INPUTS]
    if "email" not in {target for _, target in pairs}:
        pairs.insert(0, ("email", "email"))
    inputs = []
    for name, target in pairs:
        spec = LEAD_FIELDS[target]
        kind = "textarea" if spec.kind is Kind.LONG_TEXT else _INPUT_TYPES[spec.kind]
        inputs.append(
            Input(
                name=name,
                label=spec.label or target.replace("_", " ").capitalize(),
                type=kind,
                required=target in form.required,
                autocomplete=spec.autocomplete,
            )
        )
    return inputs


def render_form(form_key: str, form: Form) -> str:
    return render(
        "form.html",
        form_key=form_key,
        form=form,
        inputs=inputs_for(form),
        action=f"/v1/forms/{form_key}/submissions",
        rendered_at=int(time.time() * 1000),
        rendered_at_name=RENDERED_AT,
        next_name=NEXT_URL,
    )


def render_thanks(form_key: str, form: Form, reference: uuid.UUID | None = None) -> str:
    """The thank-you page; ``reference`` (the lead's id) is shown for the visitor to quote."""
    return render("thanks.html", form_key=form_key, form=form, reference=reference)


def thanks_url(form_key: str, lead_id: uuid.UUID) -> str:
    """The hosted thank-you page that shows the visitor the lead's id as a reference."""
    return f"{thanks_path(form_key)}?{urlencode({REFERENCE: str(lead_id)})}"


def thanks_path(form_key: str) -> str:
    return f"/f/{form_key}/thanks"


def reference_of(value: str | None) -> uuid.UUID | None:
    """The reference a thank-you page was given, when it is a lead id at all."""
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None
