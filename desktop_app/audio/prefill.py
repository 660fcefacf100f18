"""Prefill a call from its recording's file name: start time, numbers, direction (and duration).

Phone systems name recordings after the call. Built in: Asterisk/FreePBX
(``out-<to>-<from>-YYYYMMDD-HHMMSS-<uniqueid>.wav`` and ``in-``, ``external-``, ``q-``,
``internal-``) and 3CX (``[Name]_<from>-<to>_<YYYYMMDDHHMMSS>(<id>).wav``). Users add their own in
the setting ``calls.pbx_patterns``: a list of ``{"name", "regex", "timestamp_format"}`` whose regex
has named groups ``from``, ``to``, ``direction``, ``timestamp`` (and optionally ``name``,
``unique_id``). User patterns are tried first, so they can override a built-in one.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from desktop_app import phones
from desktop_app.audio.model import Prefill

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pattern:
    name: str
    regex: re.Pattern[str]
    timestamp_format: str
    direction: str | None = None  # fixed direction when the regex has no direction group


_ASTERISK_KINDS = {"out": "outbound", "in": "inbound", "external": "inbound", "q": "inbound",
                   "internal": None, "exten": None, "ondemand": None}

BUILTIN: tuple[Pattern, ...] = (
    Pattern("asterisk", re.compile(
        r"^(?P<direction>out|in|external|q|internal|exten|ondemand)-(?P<to>[^-]*)-(?P<from>[^-]*)-"
        r"(?P<timestamp>\d{8}-\d{6})-(?P<unique_id>[\w.]+)\.\w+$", re.IGNORECASE), "%Y%m%d-%H%M%S"),
    Pattern("3cx", re.compile(
        r"^\[(?P<name>[^\]]*)\]_(?P<from>[^-_]+)-(?P<to>[^_]+)_(?P<timestamp>\d{14})\((?P<unique_id>[^)]*)\)"
        r"\.\w+$"), "%Y%m%d%H%M%S"),
)

_DIRECTION_WORDS = {"in": "inbound", "inbound": "inbound", "incoming": "inbound", "inb": "inbound",
                    "external": "inbound", "q": "inbound", "out": "outbound", "outbound": "outbound",
                    "outgoing": "outbound", "outb": "outbound"}


def compile_patterns(raw: Iterable[Mapping[str, Any]]) -> list[Pattern]:
    """User patterns from the settings; a broken one is logged and skipped, never fatal."""
    out: list[Pattern] = []
    for i, item in enumerate(raw):
        try:
            name = str(item.get("name") or f"custom-{i + 1}")
            regex = re.compile(str(item["regex"]))
            out.append(Pattern(name, regex, str(item.get("timestamp_format") or "%Y%m%d%H%M%S"),
                               item.get("direction")))
        except (KeyError, TypeError, re.error, AttributeError) as exc:
            log.warning("pbx pattern %d in the settings is ignored: %s", i + 1, exc)
    return out


def _settings_patterns() -> list[Mapping[str, Any]]:
    try:
        from desktop_app import settings

        value = settings.load().get("calls.pbx_patterns")
        return list(value) if isinstance(value, list) else []
    except Exception as exc:  # an unreadable settings file must not stop a prefill
        log.warning("calls.pbx_patterns cannot be read: %s", exc)
        return []


def _region() -> str:
    try:
        from desktop_app import settings

        return str(settings.load().get("calls.default_region") or "US")
    except Exception:
        return "US"


def _is_extension(number: str | None) -> bool:
    return number is not None and not number.startswith("+") and len(number) <= phones.EXTENSION_MAX_DIGITS


def _direction(pattern: Pattern, groups: Mapping[str, str], from_number: str | None,
               to_number: str | None) -> str | None:
    """The call's direction: the name's word for it, else (but for Asterisk's) the side that is an extension."""
    word = (groups.get("direction") or pattern.direction or "").lower()
    if pattern.name == "asterisk":
        return _ASTERISK_KINDS.get(word)
    if word and (direction := _DIRECTION_WORDS.get(word)) is not None:
        return direction
    if _is_extension(from_number) and not _is_extension(to_number):
        return "outbound"
    if _is_extension(to_number) and not _is_extension(from_number):
        return "inbound"
    return None


def prefill_from_filename(path: str | os.PathLike[str],
                          extra_patterns: Iterable[Mapping[str, Any]] | None = None, *,
                          region: str | None = None, with_duration: bool = True) -> Prefill:
    """What the file name (and header) tell about the call; fields stay None when unknown.

    ``extra_patterns`` defaults to the setting ``calls.pbx_patterns``; ``region`` to ``calls.default_region``.
    """
    name = Path(path).name
    result = Prefill(path=str(path))
    raw = list(extra_patterns) if extra_patterns is not None else _settings_patterns()
    patterns = compile_patterns(raw) + list(BUILTIN)
    region = region or _region()
    for pattern in patterns:
        m = pattern.regex.search(name)
        if not m:
            continue
        groups = {k: v for k, v in m.groupdict().items() if v is not None}
        start = None
        if "timestamp" in groups:
            try:
                start = datetime.strptime(groups["timestamp"], pattern.timestamp_format)
            except ValueError:
                continue  # the name looks like the pattern but the date is not a date: try the next
        result.pattern = pattern.name
        result.start = start.isoformat() if start else None
        result.from_number = phones.from_pbx(groups.get("from"), region)
        result.to_number = phones.from_pbx(groups.get("to"), region)
        result.unique_id = groups.get("unique_id") or None
        caller = (groups.get("name") or "").strip()
        if caller and not re.fullmatch(r"[+\d\s()-]*", caller):
            result.caller_name = caller
        result.direction = _direction(pattern, groups, result.from_number, result.to_number)  # type: ignore[assignment]
        break
    if with_duration and os.path.isfile(path):
        from desktop_app.audio.probe import probe

        pr = probe(path)
        if pr.readable:
            result.duration_s = pr.duration_s
    return result
