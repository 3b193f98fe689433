"""CSV files of leads: their rows, and which column feeds which lead field.

Shared by ``leadflow dedup``, ``leadflow import``, ``leadflow backtest`` and
``leadflow scoring suggest``: a column feeds a field by its header (or a header
people use for it, ``surname`` for ``last_name``), or by ``--map SRC=FIELD``.
"""

from __future__ import annotations

import csv
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

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
            raise MappingError(f"--map {item!r}: the file has no column {source!r}")
        if target not in targets:
            raise MappingError(f"--map {item!r}: {target!r} is not one of {', '.join(targets)}")
        columns = {t: s for t, s in columns.items() if s != source and t != target}
        columns[target] = source
    return columns


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        rows = [{k: v or "" for k, v in row.items() if k is not None} for row in reader]
        return list(reader.fieldnames or []), rows
