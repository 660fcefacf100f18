"""Fixes write new files, leave the original alone, and their output comes out clean when checked again."""

from __future__ import annotations

import hashlib
from pathlib import Path

import av
import numpy as np
import pytest

from desktop_app import paths
from desktop_app.audio import FixError, analyse, convert, inspect, merge_legs, probe, swap_channels

from . import gen


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def samples(path: Path) -> np.ndarray:
    """All samples as int32 (channels, n), decoded by PyAV independently of the code under test."""
    with av.open(str(path)) as c:
        frames = [f.to_ndarray() for f in c.decode(audio=0)]
        fmt = c.streams.audio[0].codec_context.format
        ch = c.streams.audio[0].codec_context.channels
    data = np.concatenate(frames, axis=1)
    if not fmt.is_planar:
        data = data.reshape(-1, ch).T
    return data.astype(np.int64)


def clean(path: Path, *, allow: set[str] | None = None) -> None:
    ins = inspect(path)
    assert ins.uploadable, ins.problems
    assert {p.code for p in ins.problems} <= (allow or set()), ins.problems
    assert ins.analysis is not None and ins.analysis.decode_errors == 0


def test_swap_exchanges_the_channels(folder: Path, x: np.ndarray) -> None:
    src = gen.write_wav(folder / "call.wav", x)
    before = digest(src)
    out = swap_channels(src)
    assert out.parent == paths.fixes_dir() and out.suffix == ".flac"
    assert digest(src) == before and sorted(p.name for p in folder.iterdir()) == ["call.wav"]
    a, b = samples(src), samples(out)
    assert np.array_equal(a[0], b[1]) and np.array_equal(a[1], b[0])
    assert analyse(out).first_speaker == 2
    clean(out)


@pytest.mark.parametrize("fmt", ["wav", "flac"])
def test_swap_keeps_24_bits(folder: Path, x: np.ndarray, fmt: str) -> None:
    src = gen.write_wav(folder / "call.wav", x, bits=24)
    out = swap_channels(src, folder.parent / f"swapped.{fmt}")
    pr = probe(out)
    assert pr.bit_depth == 24 and pr.container == fmt
    a, b = samples(src), samples(out)
    assert np.array_equal(a[::-1], b)
    clean(out)


def test_swap_refuses_mono(folder: Path, x: np.ndarray) -> None:
    with pytest.raises(FixError, match="two-channel"):
        swap_channels(gen.write_wav(folder / "mono.wav", x[:1]))
    assert list(paths.fixes_dir().iterdir()) == []


def test_merge_aligns_two_legs_by_the_start_times_in_their_names(folder: Path) -> None:
    caller = gen.bursts(4.0, start=0.2, freq=220, seed=1)[None, :]
    recipient = gen.bursts(3.0, start=0.1, freq=340, seed=2)[None, :]
    # Asterisk names: the recipient's leg starts 1 s after the caller's
    c = gen.write_wav(folder / "out-5551230000-101-20240115-093000-1705311000.1.wav", caller)
    r = gen.write_wav(folder / "in-101-5551230000-20240115-093001-1705311000.2.wav", recipient)
    before = (digest(c), digest(r))
    out = merge_legs(c, r)
    assert (digest(c), digest(r)) == before
    a = analyse(out)
    assert probe(out).channels == 2
    assert a.channels[0].first_speech_s == pytest.approx(0.2, abs=0.03)
    assert a.channels[1].first_speech_s == pytest.approx(1.1, abs=0.03)
    assert a.duration_s == pytest.approx(4.0, abs=0.01)
    merged = samples(out)
    assert np.array_equal(merged[0], samples(c)[0])
    assert np.array_equal(merged[1, 8000:8000 + 24000], samples(r)[0])
    clean(out)


def test_merge_with_explicit_starts_and_different_rates(folder: Path) -> None:
    c = gen.write_wav(folder / "caller.wav", gen.bursts(3.0, start=1.0, seed=1)[None, :], rate=8000)
    r = gen.write_wav(folder / "recipient.wav", gen.bursts(3.0, rate=16000, start=0.2, seed=2)[None, :],
                      rate=16000)
    out = merge_legs(c, r, folder.parent / "merged.wav", caller_start=10.0, recipient_start=9.5)
    pr = probe(out)
    assert (pr.container, pr.channels, pr.sample_rate) == ("wav", 2, 16000)
    a = analyse(out)
    assert a.channels[0].first_speech_s == pytest.approx(1.5, abs=0.03)  # the caller's leg starts later
    assert a.channels[1].first_speech_s == pytest.approx(0.2, abs=0.03)
    clean(out)


