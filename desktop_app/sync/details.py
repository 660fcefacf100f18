"""A call's details from its recording and the user's values, and the contact they name (Qt-free).

``call_details_for_file`` checks a recording and builds its ``CallDetails`` from the file (its name, as a
PBX names it; its length) and a row of values (a command's flags, a CSV row). ``ContactResolver`` finds
the HubSpot contact an id, an email address or a phone number names, before any call is created.
Both refuse bad input with ``SubmissionRefused``, one sentence saying why.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from desktop_app import phones
from desktop_app.hubspot.endpoints import CallDetails, hubspot_timestamp
from desktop_app.hubspot.errors import HubSpotError
from desktop_app.settings import Settings

if TYPE_CHECKING:
    from desktop_app.hubspot.client import HubSpotClient

log = logging.getLogger(__name__)


class SubmissionRefused(ValueError):
    """A recording or its details cannot be submitted as they are (the message says why)."""


def call_details_for_file(path: Path, row: Mapping[str, str | None],
                          settings: Settings) -> tuple[CallDetails, list[str]]:
    """Check a recording and build its call details from the file and ``row`` (command-line values),
    without the contact (``ContactResolver`` finds it with HubSpot; a team desk passes an id).
    Returns the details and the warnings (a mono file, a silent channel…); SubmissionRefused when the file
    cannot be uploaded as it is, or a value is wrong."""
    from desktop_app import audio

    region = str(settings.get("calls.default_region"))
    try:
        inspection = audio.inspect(path, analyse=True)
        prefill = audio.prefill_from_filename(path, region=region)
    except Exception as exc:  # noqa: BLE001 - a damaged file is a verdict on it, never the end of a batch
        log.info("inspecting %s failed", path, exc_info=True)  # the sentence below is what the user sees
        reason = (str(exc).splitlines() or [""])[0] or type(exc).__name__
        raise SubmissionRefused(f"It could not be inspected, so it was not sent ({reason}).") from None
    errors = [p.message for p in inspection.problems if p.severity == "error"]
    if errors:
        raise SubmissionRefused(" ".join(errors))
    warnings = [p.message for p in inspection.problems if p.severity == "warning"]
    duration_s = inspection.probe.duration_s or prefill.duration_s or 0.0

    def number(key: str, fallback: str | None) -> str:
        raw = row.get(key) or fallback or ""
        if not raw:
            return ""
        e164 = phones.to_e164(raw, region)
        if not e164:
            raise SubmissionRefused(f"{raw!r} is not a valid phone number (default region {region}).")
        return e164

    direction = (row.get("direction") or (prefill.direction or "")).upper()
    timestamp = row.get("timestamp") or prefill.start or ""
    try:
        hubspot_timestamp(timestamp)  # as the pipeline will read it when it logs the call
    except ValueError:
        raise SubmissionRefused(f"{timestamp!r} is not a date and time: give the call's start in ISO 8601, "
                                f"e.g. 2026-11-20T10:00:00+01:00.") from None
    details = CallDetails(
        title=row.get("title") or f"Call {Path(path).stem}",
        timestamp=timestamp, duration_ms=int(round(duration_s * 1000)),
        from_number=number("from_number", prefill.from_number), to_number=number("to_number", prefill.to_number),
        direction=direction if direction in ("INBOUND", "OUTBOUND") else "",
        owner_id=row.get("owner_id") or "", notes=row.get("notes") or "",
    )
    return details, warnings


class ContactResolver:
    """The id of the HubSpot contact named by an id, an email address or a phone number (``resolve``).

    Asked before any call is created, so that a contact HubSpot does not have is refused
    (``SubmissionRefused``, one sentence naming it) instead of leaving a call without it. What was
    found is kept, so a batch naming one contact asks HubSpot once. Thread-safe.
    """

    def __init__(self, client: HubSpotClient, settings: Settings) -> None:
        self._client = client
        self._settings = settings  # calls.default_region, read at each lookup
        self._lock = threading.Lock()
        self._ids: dict[str, str] = {}  # what was found, by the text it was given

    def resolve(self, text: str) -> str:
        text = text.strip()
        with self._lock:
            known = self._ids.get(text)
        if known is not None:
            return known
        if "@" not in text and not any(ch.isdigit() for ch in text):
            raise SubmissionRefused(f"{text!r} is not a contact id, an email address or a phone number.")
        client, region = self._client, str(self._settings.get("calls.default_region"))
        try:
            if "@" in text:
                ids = [str(c.id) for c in client.search_contacts_by_email(text)]
            elif text.isdigit():
                ids = [str(c.id) for c in [client.read_contact(text)] if c is not None]
            else:
                ids = [str(c.id) for c in client.search_contacts_by_phone(text, region)]
        except (HubSpotError, ValueError) as exc:  # ValueError: a request the client would not build
            raise SubmissionRefused(f"The contact {text!r} could not be looked up: {exc}") from None
        if not ids:
            raise SubmissionRefused(f"No HubSpot contact matches {text!r}.")
        with self._lock:
            self._ids[text] = ids[0]
        return ids[0]
