"""How durations and times read in the window (no Qt)."""

from __future__ import annotations

import datetime as dt

from desktop_app.sync import history as h


def format_duration(ms: int) -> str:
    seconds = max(0, int(round(ms / 1000)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_time(iso_text: str | None) -> str:
    """An ISO 8601 instant as local time ("" when there is none or it does not parse)."""
    try:
        moment = h.parse_iso(iso_text)
    except (TypeError, ValueError):
        return ""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def call_time(sub: h.Submission) -> str:
    """When the call took place (as the agent stated it), else when it was submitted."""
    return format_time(str(sub.details.get("timestamp") or "")) or format_time(sub.created_at)
