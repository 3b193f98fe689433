"""Historical leads from a CSV file, as the scoring rules see them.

``leadflow backtest`` and ``leadflow scoring suggest`` both read a file of past
leads with a known outcome. Each row becomes the same :class:`LeadView` the
``lead.score`` stage builds for a live lead, so a rule matches a row exactly
when it would have matched the lead:

- columns feed lead fields by header (the aliases ``leadflow dedup`` and
  ``leadflow import`` know, and a few more for the fields rules read), or by
  ``--map SRC=FIELD``; ``--map SRC=answers.NAME`` renames a custom field;
- the enrichment under ``quality`` comes from the same pure functions the
  validation step calls (email kind, seniority and function of the title,
  phone validity, country, company domain, the channel when the file has
  source columns). No DNS and no database: what needs them (deliverability,
  device, spam score, behaviour) is absent, and :func:`unreachable` says which
  rules that silences;
- every column (except the label) is also ``answers.<column>``, as a form's raw
  inputs are for a live lead.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from leadflow.analysis.columns import (
    HEADER_ALIASES,
    CsvError,
    MappingError,
    map_columns,
    read_rows,
)
from leadflow.config.scoring import Condition, Scoring
from leadflow.fields import LEAD_FIELDS
from leadflow.scoring.engine import LeadView
from leadflow.validation.context import channel_of, country_code
from leadflow.validation.email import EmailKind, analyse_email
from leadflow.validation.people import function_of, seniority_of
from leadflow.validation.phone import analyse_phone
from leadflow.validation.service import company_domain

__all__ = [
    "COMPUTED_QUALITY",
    "History",
    "HistoryError",
    "HistoryPlan",
    "MappingError",
    "enrich",
    "load_history",
    "parse_label",
    "plan_history",
    "unreachable",
    "view_of",
]

ANSWERS = "answers."

# Headers for the fields rules read most, on top of the dedup aliases (`_header_key` form).
ALIASES: dict[str, str] = {
    **HEADER_ALIASES,
    "job_title": "title",
    "jobtitle": "title",
    "position": "title",
    "company_website": "website",
    "web_site": "website",
    "url": "website",
    "interest": "product_interest",
    "product": "product_interest",
    "budget": "budget_range",
    "timeline": "deadline",
    "comments": "message",
}
# Columns that, when present, let the channel be worked out as validation does.
SOURCE_COLUMNS = ("utm_medium", "gclid", "fbclid", "referrer", "landing_url")

# The quality keys a CSV row gets (the rest need a request, DNS or the spam judge).
COMPUTED_QUALITY = frozenset(
    {
        "email_valid",
        "email_kind",
        "email_domain",
        "phone_valid",
        "phone_type",
        "phone_region",
        "country",
        "company_domain",
        "seniority",
        "function",
        "channel",
        "flags",
    }
)

POSITIVE = frozenset(
    {"1", "1.0", "true", "t", "yes", "y", "won", "closed_won", "converted", "customer", "positive"}
)
NEGATIVE = frozenset(
    {
        "0",
        "0.0",
        "false",
        "f",
        "no",
        "n",
        "lost",
        "closed_lost",
        "not_converted",
        "unconverted",
        "negative",
    }
)


class HistoryError(ValueError):
    """The file cannot be read as historical leads; the message names file, line and column."""


@dataclass(frozen=True, slots=True)
class HistoryPlan:
    """Which column feeds what: lead fields, custom fields (answers) and the label."""

    fields: dict[str, str]  # lead field -> column
    answers: dict[str, str]  # answer name -> column
    label: str

    @property
    def has_source(self) -> bool:
        """The file says where leads came from, so ``quality.channel`` means something."""
        return any(name in self.fields for name in SOURCE_COLUMNS)

    def custom(self) -> dict[str, str]:
        """The answers whose column feeds no lead field: the file's own custom fields."""
        used = set(self.fields.values())
        return {name: col for name, col in self.answers.items() if col not in used}


