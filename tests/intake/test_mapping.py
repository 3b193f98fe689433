"""Reading a form's inputs into lead fields (pure)."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from leadflow.config import Form
from leadflow.intake.mapping import map_payload, split_full_name, truthy

FORM = Form.model_validate(
    {
        "fields": {"your-name": "full_name", "Org": "company", "tel": "phone"},
        "consent": [{"purpose": "news", "text": "News please", "policy_version": "1"}],
    }
)


def test_mapped_and_direct_names_fill_lead_fields_and_the_rest_is_kept() -> None:
    mapped = map_payload(
        FORM,
        {
            "your-name": "  Ana Weber ",
            "org": "Acme",
            "EMAIL": "a@acme.de",
            "tel": 491701234567,
            "shoe": "42",
        },
    )

    assert mapped.fields == {
        "first_name": "Ana",
        "last_name": "Weber",
        "company": "Acme",
        "email": "a@acme.de",
        "phone": "491701234567",
    }
    assert mapped.extra == {"shoe": "42"}
    assert mapped.errors == []


def test_explicit_first_and_last_name_win_over_full_name() -> None:
    mapped = map_payload(FORM, {"your-name": "A B", "first_name": "Ana", "last_name": "Weber"})

    assert (mapped.fields["first_name"], mapped.fields["last_name"]) == ("Ana", "Weber")


def test_checkbox_groups_become_one_value_and_objects_are_errors() -> None:
    mapped = map_payload(FORM, {"product_interest": ["CRM", "Routing"], "company": {"a": 1}})

    assert mapped.fields["product_interest"] == "CRM, Routing"
    assert [(e.field, e.reason) for e in mapped.errors] == [
        ("company", "must be a single value, not an object")
    ]


def test_control_fields_are_read_and_bad_ones_ignored_with_a_note() -> None:
    mapped = map_payload(
        FORM,
        {
            "consent_news": "on",
            "_gotcha": "",
            "_lf_rendered_at": "1790000000000",
            "_lf_tz_offset": "9999",
            "_lf_last_touch": json.dumps({"utm_source": "ads", "evil": "x"}),
            "_next": "https://www.example.com/x",
        },
    )

    assert mapped.consents == {"consent_news": True}
    assert mapped.honeypot == ""
    assert mapped.rendered_at_ms == 1_790_000_000_000
    assert mapped.tz_offset_minutes is None
    assert any("_lf_tz_offset" in note for note in mapped.ignored)
    assert mapped.last_touch == {"utm_source": "ads"}
    assert mapped.first_touch == {"utm_source": "ads"}  # no earlier touch known
    assert mapped.fields["utm_source"] == "ads"
    assert mapped.next_url == "https://www.example.com/x"


def test_utm_parameters_of_the_landing_page_are_used_when_not_posted() -> None:
    mapped = map_payload(
        FORM, {"landing_url": "https://x.example/p?utm_source=bing&utm_term=crm", "utm_term": "own"}
    )

    assert mapped.fields["utm_source"] == "bing"
    assert mapped.fields["utm_term"] == "own"


def test_split_full_name_keeps_particles_with_the_last_name() -> None:
    assert split_full_name("Jan van der Berg") == ("Jan", "van der Berg")
    assert split_full_name("  Madonna ") == ("Madonna", None)


@given(st.text(min_size=1).filter(lambda s: s.split()))
def test_split_full_name_loses_no_word(name: str) -> None:
    first, last = split_full_name(name)
    assert " ".join(filter(None, [first, last])).split() == name.split()


def test_truthy_reads_checkbox_values() -> None:
    assert all(truthy(v) for v in ["on", "Yes", "true", "1", True, 1, ["", "on"]])
    assert not any(truthy(v) for v in ["", "off", "no", "0", False, 0, None, {}])
