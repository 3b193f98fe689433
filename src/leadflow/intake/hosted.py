"""The hosted form (``/f/{form_key}``), rendered from the form's config."""

from __future__ import annotations

import time
from dataclasses import dataclass

from leadflow.config import Form
from leadflow.fields import LEAD_FIELDS, NEXT_URL, RENDERED_AT, Kind
from leadflow.rendering import render

DEFAULT_INPUTS = ("full_name", "email", "company", "phone", "message")
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


def render_thanks(form_key: str, form: Form) -> str:
    return render("thanks.html", form_key=form_key, form=form)