def test_merge_never_mixes_two_speakers_into_one_channel(folder: Path, x: np.ndarray) -> None:
    stereo = gen.write_wav(folder / "both.wav", x)
    mono = gen.write_wav(folder / "leg.wav", x[1:])
    with pytest.raises(FixError, match="never mixed"):
        merge_legs(stereo, mono)
    # a mono recording copied to both channels is one speaker: its first channel is used
    twin = gen.write_wav(folder / "twin.wav", np.stack([x[0], x[0]]))
    out = merge_legs(twin, mono, caller_start=0.0, recipient_start=0.0)
    assert np.array_equal(samples(out)[0], samples(twin)[0])
    clean(out)


CONVERTIBLE = {
    "mp3": lambda d, x: gen.encode(d / "a.mp3", x, "mp3"),
    "ogg-opus": lambda d, x: gen.encode(d / "a.ogg", x, "opus"),
    "webm": lambda d, x: gen.encode(d / "a.webm", x, "webm"),
    "amr": lambda d, x: gen.encode(d / "a.amr", x[:1], "amr"),
    "gsm-wav": lambda d, x: gen.gsm_wav(d / "a.wav", x),
    "mulaw-wav": lambda d, x: gen.write_wav(d / "a.wav", x, kind="mulaw"),
    "mp4-with-video": lambda d, x: gen.encode(d / "a.mp4", x, "aac", video=True),
    "flac-named-wav": lambda d, x: gen.encode(d / "a.wav", x, "flac"),
}


@pytest.mark.parametrize("name", list(CONVERTIBLE))
@pytest.mark.parametrize("fmt", ["flac", "wav"])
def test_convert_makes_a_clean_file(name: str, fmt: str, folder: Path, x: np.ndarray) -> None:
    src = CONVERTIBLE[name](folder, x)
    before = digest(src)
    channels = probe(src).channels
    out = convert(src, fmt=fmt)
    assert digest(src) == before and len(list(folder.iterdir())) == 1
    pr = probe(out)
    assert pr.container == fmt and pr.channels == channels and not pr.extension_mismatch
    assert pr.duration_s == pytest.approx(probe(src).duration_s, abs=0.15)
    clean(out, allow={"mono"} if channels == 1 else set())


def test_convert_is_lossless_for_24_bit(folder: Path, x: np.ndarray) -> None:
    src = gen.write_wav(folder / "a.wav", x, bits=24)
    out = convert(src)
    assert probe(out).bit_depth == 24
    assert np.array_equal(samples(src), samples(out))


def test_convert_repairs_a_truncated_wav_and_recovers_hidden_audio(folder: Path, x: np.ndarray) -> None:
    full = gen.wav_bytes(x)
    cut = folder / "cut.wav"
    cut.write_bytes(full[: 44 + 8000 * 4 * 3])
    out = convert(cut, fmt="wav")
    assert probe(out).duration_s == pytest.approx(3.0, abs=0.001)
    clean(out)
    hidden = folder / "hidden.wav"
    hidden.write_bytes(gen.wav_bytes(x, data_size=8000 * 4))
    out2 = convert(hidden)
    assert probe(out2).duration_s == pytest.approx(4.0, abs=0.001)
    assert np.array_equal(samples(out2), samples(gen.write_wav(folder.parent / "ref.wav", x)))
    clean(out2)


def test_convert_rebuilds_a_damaged_flac(folder: Path, x: np.ndarray) -> None:
    raw = bytearray(gen.encode(folder / "good.flac", x, "flac").read_bytes())
    raw[len(raw) // 2:len(raw) // 2 + 300] = bytes(300)
    bad = folder / "bad.flac"
    bad.write_bytes(bytes(raw))
    assert "unreadable" in inspect(bad).codes()
    out = convert(bad)
    assert probe(out).duration_s == pytest.approx(4.0, abs=0.05)
    clean(out)


def test_fixes_never_overwrite_and_refuse_unreadable(folder: Path, x: np.ndarray) -> None:
    src = gen.write_wav(folder / "a.wav", x)
    with pytest.raises(FixError, match="never overwrites"):
        convert(src, src, fmt="wav")
    first, second = convert(src), convert(src)
    assert first != second and first.exists() and second.exists()
    junk = folder / "junk.wav"
    junk.write_bytes(b"\x00" * 1000)
    with pytest.raises(FixError, match="cannot be fixed"):
        convert(junk)
    assert not any(p.name.endswith(".part") for p in paths.fixes_dir().iterdir())
