"""Audio for the sync tests: a two-speaker call as a 16-bit stereo WAV (caller on channel 1)."""

from __future__ import annotations

import json
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np

from desktop_app.testing import CRASH_ENV


def speaker(seconds: float, rate: int, start: float, freq: float, seed: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(seed)
    envelope = (((t - start) % 0.9) < 0.5) & (t >= start)
    tone = np.sin(2 * np.pi * freq * t) + 0.3 * np.sin(2 * np.pi * 2.1 * freq * t)
    return (0.4 * tone * envelope + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def write_call(path: Path, seconds: float = 3.0, rate: int = 8000, *, stereo: bool = True, seed: int = 0) -> Path:
    """A call WAV; ``seed`` makes each file's bytes different (each its own recording)."""
    a = speaker(seconds, rate, 0.2, 220 + seed, seed + 1)
    b = speaker(seconds, rate, 0.9, 340 + seed, seed + 2)
    data = np.stack([a, b]) if stereo else a[None, :]
    pcm = (np.clip(data.T, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(data.shape[0])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


def callrelay(env: dict[str, str], *args: str, crash: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real ``callrelay`` command (``python -m desktop_app``) in a subprocess."""
    if crash:
        env = {**env, CRASH_ENV: crash}
    return subprocess.run([sys.executable, "-m", "desktop_app", *args], env=env, capture_output=True, text=True,
                          timeout=180)


def history(env: dict[str, str]) -> list[dict[str, object]]:
    out = callrelay(env, "history", "--json")
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
