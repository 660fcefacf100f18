"""Every verdict code, from files made to deserve it; clean files get none."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from desktop_app.audio import CODES, fixes_for, inspect

from . import gen


def problems(path: Path, *, analyse: bool = True) -> dict[str, str]:
    ins = inspect(path, analyse=analyse)
    assert ins.uploadable == all(p.severity != "error" for p in ins.problems)
    found = {p.code: p.severity for p in ins.problems}
    for p in ins.problems:
        assert p.code in CODES and p.severity in ("error", "warning", "info") and p.message
    return found


@pytest.mark.parametrize("make", [
    lambda d, x: gen.write_wav(d / "a.wav", x),
    lambda d, x: gen.write_wav(d / "a.wav", x, bits=24, kind="extensible"),
    lambda d, x: gen.write_wav(d / "a.wav", x, rf64=True),
    lambda d, x: gen.encode(d / "a.flac", x, "flac"),
    lambda d, x: gen.encode(d / "a.mp4", x, "aac"),
    lambda d, x: gen.encode(d / "a.m4a", x, "alac"),
], ids=["wav16", "wav24-extensible", "rf64", "flac", "mp4-aac", "m4a-alac"])
def test_clean_recordings_have_no_problems(make, folder: Path, x: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    path = make(folder, x)
    assert problems(path) == {}
    ins = inspect(path)
    assert ins.uploadable and ins.analysis is not None
    assert [f.kind for f in fixes_for(ins)] == ["swap"]
    full = json.loads(json.dumps(ins.to_full_dict()))  # what the GUI and logs get
    assert full["uploadable"] is True and len(full["analysis"]["peaks"]) == 2
    assert full["probe"]["codec"] == ins.probe.codec


@pytest.mark.parametrize("encoding,name", [("mp3", "a.mp3"), ("opus", "a.ogg"), ("webm", "a.webm"), ("amr", "a.amr")])
def test_inputs_that_must_be_converted(encoding: str, name: str, folder: Path, x: np.ndarray) -> None:
    path = gen.encode(folder / name, x[:1] if encoding == "amr" else x, encoding)
    found = problems(path)
    assert found["unsupported-format"] == "error"
    ins = inspect(path)
    message = next(p.message for p in ins.problems if p.code == "unsupported-format")
    assert "FLAC" in message and "WAV" in message
    assert {f.fmt for f in fixes_for(ins) if f.kind == "convert"} == {"flac", "wav"}


def test_gsm_wav_must_be_converted(folder: Path, x: np.ndarray) -> None:
    found = problems(gen.gsm_wav(folder / "asterisk.wav", x))
    assert found == {"unsupported-format": "error", "mono": "warning"}


@pytest.mark.parametrize("kind", ["mulaw", "alaw"])
def test_g711_wav_is_a_warning(kind: str, folder: Path, x: np.ndarray) -> None:
    assert problems(gen.write_wav(folder / "a.wav", x, kind=kind)) == {"unsupported-format": "warning"}


def test_mp4_with_video_is_a_warning(folder: Path, x: np.ndarray) -> None:
    assert problems(gen.encode(folder / "a.mp4", x, "aac", video=True)) == {"unsupported-format": "warning"}


def test_extension_mismatch(folder: Path, x: np.ndarray) -> None:
    found = problems(gen.encode(folder / "really-flac.wav", x, "flac"))
    assert found == {"extension-mismatch": "warning"}


def test_mono(folder: Path, x: np.ndarray) -> None:
    path = gen.write_wav(folder / "a.wav", x[:1])
    assert problems(path) == {"mono": "warning"}
    assert "merge" in [f.kind for f in fixes_for(inspect(path))]


def test_identical_channels(folder: Path, x: np.ndarray) -> None:
    path = gen.write_wav(folder / "a.wav", np.stack([x[0], x[0]]))
    assert problems(path) == {"identical-channels": "warning"}
    assert problems(path, analyse=False) == {}  # it takes the samples to see it
    kinds = [f.kind for f in fixes_for(inspect(path))]
    assert "merge" in kinds and "swap" not in kinds


def test_identical_channels_survive_lossy_coding(folder: Path, x: np.ndarray) -> None:
    assert problems(gen.encode(folder / "a.mp4", np.stack([x[0], x[0]]), "aac")) == {"identical-channels": "warning"}


@pytest.mark.parametrize("silent", [1, 2])
def test_silent_channel(silent: int, folder: Path, x: np.ndarray) -> None:
    y = x.copy()
    y[silent - 1] = 0.0
    ins = inspect(gen.write_wav(folder / "a.wav", y))
    assert {p.code for p in ins.problems} == {"silent-channel"}
    assert ins.analysis is not None and ins.analysis.silent_channels == [silent]
    assert f"hannel {silent}" in ins.problems[0].message


def test_too_many_channels(folder: Path, x: np.ndarray) -> None:
    four = np.concatenate([x, x[::-1] * 0.5])
    assert problems(gen.write_wav(folder / "a.wav", four, kind="extensible")) == {"too-many-channels": "warning"}


def test_very_short(folder: Path) -> None:
    y = gen.call(1.5, caller_start=0.1, recipient_start=0.3)
    assert problems(gen.write_wav(folder / "a.wav", y)) == {"very-short": "warning"}


def test_low_sample_rate(folder: Path) -> None:
    y = gen.call(4.0, rate=6000)
    assert problems(gen.write_wav(folder / "a.wav", y, rate=6000)) == {"low-sample-rate": "warning"}


def test_digital_silence_is_empty(folder: Path, x: np.ndarray) -> None:
    assert problems(gen.write_wav(folder / "a.wav", np.zeros_like(x))) == {"empty": "error"}


def test_header_without_audio_is_empty(folder: Path, x: np.ndarray) -> None:
    assert problems(gen.write_wav(folder / "a.wav", x[:, :0])) == {"empty": "error"}


def test_truncated_unreadable_no_audio_stream(folder: Path, x: np.ndarray) -> None:
    full = gen.wav_bytes(x)
    (folder / "cut.wav").write_bytes(full[: len(full) // 2])
    assert problems(folder / "cut.wav")["truncated"] == "error"
    (folder / "junk.wav").write_bytes(b"not audio at all " * 100)
    assert problems(folder / "junk.wav") == {"unreadable": "error"}
    assert problems(gen.video_only_mp4(folder / "v.mp4")) == {"no-audio-stream": "error"}


def _truncated(d: Path, x: np.ndarray) -> Path:
    full = gen.wav_bytes(x)
    (d / "cut.wav").write_bytes(full[: len(full) // 2])
    return d / "cut.wav"


def _junk(d: Path, x: np.ndarray) -> Path:
    (d / "junk.wav").write_bytes(b"not audio at all " * 100)
    return d / "junk.wav"


def _joined(d: Path, x: np.ndarray) -> Path:
    audio = gen.encode(d / "a.flac", x, "flac").read_bytes()
    (d / "joined.flac").write_bytes(audio + np.random.default_rng(1).bytes(100_000))
    return d / "joined.flac"


# One file per code, made here, so that this check stands on its own.
ONE_PER_CODE = {
    "unsupported-format": lambda d, x: gen.encode(d / "a.mp3", x, "mp3"),
    "unreadable": _junk,
    "truncated": _truncated,
    "empty": lambda d, x: gen.write_wav(d / "a.wav", np.zeros_like(x)),
    "no-audio-stream": lambda d, x: gen.video_only_mp4(d / "v.mp4"),
    "trailing-data": _joined,
    "extension-mismatch": lambda d, x: gen.encode(d / "a.wav", x, "flac"),
    "mono": lambda d, x: gen.write_wav(d / "a.wav", x[:1]),
    "identical-channels": lambda d, x: gen.write_wav(d / "a.wav", np.stack([x[0], x[0]])),
    "silent-channel": lambda d, x: gen.write_wav(d / "a.wav", np.stack([x[0], 0 * x[1]])),
    "too-many-channels": lambda d, x: gen.write_wav(d / "a.wav", np.concatenate([x, x[::-1] * 0.5]),
                                                    kind="extensible"),
    "very-short": lambda d, x: gen.write_wav(d / "a.wav", gen.call(1.5, caller_start=0.1, recipient_start=0.3)),
    "low-sample-rate": lambda d, x: gen.write_wav(d / "a.wav", gen.call(4.0, rate=6000), rate=6000),
}


def test_every_code_has_a_file_that_earns_it() -> None:
    assert set(ONE_PER_CODE) == set(CODES)


@pytest.mark.parametrize("code", sorted(CODES))
def test_each_code_is_produced(code: str, folder: Path, x: np.ndarray) -> None:
    path = ONE_PER_CODE[code](folder, x)
    found = problems(path)
    assert code in found
    assert found[code] == CODES[code]  # these files show each code at its usual severity
