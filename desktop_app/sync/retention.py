"""Retention: remove recordings HubSpot has transcribed, after a configurable number of days.

A recording is removed only when every submission that used it ended ``transcribed`` more than
``days`` days ago (``calls.retention_days``; 0 keeps everything, the default). A recording any
unfinished, ready (HubSpot may still come for it) or failed (it may be retried) submission uses is
never removed. Once removed, the call in HubSpot keeps its transcript but its recording no longer
plays from this computer; the settings page says so.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from desktop_app.server.recordings import RecordingStore
from desktop_app.sync import history as h


@dataclass(frozen=True)
class Removed:
    sha256: str
    size: int
    submissions: tuple[int, ...]


def apply_retention(history: h.History, store: RecordingStore, days: int,
                    now: dt.datetime | None = None) -> list[Removed]:
    """Remove what the policy allows; returns what was removed (and records it in the history)."""
    if days <= 0:
        return []
    cutoff = (now or h.now()) - dt.timedelta(days=days)
    by_recording: dict[str, list[h.Submission]] = {}
    for sub in history.iter_all():
        if sub.recording_sha256:
            by_recording.setdefault(sub.recording_sha256, []).append(sub)
    removed: list[Removed] = []
    for sha, subs in by_recording.items():
        def done_long_ago(s: h.Submission) -> bool:
            finished = h.parse_iso(s.updated_at)
            return s.status == h.TRANSCRIBED and finished is not None and finished < cutoff

        if not all(done_long_ago(s) for s in subs):
            continue
        rec = store.get(sha)
        if rec is None or not store.remove(sha):
            continue
        item = Removed(sha, rec.size, tuple(s.id for s in subs))
        removed.append(item)
        history.add_event("recording-removed", f"Removed the transcribed recording {rec.filename} "
                          f"({rec.size} bytes) after {days} days", {"sha256": sha, "submissions": list(item.submissions)})
    return removed
