#!/usr/bin/env python3
"""Make the bundled resources: sample recordings (WAV, FLAC, MP4) and the app icon.

The samples are what the sandbox demo and ``callrelay --self-test`` inspect and submit: 3 seconds of
16 kHz stereo with one speaker per channel (the agent on the left, the customer on the right, taking
turns), written with PyAV. The icon is drawn with NumPy and written as PNG, ICO and ICNS (each holding
PNG images) so that no image library is needed. Run it again after changing it and commit the output:

    .venv/bin/python scripts/make_samples.py
"""

from __future__ import annotations

import struct
import zlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESOURCES = ROOT / "resources"
RATE = 16_000
SECONDS = 3.0

# (path, container format, codec, sample format)
SAMPLES = (
    ("samples/sample-call.wav", "wav", "pcm_s16le", "s16"),
    ("samples/sample-call.flac", "flac", "flac", "s16"),
    ("samples/sample-call.mp4", "mp4", "aac", "fltp"),
)


def voice(t: np.ndarray, f0: float, seed: int) -> np.ndarray:
    """A voice-like sound: a few harmonics of a wandering pitch, with syllable-rate loudness."""
    rng = np.random.default_rng(seed)
    pitch = f0 * (1 + 0.06 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6)))
    phase = 2 * np.pi * np.cumsum(pitch) / RATE
    sound = sum(np.sin(k * phase) / k for k in range(1, 6))
    syllables = 0.55 + 0.45 * np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, 6)) ** 2
    return np.asarray(sound * syllables, dtype=np.float64)


def turns(t: np.ndarray, spans: list[tuple[float, float]]) -> np.ndarray:
    """1 inside the spans (with 20 ms fades), 0 elsewhere."""
    gate = np.zeros_like(t)
    for start, end in spans:
        gate = np.maximum(gate, np.clip(np.minimum(t - start, end - t) / 0.02, 0, 1))
    return gate


def conversation() -> np.ndarray:
    """(2, frames) float32: the agent speaks on the left, the customer answers on the right."""
    t = np.arange(int(RATE * SECONDS)) / RATE
    left = voice(t, 125.0, 1) * turns(t, [(0.15, 1.25), (2.25, 2.85)])
    right = voice(t, 210.0, 2) * turns(t, [(1.35, 2.15)])
    return (0.3 * np.stack([left, right])).astype(np.float32)


def write_audio(path: Path, fmt: str, codec: str, sample_fmt: str, pcm: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=RATE, layout="stereo")
        stream.format = sample_fmt  # type: ignore[attr-defined]
        step = 1024
        for start in range(0, pcm.shape[1], step):
            block = pcm[:, start:start + step]
            if sample_fmt == "s16":
                data = (np.clip(block, -1, 1) * 32767).astype("<i2").T.reshape(1, -1)
                frame = av.AudioFrame.from_ndarray(data, format="s16", layout="stereo")
            else:
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block), format="fltp", layout="stereo")
            frame.sample_rate = RATE
            frame.pts = start
            frame.time_base = Fraction(1, RATE)
            for packet in stream.encode(frame):  # type: ignore[attr-defined]
                out.mux(packet)
        for packet in stream.encode(None):  # type: ignore[attr-defined]
            out.mux(packet)


# -- the icon ------------------------------------------------------------------------------------
def draw_icon(size: int) -> np.ndarray:
    """RGBA: a rounded orange square with two white waveform lanes (the two legs of a call)."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    r = size * 0.2
    cx = np.clip(x, r, size - r)
    cy = np.clip(y, r, size - r)
    inside = np.clip(r - np.hypot(x - cx, y - cy) + 0.5, 0, 1)
    img = np.zeros((size, size, 4))
    img[..., 0], img[..., 1], img[..., 2] = 0.96, 0.48, 0.18
    img[..., 3] = inside
    bars = 9
    for lane, (centre, scale) in enumerate(((0.36, 1.0), (0.66, 0.7))):
        for i in range(bars):
            height = scale * size * (0.05 + 0.1 * abs(np.sin(1.3 * i + 2 * lane)))
            left = size * (0.18 + i * 0.072)
            mask = ((x >= left) & (x < left + size * 0.045)
                    & (np.abs(y - size * centre) < height)).astype(np.float64)
            img[..., :3] = img[..., :3] * (1 - mask[..., None]) + mask[..., None]
    return np.asarray(np.round(img * 255), dtype=np.uint8)


def png(rgba: np.ndarray) -> bytes:
    h, w = rgba.shape[:2]
    raw = b"".join(b"\x00" + rgba[row].tobytes() for row in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def ico(images: dict[int, bytes]) -> bytes:
    """An ICO whose entries are PNGs (Windows Vista and later)."""
    head = struct.pack("<HHH", 0, 1, len(images))
    offset = 6 + 16 * len(images)
    entries, blobs = b"", b""
    for size, data in sorted(images.items()):
        entries += struct.pack("<BBBBHHII", size % 256, size % 256, 0, 0, 1, 32, len(data), offset + len(blobs))
        blobs += data
    return head + entries + blobs


def icns(images: dict[int, bytes]) -> bytes:
    """An ICNS with PNG entries (ic07 128, ic08 256, ic09 512)."""
    kinds = {128: b"ic07", 256: b"ic08", 512: b"ic09"}
    body = b"".join(kinds[s] + struct.pack(">I", 8 + len(d)) + d for s, d in sorted(images.items()) if s in kinds)
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def main() -> None:
    pcm = conversation()
    for rel, fmt, codec, sample_fmt in SAMPLES:
        write_audio(RESOURCES / rel, fmt, codec, sample_fmt, pcm)
    icons = RESOURCES / "icons"
    icons.mkdir(parents=True, exist_ok=True)
    pngs = {s: png(draw_icon(s)) for s in (16, 32, 48, 128, 256, 512)}
    (icons / "callrelay.png").write_bytes(pngs[256])
    (icons / "callrelay.ico").write_bytes(ico({s: pngs[s] for s in (16, 32, 48, 256)}))
    (icons / "callrelay.icns").write_bytes(icns({s: pngs[s] for s in (128, 256, 512)}))
    for path in sorted(RESOURCES.rglob("*")):
        if path.is_file():
            print(f"{path.relative_to(ROOT)}  {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
