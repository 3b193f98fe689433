"""Names, companies and job titles: cased sensibly, titles read as seniority and function."""

from __future__ import annotations

import re
from enum import StrEnum

from nameparser import HumanName


class Seniority(StrEnum):
    C_LEVEL = "c_level"
    VP = "vp"
    DIRECTOR = "director"
    MANAGER = "manager"
    INDIVIDUAL = "individual"


def tidy_name(value: str | None) -> str | None:
    """Trim and collapse spaces; re-case only text typed all upper or all lower case,
    so "JAN VAN DER BERG" becomes "Jan van der Berg" and "McDonald" stays as typed."""
    if value is None:
        return None
    text = " ".join(value.split())
    if not text:
        return None
    if text.isupper() or text.islower():
        name = HumanName(text)
        name.capitalize(force=True)
        cased = str(name)
        # nameparser may reorder "Last, First", and casing can change a text's
        # length ("ß" -> "SS"): then keep the words exactly as the person gave them.
        if len(cased) == len(text) and sorted(cased.lower().split()) == sorted(
            text.lower().split()
        ):
            return cased
        return text
    return text


def tidy_company(value: str | None) -> str | None:
    if value is None:
        return None
    text = " ".join(value.split())
    return text or None


_SENIORITY = [  # first match wins: a "Vice President" is not a president
    (Seniority.VP, r"\b(vp|svp|evp|avp|vice[- ]president|vizepräsident)\b"),
    (
        Seniority.C_LEVEL,
        r"\b(c[eotfmi]o|chief|founder|co-?founder|owner|president|"
        r"managing director|general manager|geschäftsführer|gesch[aä]ftsf[uü]hrer|inhaber|"
        r"partner|principal|directeur général|pdg)\b",
    ),
    (Seniority.DIRECTOR, r"\b(director|head of|head|leiter|leiterin|directeur|directora?)\b"),
    (
        Seniority.MANAGER,
        r"\b(manager|lead|team ?lead|supervisor|teamleiter|teamleiterin|"
        r"coordinator|responsable)\b",
    ),
]
_SENIORITY_RE = [(level, re.compile(pattern, re.IGNORECASE)) for level, pattern in _SENIORITY]

_FUNCTIONS = [
    (
        "executive",
        r"\b(ceo|founder|owner|(?<!vice )president|managing director|general manager|"
        r"geschäftsführer)\b",
    ),
    (
        "engineering",
        r"\b(engineer\w*|developer|cto|architect|devops|software|programmer|entwickler)\b",
    ),
    ("it", r"\b(it|cio|sysadmin|system administrator|infrastructure|security|ciso)\b"),
    ("sales", r"\b(sales|account executive|business development|bdr|sdr|vertrieb|cro)\b"),
    ("marketing", r"\b(marketing|cmo|growth|brand|demand gen\w*|content|seo|communications)\b"),
    ("revops", r"\b(revops|revenue operations|sales operations|marketing operations|crm)\b"),
    ("finance", r"\b(finance|cfo|controller|accounting|accountant|treasurer)\b"),
    ("hr", r"\b(hr|human resources|people|talent|recruit\w*|personal)\b"),
    ("operations", r"\b(operations|coo|ops|logistics|supply chain)\b"),
    ("product", r"\b(product|cpo|ux|design\w*)\b"),
    ("legal", r"\b(legal|counsel|lawyer|attorney|compliance)\b"),
    ("support", r"\b(support|customer success|service)\b"),
]
_FUNCTIONS_RE = [(name, re.compile(pattern, re.IGNORECASE)) for name, pattern in _FUNCTIONS]


def seniority_of(title: str | None) -> Seniority | None:
    if not title or not title.strip():
        return None
    for level, pattern in _SENIORITY_RE:
        if pattern.search(title):
            return level
    return Seniority.INDIVIDUAL


def function_of(title: str | None) -> str | None:
    if not title or not title.strip():
        return None
    for name, pattern in _FUNCTIONS_RE:
        if pattern.search(title):
            return name
    return "other"
