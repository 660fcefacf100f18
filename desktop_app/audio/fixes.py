"""Fixes that write a new file and never touch the original: swap channels, merge two legs, convert.

Samples come from ``reader.Reader`` (PyAV or the WAV data chunk); channel edits are done on PCM with
pydub; files are written by PyAV's FLAC or PCM encoder (no ffmpeg program needed). Two speakers are
never mixed into one channel. Output goes to ``paths.fixes_dir()`` unless a destination is given,
and is written to a temporary name first, so a failed fix leaves nothing half-written.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
from pydub import AudioSegment

from desktop_app import paths
from desktop_app.audio.model import ProbeResult
from desktop_app.audio.probe import probe
from desktop_app.audio.reader import Reader, ReadError

FORMATS = ("flac", "wav")
BLOCK_FRAMES = 1 << 16


class FixError(Exception):
    """A fix that cannot be made; the message says why, for the agent."""


def _layout(channels: int) -> str:
    return {1: "mono", 2: "stereo"}.get(channels, f"{channels}c")


class _Writer:
    """Writes integer PCM blocks (channels, n) as FLAC or WAV, 16 or 24 bits, via a temporary file."""

    def __init__(self, dst: Path, fmt: str, channels: int, rate: int, bits: int) -> None:
        import av

        self.dst = dst
        self.tmp = dst.with_name(f".{dst.name}.part")
        self.bits = bits
        self.sample_fmt = "s16" if bits == 16 else "s32"
        codec = "flac" if fmt == "flac" else ("pcm_s16le" if bits == 16 else "pcm_s24le")
        self.layout = _layout(channels)
        self.rate = rate
        self.pts = 0
        self.out: Any = cast(Any, av.open(str(self.tmp), "w", format=fmt))
        self.stream: Any = self.out.add_stream(codec, rate=rate, layout=self.layout)
        self.stream.codec_context.format = self.sample_fmt

    def write(self, x: np.ndarray) -> None:
        import av

        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x.T).reshape(1, -1), format=self.sample_fmt,
                                           layout=self.layout)
        frame.sample_rate = self.rate
        frame.pts = self.pts
        self.pts += x.shape[1]
        for packet in self.stream.encode(frame):
            self.out.mux(packet)

    def close(self) -> Path:
        for packet in self.stream.encode(None):
            self.out.mux(packet)
        self.out.close()
        os.replace(self.tmp, self.dst)
        return self.dst

    def abort(self) -> None:
        try:
            self.out.close()
        finally:
            self.tmp.unlink(missing_ok=True)


def _quantize(x: np.ndarray, bits: int) -> np.ndarray:
    if bits == 16:
        return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)
    return (np.clip(np.round(x.astype(np.float64) * 8388608.0), -8388608, 8388607).astype(np.int32) << 8)


def _target_bits(pr: ProbeResult, reader: Reader) -> int:
    return 24 if reader.lossless and (pr.bit_depth or 16) > 16 else 16


def _readable(src: str | os.PathLike[str]) -> ProbeResult:
    pr = probe(src)
    if not pr.readable or not pr.channels:
        why = pr.findings[0].message if pr.findings else "It cannot be read."
        raise FixError(f"{Path(src).name} cannot be fixed: {why}")
    return pr


def _destination(dst: str | os.PathLike[str] | None, stem: str, tag: str, fmt: str,
                 sources: list[Path]) -> Path:
    if fmt not in FORMATS:
        raise FixError(f"Unknown output format {fmt!r}: use flac or wav.")
    if dst is None:
        safe = re.sub(r"[^\w.+-]+", "_", stem)[:120] or "recording"
        base = paths.fixes_dir() / f"{safe}{tag}.{fmt}"
        out, n = base, 1
        while out.exists():
            out = base.with_name(f"{safe}{tag}-{n}.{fmt}")
            n += 1
        return out
    out = Path(dst)
    if out.is_dir():
        raise FixError(f"{out} is a folder; give a file name.")
    for s in sources:
        if out.exists() and s.exists() and out.resolve() == s.resolve():
            raise FixError("A fix never overwrites its original: choose another output name.")
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def _fmt_of(dst: str | os.PathLike[str] | None, fmt: str | None) -> str:
    if fmt:
        return fmt.lower()
    if dst is not None and Path(dst).suffix.lower() in (".wav", ".flac"):
        return Path(dst).suffix.lower()[1:]
    return "flac"


def convert(src: str | os.PathLike[str], dst: str | os.PathLike[str] | None = None, fmt: str | None = None) -> Path:
    """Convert any readable recording to FLAC (lossless) or WAV, channels kept; streamed."""
    pr = _readable(src)
    fmt = _fmt_of(dst, fmt)
    out = _destination(dst, Path(src).stem, "", fmt, [Path(src)])
    reader = Reader(pr)
    writer: _Writer | None = None
    frames = 0
    try:
        for block in reader.blocks(BLOCK_FRAMES):
            if writer is None:
                writer = _Writer(out, fmt, reader.channels, reader.rate, _target_bits(pr, reader))
            writer.write(_quantize(block, writer.bits))
            frames += block.shape[1]
        if writer is None:
            raise FixError(f"{Path(src).name} holds no audio that can be decoded.")
        done = writer.close()
        writer = None  # written: from here on a refusal removes the finished file, not a temporary one
        return _checked(done, Path(src).name, frames=frames, rate=reader.rate)
    except BaseException as exc:
        if writer is not None:
            writer.abort()
        if isinstance(exc, ReadError):
            raise FixError(str(exc)) from None
        raise


def _checked(out: Path, name: str, *, frames: int, rate: int) -> Path:
    """``out`` if it really is a clean file, inspected like any recording; otherwise removed, and FixError.

    A fix never turns an error into a clean verdict: a cut-off recording whose readable part is empty or
    digital silence gives no file, and a copy shorter than what could be read is not passed off as whole.
    """
    from desktop_app.audio.verdicts import inspect

    try:
        ins = inspect(out)
        got = ins.analysis.duration_s if ins.analysis is not None else 0.0
        errors = [p for p in ins.problems if p.severity == "error"]
        if any(p.code == "empty" for p in errors) or got <= 0:
            raise FixError(f"{name} cannot be fixed: the {got:.1f} s that can be decoded hold no audio worth "
                           "uploading (silence or nothing), so no copy was written.")
        if errors:
            raise FixError(f"{name} cannot be fixed: the copy would still not be uploadable "
                           f"({errors[0].message.rstrip('.')}), so none was kept.")
        if frames and rate and got < frames / rate - 0.05:
            raise FixError(f"{name} cannot be fixed: the copy came out shorter ({got:.1f} s) than the "
                           f"{frames / rate:.1f} s that could be read, so none was kept.")
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    return out


def _load(pr: ProbeResult) -> AudioSegment:
    """The whole recording as a pydub AudioSegment (16-bit, or 32-bit holding 24-bit samples)."""
    reader = Reader(pr)
    parts: list[bytes] = []
    bits = 16
    try:
        for block in reader.blocks(BLOCK_FRAMES):
            bits = _target_bits(pr, reader)
            parts.append(np.ascontiguousarray(_quantize(block, bits).T).tobytes())
    except ReadError as exc:
        raise FixError(str(exc)) from None
    if not parts:
        raise FixError(f"{Path(pr.path).name} holds no audio that can be decoded.")
    return AudioSegment(data=b"".join(parts), sample_width=2 if bits == 16 else 4, frame_rate=reader.rate,
                        channels=reader.channels)


def _save(seg: AudioSegment, out: Path, fmt: str) -> Path:
    width = seg.sample_width
    samples = np.frombuffer(seg.raw_data, dtype="<i2" if width == 2 else "<i4").reshape(-1, seg.channels).T
    writer = _Writer(out, fmt, seg.channels, seg.frame_rate, 16 if width == 2 else 24)
    try:
        for i in range(0, samples.shape[1], BLOCK_FRAMES):
            writer.write(samples[:, i:i + BLOCK_FRAMES])
        return writer.close()
    except BaseException:
        writer.abort()
        raise


def swap_channels(src: str | os.PathLike[str], dst: str | os.PathLike[str] | None = None,
                  fmt: str | None = None) -> Path:
    """Write a copy with channels 1 and 2 exchanged (the caller belongs on channel 1)."""
    pr = _readable(src)
    if pr.channels != 2:
        raise FixError(f"Swapping needs a two-channel recording; {Path(src).name} has {pr.channels}.")
    fmt = _fmt_of(dst, fmt)
    out = _destination(dst, Path(src).stem, ".swapped", fmt, [Path(src)])
    left, right = _load(pr).split_to_mono()
    return _save(AudioSegment.from_mono_audiosegments(right, left), out, fmt)


# Telling one voice from two: the pitch of each piece of speech (at most PIECE_S long, split at pauses of
# PAUSE_S), from the autocorrelation of 40 ms frames. One speaker's pieces stay within about half an octave;
# a man and a woman sit about an octave apart. Two voices: the pieces fall into two groups with a gap of at
# least VOICE_GAP_OCT between them, medians at least VOICE_APART_OCT apart, each group holding a fair share.
PITCH_MIN_HZ, PITCH_MAX_HZ = 60.0, 400.0
PAUSE_S, PIECE_S = 0.25, 1.5
VOICE_GAP_OCT, VOICE_APART_OCT, VOICE_SHARE = 0.35, 0.5, 0.15


def _pitches(x: np.ndarray, rate: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Level (dBFS) and pitch (Hz, NaN where unvoiced) of 40 ms frames every 20 ms of mono ``x``, and the hop."""
    if rate > 12000:  # about 8 kHz is plenty for a voice's pitch
        k = int(rate // 8000)
        x = x[: x.size // k * k].reshape(-1, k).mean(axis=1)
        rate = rate / k
    win, hop = int(round(0.04 * rate)), int(round(0.02 * rate))
    n = 1 + max(0, (x.size - win) // hop) if x.size >= win else 0
    lo, hi = max(1, int(rate / PITCH_MAX_HZ)), min(win - 1, int(np.ceil(rate / PITCH_MIN_HZ)))
    level, pitch = np.full(n, -120.0), np.full(n, np.nan)
    taper = np.hanning(win)
    for s in range(0, n, 4096):
        idx = np.arange(win)[None, :] + hop * np.arange(s, min(n, s + 4096))[:, None]
        fr = x[idx].astype(np.float64)
        level[s:s + fr.shape[0]] = 10 * np.log10(np.maximum((fr ** 2).mean(axis=1), 1e-12))
        fr = (fr - fr.mean(axis=1, keepdims=True)) * taper
        # the autocorrelation of a compressed spectrum: a strong formant does not pass for the pitch
        ac = np.fft.irfft(np.abs(np.fft.rfft(fr, 2 * win, axis=1)) ** 1.34, axis=1)[:, :win]
        ac /= np.maximum(ac[:, :1], 1e-12)
        band = ac[:, lo:hi + 1]
        best = band.max(axis=1)
        lag = lo + band.argmax(axis=1)
        half = np.round(lag / 2).astype(int)  # a period twice the true one: its half is as strong
        rows = np.arange(band.shape[0])
        lag = np.where((half >= lo) & (ac[rows, np.maximum(half, 0)] >= 0.95 * best), half, lag)
        pitch[s:s + fr.shape[0]] = np.where(best >= 0.35, rate / lag, np.nan)
    return level, pitch, hop / rate


def _two_voices(x: np.ndarray, rate: float) -> tuple[float, float] | None:
    """The two voices' typical pitches (Hz) when mono ``x`` holds two different voices, else None."""
    level, pitch, hop = _pitches(x, rate)
    if not level.size:
        return None
    loud = level > max(-45.0, float(level.max()) - 35.0)
    voiced = loud & ~np.isnan(pitch)
    pieces = _loud_pieces(loud, int(PAUSE_S / hop), int(PIECE_S / hop))
    vals, weights = [], []
    for a, b in pieces:
        f = pitch[a:b][voiced[a:b]]
        if f.size >= 10:
            vals.append(float(np.median(np.log2(f))))
            weights.append(float(f.size))
    if len(vals) < 2:
        return None
    order = np.argsort(vals)
    v, w = np.asarray(vals)[order], np.asarray(weights)[order]
    split = int(np.argmax(np.diff(v))) + 1
    low, high = v[:split], v[split:]
    share = min(w[:split].sum(), w[split:].sum()) / w.sum()
    if (v[split] - v[split - 1] >= VOICE_GAP_OCT and share >= VOICE_SHARE
            and float(np.median(high) - np.median(low)) >= VOICE_APART_OCT):
        return 2 ** float(np.median(low)), 2 ** float(np.median(high))
    return None


def _loud_pieces(loud: np.ndarray, pause: int, longest: int) -> list[tuple[int, int]]:
    """[start, end) frame spans of loud sound, split at pauses of ``pause`` frames and cut every
    ``longest`` frames."""
    pieces: list[tuple[int, int]] = []
    start: int | None = None
    quiet = 0
    for i, on in enumerate(loud):
        if on:
            if start is None:
                start = i
            quiet = 0
            if i - start >= longest:
                pieces.append((start, i))
                start = i
        elif start is not None:
            quiet += 1
            if quiet >= pause:
                pieces.append((start, i - quiet + 1))
                start, quiet = None, 0
    if start is not None:
        pieces.append((start, len(loud)))
    return pieces


def _one_voice(seg: AudioSegment, pr: ProbeResult, role: str) -> AudioSegment:
    """``seg`` (one channel) unless it holds two different voices: then FixError."""
    full = 32768.0 if seg.sample_width == 2 else 2147483648.0
    x = np.frombuffer(seg.raw_data, dtype=np.int16 if seg.sample_width == 2 else np.int32).astype(np.float64) / full
    voices = _two_voices(x, float(seg.frame_rate))
    if voices is not None:
        raise FixError(f"The {role} file {Path(pr.path).name} holds two different voices (one around "
                       f"{voices[0]:.0f} Hz, one around {voices[1]:.0f} Hz): merging needs one speaker per file "
                       "(two speakers are never mixed into one channel).")
    return seg


def _leg(pr: ProbeResult, role: str) -> AudioSegment:
    seg = _load(pr)
    if seg.channels == 1:
        return _one_voice(seg, pr, role)
    chans = seg.split_to_mono()
    first = np.frombuffer(chans[0].raw_data, dtype=np.int16 if seg.sample_width == 2 else np.int32)
    for other in chans[1:]:
        o = np.frombuffer(other.raw_data, dtype=first.dtype)
        diff = np.abs(first.astype(np.int64) - o.astype(np.int64))
        if diff.size and diff.max() > (64 if seg.sample_width == 2 else 64 << 16):
            raise FixError(f"The {role} file {Path(pr.path).name} has {seg.channels} different channels; "
                           "merging needs one leg per file (two speakers are never mixed into one channel).")
    return _one_voice(chans[0], pr, role)


def merge_legs(caller: str | os.PathLike[str], recipient: str | os.PathLike[str],
               dst: str | os.PathLike[str] | None = None, *,
               caller_start: datetime | float | None = None, recipient_start: datetime | float | None = None,
               fmt: str | None = None) -> Path:
    """One stereo file from two one-leg files: the caller on channel 1, the recipient on channel 2.

    The legs are aligned by their start times (datetimes, or seconds on a common clock); when a start
    is not given it is read from the file name (``prefill_from_filename``); when neither leg has one,
    both start together.
    """
    from desktop_app.audio.prefill import prefill_from_filename

    pc, pr_ = _readable(caller), _readable(recipient)
    fmt = _fmt_of(dst, fmt)
    out = _destination(dst, f"{Path(caller).stem}+{Path(recipient).stem}", ".merged", fmt,
                       [Path(caller), Path(recipient)])
    starts: list[float | None] = []
    for given, path in ((caller_start, caller), (recipient_start, recipient)):
        if given is None:
            pf = prefill_from_filename(path)
            given = datetime.fromisoformat(pf.start) if pf.start else None
        starts.append(given.timestamp() if isinstance(given, datetime) else given)
    offset = 0.0
    if starts[0] is not None and starts[1] is not None:
        offset = float(starts[1]) - float(starts[0])  # > 0: the recipient's leg starts later
    if abs(offset) > 24 * 3600:
        raise FixError(f"The two legs start {abs(offset) / 3600:.0f} hours apart: they are not the same call.")
    a = _leg(pc, "caller")
    b = _leg(pr_, "recipient")
    rate = max(a.frame_rate, b.frame_rate)
    a, b = a.set_frame_rate(rate), b.set_frame_rate(rate)
    if offset > 0:
        b = _pad_front(b, offset)
    elif offset < 0:
        a = _pad_front(a, -offset)
    a, b = _same_length(a, b)
    return _save(AudioSegment.from_mono_audiosegments(a, b), out, fmt)


def _same_length(a: AudioSegment, b: AudioSegment) -> tuple[AudioSegment, AudioSegment]:
    """Pad the shorter leg with silence at its end (pydub's channel join needs equal lengths)."""
    if a.sample_width != b.sample_width:
        width = max(a.sample_width, b.sample_width)
        a, b = a.set_sample_width(width), b.set_sample_width(width)
    n = max(int(a.frame_count()), int(b.frame_count()))
    out = []
    for seg in (a, b):
        missing = n - int(seg.frame_count())
        if missing:
            seg = seg + AudioSegment(data=b"\0" * missing * seg.frame_width, sample_width=seg.sample_width,
                                     frame_rate=seg.frame_rate, channels=seg.channels)
        out.append(seg)
    return out[0], out[1]


def _pad_front(seg: AudioSegment, seconds: float) -> AudioSegment:
    frames = int(round(seconds * seg.frame_rate))
    silence = AudioSegment(data=b"\0" * frames * seg.frame_width, sample_width=seg.sample_width,
                           frame_rate=seg.frame_rate, channels=seg.channels)
    return silence + seg
