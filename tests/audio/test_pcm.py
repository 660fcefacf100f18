"""The player's PCM source: decoded int16 samples match the file's, seeks land on the sample, solo, chunks."""

from __future__ import annotations

import shutil
import subprocess
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from desktop_app.audio.pcm import PcmError, PcmSource

from . import gen

RATE = gen.RATE


def noise_call(seconds: float = 3.0) -> np.ndarray:
    """Two different noises (every sample tells where it is), channel 2 quieter: (2, n) float32."""
    rng = np.random.default_rng(7)
    n = int(seconds * RATE)
    return np.stack([rng.uniform(-0.5, 0.5, n), rng.uniform(-0.2, 0.2, n)]).astype(np.float32)


def tone_call(seconds: float = 4.0, rate: int = RATE) -> np.ndarray:
    """Caller 220 Hz at 0.5, recipient 340 Hz at 0.25, all along (lossy codecs keep tones)."""
    t = np.arange(int(seconds * rate)) / rate
    return np.stack([0.5 * np.sin(2 * np.pi * 220 * t), 0.25 * np.sin(2 * np.pi * 340 * t)]).astype(np.float32)


def s16(x: np.ndarray) -> np.ndarray:
    """What a 16-bit file written by ``gen`` holds: (frames, channels) int16."""
    return np.frombuffer(gen.pcm_bytes(x, 16), "<i2").reshape(-1, x.shape[0])


