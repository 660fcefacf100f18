"""`benchmarks/transcribe.py` runs at a toy size (a 6-second call, one round) on the tests' Whisper base and
espeak-ng, prints its lines and a verdict that agrees with its exit code (its timings are not judged here:
the machine's load decides them)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
def test_the_transcription_benchmark_runs_and_its_verdict_is_its_exit_code(whisper_model: Path) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "transcribe.py"), "--minutes", "0.1",
                           "--rounds", "1", "--model", str(whisper_model)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    out = proc.stdout
    lines = out.splitlines()
    assert proc.returncode in (0, 1), proc.stderr
    assert "Traceback" not in proc.stderr
    (call,) = [line for line in lines if line.startswith("call: ")]
    duration = float(re.match(r"call: (\d+\.\d) s, 16-bit PCM stereo 8 kHz", call).group(1))  # type: ignore[union-attr]
    assert 5.5 <= duration <= 6.5, call
    assert any(line.startswith("before: ") and "load average" in line for line in lines), out
    # each side ran once in its own process and heard the caller's words
    for side in ("ours", "faster-whisper"):
        (row,) = [line for line in lines if re.match(rf"\s+round 1 {side}\s", line)]
        words = re.search(r"words (\d+) / (\d+)", row)
        assert words and int(words.group(1)) > 0, row

    def row(label: str) -> list[str]:
        (found,) = [line for line in lines if line.startswith(label)]
        return found[len(label):].split()

    wall_ref, wall_ours = (float(v) for v in row("transcription wall time (s)"))
    rtf_ref, rtf_ours = (float(v) for v in row("RTF per channel")[:2])
    # RTF per channel as the output defines it: wall time / (2 x the call's duration)
    assert rtf_ours == pytest.approx(wall_ours / (2 * duration), rel=0.02, abs=2e-3)
    assert rtf_ref == pytest.approx(wall_ref / (2 * duration), rel=0.02, abs=2e-3)
    ratio = float(row("speed ratio (reference / ours)")[0].rstrip("x"))
    assert ratio == pytest.approx(wall_ref / wall_ours, rel=0.05, abs=0.01)
    peaks = [float(v) for v in row("peak memory, RSS high-water (MB)")]
    assert all(p > 100 for p in peaks), peaks  # a Whisper base model is in each
    met = ratio >= 0.9 and rtf_ours <= 0.15
    assert lines[-1] == ("all goals met" if met else
                         "MISSED: " + "; ".join(name for name, ok in (("speed ratio >= 0.9x", ratio >= 0.9),
                                                                      ("RTF <= 0.15", rtf_ours <= 0.15)) if not ok))
    assert proc.returncode == (0 if met else 1)
