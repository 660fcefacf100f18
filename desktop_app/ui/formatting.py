"""How durations and times read in the window (no Qt)."""

from __future__ import annotations

from desktop_app.sync import history as h


def format_duration(ms: int) -> str:
    seconds = max(0, int(round(ms / 1000)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_time(iso_text: str) -> str:
    moment = h.parse_iso(iso_text)
    if moment is None:
        return ""
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")