def plan_history(
    headers: Sequence[str],
    maps: Sequence[str] = (),
    *,
    label: str,
    exclude: Sequence[str] = (),
) -> HistoryPlan:
    """Resolve headers, ``--map SRC=FIELD`` (or ``SRC=answers.NAME``) and ``--exclude``."""
    if label not in headers:
        raise MappingError(f"--label: no column {label!r} (columns: {', '.join(headers)})")
    for column in exclude:
        if column not in headers:
            raise MappingError(f"--exclude: no column {column!r} (columns: {', '.join(headers)})")
    usable = [h for h in headers if h != label and h not in exclude]
    field_maps: list[str] = []
    answer_maps: list[tuple[str, str]] = []
    for item in maps:
        source, sep, target = item.partition("=")
        if sep and source in (label, *exclude):
            raise MappingError(f"--map {item!r}: {source!r} is the outcome or excluded")
        if sep and source and target.startswith(ANSWERS) and len(target) > len(ANSWERS):
            if source not in headers:
                raise MappingError(f"--map {item!r}: the file has no column {source!r}")
            answer_maps.append((source, target.removeprefix(ANSWERS)))
        elif sep and source and target and target not in LEAD_FIELDS:
            known = ", ".join(LEAD_FIELDS)
            raise MappingError(
                f"--map {item!r}: {target!r} is not a lead field ({known}) or answers.<name>"
            )
        else:
            field_maps.append(item)
    fields = map_columns(usable, field_maps, LEAD_FIELDS, ALIASES)
    answers = {header.strip(): header for header in usable if header.strip()}
    for source, name in answer_maps:
        answers = {n: c for n, c in answers.items() if c != source}
        answers[name] = source
    return HistoryPlan(fields, answers, label)


def parse_label(text: str) -> bool | None:
    """1/0, true/false, yes/no, won/lost, converted/not converted ...; None when unreadable."""
    key = "_".join(text.strip().lower().replace("-", " ").split())
    if key in POSITIVE:
        return True
    if key in NEGATIVE:
        return False
    return None


@lru_cache(maxsize=4096)
def _title(title: str) -> tuple[str | None, str | None]:
    seniority = seniority_of(title)
    return (seniority.value if seniority else None), function_of(title)


def enrich(fields: dict[str, Any], *, source: bool, region: str | None = None) -> dict[str, Any]:
    """What validation would write under ``quality`` (without DNS, device or spam).

    Normalises ``fields`` in place as validation does (email, phone in E.164,
    the country as its ISO code), so rules on those fields see the same values.
    Names are not re-cased: every operator ignores case, so casing never changes
    a rule's outcome, and name parsing would cost more than all the rest.
    """
    email = analyse_email(fields.get("email"))
    explicit_country = country_code(fields.get("country"))
    phone = analyse_phone(fields.get("phone"), [region, explicit_country])
    if email.valid and email.normalized:
        fields["email"] = email.normalized
    if phone.valid and phone.e164:
        fields["phone"] = phone.e164
    country = explicit_country or phone.region
    if country:
        fields["country"] = country
    flags = []
    if not email.valid:
        flags.append("invalid_email" if fields.get("email") else "no_email")
    elif email.kind is not EmailKind.BUSINESS and email.kind is not None:
        flags.append(f"{email.kind.value}_email")
    if not phone.valid:
        flags.append("invalid_phone" if fields.get("phone") else "no_phone")
    seniority, function = _title(fields["title"]) if fields.get("title") else (None, None)
    return {
        "email_valid": email.valid,
        "email_kind": email.kind.value if email.kind else None,
        "email_domain": email.domain,
        "phone_valid": phone.valid,
        "phone_type": phone.type,
        "phone_region": phone.region,
        "country": country,
        "company_domain": company_domain(email, fields.get("website")),
        "seniority": seniority,
        "function": function,
        "channel": channel_of(
            utm_medium=fields.get("utm_medium"),
            gclid=fields.get("gclid"),
            fbclid=fields.get("fbclid"),
            referrer=fields.get("referrer"),
            landing_url=fields.get("landing_url"),
        )
        if source
        else None,
        "flags": flags,
    }


