"""The probe recording: a tiny WAV in the store that the reachability check fetches through the tunnel."""

from __future__ import annotations

import math
import struct
import tempfile
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit


def write_probe_wav(path: Path, seconds: float = 0.25, rate: int = 8000) -> Path:
    """A short stereo 16-bit WAV (a quiet tone on channel 1, silence on channel 2)."""
    frames = bytearray()
    for i in range(int(seconds * rate)):
        sample = int(800 * math.sin(2 * math.pi * 440 * i / rate))
        frames += struct.pack("<hh", sample, 0)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(bytes(frames))
    return path


def rebase(url: str, public_base: str) -> str:
    """``url``'s path and query under ``public_base`` (so the check goes through the tunnel)."""
    link = urlsplit(url)
    base = urlsplit(public_base.rstrip("/"))
    return urlunsplit((base.scheme, base.netloc, base.path + link.path, link.query, ""))


class _Store(Protocol):
    def add(self, path: Path) -> Any: ...


class _Server(Protocol):
    def make_link(self, sha256: str) -> str: ...


def probe_link_factory(store: _Store, server: _Server) -> Callable[[str], str]:
    """Add the probe recording to ``store`` and return ``base -> signed link under base``.

    A fresh link is made for each check, so links that expire never fail the check.
    """
    with tempfile.TemporaryDirectory(prefix="callrelay-probe-") as tmp:  # the store keeps its own copy
        stored = store.add(write_probe_wav(Path(tmp) / "callrelay-probe.wav"))
    sha = str(stored.sha256)

    def probe_url(public_base: str) -> str:
        return rebase(server.make_link(sha), public_base)

    return probe_url
