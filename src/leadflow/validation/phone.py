"""Phone numbers: E.164, validity, type and region (phonenumbers, Google's libphonenumber)."""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

_TYPES = {
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE: "fixed_line",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
    PhoneNumberType.VOIP: "voip",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.PREMIUM_RATE: "premium_rate",
    PhoneNumberType.SHARED_COST: "shared_cost",
    PhoneNumberType.PERSONAL_NUMBER: "personal",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "uan",
    PhoneNumberType.VOICEMAIL: "voicemail",
}


@dataclass(frozen=True, slots=True)
class PhoneQuality:
    valid: bool
    e164: str | None
    type: str | None
    region: str | None
    error: str | None


def analyse_phone(raw: str | None, regions: list[str | None]) -> PhoneQuality:
    """Read ``raw`` with the first region hint that makes it a valid number.

    Numbers written with +country need no hint. Otherwise the hints are tried in
    order (the form's default region, the lead's country, the browser's locale).
    """
    if not raw:
        return PhoneQuality(False, None, None, None, "no phone given")
    candidates: list[str | None] = [region for region in regions if region] or [None]
    best: phonenumbers.PhoneNumber | None = None
    for region in dict.fromkeys(candidates):
        try:
            number = phonenumbers.parse(raw, region)
        except NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            best = number
            break
        best = best or number
    if best is None:
        return PhoneQuality(False, None, None, None, "not a phone number")
    valid = phonenumbers.is_valid_number(best)
    return PhoneQuality(
        valid=valid,
        e164=phonenumbers.format_number(best, phonenumbers.PhoneNumberFormat.E164)
        if valid
        else None,
        type=_TYPES.get(phonenumbers.number_type(best), "unknown") if valid else None,
        region=phonenumbers.region_code_for_number(best) if valid else None,
        error=None if valid else "not a valid number for its region",
    )
