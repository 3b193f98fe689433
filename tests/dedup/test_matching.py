"""The matcher without a database: normalisation, keys, levels, decisions on pairs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leadflow.dedup.matching import (
    Field,
    Kind,
    Model,
    blocking_keys,
    compare,
    levels,
    normalise,
    prepare,
    score,
)

PERSON = (
    Field("first_name", Kind.NAME),
    Field("last_name", Kind.NAME),
    Field("email", Kind.EMAIL),
    Field("dob", Kind.DATE),
    Field("city", Kind.TEXT),
)


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        (Kind.NAME, "  José  MÜLLER-Lüdenscheidt ", "jose muller ludenscheidt"),
        (Kind.COMPANY, "ACME GmbH & Co. KG", "acme"),
        (Kind.ADDRESS, "12 Main Street", "12 main st"),
        (Kind.POSTCODE, "sw1a 1aa", "SW1A1AA"),
        (Kind.PHONE, "+49 (30) 901-820", "4930901820"),
        (Kind.DATE, "1971-06-24", "19710624"),
        (Kind.DATE, "24/06/1971", "19710624"),
        (Kind.DATE, "19710624", "19710624"),
        (Kind.EMAIL, " Ana@Example.COM ", "ana@example.com"),
        (Kind.TEXT, None, ""),
        (Kind.TEXT, "   ", ""),
    ],
)
def test_normalise(kind: Kind, raw: str | None, expected: str) -> None:
    assert normalise(kind, raw) == expected


@pytest.mark.parametrize(
    ("kind", "a", "b", "level"),
    [
        (Kind.NAME, "robert", "robert", "identical"),
        (Kind.NAME, "jonathan", "jonathon", "very similar"),
        (Kind.NAME, "allen", "alan", "similar"),
        (Kind.NAME, "robert", "maria", "different"),
        (Kind.DATE, "19710624", "19710524", "one typo"),
        (Kind.DATE, "19710624", "19712406", "one typo"),  # day and month swapped
        (Kind.DATE, "19710624", "19711201", "same year"),
        (Kind.EMAIL, "ana@acme.de", "ana@gmail.com", "same mailbox name"),
        (Kind.EMAIL, "robert255@smith.net", "roberta25@smith.net", "similar"),
        (Kind.POSTCODE, "4223", "4233", "one typo"),
        (Kind.PHONE, "4930901820", "030901820", "same local number"),
        (Kind.COMPANY, "acme industries", "industries acme", "very similar"),
        (Kind.EXACT, "nsw", "vic", "different"),
    ],
)
def test_compare_levels(kind: Kind, a: str, b: str, level: str) -> None:
    from leadflow.dedup.matching import LEVELS

    found = compare(kind, normalise(kind, a), normalise(kind, b))
    assert found is not None
    assert LEVELS[kind][found] == level


def test_a_missing_value_says_nothing() -> None:
    assert compare(Kind.NAME, "", "ana") is None
    model = Model.default(PERSON)
    a = prepare(PERSON, {"first_name": "Ana", "last_name": "Weber"})
    b = prepare(PERSON, {"first_name": "Ana", "last_name": "Weber", "city": "Berlin"})
    assert score(model, a, b).agreements.keys() == {"first_name", "last_name"}


def test_swapped_first_and_last_names_agree() -> None:
    a = prepare(PERSON, {"first_name": "Logan", "last_name": "Ferguson"})
    b = prepare(PERSON, {"first_name": "Ferguson", "last_name": "Logan"})
    assert levels(PERSON, a, b)[:2] == (3, 3)
    assert blocking_keys(PERSON, a) & blocking_keys(PERSON, b)


def test_keys_forgive_one_typo_anywhere() -> None:
    person = {"first_name": "Robert", "last_name": "Allen", "dob": "1971-06-24", "city": "Leeds"}
    key_sets = [blocking_keys(PERSON, prepare(PERSON, person))]
    for field, typo in [("first_name", "Rbert"), ("last_name", "Alen"), ("dob", "1971-06-25")]:
        key_sets.append(blocking_keys(PERSON, prepare(PERSON, {**person, field: typo})))
    for keys in key_sets[1:]:
        assert keys & key_sets[0], keys


def test_evidence_adds_up_and_disagreement_counts_against() -> None:
    model = Model.default(PERSON, prior=1e-4)
    base = {"first_name": "Robert", "last_name": "Allen"}
    names = prepare(PERSON, base)
    with_dob = prepare(PERSON, {**base, "dob": "1971-06-24"})
    other_dob = prepare(PERSON, {**base, "dob": "1990-01-02"})

    same_name = score(model, names, names)
    same_dob = score(model, with_dob, with_dob)
    other = score(model, with_dob, other_dob)

    assert same_dob.probability > same_name.probability > other.probability
    assert same_dob.weight == pytest.approx(same_name.weight + same_dob.bits["dob"])
    assert other.bits["dob"] < 0
    assert same_dob.summary() == "identical first name, identical last name, identical dob"
    assert same_dob.reason()["fields"]["dob"]["level"] == "identical"


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz ", min_size=0, max_size=12)


@given(names, names, names, names)
def test_comparison_is_symmetric(first_a: str, last_a: str, first_b: str, last_b: str) -> None:
    a = prepare(PERSON, {"first_name": first_a, "last_name": last_a})
    b = prepare(PERSON, {"first_name": first_b, "last_name": last_b})
    model = Model.default(PERSON)
    assert score(model, a, b).weight == pytest.approx(score(model, b, a).weight)
