"""The sandbox's own verdict on a fetched recording, independent of the app's audio inspector.

HubSpot's side is judged here with PyAV alone and HubSpot's documented rules (developers.hubspot.com/
docs/api/crm/extensions/recordings-and-transcriptions: WAV, FLAC or MP4; one speaker per channel), so
that when the app's inspector (``desktop_app.audio``) and the sandbox disagree, one of them is wrong
and a test shows it, rather than the sandbox agreeing with the app by asking it.

Beyond those rules, audio a listener would not hear is refused as ``bad_audio``: a file that does
not decode, that stops before the length its header declares, or that is silent on every channel.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SUPPORTED = ("wav", "flac", "mp4")
# A file may decode this much shorter than its header says before it counts as cut off.
TRUNCATION_SLACK_S = 0.25


@dataclass(frozen=True)
class Verdict:
    container: str  # wav, flac, mp4, or "" when none of them
    channels: int | None
    reason: str  # "" (transcribable) or a ``fetcher.REASONS`` code
    detail: str = ""


def sniff_container(head: bytes) -> str:
    """WAV, FLAC or MP4 by their first bytes ("" for anything else)."""
    if len(head) >= 12 and head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return "mp4"
    return ""


def _declared_seconds(path: Path, kind: str) -> float | None:
    """How long the file's own header says the audio is (None: it does not say). A WAV's ``data``
    chunk size or a FLAC's STREAMINFO total samples; PyAV reports what the bytes hold instead."""
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    if kind == "wav" and head[:4] == b"RIFF":
        pos, rate, align = 12, 0, 0
        while pos + 8 <= len(head):
            chunk, size = head[pos:pos + 4], struct.unpack("<I", head[pos + 4:pos + 8])[0]
            if chunk == b"fmt " and pos + 24 <= len(head):
                rate, align = struct.unpack("<I", head[pos + 12:pos + 16])[0], struct.unpack(
                    "<H", head[pos + 20:pos + 22])[0]
            if chunk == b"data":
                streaming = size in (0, 0xFFFFFFFF)  # written before its length was known
                return None if streaming or not rate or not align else size / (rate * align)
            pos += 8 + size + (size & 1)
        return None
    if kind == "flac" and len(head) >= 26:
        info = int.from_bytes(head[18:26], "big")  # STREAMINFO after "fLaC" and the block header
        rate, total = info >> 44, info & ((1 << 36) - 1)
        return total / rate if rate and total else None
    return None


def judge(path: Path) -> Verdict:
    """Whether HubSpot could transcribe the file at ``path``, and if not, why."""
    import av
    import numpy as np

    with open(path, "rb") as fh:
        kind = sniff_container(fh.read(16))
    if kind not in SUPPORTED:
        return Verdict(kind, None, "unsupported_format")
    try:
        with av.open(str(path)) as container:
            stream = next((s for s in container.streams if s.type == "audio"), None)
            if stream is None:
                return Verdict(kind, None, "bad_audio", "no audio stream")
            channels = int(stream.channels)  # type: ignore[attr-defined]
            if channels < 2:
                return Verdict(kind, channels, "one_channel")
            identical, sound, decoded = True, False, 0.0
            for frame in container.decode(stream):
                audio_frame: Any = frame
                data = audio_frame.to_ndarray()
                planes = data if audio_frame.format.is_planar else data.reshape(-1, channels).T
                if identical and not np.array_equal(planes[0], planes[1]):
                    identical = False
                if not sound and np.any(planes):
                    sound = True
                decoded += audio_frame.samples / float(audio_frame.sample_rate or 1)
    except (av.FFmpegError, ValueError) as exc:
        return Verdict(kind, None, "bad_audio", f"does not decode: {exc}")
    declared = _declared_seconds(path, kind)
    if decoded == 0:
        return Verdict(kind, channels, "bad_audio", "no audio frames")
    if declared is not None and decoded + TRUNCATION_SLACK_S < declared:
        return Verdict(kind, channels, "bad_audio", f"cut off: {decoded:.2f} s of the {declared:.2f} s declared")
    if not sound:
        return Verdict(kind, channels, "bad_audio", "silent on every channel")
    if identical:
        return Verdict(kind, channels, "identical_channels")
    return Verdict(kind, channels, "")
