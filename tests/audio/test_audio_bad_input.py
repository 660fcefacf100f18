"""Bad input: each gets its verdict and a message, never a traceback, and nothing is written beside it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from desktop_app.audio import convert, fixes_for, inspect

from . import gen
from .conftest import ROOT_DIR, check_json


def listing(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in folder.iterdir()}


def verdict(capsys: pytest.CaptureFixture[str], path: Path, *, analyse: bool = True,
            blocked: bool = True) -> dict[str, object]:
    """Run ``callrelay check --json`` on one file and return its object; the folder must be unchanged."""
    before = listing(path.parent) if path.parent.is_dir() else None
    (obj,) = check_json(capsys, path, analyse=analyse)
    if before is not None:
        assert listing(path.parent) == before, "check wrote something beside the original"
    assert obj["uploadable"] is (not blocked)
    for problem in obj["problems"]:
        assert problem["message"].endswith(".") and "Traceback" not in problem["message"]
    return obj


def codes(obj: dict[str, object]) -> list[str]:
    return [p["code"] for p in obj["problems"]]  # type: ignore[attr-defined, index]


def test_a_directory(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    obj = verdict(capsys, folder)
    assert codes(obj) == ["unreadable"] and "folder" in obj["problems"][0]["message"]  # type: ignore[index]


def test_a_missing_file(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    obj = verdict(capsys, folder / "gone.wav")
    assert codes(obj) == ["unreadable"] and "no file" in obj["problems"][0]["message"]  # type: ignore[index]


def test_a_zero_byte_file(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    path = folder / "empty.wav"
    path.touch()
    obj = verdict(capsys, path)
    assert codes(obj) == ["empty"] and obj["size_bytes"] == 0


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_random_bytes_named_wav(capsys: pytest.CaptureFixture[str], folder: Path, seed: int) -> None:
    path = folder / "noise.wav"
    path.write_bytes(np.random.default_rng(seed).bytes(50_000))
    obj = verdict(capsys, path)
    assert codes(obj) == ["unreadable"]


def test_a_wav_whose_header_claims_more_than_there_is(capsys: pytest.CaptureFixture[str], folder: Path,
                                                      x: np.ndarray) -> None:
    full = gen.wav_bytes(x)
    path = folder / "cut.wav"
    path.write_bytes(full[: 44 + 8000 * 4 * 3])  # 3 of 4 seconds
    obj = verdict(capsys, path)
    assert codes(obj) == ["truncated"]
    assert obj["duration_s"] == pytest.approx(3.0, abs=0.01)
    assert "4.0 s" in obj["problems"][0]["message"] and "3.0 s" in obj["problems"][0]["message"]  # type: ignore[index]


def test_a_wav_whose_data_size_hides_audio(capsys: pytest.CaptureFixture[str], folder: Path, x: np.ndarray) -> None:
    path = folder / "sizes.wav"
    path.write_bytes(gen.wav_bytes(x, data_size=8000 * 4))  # the header says 1 s, the file holds 4 s
    obj = verdict(capsys, path)
    assert codes(obj) == ["truncated"]
    assert obj["duration_s"] == pytest.approx(4.0, abs=0.01)


def test_a_wav_whose_header_was_never_finished(capsys: pytest.CaptureFixture[str], folder: Path,
                                              x: np.ndarray) -> None:
    """Sizes left at 0 by a recorder that stopped; the audio bytes after the header even look like a chunk."""
    raw = bytearray(gen.wav_bytes(x))
    data_at = raw.index(b"data") + 4
    raw[data_at:data_at + 4] = bytes(4)
    raw[data_at + 4:data_at + 8] = b"LIST"  # audio that happens to read as a chunk name...
    path = folder / "unfinished.wav"
    path.write_bytes(bytes(raw))
    obj = verdict(capsys, path)
    assert codes(obj) == ["truncated"]
    assert obj["duration_s"] == pytest.approx(4.0, abs=0.01)


def test_a_wav_with_a_wrong_chunk_size(capsys: pytest.CaptureFixture[str], folder: Path, x: np.ndarray) -> None:
    raw = bytearray(gen.wav_bytes(x))
    assert raw[12:16] == b"fmt "
    raw[16:20] = (40).to_bytes(4, "little")  # the format chunk claims 40 bytes instead of 16
    path = folder / "chunk.wav"
    path.write_bytes(bytes(raw))
    obj = verdict(capsys, path)
    assert codes(obj) == ["unreadable"]
    assert "chunk" in obj["problems"][0]["message"]  # type: ignore[index]


def test_a_flac_with_a_damaged_frame(capsys: pytest.CaptureFixture[str], folder: Path, x: np.ndarray) -> None:
    good = gen.encode(folder / "good.flac", x, "flac").read_bytes()
    raw = bytearray(good)
    middle = len(raw) // 2
    raw[middle:middle + 300] = np.random.default_rng(5).integers(0, 256, 300, dtype=np.uint8).tobytes()
    path = folder / "damaged.flac"
    path.write_bytes(bytes(raw))
    # the header is intact: the damage shows when the audio is decoded; players skip it, so it asks the agent
    obj = verdict(capsys, path, blocked=False)
    assert codes(obj) == ["unreadable"]
    ins = inspect(path)
    damaged = [p for p in ins.problems if p.code == "unreadable"]
    assert damaged[0].severity == "warning" and "damaged" in damaged[0].message
    assert ins.analysis is not None and ins.analysis.decode_errors >= 1
    assert ins.analysis.duration_s == pytest.approx(4.0, abs=0.05)  # the lost stretch is kept as silence
    # header-only, the same file looks fine: the damage needs --analyse
    (plain,) = check_json(capsys, path)
    assert plain["uploadable"] is True


def test_a_flac_cut_short(capsys: pytest.CaptureFixture[str], folder: Path, x: np.ndarray) -> None:
    good = gen.encode(folder / "good.flac", x, "flac").read_bytes()
    path = folder / "cut.flac"
    path.write_bytes(good[: len(good) * 2 // 3])
    obj = verdict(capsys, path, analyse=False)  # found from the last frame's header, without decoding
    assert codes(obj) == ["truncated"]
    assert 1.5 < obj["duration_s"] < 3.5  # type: ignore[operator]


def test_an_mp4_with_no_audio_track(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    path = gen.video_only_mp4(folder / "screen.mp4")
    obj = verdict(capsys, path)
    assert codes(obj) == ["no-audio-stream"]


@pytest.mark.parametrize("faststart", [False, True])
def test_an_mp4_cut_short(capsys: pytest.CaptureFixture[str], folder: Path, x: np.ndarray, faststart: bool) -> None:
    src = gen.encode(folder / "full.mp4", x, "aac")
    data = src.read_bytes()
    if faststart:  # index first, like a streaming-friendly file: the cut falls in the audio data
        ffmpeg = shutil.which("ffmpeg")
        assert ffmpeg
        moved = folder / "fast.mp4"
        subprocess.run([ffmpeg, "-v", "error", "-y", "-i", str(src), "-c", "copy", "-movflags", "+faststart",
                        str(moved)], check=True)
        data = moved.read_bytes()
        assert data.index(b"moov") < data.index(b"mdat")
        moved.unlink()
    src.unlink()
    path = folder / "cut.mp4"
    path.write_bytes(data[: len(data) * 2 // 3])
    obj = verdict(capsys, path)
    assert codes(obj)[0] == "truncated"
    ins = inspect(path)
    if not faststart:  # no index: nothing can decode it, so no fix is offered
        assert fixes_for(ins) == []
    else:  # the index is there: what was recorded can be converted, and lasts what can be decoded
        assert codes(obj) == ["truncated"]
        assert ins.probe.duration_s == pytest.approx(obj["duration_s"]) and 1.5 < obj["duration_s"] < 3.5
        assert "convert" in [f.kind for f in fixes_for(ins)]
        out = convert(path)
        again = inspect(out)
        assert again.uploadable and again.problems == []
        assert again.probe.duration_s == pytest.approx(ins.probe.duration_s, abs=0.1)


def test_a_10_gb_sparse_file(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    path = folder / "huge.wav"
    with open(path, "wb") as fh:
        fh.truncate(10 * 2**30)
    obj = verdict(capsys, path)
    assert codes(obj) == ["unreadable"] and obj["size_bytes"] == 10 * 2**30


def test_a_file_without_read_permission(folder: Path, x: np.ndarray, tmp_path: Path) -> None:
    """As root, permission bits do not stop reads: the check runs without CAP_DAC_OVERRIDE to really fail."""
    path = gen.write_wav(folder / "locked.wav", x)
    path.chmod(0)
    cmd = [sys.executable, "-m", "desktop_app", "check", "--json", str(path)]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        assert setpriv, "setpriv (util-linux) is needed to drop root's file-access capabilities"
        drop = "-dac_override,-dac_read_search"
        cmd = [setpriv, "--bounding-set", drop, "--inh-caps", drop, *cmd]
    env = dict(os.environ, CALLRELAY_HOME=str(tmp_path / "home"))
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT_DIR, env=env, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    obj = json.loads(proc.stdout)
    assert [p["code"] for p in obj["problems"]] == ["unreadable"]
    assert "permission" in obj["problems"][0]["message"]
    assert sorted(p.name for p in folder.iterdir()) == ["locked.wav"]
