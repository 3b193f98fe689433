"""CSV files of leads: their rows, and which column feeds which lead field.

Shared by ``leadflow dedup``, ``leadflow import``, ``leadflow backtest`` and
``leadflow scoring suggest``: a column feeds a field by its header (or a header
people use for it, ``surname`` for ``last_name``), or by ``--map SRC=FIELD``.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path

from leadflow.validation.context import country_code

# Headers people use for lead fields, as `_plain` headers (lower case, "_" for spaces).
HEADER_ALIASES: dict[str, str] = {
    "firstname": "first_name",
    "first": "first_name",
    "given_name": "first_name",
    "givenname": "first_name",
    "forename": "first_name",
    "lastname": "last_name",
    "last": "last_name",
    "surname": "last_name",
    "family_name": "last_name",
    "e_mail": "email",
    "email_address": "email",
    "mail": "email",
    "phone_number": "phone",
    "telephone": "phone",
    "tel": "phone",
    "mobile": "phone",
    "company_name": "company",
    "organisation": "company",
    "organization": "company",
    "account": "company",
    "account_name": "company",
    "address": "street",
    "street_address": "street",
    "address_1": "street",
    "address1": "street",
    "town": "city",
    "zip": "postcode",
    "zipcode": "postcode",
    "zip_code": "postcode",
    "postal_code": "postcode",
    "post_code": "postcode",
}


class MappingError(ValueError):
    """A --map or --field that names no column or no field."""


class CsvError(MappingError):
    """A file that cannot be read as CSV with a header row; the message names it."""


def _header_key(header: str) -> str:
    return "_".join(header.strip().lower().replace("-", "_").split())


def map_columns(
    headers: Sequence[str],
    maps: Sequence[str],
    targets: Collection[str],
    aliases: Mapping[str, str],
) -> dict[str, str]:
    """Target field -> source column: by header name or a known alias, then ``--map SRC=FIELD``
    (an explicit mapping takes its column away from any field it fed by header)."""
    columns: dict[str, str] = {}
    for header in headers:
        key = _header_key(header)
        target = key if key in targets else aliases.get(key)
        if target is not None and target in targets and target not in columns:
            columns[target] = header
    for item in maps:
        source, sep, target = item.partition("=")
        if not sep or not source or not target:
            raise MappingError(f"--map {item!r}: expected SRC=FIELD")
        if source not in headers:
            raise MappingError(
                f"--map {item!r}: the file has no column {source!r} (its columns: "
                f"{', '.join(headers)})"
            )
        if target not in targets:
            raise MappingError(f"--map {item!r}: {target!r} is not one of {', '.join(targets)}")
        columns = {t: s for t, s in columns.items() if s != source and t != target}
        columns[target] = source
    return columns


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """The header and the rows of a CSV file; :class:`CsvError` says what is wrong with it."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            rows = [{k: v or "" for k, v in row.items() if k is not None} for row in reader]
            headers = list(reader.fieldnames or [])
    except UnicodeDecodeError as exc:
        raise CsvError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from exc
    except csv.Error as exc:
        # The row that fails starts after the last one read (a quote left open, say).
        raise CsvError(f"{path}: line {reader.line_num + 1}: cannot be read as CSV: {exc}") from exc
    except OSError as exc:
        raise CsvError(f"{path}: cannot be read: {exc.strerror or exc}") from exc
    if not headers:
        raise CsvError(f"{path}: empty file (a header row is needed)")
    return headers, rows


def auto_mapped(columns: Mapping[str, str], maps: Sequence[str]) -> dict[str, str]:
    """The part of ``columns`` taken by header name, not by ``--map``."""
    explicit = {item.partition("=")[0] for item in maps}
    return {target: source for target, source in columns.items() if source not in explicit}


_DIGITS = re.compile(r"\d")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^[\d\s()+./-]{6,}$|^[\d\s()+./-]{6,}\s*(x|ext\.?)\s*\d+$", re.IGNORECASE)
_DOMAIN = re.compile(r"^(https?://)?[\w-]+(\.[\w-]+)+(/\S*)?$", re.IGNORECASE)
# What a value of a field looks like: a cheap check, so a column misnamed for a field
# (dates under "Email Address") is noticed before it feeds the field.
LOOKS_LIKE: dict[str, Callable[[str], bool]] = {
    "email": lambda v: bool(_EMAIL.match(v)),
    "phone": lambda v: bool(_PHONE.match(v)) and len(_DIGITS.findall(v)) >= 6,
    "first_name": lambda v: not _DIGITS.search(v),
    "last_name": lambda v: not _DIGITS.search(v),
    "city": lambda v: not _DIGITS.search(v),
    "country": lambda v: country_code(v) is not None,
    "website": lambda v: bool(_DOMAIN.match(v)),
    "domain": lambda v: bool(_DOMAIN.match(v)),
}


def unlike_columns(
    columns: Mapping[str, str], rows: Sequence[Mapping[str, str]], sample: int = 50
) -> list[str]:
    """A warning for each column whose values mostly do not look like the field it feeds
    (among its first ``sample`` non-empty values)."""
    warnings = []
    for target, source in columns.items():
        looks = LOOKS_LIKE.get(target)
        if looks is None:
            continue
        values = [v for row in rows if (v := row.get(source, "").strip())][:sample]
        unlike = [v for v in values if not looks(v)]
        if values and len(unlike) * 2 > len(values):
            warnings.append(
                f"warning: column {source!r} feeds {target} by its name, but {len(unlike)} of "
                f"the {len(values)} values looked at do not look like one (e.g. {unlike[0]!r}); "
                f"if that is not the column, give the right one with --map SRC={target}"
            )
    return warnings
