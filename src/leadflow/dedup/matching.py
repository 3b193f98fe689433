"""Who is the same person: normalised values, blocking keys and a match score (pure).

One matcher serves the ``lead.dedup`` step (a new lead against the leads in
the database) and ``leadflow dedup`` (every row of a CSV file against the
others), so a file and the live pipeline decide alike.

The score is a Fellegi-Sunter match weight, the model behind Splink and most
record-linkage tools: each field compares into a level (exact, close, far ...)
and each level weighs ``log2(m / u)`` bits, where ``m`` is how often two
records of the same person land on that level and ``u`` how often two
different people do. Agreeing on a rare value says more than agreeing on a
common one; a missing value says nothing. The weights of a pair add up, and
with the prior odds of a match become a probability. A person reads the
reason: which fields agreed, on which level, for how many bits.

Candidates come from blocking keys (the same email, the same phone, the same
sounding names, a name with the same birth date ...), so a lookup reads a few
index entries instead of every lead: ``lead_match_keys`` in PostgreSQL, a dict
in a batch.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import jellyfish
from rapidfuzz import fuzz
from rapidfuzz.distance import JaroWinkler, Levenshtein

from leadflow.validation.lists import ROLE_LOCAL_PARTS


class Kind(StrEnum):
    """How a field is normalised and compared (``--field COLUMN:KIND``)."""

    NAME = "name"
    TEXT = "text"
    EXACT = "exact"
    DATE = "date"
    ADDRESS = "address"
    POSTCODE = "postcode"
    PHONE = "phone"
    EMAIL = "email"
    COMPANY = "company"


# The lead fields the matcher reads, and how.
LEAD_MATCH_FIELDS: dict[str, Kind] = {
    "first_name": Kind.NAME,
    "last_name": Kind.NAME,
    "email": Kind.EMAIL,
    "phone": Kind.PHONE,
    "company": Kind.COMPANY,
    "domain": Kind.EXACT,
    "street": Kind.ADDRESS,
    "city": Kind.TEXT,
    "postcode": Kind.POSTCODE,
    "country": Kind.EXACT,
}

# Levels per kind, from "disagrees" (index 0) to "identical" (last), and the
# share of true matches on each (m), then of random pairs (u). The defaults
# are what a lead database looks like; a batch re-estimates u from its own
# rows and m by expectation-maximisation (see leadflow.analysis.dedup).
LEVELS: dict[Kind, tuple[str, ...]] = {
    Kind.NAME: ("different", "similar", "very similar", "identical"),
    Kind.TEXT: ("different", "similar", "identical"),
    Kind.EXACT: ("different", "identical"),
    Kind.DATE: ("different", "same year", "one typo", "identical"),
    Kind.ADDRESS: ("different", "similar", "very similar", "identical"),
    Kind.POSTCODE: ("different", "one typo", "identical"),
    Kind.PHONE: ("different", "same local number", "identical"),
    Kind.EMAIL: ("different", "similar", "same mailbox name", "identical"),
    Kind.COMPANY: ("different", "similar", "very similar", "identical"),
}

DEFAULT_M: dict[Kind, tuple[float, ...]] = {
    Kind.NAME: (0.04, 0.08, 0.13, 0.75),
    Kind.TEXT: (0.12, 0.08, 0.80),
    Kind.EXACT: (0.08, 0.92),
    Kind.DATE: (0.05, 0.05, 0.15, 0.75),
    Kind.ADDRESS: (0.08, 0.07, 0.10, 0.75),
    Kind.POSTCODE: (0.08, 0.07, 0.85),
    Kind.PHONE: (0.25, 0.05, 0.70),
    Kind.EMAIL: (0.20, 0.10, 0.05, 0.65),
    Kind.COMPANY: (0.15, 0.10, 0.10, 0.65),
}

DEFAULT_U: dict[Kind, tuple[float, ...]] = {
    Kind.NAME: (0.97, 0.02, 0.006, 0.004),
    Kind.TEXT: (0.95, 0.02, 0.03),
    Kind.EXACT: (0.9, 0.1),
    Kind.DATE: (0.985, 0.015, 0.0002, 0.00003),
    Kind.ADDRESS: (0.999, 0.0008, 0.0001, 0.00001),
    Kind.POSTCODE: (0.99, 0.008, 0.002),
    Kind.PHONE: (0.999999, 0.0000005, 0.0000005),
    Kind.EMAIL: (0.99999, 0.00001, 0.0000005, 0.0000001),
    Kind.COMPANY: (0.998, 0.001, 0.0005, 0.0005),
}

_LEGAL_SUFFIXES = frozenset(
    (
        *("inc", "incorporated", "corp", "corporation", "co", "company", "ltd", "limited"),
        *("llc", "llp", "plc", "gmbh", "ag", "sa", "sas", "sarl", "bv", "nv", "srl", "spa"),
        *("oy", "ab", "as", "aps", "kg", "pty", "pvt", "the"),
    )
)
_STREET_WORDS = {
    "street": "st",
    "road": "rd",
    "avenue": "ave",
    "av": "ave",
    "boulevard": "blvd",
    "drive": "dr",
    "lane": "ln",
    "place": "pl",
    "court": "ct",
    "crescent": "cres",
    "terrace": "tce",
    "highway": "hwy",
    "circuit": "cct",
    "parade": "pde",
    "close": "cl",
    "square": "sq",
    "strasse": "str",
    "straße": "str",
}
_NON_WORD = re.compile(r"[^\w\s]")
_SPACES = re.compile(r"\s+")
_NOT_DIGIT = re.compile(r"\D")
_DATE_PARTS = re.compile(r"(\d{1,4})")


def _plain(value: str) -> str:
    """Lower case, no accents, no punctuation, single spaces."""
    decomposed = unicodedata.normalize("NFKD", value.casefold())
    text = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _SPACES.sub(" ", _NON_WORD.sub(" ", text)).strip()


def _date(value: str) -> str:
    """``YYYYMMDD`` from ISO, ``DD/MM/YYYY`` or ``YYYYMMDD``; the digits otherwise."""
    parts: list[str] = _DATE_PARTS.findall(value)
    if len(parts) == 1 and len(parts[0]) == 8:
        return parts[0]
    if len(parts) >= 3:
        if len(parts[0]) == 4:
            year, month, day = parts[0], parts[1], parts[2]
        else:
            day, month, year = parts[0], parts[1], parts[2]
        if len(year) == 4:
            return f"{year}{int(month):02d}{int(day):02d}"
    return _NOT_DIGIT.sub("", value)


def normalise(kind: Kind, value: object) -> str:
    """The form of ``value`` that comparisons and keys read; empty when there is nothing."""
    if value is None:
        return ""
    text = str(value).strip()
    if not text:
        return ""
    if kind is Kind.EMAIL:
        return text.casefold()
    if kind is Kind.PHONE:
        return _NOT_DIGIT.sub("", text)
    if kind is Kind.DATE:
        return _date(text)
    if kind is Kind.POSTCODE:
        return _plain(text).replace(" ", "").upper()
    plain = _plain(text)
    if kind is Kind.COMPANY:
        words = [w for w in plain.split() if w not in _LEGAL_SUFFIXES]
        return " ".join(words) or plain
    if kind is Kind.ADDRESS:
        return " ".join(_STREET_WORDS.get(w, w) for w in plain.split())
    return plain


def phonetic(value: str) -> str:
    """A sound key of a normalised name (metaphone): Allen and Alan agree."""
    return str(jellyfish.metaphone(value.replace(" ", ""))) if value else ""


def _jw(a: str, b: str) -> float:
    return float(JaroWinkler.normalized_similarity(a, b))


def compare(kind: Kind, a: str, b: str) -> int | None:
    """The level two normalised values agree on (see LEVELS), or None when one is missing."""
    if not a or not b:
        return None
    top = len(LEVELS[kind]) - 1
    if a == b:
        return top
    if kind is Kind.EXACT:
        return 0
    if kind is Kind.NAME:
        similarity = _jw(a, b)
        if similarity >= 0.92:
            return 2
        if similarity >= 0.80 or phonetic(a) == phonetic(b):
            return 1
        return 0
    if kind is Kind.TEXT:
        return 1 if _jw(a, b) >= 0.88 else 0
    if kind is Kind.DATE:
        if len(a) == 8 and len(b) == 8 and (a[:4], a[4:6], a[6:]) == (b[:4], b[6:], b[4:6]):
            return 2  # day and month swapped
        if Levenshtein.distance(a, b) <= 1:
            return 2
        return 1 if a[:4] == b[:4] else 0
    if kind is Kind.ADDRESS:
        ratio = fuzz.token_set_ratio(a, b)
        if ratio >= 92:
            return 2
        return 1 if ratio >= 75 else 0
    if kind is Kind.POSTCODE:
        return 1 if Levenshtein.distance(a, b) <= 1 else 0
    if kind is Kind.PHONE:
        return 1 if len(a) >= 8 and len(b) >= 8 and a[-8:] == b[-8:] else 0
    if kind is Kind.EMAIL:
        local_a, _, _ = a.partition("@")
        local_b, _, _ = b.partition("@")
        if local_a == local_b:
            return 2
        return 1 if _jw(a, b) >= 0.88 else 0
    # company
    if fuzz.token_sort_ratio(a, b) >= 92:
        return 2
    return 1 if fuzz.token_set_ratio(a, b) >= 85 else 0


@dataclass(frozen=True, slots=True)
class Field:
    """A compared column: a lead field or a ``--field`` of a batch."""

    name: str
    kind: Kind


Record = Mapping[str, str]  # field name -> normalised value


def prepare(fields: Sequence[Field], values: Mapping[str, object]) -> dict[str, str]:
    """The normalised record of raw ``values``; fields absent from ``values`` are empty."""
    return {f.name: normalise(f.kind, values.get(f.name)) for f in fields}


def blocking_keys(fields: Sequence[Field], record: Record) -> set[str]:
    """The keys under which a record's possible duplicates are looked up.

    Each key alone is specific enough to keep the candidate lists short and
    together they forgive one typo anywhere: a misspelt name still shares the
    email or the birth date and the other name, and so on.
    """
    keys: set[str] = set()
    first = phonetic(record.get("first_name", ""))
    last = phonetic(record.get("last_name", ""))
    anchors: list[tuple[str, str]] = []
    for f in fields:
        value = record.get(f.name, "")
        if not value:
            continue
        if f.kind is Kind.EMAIL:
            keys.add(f"e:{value}")
            local = value.partition("@")[0]
            if len(local) >= 5 and local.split("+")[0] not in ROLE_LOCAL_PARTS:
                # The same mailbox name at another domain (not info@, office@: shared by all).
                keys.add(f"m:{local}")
        elif f.kind is Kind.PHONE and len(value) >= 8:
            keys.add(f"p:{value[-8:]}")  # national or international, the same number
        elif f.kind in (Kind.DATE, Kind.POSTCODE, Kind.COMPANY, Kind.TEXT):
            anchors.append((f.name, value))
            if f.kind is Kind.DATE:
                keys.add(f"d:{f.name}:{value}")  # a birth date is nearly a person on its own
        elif f.kind is Kind.EXACT and f.name == "domain":
            anchors.append((f.name, value))
    if first and last:
        keys.add("n:" + ":".join(sorted((first, last))))  # forgives swapped names
    for name, value in anchors:
        for sound in {first, last} - {""}:  # either name: forgives swapped names too
            keys.add(f"a:{name}:{sound}:{value}")
    return keys


@dataclass(frozen=True, slots=True)
class Model:
    """m and u per field and level, and the prior odds that a candidate pair matches."""

    fields: tuple[Field, ...]
    m: dict[str, tuple[float, ...]]
    u: dict[str, tuple[float, ...]]
    prior: float = 0.05

    @classmethod
    def default(cls, fields: Sequence[Field], prior: float = 0.05) -> Model:
        return cls(
            tuple(fields),
            {f.name: DEFAULT_M[f.kind] for f in fields},
            {f.name: DEFAULT_U[f.kind] for f in fields},
            prior,
        )

    def weight(self, name: str, level: int) -> float:
        return math.log2(self.m[name][level] / self.u[name][level])


def levels(fields: Sequence[Field], a: Record, b: Record) -> tuple[int | None, ...]:
    """The comparison vector of two records: one level (or None) per field."""
    vector = [compare(f.kind, a.get(f.name, ""), b.get(f.name, "")) for f in fields]
    names = [f.name for f in fields]
    if "first_name" in names and "last_name" in names:
        first, last = names.index("first_name"), names.index("last_name")
        crossed = (
            compare(Kind.NAME, a.get("first_name", ""), b.get("last_name", "")),
            compare(Kind.NAME, a.get("last_name", ""), b.get("first_name", "")),
        )
        direct = (vector[first] or 0) + (vector[last] or 0)
        if None not in crossed and sum(c or 0 for c in crossed) > direct:
            vector[first], vector[last] = crossed  # first and last name swapped
    return tuple(vector)


@dataclass(frozen=True, slots=True)
class Match:
    """The verdict on a pair, with its reason."""

    probability: float
    weight: float
    agreements: dict[str, str] = field(default_factory=dict)  # field -> level name
    bits: dict[str, float] = field(default_factory=dict)  # field -> weight

    def reason(self) -> dict[str, object]:
        return {
            "probability": round(self.probability, 4),
            "match_weight": round(self.weight, 2),
            "fields": {
                name: {"level": level, "weight": round(self.bits[name], 2)}
                for name, level in self.agreements.items()
            },
        }

    def summary(self) -> str:
        """``same email, similar last name`` — the agreeing fields a person reads first."""
        parts = [
            f"{level} {name.replace('_', ' ')}"
            for name, level in self.agreements.items()
            if self.bits[name] > 0
        ]
        return ", ".join(parts) or "no agreeing field"


def score_vector(model: Model, vector: Sequence[int | None]) -> Match:
    total = math.log2(model.prior / (1 - model.prior))
    agreements: dict[str, str] = {}
    bits: dict[str, float] = {}
    for f, level in zip(model.fields, vector, strict=True):
        if level is None:
            continue
        w = model.weight(f.name, level)
        total += w
        agreements[f.name] = LEVELS[f.kind][level]
        bits[f.name] = w
    probability = 1 / (1 + 2 ** (-total)) if total > -1000 else 0.0
    return Match(probability, total, agreements, bits)


def score(model: Model, a: Record, b: Record) -> Match:
    return score_vector(model, levels(model.fields, a, b))


def matched_keys(a: Iterable[str], b: Iterable[str]) -> list[str]:
    """The blocking keys two records share, as a person reads them (``email``, ``name``...)."""
    labels = {"e": "email", "m": "mailbox name", "p": "phone", "n": "name", "d": "date"}
    shared = set(a) & set(b)
    out = set()
    for key in shared:
        prefix, _, rest = key.partition(":")
        out.add(labels.get(prefix) or f"name and {rest.split(':', 1)[0]}")
    return sorted(out)
