"""Damaged recordings (issue 15): each is a verdict, never a traceback."""

from __future__ import annotations

import json
import os
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from desktop_app.audio import analysis, fixes_for, inspect

from . import gen
from .conftest import check_json, run_cli
from .measure import callrelay, run_measured


def codes(obj: dict[str, object]) -> dict[str, str]:
    return {p["code"]: p["severity"] for p in obj["problems"]}  # type: ignore[attr-defined, index]


def fmt_tag(x: np.ndarray, tag: int) -> bytes:
    """A 16-bit PCM WAV whose 16-byte format chunk names format ``tag`` instead of 1."""
    raw = bytearray(gen.wav_bytes(x))
    assert raw[12:16] == b"fmt " and raw[16:20] == struct.pack("<I", 16)
    raw[20:22] = struct.pack("<H", tag)
    return bytes(raw)


@pytest.mark.parametrize("tag", [0x0000, 0xFFFE], ids=["tag-0", "extensible-in-16-bytes"])
def test_a_wav_with_a_damaged_format_tag_is_a_verdict(capsys: pytest.CaptureFixture[str], folder: Path,
                                                      x: np.ndarray, tag: int) -> None:
    path = folder / "damaged.wav"
    path.write_bytes(fmt_tag(x, tag))
    for analyse in (False, True):
        code, out, err = run_cli(capsys, "check", "--json", *(["--analyse"] if analyse else []), str(path))
        assert code == 1 and "Traceback" not in err, err
        (obj,) = [json.loads(line) for line in out.splitlines()]
        assert codes(obj) == {"unreadable": "error"}
        assert "format" in obj["problems"][0]["message"]
    ins = inspect(path)
    assert fixes_for(ins) == []  # nothing in it can be decoded, so there is nothing to convert


def test_a_wav_in_an_unknown_format_is_judged_not_decoded_into_a_crash(capsys: pytest.CaptureFixture[str],
                                                                        folder: Path, x: np.ndarray) -> None:
    """A format tag FFmpeg has no decoder for: its stream has no codec context."""
    path = folder / "odd.wav"
    path.write_bytes(fmt_tag(x, 0x1234))
    (obj,) = check_json(capsys, path, analyse=True)
    assert obj["uploadable"] is False and "unreadable" in codes(obj)


def test_a_22_byte_wav_prints_no_traceback(folder: Path, tmp_path: Path) -> None:
    path = folder / "stub.wav"
    path.write_bytes(gen.wav_bytes(np.zeros((2, 10), dtype=np.float32))[:22])
    env = dict(os.environ, CALLRELAY_HOME=str(tmp_path / "home"))
    run = run_measured(callrelay("check", "--json", "--analyse", str(path)), timeout=60, env=env)
    assert run.returncode == 1 and run.stderr == "", run.stderr
    obj = json.loads(run.stdout)
    assert codes(obj) == {"truncated": "error"}
    assert "header" in obj["problems"][0]["message"]


def test_inspection_never_raises_when_the_analysis_has_a_bug(folder: Path, x: np.ndarray,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path = gen.write_wav(folder / "fine.wav", x)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug in the analysis")

    monkeypatch.setattr(analysis._State, "add", broken)
    ins = inspect(path)
    assert ins.analysis is None and not ins.uploadable
    assert [(p.code, p.severity) for p in ins.problems] == [("unreadable", "error")]
    assert ins.problems[0].message.endswith(".") and "RuntimeError" not in ins.problems[0].message


@pytest.mark.parametrize("channels,rate", [(300, 8000), (1, 4_000_000_000)], ids=["300-channels", "4-GHz"])
def test_a_header_no_recording_has_is_refused_not_allocated(folder: Path, channels: int, rate: int) -> None:
    """A consistent header with a channel count or rate no recording has, over 200 MB (sparse): the blocks it
    would take (hundreds of MB each) are not allocated; the analysis says why it stops."""
    data = 200 * 2**20
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * channels * 2 % 2**32, channels * 2, 16)
    path = folder / "absurd.wav"
    with open(path, "wb") as fh:
        fh.write(b"RIFF" + struct.pack("<I", 36 + data) + b"WAVEfmt " + struct.pack("<I", 16) + fmt
                 + b"data" + struct.pack("<I", data))
        fh.truncate(44 + data)
    tracemalloc.start()
    ins = inspect(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert ("unreadable", "error") in [(p.code, p.severity) for p in ins.problems]
    assert str(channels if channels > 2 else rate) in " ".join(p.message for p in ins.problems)
    assert peak < 20 * 2**20


def test_an_mp4_track_without_a_sample_description_is_not_uploadable(capsys: pytest.CaptureFixture[str],
                                                                     folder: Path, x: np.ndarray) -> None:
    """The audio track is there but does not say its codec: it used to be judged clean, codec unknown."""
    raw = bytearray(gen.encode(folder / "src.mp4", x, "aac").read_bytes())
    at = raw.index(b"stsd")
    raw[at:at + 4] = b"free"
    path = folder / "nocodec.mp4"
    path.write_bytes(bytes(raw))
    for analyse in (False, True):
        (obj,) = check_json(capsys, path, analyse=analyse)
        assert obj["uploadable"] is False and codes(obj) == {"unreadable": "error"}
        assert "coded" in obj["problems"][0]["message"]


def test_a_file_name_that_is_not_text_still_gives_valid_json(folder: Path, x: np.ndarray, tmp_path: Path) -> None:
    """A name with bytes that are not UTF-8 (a Latin-1 name from an old PBX): escaped, so the line stays JSON."""
    name = os.fsdecode(b"M\xfcller-call.wav")
    path = gen.write_wav(folder / name, x)
    env = dict(os.environ, CALLRELAY_HOME=str(tmp_path / "home"))
    for args in (["--json"], []):
        run = run_measured(callrelay("check", *args, str(path), str(folder / "gone.wav")), timeout=60, env=env)
        assert run.returncode == 1 and run.stderr == "", run.stderr
        run.stdout.encode("utf-8")  # strictly text
        if args:
            found, gone = (json.loads(line) for line in run.stdout.splitlines())
            assert os.fsencode(found["path"]) == os.fsencode(str(path)) and found["uploadable"] is True
            assert gone["problems"][0]["code"] == "unreadable"
        else:
            assert "can be uploaded" in run.stdout