def file_samples(path: Path, x: np.ndarray, *, by_ffmpeg: bool = False) -> np.ndarray:
    """The samples a file holds: packed by hand for 16-bit WAV, decoded by the ffmpeg program otherwise."""
    if path.suffix == ".wav" and not by_ffmpeg:
        return s16(x)
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg, "the reference decoder is the ffmpeg program (scripts/system-deps test installs it)"
    out = subprocess.run([ffmpeg, "-v", "error", "-i", str(path), "-f", "s16le", "-acodec", "pcm_s16le", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(out, "<i2").reshape(-1, x.shape[0])


def lossless(tmp_path: Path, kind: str, x: np.ndarray) -> Path:
    if kind == "wav":
        return gen.write_wav(tmp_path / "call.wav", x)
    return gen.encode(tmp_path / f"call.{'flac' if kind == 'flac' else 'm4a'}", x, kind)


def read_all(src: PcmSource) -> np.ndarray:
    return np.frombuffer(b"".join(src.chunks()), "<i2").reshape(-1, src.channels)


def first(src: PcmSource, frames: int) -> np.ndarray:
    out = b""
    while len(out) < frames * src.frame_bytes:
        data = src.read()
        if not data:
            break
        out += data
    return np.frombuffer(out, "<i2").reshape(-1, src.channels)[:frames]


@pytest.mark.parametrize("kind", ["wav", "flac", "alac"])
def test_lossless_files_decode_to_exactly_their_samples(tmp_path: Path, kind: str) -> None:
    x = noise_call()
    path = lossless(tmp_path, kind, x)
    with PcmSource(path) as src:
        assert (src.rate, src.channels, src.duration_ms) == (RATE, 2, 3000)
        got = read_all(src)
        assert src.position_frames == len(got)
    ref = file_samples(path, x)
    assert len(ref) == 3 * RATE and np.array_equal(got, ref)


def test_24_bit_and_mulaw_wav_are_scaled_to_16_bits(tmp_path: Path) -> None:
    x = noise_call(1.0)
    with PcmSource(gen.write_wav(tmp_path / "w24.wav", x, bits=24)) as src:
        got = read_all(src)
    v24 = np.frombuffer(_pad24(gen.pcm_bytes(x, 24)), "<i4").reshape(-1, 2) >> 8
    assert np.abs(got.astype(int) - np.rint(v24 / 256)).max() <= 1
    mulaw = gen.write_wav(tmp_path / "mu.wav", x, kind="mulaw")
    with PcmSource(mulaw) as src:
        mu = read_all(src)
    assert mu.shape == (RATE, 2) and np.array_equal(mu, file_samples(mulaw, x, by_ffmpeg=True))


def _pad24(b: bytes) -> bytes:
    """24-bit little-endian samples -> the same values as 32-bit words shifted left by 8."""
    a = np.frombuffer(b, np.uint8).reshape(-1, 3)
    return np.concatenate([np.zeros((len(a), 1), np.uint8), a], axis=1).tobytes()


def test_aac_in_mp4_decodes_in_place(tmp_path: Path) -> None:
    x = tone_call()
    with PcmSource(gen.encode(tmp_path / "call.m4a", x, "aac")) as src:
        assert (src.rate, src.channels, src.duration_ms) == (RATE, 2, 4000)
        got = read_all(src)
    ref = s16(x)
    middle = slice(RATE, 3 * RATE)  # away from the encoder's ramp-in and -out
    err = np.abs(got[middle].astype(int) - ref[middle]).max(axis=0)
    assert (err < 0.02 * 32768).all(), err  # in place: a sample's shift would cost up to 0.09 full scale
    shifted = np.abs(got[RATE + 1:3 * RATE + 1].astype(int) - ref[middle]).max(axis=0)
    assert (shifted > 3 * err).all()


@pytest.mark.parametrize("kind", ["wav", "flac", "alac"])
def test_a_seek_lands_on_the_sample(tmp_path: Path, kind: str) -> None:
    x = noise_call()
    path = lossless(tmp_path, kind, x)
    ref = file_samples(path, x)
    with PcmSource(path) as src:
        for ms in (1234.5, 2999, 7, 1500, 0):
            src.seek(ms)
            at = round(ms * RATE / 1000)
            assert src.position_frames == at
            assert np.array_equal(first(src, 400), ref[at:at + 400]), ms
        src.seek_frame(12345)
        assert np.array_equal(first(src, 100), ref[12345:12445])
        src.seek(5000)  # past the end
        assert src.read() == b""


@pytest.mark.parametrize("kind", ["aac", "mp3", "opus"])
def test_a_seek_in_a_lossy_file_lands_where_playing_through_gets(tmp_path: Path, kind: str) -> None:
    rate = 48000 if kind == "opus" else RATE
    suffix = {"aac": "m4a", "mp3": "mp3", "opus": "ogg"}[kind]
    with PcmSource(gen.encode(tmp_path / f"call.{suffix}", tone_call(4.0), kind)) as src:
        assert src.rate == rate
        through = read_all(src)
        assert abs(len(through) - 4 * rate) < rate // 10
        for ms in (1234, 2500, 600):
            src.seek(ms)
            at = round(ms * rate / 1000)
            got = first(src, rate // 10).astype(int)
            err = np.abs(got - through[at:at + len(got)]).max()
            off_by_one = np.abs(got - through[at + 1:at + 1 + len(got)]).max()
            assert err < 0.01 * 32768 and off_by_one > 3 * err, (ms, err, off_by_one)


def test_solo_plays_one_channel_on_both_sides(tmp_path: Path) -> None:
    x = noise_call()
    path = gen.write_wav(tmp_path / "call.wav", x)
    ref = s16(x)
    for channel in (0, 1):
        with PcmSource(path, solo=channel) as src:
            assert src.channels == 2
            src.seek(1000)
            got = read_all(src)
        assert np.array_equal(got[:, 0], ref[RATE:, channel]) and np.array_equal(got[:, 1], ref[RATE:, channel])
    with pytest.raises(PcmError, match="no channel 3"):
        PcmSource(path, solo=2)


def test_chunks_are_chunk_ms_long_and_memory_stays_bounded(tmp_path: Path) -> None:
    seconds = 120
    t = np.arange(seconds * RATE) / RATE
    x = np.stack([0.4 * np.sin(2 * np.pi * 220 * t), 0.2 * np.sin(2 * np.pi * 340 * t)]).astype(np.float32)
    pcm_bytes = seconds * RATE * 4
    for path in (gen.write_wav(tmp_path / "long.wav", x), gen.encode(tmp_path / "long.flac", x, "flac")):
        with PcmSource(path, chunk_ms=40) as src:
            tracemalloc.start()
            sizes = [len(chunk) for chunk in src.chunks()]
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        assert sum(sizes) == pcm_bytes and set(sizes[:-1]) == {320 * 4}  # 40 ms at 8 kHz, 2 × 16 bits
        assert peak < pcm_bytes / 20, (path.name, peak)  # a few frames, never the whole call


def test_a_file_that_cannot_be_played_says_why(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF" + bytes(100))
    with pytest.raises(PcmError):
        PcmSource(bad)
    with pytest.raises(PcmError, match="no audio"):
        PcmSource(gen.video_only_mp4(tmp_path / "video.mp4"))


def test_a_damaged_stretch_stays_short_and_later_samples_stay_in_place(tmp_path: Path) -> None:
    x = noise_call(4.0)
    good = gen.encode(tmp_path / "good.flac", x, "flac")
    raw = bytearray(good.read_bytes())
    middle = len(raw) // 2
    raw[middle:middle + 300] = np.random.default_rng(5).integers(0, 256, 300, dtype=np.uint8).tobytes()
    damaged = tmp_path / "damaged.flac"
    damaged.write_bytes(bytes(raw))
    ref = file_samples(good, x)
    with PcmSource(damaged) as src:
        got = read_all(src)
        assert src.errors >= 1
        src.seek(3500)  # past the damage: still the file's own samples there
        assert np.array_equal(first(src, 200), ref[28000:28200])
    assert abs(len(got) - len(ref)) <= 2 * RATE // 100  # the lost frames came back as silence
    differs = np.flatnonzero((got[:len(ref)] != ref[:len(got)]).any(axis=1))
    assert len(differs) and differs[-1] - differs[0] < RATE // 5  # one short damaged stretch, nothing else
    assert np.array_equal(got[-RATE:], ref[len(got) - RATE:len(got)])  # and the last second is in place
