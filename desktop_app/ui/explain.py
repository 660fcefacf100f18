"""Plain explanations of failures for the agent (no Qt: pure functions, tested directly)."""

from __future__ import annotations

import re


def explain(status: int | None, message: str | None = None) -> str:
    """A sentence saying what a failed step means and what to do, from HubSpot's HTTP status."""
    text = (message or "").lower()
    if status is None:
        if "no longer there" in text or "could not be kept" in text:
            return "The recording file is missing or unreadable: put it back (or pick it again) and retry."
        return ("HubSpot could not be reached (no network, or the recording server or tunnel is down). "
                "Check the status bar, then retry.")
    if status == 401:
        return "HubSpot did not accept the app's sign-in (token expired or revoked). Sign in again in Settings."
    if status == 403:
        return ("The HubSpot token lacks a permission (scope) this step needs. Add the missing scope to the app "
                "in HubSpot, then retry.")
    if status == 404:
        return "HubSpot does not know something the call refers to (a contact, owner or app id). Check them."
    if status in (400, 409, 422):
        return "HubSpot rejected a value in the call details. Correct the field it names, then retry."
    if status == 429:
        return "HubSpot's rate limit was reached. The app waits and tries again; Retry to try now."
    if status >= 500:
        return "HubSpot had a problem on its side. It usually passes: retry in a minute."
    return "HubSpot refused the request. Its message above says why."


# what the client appends to its sentence: "(HTTP 403, MISSING_SCOPES, correlationId 8f2c…)"
_TAIL = re.compile(r"\s*\(HTTP \d{3}[^()]*\)\s*$")
_LONG_TOKEN = re.compile(r"\S{40,}")
ZWSP = "\u200b"


def breakable(text: str) -> str:
    """``text`` with zero-width break chances inside long tokens (URLs, ids), so a wrapped label can break
    them instead of widening the window."""
    def split(m: re.Match[str]) -> str:
        token = re.sub(r"([/\-_.?&=#:,;])", r"\1" + ZWSP, m.group(0))
        return ZWSP.join(token[i:i + 24] for i in range(0, len(token), 24)) if ZWSP not in token else token
    return _LONG_TOKEN.sub(split, text)


def short_error(message: str) -> str:
    """HubSpot's sentence without the status, category and correlation id the client appends."""
    return _TAIL.sub("", message or "").strip() or (message or "")


def agent_error(message: str, status: int | None, correlation_id: str | None) -> tuple[str, str]:
    """What the Upload page shows of a failure, and the details "Copy details" puts on the clipboard.

    The shown text says each thing once: HubSpot's sentence (its HTTP status and correlation id are not
    repeated after it), then what to do unless that sentence already says it (the client names a missing
    scope itself). The details keep the status, the correlation id and the full message for support."""
    core = _TAIL.sub("", message or "").strip() or (message or "failed")
    said = status and not core.startswith("HubSpot ")  # never "HubSpot said: HubSpot rejected…"
    lines = [f"✗ HubSpot said: {core}" if said else f"✗ {core}"]
    already_said = status == 403 and "scope" in core.lower()
    if not already_said:
        lines.append(explain(status, core))
    details = [f"HTTP status: {status}" if status else "No answer from HubSpot"]
    if correlation_id:
        details.append(f"Correlation id: {correlation_id}")
    details.append(f"Message: {message}")
    return "\n".join(lines), "\n".join(details)
