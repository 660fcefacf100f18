"""Damaged recordings (issue 15): each is a verdict, never a traceback, and memory stays bounded
whatever follows the audio."""

from __future__ import annotations

import json
import os
import re
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from desktop_app.audio import analysis, fixes_for, inspect, probe
from desktop_app.audio.pcm import PcmSource

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


# --- FLAC frames, and data after the audio -----------------------------------------------------------

def _flac(folder: Path, x: np.ndarray) -> bytes:
    return gen.encode(folder / "src.flac", x, "flac").read_bytes()



@pytest.mark.parametrize("extra", [10_000, 3_000_000], ids=["10-KB", "3-MB"])
def test_random_bytes_after_a_flac_are_a_warning(capsys: pytest.CaptureFixture[str], folder: Path,
                                                 x: np.ndarray, extra: int) -> None:
    path = folder / "joined.flac"
    path.write_bytes(_flac(folder, x) + np.random.default_rng(7).bytes(extra))
    for analyse in (False, True):
        (obj,) = check_json(capsys, path, analyse=analyse)
        assert codes(obj) == {"trailing-data": "warning"}, obj
        assert obj["uploadable"] is True and obj["duration_s"] == pytest.approx(4.0, abs=0.01)
    message = obj["problems"][0]["message"]  # type: ignore[index]
    assert "after" in message and message.endswith(".")
    assert "convert" in [f.kind for f in fixes_for(inspect(path))]



def test_a_clean_flac_with_tags_at_its_end_has_no_trailing_data(capsys: pytest.CaptureFixture[str], folder: Path,
                                                                  x: np.ndarray) -> None:
    """An ID3v1 tag (128 bytes) after the audio is a tag players know, not stray data."""
    path = folder / "tagged.flac"
    path.write_bytes(_flac(folder, x) + b"TAG" + b"Renewal call".ljust(125, b"\x00"))
    (obj,) = check_json(capsys, path, analyse=True)
    assert obj["problems"] == [] and obj["uploadable"] is True



@pytest.mark.slow
def test_zeros_after_a_flac_keep_analysis_memory_bounded(folder: Path, x: np.ndarray, tmp_path: Path) -> None:
    """300 MB of zero bytes after 4 s of FLAC (a sparse file): FFmpeg's FLAC parser used to buffer them all
    (690 MB at the peak); the analysis now stops reading where the audio ends."""
    path = folder / "padded.flac"
    audio = _flac(folder, x)
    with open(path, "wb") as fh:
        fh.write(audio)
        fh.truncate(len(audio) + 300 * 2**20)
    env = dict(os.environ, CALLRELAY_HOME=str(tmp_path / "home"))
    small = folder / "small.flac"
    small.write_bytes(audio)
    base = run_measured(callrelay("check", "--json", "--analyse", str(small)), timeout=60, env=env)
    run = run_measured(callrelay("check", "--json", "--analyse", str(path)), timeout=60, env=env)
    assert run.returncode == 0 and run.stderr == "", run.stderr
    obj = json.loads(run.stdout)
    assert codes(obj) == {"trailing-data": "warning"}
    assert obj["duration_s"] == pytest.approx(4.0, abs=0.01)
    assert run.peak_rss_mb < base.peak_rss_mb + 40, (base.peak_rss_mb, run.peak_rss_mb)



def test_a_hole_of_zeros_inside_a_flac_is_skipped_not_buffered(folder: Path, x: np.ndarray) -> None:
    """4 MB of zeros over the middle of the frames: decoding goes on after them (the lost stretch counts as
    damaged and is kept as silence), as it did before reading was bounded."""
    audio = _flac(folder, gen.call(20.0))
    middle = len(audio) // 2
    path = folder / "holed.flac"
    path.write_bytes(audio[:middle] + bytes(4 * 2**20) + audio[middle + 3000:])
    ins = inspect(path)
    assert ins.analysis is not None and ins.analysis.duration_s == pytest.approx(20.0, abs=0.1)
    assert ("unreadable", "warning") in [(p.code, p.severity) for p in ins.problems]



def test_a_flac_frame_damaged_inside_is_found_not_decoded_into_noise(folder: Path, x: np.ndarray) -> None:
    """One byte changed inside a frame, its header intact: FFmpeg decodes such a frame into wrong samples unless
    it checks the frame's CRC-16; now the frame is dropped, its time kept as silence, and counted."""
    audio = _flac(folder, x)
    sync = audio[audio.index(b"\xff\xf8"):][:3]  # sync code, block size and rate: the same in every frame
    frames = [m.start() for m in re.finditer(re.escape(sync), audio)]
    start = next(a for a, b in zip(frames, frames[1:], strict=False) if a > len(audio) // 2 and b - a > 200)
    path = folder / "damaged.flac"
    path.write_bytes(audio[:start + 100] + np.random.default_rng(3).bytes(1) + audio[start + 101:])
    ins = inspect(path)
    assert [(p.code, p.severity) for p in ins.problems] == [("unreadable", "warning")]
    assert ins.analysis is not None and ins.analysis.decode_errors == 1
    assert ins.analysis.duration_s == pytest.approx(4.0, abs=0.01)



def test_a_flac_missing_the_end_of_its_last_frame_is_not_clean(folder: Path, x: np.ndarray) -> None:
    """Cut inside the last frame: its header is whole (so the probe sees nothing), but the analysis decodes
    fewer samples than STREAMINFO promises."""
    path = folder / "cut.flac"
    path.write_bytes(_flac(folder, x)[:-8])
    assert inspect(path, analyse=False).problems == []
    ins = inspect(path)
    assert [(p.code, p.severity) for p in ins.problems] == [("unreadable", "warning")]



def test_a_flac_with_zeros_after_it_plays_to_its_end(folder: Path, x: np.ndarray) -> None:
    path = folder / "padded.flac"
    with open(path, "wb") as fh:
        fh.write(_flac(folder, x))
        fh.truncate(fh.tell() + 50 * 2**20)
    with PcmSource(path) as src:
        played = sum(len(chunk) for chunk in src.chunks()) // src.frame_bytes
        assert played == x.shape[1] and src.errors == 0
        src.seek(1000)
        assert src.read() and src.position_ms == pytest.approx(1050)



def test_data_after_an_mp4_is_a_warning_not_damage(capsys: pytest.CaptureFixture[str], folder: Path,
                                                   x: np.ndarray) -> None:
    audio = gen.encode(folder / "src.mp4", x, "aac").read_bytes()
    for name, extra in (("zeros", bytes(50_000)), ("random", np.random.default_rng(3).bytes(50_000))):
        path = folder / f"{name}.mp4"
        path.write_bytes(audio + extra)
        for analyse in (False, True):
            (obj,) = check_json(capsys, path, analyse=analyse)
            assert codes(obj) == {"trailing-data": "warning"}, obj
            assert obj["codec"] == "aac" and obj["duration_s"] == pytest.approx(4.0, abs=0.05)



def test_stray_bytes_after_a_wav_data_chunk_are_a_warning(capsys: pytest.CaptureFixture[str], folder: Path,
                                                          x: np.ndarray) -> None:
    """Too few to be hidden audio (under 0.1 s) and not a chunk: data after the audio."""
    path = folder / "junk.wav"
    path.write_bytes(gen.wav_bytes(x) + b"\x01\x02\x03 not a chunk")
    (obj,) = check_json(capsys, path, analyse=True)
    assert codes(obj) == {"trailing-data": "warning"}
    assert obj["duration_s"] == pytest.approx(4.0)
    assert probe(path).data_bytes == x.shape[1] * 4  # the stray bytes are not read as audio
