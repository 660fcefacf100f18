"""Helpers for the UI tests: real history rows, real audio files (WAV packed by hand)."""

from __future__ import annotations

import datetime as dt
import json
import math
import struct
from pathlib import Path

from desktop_app.sync import history as h
from desktop_app.testing import fill

STATUS_CYCLE = ("transcribed", "ready", "failed", "queued", "running", "not-transcribed")


def fill_history(history: h.History, n: int, *, start: dt.datetime | None = None, agents=("ana", "ben"),
                 statuses=STATUS_CYCLE, prefix: str = "ext") -> None:
    """``n`` submissions, one a minute back from ``start``, statuses and agents cycling."""
    start = start or dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.timezone.utc)
    rows = []
    for i in range(n):
        details = {"title": f"Call {i}", "from_number": f"+1202555{i % 10000:04d}", "to_number": "+12025550100",
                   "duration_ms": 1000 * (30 + i % 600), "direction": "OUTBOUND", "owner_id": str(100 + i % 3),
                   "contact_id": str(500 + i % 7)}
        rows.append({
            "created_at": h.iso(start - dt.timedelta(minutes=i)), "agent": agents[i % len(agents)],
            "recording_path": f"/rec/{i}.wav", "recording_name": f"{i}.wav", "external_id": f"{prefix}-{i}",
            "details": json.dumps(details), "title": details["title"], "owner_id": details["owner_id"],
            "contact_id": details["contact_id"], "from_number": details["from_number"],
            "to_number": details["to_number"], "duration_ms": details["duration_ms"], "state": "ready_marked",
            "status": statuses[i % len(statuses)], "call_id": str(9000 + i),
        })
    fill.insert_submissions(history.path, rows)


def write_wav(path: Path, channels: list[list[float]], rate: int = 8000) -> Path:
    """A 16-bit PCM WAV packed by hand (independent of the code under test)."""
    n = len(channels[0])
    frames = bytearray()
    for i in range(n):
        for ch in channels:
            frames += struct.pack("<h", int(max(-1.0, min(1.0, ch[i])) * 32767))
    nch = len(channels)
    header = b"RIFF" + struct.pack("<I", 36 + len(frames)) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, nch, rate, rate * nch * 2, nch * 2, 16)
    header += b"data" + struct.pack("<I", len(frames))
    path.write_bytes(header + bytes(frames))
    return path


def speech(seconds: float, *, start: float, freq: float, rate: int = 8000, level: float = 0.5) -> list[float]:
    """Bursts of a tone (0.6 s on, 0.4 s off) from ``start``: enough like speech for the analysis."""
    out = []
    for i in range(int(seconds * rate)):
        t = i / rate
        on = t >= start and (t - start) % 1.0 < 0.6
        out.append(level * math.sin(2 * math.pi * freq * t) if on else 0.0)
    return out
