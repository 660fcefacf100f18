"""Test audio, generated: speech-like bursts per channel, written as WAV by hand or encoded with PyAV.

Independent of the code under test: WAV headers are packed here with ``struct``; other formats come
from PyAV's encoders (and, for GSM 6.10, which PyAV's FFmpeg cannot encode, from the ffmpeg program).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

RATE = 8000


def bursts(seconds: float, *, rate: int = RATE, start: float = 0.0, freq: float = 300.0, level: float = 0.5,
           on: float = 0.6, off: float = 0.4, seed: int = 0) -> np.ndarray:
    """Speech-like: harmonic bursts with a syllable-rate envelope, silent before ``start`` and between bursts."""
    n = int(seconds * rate)
    t = np.arange(n) / rate
    rng = np.random.default_rng(seed)
    tone = sum(np.sin(2 * np.pi * freq * k * t + rng.uniform(0, 6)) / k for k in (1, 2, 3))
    syllable = 0.6 + 0.4 * np.sin(2 * np.pi * 4.0 * t) ** 2
    period = on + off
    gate = ((t - start) % period < on) & (t >= start)
    x = tone / 1.84 * syllable * gate * level
    return x.astype(np.float32)


def call(seconds: float = 4.0, *, rate: int = RATE, caller_start: float = 0.3, recipient_start: float = 1.0,
         leak: float = 0.0) -> np.ndarray:
    """A two-speaker call: (2, n) float32, caller on channel 1, recipient on channel 2, ``leak`` between them."""
    a = bursts(seconds, rate=rate, start=caller_start, freq=220, seed=1)
    b = bursts(seconds, rate=rate, start=recipient_start, freq=340, level=0.4, on=0.5, off=0.5, seed=2)
    return np.stack([a + leak * b, b + leak * a]).astype(np.float32)


def _interleave(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x.T)


def pcm_bytes(x: np.ndarray, bits: int, *, fmt: str = "int") -> bytes:
    """Interleaved little-endian sample bytes of ``x`` (channels, n) in [-1, 1]."""
    y = _interleave(np.clip(x, -1, 1))
    if fmt == "float":
        return y.astype("<f4" if bits == 32 else "<f8").tobytes()
    if bits == 8:
        return (np.round(y * 127) + 128).astype(np.uint8).tobytes()
    if bits == 16:
        return np.round(y * 32767).astype("<i2").tobytes()
    if bits == 24:
        v = np.round(y * 8388607).astype("<i4").reshape(-1, 1).view(np.uint8).reshape(-1, 4)[:, :3]
        return v.tobytes()
    if bits == 32:
        return np.round(y.astype(np.float64) * 2147483647).astype("<i4").tobytes()
    raise ValueError(bits)


def mulaw(x: np.ndarray) -> bytes:
    y = np.clip(_interleave(x), -1, 1).astype(np.float64)
    mag = np.log1p(255 * np.abs(y)) / np.log1p(255)
    q = np.round(mag * 127).astype(np.int32)
    code = np.where(y < 0, 0x7F - q, 0xFF - q)  # G.711 µ-law: sign bit set for positive, bits inverted
    return code.astype(np.uint8).tobytes()


def alaw(x: np.ndarray) -> bytes:
    y = np.clip(_interleave(x), -1, 1).astype(np.float64)
    s16 = np.round(y * 32767).astype(np.int32)
    out = np.empty(s16.shape, dtype=np.uint8)
    flat, res = s16.ravel(), out.ravel()
    for i, v in enumerate(flat):
        sign = 0x80 if v >= 0 else 0
        m = min(abs(int(v)) >> 3, 0xFFF)
        if m < 32:
            code = m >> 1
        else:
            exp = m.bit_length() - 5
            code = (exp << 4) | ((m >> exp) & 0x0F)
        res[i] = (code | sign) ^ 0x55
    return out.tobytes()


def wav_bytes(x: np.ndarray, *, bits: int = 16, rate: int = RATE, kind: str = "pcm", rf64: bool = False,
              data_size: int | None = None, extra_chunk: bool = False) -> bytes:
    """A WAV file: kind pcm, float, extensible, mulaw or alaw; ``data_size`` overrides the data chunk's size."""
    channels = x.shape[0]
    if kind == "mulaw":
        data, tag, bits = mulaw(x), 7, 8
    elif kind == "alaw":
        data, tag, bits = alaw(x), 6, 8
    elif kind == "float":
        data, tag = pcm_bytes(x, bits, fmt="float"), 3
    else:
        data, tag = pcm_bytes(x, bits), 1
    block = channels * bits // 8
    if kind == "extensible":
        sub = struct.pack("<H", 1) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
        fmt = struct.pack("<HHIIHHHHI", 0xFFFE, channels, rate, rate * block, block, bits, 22, bits,
                          3 if channels == 2 else 4) + sub
    else:
        fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
        if tag != 1:
            fmt += struct.pack("<H", 0)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt
    if extra_chunk:
        info = b"INFOISFT" + struct.pack("<I", 6) + b"tests\x00"
        chunks = b"LIST" + struct.pack("<I", len(info)) + info + chunks
    size = len(data) if data_size is None else data_size
    if rf64:
        ds64 = struct.pack("<QQQI", 0, len(data), len(data) // block, 0)
        body = b"WAVE" + b"ds64" + struct.pack("<I", len(ds64)) + ds64 + chunks
        body += b"data" + struct.pack("<I", 0xFFFFFFFF) + data
        ds64 = struct.pack("<QQQI", len(body), len(data), len(data) // block, 0)
        body = b"WAVE" + b"ds64" + struct.pack("<I", len(ds64)) + ds64 + chunks
        body += b"data" + struct.pack("<I", 0xFFFFFFFF) + data
        return b"RF64" + struct.pack("<I", 0xFFFFFFFF) + body
    body = b"WAVE" + chunks + b"data" + struct.pack("<I", size) + data + (b"\x00" if len(data) & 1 else b"")
    return b"RIFF" + struct.pack("<I", len(body)) + body


def write_wav(path: Path, x: np.ndarray, **kw: object) -> Path:
    path.write_bytes(wav_bytes(x, **kw))  # type: ignore[arg-type]
    return path


# PyAV encoders: container format, codec, sample format the encoder takes, rate it needs.
ENCODINGS = {
    "flac": ("flac", "flac", "s16", None),
    "aac": ("mp4", "aac", "fltp", None),
    "alac": ("mp4", "alac", "s16p", None),
    "mp3": ("mp3", "libmp3lame", "fltp", None),
    "opus": ("ogg", "libopus", "flt", 48000),
    "webm": ("webm", "libopus", "flt", 48000),
    "amr": ("amr", "libopencore_amrnb", "s16", 8000),
}


def encode(path: Path, x: np.ndarray, encoding: str, *, rate: int = RATE, video: bool = False,
           bits: int = 16) -> Path:
    """Encode (channels, n) float32 with PyAV; ``video`` adds a small video track (MP4)."""
    fmt, codec, sfmt, need_rate = ENCODINGS[encoding]
    if encoding == "flac" and bits == 24:
        sfmt = "s32"
    out_rate = need_rate or rate
    layout = {1: "mono", 2: "stereo"}.get(x.shape[0], f"{x.shape[0]}c")
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=out_rate, layout=layout)
        vstream = None
        if video:
            vstream = out.add_stream("mpeg4", rate=5)
            vstream.width, vstream.height, vstream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.format = sfmt
        stream.codec_context.open(strict=False)
        resampler = av.AudioResampler(format=sfmt, layout=layout, rate=out_rate,
                                      frame_size=stream.codec_context.frame_size or None)
        block = 4096
        pts = 0
        for i in range(0, x.shape[1], block):
            chunk = np.ascontiguousarray(_interleave(x[:, i:i + block])).reshape(1, -1).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(chunk, format="flt", layout=layout)
            frame.sample_rate = rate
            frame.pts = pts
            frame.time_base = Fraction(1, rate)
            pts += chunk.shape[1] // x.shape[0]
            for f in resampler.resample(frame):
                out.mux(stream.encode(f))
        for f in resampler.resample(None):
            out.mux(stream.encode(f))
        out.mux(stream.encode(None))
        if vstream is not None:
            _video_frames(out, vstream, x.shape[1] / rate)
    return path


def _video_frames(out: av.container.OutputContainer, vstream: av.video.stream.VideoStream, seconds: float) -> None:
    """Five grey frames a second, so the track is real video."""
    for k in range(int(seconds * 5)):
        img = np.full((48, 64, 3), (k * 20) % 255, dtype=np.uint8)
        vf = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
        vf.pts = k
        out.mux(vstream.encode(vf))
    out.mux(vstream.encode(None))


def video_only_mp4(path: Path, seconds: float = 2.0) -> Path:
    with av.open(str(path), "w", format="mp4") as out:
        vstream = out.add_stream("mpeg4", rate=5)
        vstream.width, vstream.height, vstream.pix_fmt = 64, 48, "yuv420p"
        _video_frames(out, vstream, seconds)
    return path


def gsm_wav(path: Path, x: np.ndarray, *, rate: int = RATE) -> Path:
    """GSM 6.10 in WAV (WAV49, as Asterisk writes it), encoded by the ffmpeg program (libgsm)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError("the test needs the ffmpeg program (scripts/system-deps test)")
    src = path.with_suffix(".src.wav")
    write_wav(src, x[:1], rate=rate)
    subprocess.run([ffmpeg, "-v", "error", "-y", "-i", str(src), "-c:a", "libgsm_ms", "-ar", str(rate),
                    "-ac", "1", str(path)], check=True)
    src.unlink()
    return path
