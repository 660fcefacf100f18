"""RFC 9110 byte ranges and validators, as pure functions (the server and the tests share none of
this: the tests check the answers against their own reading of the RFC)."""

from __future__ import annotations

import re
from email.utils import formatdate, parsedate_to_datetime

MAX_RANGES = 64  # more range-specs than this (before coalescing) and the Range header is ignored
# The common case, one "first-last" range as players and HubSpot send it, parsed without the general
# walk below (which gives the same answer for it).
ONE_RANGE = re.compile(r"bytes=([0-9]{1,18})-([0-9]{1,18})\Z")
_DIGITS = re.compile(r"[0-9]+\Z")
_PAST_ANY_FILE = 10**18  # more bytes than any file has


def _number(digits: str) -> int:
    """A range's number, any length: one beyond ``_PAST_ANY_FILE`` is past the end of any file (as
    far as serving goes), so it is never converted whole (``int()`` refuses 4,300 digits and more)."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= 18 else _PAST_ANY_FILE


def _before(last: str, first: str) -> bool:
    """Whether the number ``last`` is smaller than ``first`` (digit strings of any length)."""
    a, b = last.lstrip("0"), first.lstrip("0")
    return (len(a), a) < (len(b), b)


def parse_range(header: str, size: int) -> list[tuple[int, int]] | None:
    """The satisfiable ranges of a ``Range`` header, as inclusive ``(first, last)`` pairs.

    ``None`` means the header is to be ignored (malformed, another unit, too many ranges): serve the
    whole file. An empty list means no range is satisfiable (416). Overlapping and adjacent ranges
    are coalesced and sorted. A number of any length is taken: one past the file's size is just past
    its end.
    """
    one = ONE_RANGE.match(header)
    if one is not None:
        first, last = int(one[1]), int(one[2])
        if last < first:
            return None
        return [(first, min(last, size - 1))] if first < size else []
    unit, eq, spec = header.partition("=")
    if not eq or unit.lower() != "bytes":
        return None
    specs = [s.strip(" \t") for s in spec.split(",")]
    specs = [s for s in specs if s]
    if not specs or len(specs) > MAX_RANGES:
        return None
    ranges: list[tuple[int, int]] = []
    for item in specs:
        found = _spec_range(item, size)
        if found is _MALFORMED:
            return None
        if found is not None:
            ranges.append(found)
    return coalesce(ranges)


_MALFORMED = (-1, -1)  # what _spec_range gives for a range-spec that makes the whole header ignored


def _spec_range(item: str, size: int) -> tuple[int, int] | None:
    """One range-spec's inclusive ``(first, last)``; None when it is unsatisfiable, ``_MALFORMED`` when it
    is not a range-spec."""
    first_s, dash, last_s = item.partition("-")
    if not dash:
        return _MALFORMED
    if not first_s:
        return _suffix_range(last_s, size)
    if not _DIGITS.match(first_s) or (last_s and not _DIGITS.match(last_s)):
        return _MALFORMED
    if last_s and _before(last_s, first_s):
        return _MALFORMED
    first = _number(first_s)
    if first >= size:
        return None
    last = _number(last_s) if last_s else size - 1
    return first, min(last, size - 1)


def _suffix_range(last_s: str, size: int) -> tuple[int, int] | None:
    """A suffix range-spec (``-N``: the last N bytes)."""
    if not last_s or not _DIGITS.match(last_s):
        return _MALFORMED
    suffix = _number(last_s)
    if suffix == 0 or size == 0:
        return None
    return max(0, size - suffix), size - 1


def coalesce(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for first, last in sorted(ranges):
        if out and first <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], last))
        else:
            out.append((first, last))
    return out


def http_date(ts: float) -> str:
    return formatdate(int(ts), usegmt=True)


def parse_http_date(value: str) -> int | None:
    try:
        return int(parsedate_to_datetime(value.strip()).timestamp())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _etags(value: str) -> list[str]:
    return [t.strip() for t in value.split(",") if t.strip()]


def _opaque(tag: str) -> str:
    return tag[2:] if tag.startswith("W/") else tag


def none_match(header: str, etag: str) -> bool:
    """``If-None-Match`` matches (weak comparison): the client's copy is current."""
    tags = _etags(header)
    return "*" in tags or any(_opaque(t) == etag for t in tags)


def if_match_fails(header: str, etag: str) -> bool:
    """``If-Match`` fails (strong comparison)."""
    tags = _etags(header)
    return not ("*" in tags or etag in tags)


def if_range_matches(header: str, etag: str, mtime: float) -> bool:
    """``If-Range`` holds: an entity tag compared strongly, or a date equal to Last-Modified."""
    value = header.strip()
    if value.startswith('"') or value.startswith("W/"):
        return value == etag
    date = parse_http_date(value)
    return date is not None and date == int(mtime)
