"""Header-only probe: every recognised format, checked against the files' known truth and ffprobe."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from desktop_app.audio import probe

from . import gen
from .conftest import ffprobe

WAV_VARIANTS = {
    "pcm8": (dict(bits=8), "pcm_u8", 8),
    "pcm16": (dict(bits=16), "pcm_s16le", 16),
    "pcm24": (dict(bits=24), "pcm_s24le", 24),
    "pcm32": (dict(bits=32), "pcm_s32le", 32),
    "float32": (dict(bits=32, kind="float"), "pcm_f32le", 32),
    "extensible24": (dict(bits=24, kind="extensible"), "pcm_s24le", 24),
    "mulaw": (dict(kind="mulaw"), "pcm_mulaw", 8),
    "alaw": (dict(kind="alaw"), "pcm_alaw", 8),
    "rf64": (dict(rf64=True), "pcm_s16le", 16),
    "list-chunk-first": (dict(extra_chunk=True), "pcm_s16le", 16),
}


@pytest.mark.parametrize("variant", list(WAV_VARIANTS))
def test_wav_variants_are_described_from_the_header(variant: str, folder: Path, x: np.ndarray) -> None:
    kw, codec, bits = WAV_VARIANTS[variant]
    path = gen.write_wav(folder / f"{variant}.wav", x, rate=16000 if variant == "pcm24" else 8000, **kw)
    r = probe(path)
    assert r.findings == []
    assert r.container == ("rf64" if variant == "rf64" else "wav")
    assert (r.codec, r.channels, r.bit_depth) == (codec, 2, bits)
    assert r.sample_rate == (16000 if variant == "pcm24" else 8000)
    assert r.duration_s == pytest.approx(4.0 * (0.5 if variant == "pcm24" else 1.0), abs=1e-3)
    assert r.size_bytes == path.stat().st_size
    assert not r.extension_mismatch
    ref = ffprobe(path)["stream"]
    assert ref["codec_name"] == r.codec
    assert int(ref["channels"]) == r.channels and int(ref["sample_rate"]) == r.sample_rate
    assert float(ref["duration"]) == pytest.approx(r.duration_s, abs=0.01)


ENCODED = {
    # name: (encoding, file name, container, codec, bit depth, channels)
    "flac": ("flac", "a.flac", "flac", "flac", 16, 2),
    "mp4-aac": ("aac", "a.mp4", "mp4", "aac", None, 2),
    "m4a-alac": ("alac", "a.m4a", "mp4", "alac", 16, 2),
    "mp3": ("mp3", "a.mp3", "mp3", "mp3", None, 2),
    "ogg-opus": ("opus", "a.opus", "ogg", "opus", None, 2),
    "webm-opus": ("webm", "a.webm", "webm", "opus", None, 2),
    "amr": ("amr", "a.amr", "amr", "amr_nb", None, 1),
}


@pytest.mark.parametrize("name", list(ENCODED))
def test_encoded_formats_match_ffprobe(name: str, folder: Path, x: np.ndarray) -> None:
    encoding, filename, container, codec, bits, channels = ENCODED[name]
    path = gen.encode(folder / filename, x[:channels], encoding)
    r = probe(path)
    assert r.findings == []
    assert (r.container, r.codec, r.channels, r.bit_depth) == (container, codec, channels, bits)
    assert not r.has_video and not r.extension_mismatch
    ref = ffprobe(path)
    stream = ref["stream"]
    assert stream["codec_name"] == r.codec
    assert int(stream["channels"]) == r.channels
    assert int(stream["sample_rate"]) == r.sample_rate
    ref_duration = float(stream.get("duration") or ref["format"]["duration"])
    # ffprobe counts the MP3 encoder's delay and padding in the duration; elsewhere both agree closely
    assert r.duration_s == pytest.approx(ref_duration, abs=0.25 if name == "mp3" else 0.03)
    assert r.duration_s == pytest.approx(4.0, abs=0.15)


def test_flac_24_bit(folder: Path, x: np.ndarray) -> None:
    path = gen.encode(folder / "a.flac", x, "flac", bits=24)
    r = probe(path)
    assert (r.codec, r.bit_depth) == ("flac", 24)
    assert int(ffprobe(path)["stream"]["bits_per_raw_sample"]) == 24


def test_gsm_wav_as_asterisk_writes_it(folder: Path, x: np.ndarray) -> None:
    path = gen.gsm_wav(folder / "asterisk.wav", x)
    r = probe(path)
    assert (r.container, r.codec, r.channels, r.sample_rate, r.bit_depth) == ("wav", "gsm_ms", 1, 8000, None)
    ref = ffprobe(path)["stream"]
    assert ref["codec_name"] == "gsm_ms"
    assert r.duration_s == pytest.approx(float(ref["duration"]), abs=0.05)


def test_mp4_with_a_video_track(folder: Path, x: np.ndarray) -> None:
    path = gen.encode(folder / "screen.mp4", x, "aac", video=True)
    r = probe(path)
    assert r.has_video and r.has_audio and r.codec == "aac" and r.channels == 2
    assert any(s["codec_type"] == "video" for s in ffprobe(path)["streams"])


@pytest.mark.parametrize("encoding,real,named", [
    ("flac", ".flac", "call.wav"), ("wav", ".wav", "call.mp4"), ("mp3", ".mp3", "call.wav"),
    ("aac", ".mp4", "call.flac"),
])
def test_the_format_comes_from_the_bytes_not_the_name(encoding: str, real: str, named: str, folder: Path,
                                                      x: np.ndarray) -> None:
    path = folder / named
    if encoding == "wav":
        gen.write_wav(path, x)
    else:
        gen.encode(path, x, encoding)
    r = probe(path)
    assert r.detected_extension == real
    assert r.extension_mismatch
    assert r.extension == Path(named).suffix
    assert r.duration_s == pytest.approx(4.0, abs=0.15)


def test_probe_is_json_serialisable(folder: Path, x: np.ndarray) -> None:
    r = probe(gen.write_wav(folder / "a.wav", x))
    again = json.loads(json.dumps(r.to_dict()))
    assert again["codec"] == "pcm_s16le" and again["channels"] == 2


def test_probe_reads_headers_only_even_of_a_huge_file(folder: Path, x: np.ndarray) -> None:
    """An RF64 header announcing 10 GB of audio over a sparse file: answered without reading the data."""
    path = folder / "long.wav"
    head = gen.wav_bytes(x[:, :4], rf64=True)
    data_at = head.index(b"data") + 8
    size = 10 * 2**30
    body = bytearray(head[:data_at])
    ds64 = body.index(b"ds64") + 8
    body[ds64 + 8:ds64 + 16] = (size - data_at).to_bytes(8, "little")
    with open(path, "wb") as fh:
        fh.write(body)
        fh.truncate(size)
    r = probe(path)
    assert r.findings == []
    assert r.duration_s == pytest.approx((size - data_at) / 4 / 8000, rel=1e-6)
    assert r.size_bytes == size


def test_metadata_chunks_after_the_audio_are_not_audio(folder: Path, x: np.ndarray) -> None:
    raw = gen.wav_bytes(x)
    info = b"INFOICMT" + (12).to_bytes(4, "little") + b"agent note\x00\x00"
    tail = b"LIST" + len(info).to_bytes(4, "little") + info + b"id3 " + (10).to_bytes(4, "little") + bytes(10)
    body = raw[8:] + tail
    path = folder / "tagged.wav"
    path.write_bytes(b"RIFF" + len(body).to_bytes(4, "little") + body)
    r = probe(path)
    assert r.findings == [] and r.duration_s == pytest.approx(4.0)
    assert float(ffprobe(path)["stream"]["duration"]) == pytest.approx(4.0, abs=0.01)
