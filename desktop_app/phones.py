"""Phone numbers, parsed and normalised in this one module (the only one that uses ``phonenumbers``).

``parse``/``to_e164`` for a number typed or stored anywhere; ``check`` for the call details form (the
reason a number is refused, in one sentence); ``from_pbx`` for a number in a recording's file name
(extensions kept as digits); ``known_region`` for the default-region setting; ``variants`` and
``same_number`` for HubSpot's contact search: a miss creates the duplicate "Caller +1…" contacts
users of other integrations complain about, so a number is searched as E.164, international,
national, digits only (with and without the country code) and the dashed and dotted forms people type.
"""

from __future__ import annotations

import re

import phonenumbers

_NO_NUMBER = {"", "anonymous", "unknown", "restricted", "private", "s"}  # what a PBX writes for no number
EXTENSION_MAX_DIGITS = 6


def known_region(region: str) -> bool:
    """Whether ``region`` (two letters, e.g. US) is a region numbers can be read for."""
    return region.upper() in phonenumbers.SUPPORTED_REGIONS


def parse(number: str, region: str = "US") -> phonenumbers.PhoneNumber | None:
    """The number, or None when it is not a plausible phone number."""
    try:
        parsed = phonenumbers.parse(number, region.upper() or None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return parsed


def to_e164(number: str, region: str = "US") -> str | None:
    parsed = parse(number, region)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) if parsed else None


def variants(number: str, region: str = "US") -> list[str]:
    """Every form of ``number`` worth searching for, most canonical first, without duplicates.

    A number that does not parse is searched as typed and as its digits.
    """
    out: list[str] = []

    def add(value: str) -> None:
        value = value.strip()
        if value and value not in out:
            out.append(value)

    parsed = parse(number, region)
    if parsed is None:
        add(number)
        add(re.sub(r"\D", "", number))
        return out
    fmt = phonenumbers.PhoneNumberFormat
    e164 = phonenumbers.format_number(parsed, fmt.E164)
    national = phonenumbers.format_number(parsed, fmt.NATIONAL)
    national_digits = re.sub(r"\D", "", national)
    add(e164)
    add(phonenumbers.format_number(parsed, fmt.INTERNATIONAL))
    add(national)
    add(national_digits)
    add(e164.lstrip("+"))  # country code and number, digits only
    add("00" + e164.lstrip("+"))  # international dialling prefix used in Europe
    significant = phonenumbers.national_significant_number(parsed)
    add(significant)
    if len(significant) == 10:  # NANP-style groupings people type
        add(f"{significant[:3]}-{significant[3:6]}-{significant[6:]}")
        add(f"{significant[:3]}.{significant[3:6]}.{significant[6:]}")
        add(f"+{parsed.country_code} ({significant[:3]}) {significant[3:6]}-{significant[6:]}")
    add(number)
    return out


def same_number(a: str | None, b: str | None, region: str = "US") -> bool:
    """True when two stored forms denote the same number."""
    if not a or not b:
        return False
    ea, eb = to_e164(a, region), to_e164(b, region)
    if ea and eb:
        return ea == eb
    return re.sub(r"\D", "", a) == re.sub(r"\D", "", b)


def check(text: str, region: str) -> tuple[str | None, str | None]:
    """``(E.164, None)`` for a valid number, ``(None, reason)`` otherwise (the call details form)."""
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


def from_pbx(raw: str | None, region: str = "US") -> str | None:
    """A number as a PBX wrote it in a file name: E.164 for a phone number, the digits for an extension,
    None for 'anonymous' and the like."""
    if raw is None:
        return None
    text = raw.strip()
    if text.lower() in _NO_NUMBER:
        return None
    digits = re.sub(r"\D", "", text)
    if not digits:
        return None
    if len(digits) <= EXTENSION_MAX_DIGITS and not text.startswith("+"):
        return digits
    if text.startswith("00"):
        text = "+" + text[2:]
    return to_e164(text, region) or ("+" if text.startswith("+") else "") + digits
