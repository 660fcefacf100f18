"""The forms a phone number is stored in, so a contact search finds it however it was typed.

A miss creates the duplicate "Caller +1…" contacts users of other integrations complain about, so a
number is searched as E.164, international, national, digits only (with and without the country
code) and the dashed and dotted forms people type.
"""

from __future__ import annotations

import re

import phonenumbers

PHONE_PROPERTIES = ("phone", "mobilephone")


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