def view_of(plan: HistoryPlan, row: Mapping[str, str], region: str | None = None) -> LeadView:
    """One row as the rules see a lead: fields, enrichment and answers."""
    fields: dict[str, Any] = {}
    for name, column in plan.fields.items():
        value = " ".join((row.get(column) or "").split())
        if value:
            fields[name] = value
    quality = enrich(fields, source=plan.has_source, region=region)
    answers = {
        name: value
        for name, column in plan.answers.items()
        if (value := (row.get(column) or "").strip())
    }
    return LeadView(fields, quality, answers)


def _line_of_row(path: Path, index: int) -> int:
    """The line a data row starts on (quoted fields may span lines); error path only."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        start = 1
        for n, _ in enumerate(reader):
            if n == index + 1:  # row 0 is the header
                return start
            start = reader.line_num + 1
    return index + 2


@dataclass(frozen=True, slots=True)
class History:
    """The rows of a file with their outcome, ready to be turned into views."""

    path: Path
    headers: list[str]
    rows: list[dict[str, str]]
    labels: list[bool]
    plan: HistoryPlan
    region: str | None = None

    def views(self) -> Iterable[LeadView]:
        return (view_of(self.plan, row, self.region) for row in self.rows)

    @property
    def conversions(self) -> int:
        return sum(self.labels)


def load_history(
    path: Path,
    *,
    label: str,
    maps: Sequence[str] = (),
    exclude: Sequence[str] = (),
    region: str | None = None,
) -> History:
    """Read ``path`` and its labels; :class:`HistoryError` names the file, line and column."""
    try:
        headers, rows = read_rows(path)
    except CsvError as exc:
        raise HistoryError(str(exc)) from exc
    try:
        plan = plan_history(headers, maps, label=label, exclude=exclude)
    except MappingError as exc:
        raise HistoryError(f"{path}: {exc}") from exc
    if region is not None and region.upper() not in _regions():
        raise HistoryError(f"--region {region!r}: not a region code (e.g. US, DE, GB)")
    if not rows:
        raise HistoryError(f"{path}: no rows after the header")
    labels: list[bool] = []
    for index, row in enumerate(rows):
        value = parse_label(row.get(label, ""))
        if value is None:
            line = _line_of_row(path, index)
            shown = row.get(label, "")
            raise HistoryError(
                f"{path}:{line}: column {label!r}: cannot read {shown!r} as an outcome "
                "(converted: 1, true, yes, won, converted; not: 0, false, no, lost, "
                "not converted)"
            )
        labels.append(value)
    return History(path, headers, rows, labels, plan, region.upper() if region else None)


@lru_cache(maxsize=1)
def _regions() -> frozenset[str]:
    import phonenumbers

    return frozenset(phonenumbers.SUPPORTED_REGIONS)


def _refs(condition: Condition) -> Iterable[str]:
    if condition.field is not None:
        yield condition.field
    for child in condition.all or condition.any or []:
        yield from _refs(child)


def unreachable(scoring: Scoring, plan: HistoryPlan) -> list[str]:
    """Sentences about the rules a CSV file cannot exercise, once per kind of reason."""
    notes: list[str] = []
    behaviour = [rule.id for rule in scoring.rules if rule.when.uses_events()]
    if behaviour:
        notes.append(
            f"{len(behaviour)} behaviour rule(s) never match here ({', '.join(behaviour)}): "
            "a CSV file has no activity, so they add 0 points to every row."
        )
    missing: dict[str, list[str]] = {}
    for rule in scoring.rules:
        for ref in _refs(rule.when):
            head, _, key = ref.partition(".")
            absent = head == "quality" and (
                key not in COMPUTED_QUALITY and key.split(".", 1)[0] not in COMPUTED_QUALITY
            )
            no_source = ref == "quality.channel" and not plan.has_source
            if absent or no_source:
                missing.setdefault(ref, []).append(rule.id)
    for ref, ids in missing.items():
        why = (
            "the file has no source column (utm_medium, gclid, fbclid, referrer, landing_url)"
            if ref == "quality.channel"
            else "it needs the live request, DNS or the spam check"
        )
        notes.append(f"{ref} is empty for every row ({why}): rule(s) {', '.join(ids)}.")
    return notes
