"""``callrelay --self-test`` from source: the real command in a subprocess, with its own data directory.

The bundle's run of the same command is ``make package-test`` (scripts/package_test.sh).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from desktop_app.ui import selftest

ROOT = Path(__file__).resolve().parent.parent
LINE = re.compile(r"^(ok [^:]+|FAIL [^:]+: .+)$")


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    full = dict(os.environ if env is None else env)
    full.pop("QT_QPA_PLATFORM", None)  # the self-test must choose offscreen itself when there is no display
    full.pop("DISPLAY", None)
    full.pop("WAYLAND_DISPLAY", None)
    return subprocess.run([sys.executable, "-m", "desktop_app", *args], cwd=ROOT, env=full, text=True,
                          capture_output=True, timeout=timeout)


def lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line]


def test_every_check_passes_and_prints_one_line_each(callrelay_home: Path) -> None:
    listed = lines(run("self-test", "--list").stdout)
    done = run("--self-test")
    out = lines(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert all(LINE.match(line) for line in out), out
    assert out == ["ok samples"] + [f"ok {name}" for name in listed]
    for fmt in ("wav", "flac", "mp4"):
        assert f"ok probe sample-call.{fmt}" in out and f"ok analyse sample-call.{fmt}" in out
    for name in ("keyring", "server range", "sandbox submission", "child environment", "window", "player"):
        assert f"ok {name}" in out
    # the checks ran in a throw-away data directory: the caller's is untouched, and no scratch one is left
    assert not any(callrelay_home.iterdir()), list(callrelay_home.iterdir())


def test_no_keyring_fails_the_keyring_check_and_says_which_backend(callrelay_home: Path) -> None:
    env = dict(os.environ, PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    done = run("self-test", "--only", "keyring", "--only", "probe", env=env)
    out = lines(done.stdout)
    assert done.returncode == 1
    assert out[0].startswith("FAIL keyring: No keyring is reachable on this desktop session: install gnome-keyring")
    assert out[0].endswith("(backend keyring.backends.fail.Keyring)"), out[0]
    assert "ok probe sample-call.wav" in out  # the other checks still run


def test_a_cut_recording_fails_its_probe_and_analysis(tmp_path: Path) -> None:
    for sample in selftest.find_samples(selftest.samples_dir()):
        shutil.copy(sample, tmp_path / sample.name)
    cut = tmp_path / "sample-call.wav"
    cut.write_bytes(cut.read_bytes()[:6000])  # the header still promises 3 s
    done = run("self-test", "--samples", str(tmp_path), "--only", "probe", "--only", "analyse")
    out = lines(done.stdout)
    assert done.returncode == 1
    assert any(line.startswith("FAIL probe sample-call.wav: ") and "cut off" in line for line in out), out
    assert any(line.startswith("FAIL analyse sample-call.wav: decoded 0.") for line in out), out
    assert "ok probe sample-call.flac" in out and "ok analyse sample-call.mp4" in out


def test_a_missing_format_fails_the_samples_check(tmp_path: Path) -> None:
    shutil.copy(selftest.samples_dir() / "sample-call.wav", tmp_path / "only.wav")
    done = run("self-test", "--samples", str(tmp_path), timeout=180)
    out = lines(done.stdout)
    assert done.returncode == 1
    assert out[0] == f"FAIL samples: no FLAC/MP4 sample recording in {tmp_path}"


def test_an_unknown_check_is_a_usage_error() -> None:
    done = run("self-test", "--only", "nonsense")
    assert done.returncode == 2 and "no check named nonsense" in done.stderr and done.stdout == ""


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp4"])
def test_the_bundled_samples_are_stereo_with_one_speaker_a_side(fmt: str) -> None:
    from desktop_app import audio

    found = audio.inspect(selftest.samples_dir() / f"sample-call.{fmt}", analyse=True)
    assert found.uploadable and not found.problems, found.problems
    assert found.analysis is not None and found.analysis.first_speaker == 1
    assert found.analysis.crosstalk_db is not None and found.analysis.crosstalk_db <= -60
    assert 2.9 < found.analysis.duration_s < 3.1
