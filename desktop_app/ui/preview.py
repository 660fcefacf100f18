"""Per-channel listening copies for the player's solo buttons (no Qt).

Solo is done by playing a copy of the file that holds only the chosen channel, as a mono 16-bit
WAV of the same length, so the player keeps its position when switching. The copy is made in a
worker (``desktop_app.ui.tasks``) from the audio package's reader and cached in a temporary folder
for the session.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import wave
from pathlib import Path

import numpy as np

from desktop_app.audio.probe import probe
from desktop_app.audio.reader import Reader

_DIR: Path | None = None
_LOCK = threading.Lock()


def _cache_dir() -> Path:
    global _DIR
    with _LOCK:
        if _DIR is None or not _DIR.exists():
            _DIR = Path(tempfile.mkdtemp(prefix="callrelay-preview-"))
        return _DIR


def solo_copy(src: str | os.PathLike[str], channel: int, cancel: threading.Event | None = None) -> Path:
    """A mono WAV holding only ``channel`` (0-based) of ``src``; made once per file and channel."""
    src = Path(src)
    stat = src.stat()
    key = hashlib.sha256(f"{src.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{channel}".encode()).hexdigest()[:16]
    out = _cache_dir() / f"{src.stem}.ch{channel + 1}.{key}.wav"
    if out.exists():
        return out
    pr = probe(src)
    if not pr.readable or not pr.channels:
        raise ValueError(f"{src.name} cannot be read for listening.")
    if channel >= pr.channels:
        raise ValueError(f"{src.name} has no channel {channel + 1}.")
    reader = Reader(pr)
    tmp = out.with_suffix(".part")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(pr.sample_rate or 8000)
        for block in reader.blocks(1 << 16):
            if cancel is not None and cancel.is_set():
                break
            samples = np.clip(block[channel], -1.0, 1.0)
            w.writeframes((samples * 32767).astype("<i2").tobytes())
    if cancel is not None and cancel.is_set():
        tmp.unlink(missing_ok=True)
        raise InterruptedError("cancelled")
    os.replace(tmp, out)
    return out
