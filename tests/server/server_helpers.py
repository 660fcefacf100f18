"""Helpers for the recording-server tests: generated audio, a running server, raw HTTP."""

from __future__ import annotations

import os
import socket
import time
import wave
from fractions import Fraction
from pathlib import Path

import numpy as np

SIGNING_KEY = "test-signing-key"
CLIENT_SECRET = "test-client-secret"


def tone(seconds: float, rate: int, channels: int = 2) -> np.ndarray:
    """Int16 samples: a different tone on each channel, with a little noise so nothing compresses away."""
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(7)
    chans = [0.4 * np.sin(2 * np.pi * (330 + 110 * c) * t) + 0.02 * rng.standard_normal(t.size) for c in range(channels)]
    return (np.stack(chans, axis=1) * 32767).astype(np.int16)


def write_wav(path: Path, seconds: float = 2.0, rate: int = 8000, channels: int = 2) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(tone(seconds, rate, channels).tobytes())
    return path


def write_encoded(path: Path, codec: str, seconds: float = 2.0, rate: int = 44100) -> Path:
    """FLAC (codec "flac", .flac) or AAC in MP4 (codec "aac", .mp4), encoded with PyAV."""
    import av

    samples = tone(seconds, rate)
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate)
        stream.layout = "stereo"
        if codec == "aac":
            stream.bit_rate = 128_000
        frame_size = 1024
        pts = 0
        for start in range(0, len(samples), frame_size):
            chunk = np.ascontiguousarray(samples[start : start + frame_size].reshape(1, -1))  # interleaved
            frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout="stereo")
            frame.sample_rate = rate
            frame.pts = pts
            frame.time_base = Fraction(1, rate)
            pts += frame.samples
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def random_file(path: Path, size: int, seed: int = 1) -> Path:
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes())
    return path


def raw_request(port: int, data: bytes, *, timeout: float = 5.0, read_all: bool = True) -> bytes:
    """Send ``data`` as is and read until the server closes (or ``timeout``)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                if not read_all:
                    break
        except TimeoutError:
            pass
        return b"".join(chunks)


def wait_until(check: object, seconds: float = 3.0) -> bool:
    """Whether ``check()`` came true within ``seconds`` (asked every 20 ms)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def fds_open() -> int:
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else -1


def cpus() -> list[int]:
    """The CPUs this process may run on."""
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]


def from_each_cpu(count: int) -> list[int]:
    """``count`` CPUs, taking each CPU in turn: new connections made from them reach every serving process."""
    available = cpus()
    return [available[i % len(available)] for i in range(count)]


class on_cpu:  # noqa: N801 - used like a function: `with on_cpu(1): ...`
    """Runs the calling thread on ``cpu`` only, inside the block (Linux), so its new connections come
    in on that CPU: with worker processes steered by CPU, that decides which process serves them."""

    def __init__(self, cpu: int) -> None:
        self.cpu = cpu
        self.before: set[int] = set()

    def __enter__(self) -> None:
        if hasattr(os, "sched_setaffinity"):
            self.before = os.sched_getaffinity(0)
            os.sched_setaffinity(0, {self.cpu})

    def __exit__(self, *exc: object) -> None:
        if self.before:
            os.sched_setaffinity(0, self.before)
