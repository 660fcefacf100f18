"""Phone-number checks for the call details form (no Qt)."""

from __future__ import annotations

import phonenumbers


def check(text: str, region: str) -> tuple[str | None, str | None]:
    """``(E.164, None)`` for a valid number, ``(None, reason)`` otherwise."""
    text = text.strip()
    if not text:
        return None, "Enter the phone number."
    try:
        parsed = phonenumbers.parse(text, (region or "US").upper())
    except phonenumbers.NumberParseException as exc:
        reason = {
            phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
                f"No country code, and {region or '?'} is not a known region: start with +.",
            phonenumbers.NumberParseException.NOT_A_NUMBER: "This is not a phone number.",
            phonenumbers.NumberParseException.TOO_SHORT_NSN: "Too short for a phone number.",
            phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "Too short for a phone number.",
            phonenumbers.NumberParseException.TOO_LONG: "Too long for a phone number.",
        }.get(exc.error_type, "This is not a phone number.")
        return None, reason
    if not phonenumbers.is_possible_number(parsed):
        return None, "Wrong number of digits for a number of that country."
    if not phonenumbers.is_valid_number(parsed):
        where = phonenumbers.region_code_for_number(parsed) or region
        return None, f"Not a valid number for {where} (check the digits or add the country code)."
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164), None


def pretty(e164: str) -> str:
    try:
        return phonenumbers.format_number(phonenumbers.parse(e164, None),
                                          phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    except phonenumbers.NumberParseException:
        return e164
