"""fields.py is the one list of lead fields: the table and the API follow it."""

from __future__ import annotations

from sqlalchemy import String, Text

from leadflow.fields import LEAD_FIELDS, SOURCE_FIELDS, STORED_FIELDS, Kind
from leadflow.leads.schemas import LeadOut, SourceOut
from leadflow.models import Lead


def test_every_stored_field_is_a_column_as_long_as_the_field_may_be() -> None:
    columns = Lead.__table__.columns
    for name in STORED_FIELDS:
        kind = columns[name].type
        if LEAD_FIELDS[name].kind is Kind.LONG_TEXT:
            assert isinstance(kind, Text), name
        else:
            assert isinstance(kind, String), name
            assert kind.length == LEAD_FIELDS[name].max_length, name
    assert "full_name" not in columns  # split into first and last name on intake


def test_the_api_shows_every_field_a_lead_stores() -> None:
    shown = set(LeadOut.model_fields) | set(SourceOut.model_fields)
    assert set(STORED_FIELDS) <= shown
    assert set(SourceOut.model_fields) == {*SOURCE_FIELDS, "first_touch", "last_touch"}
