"""Decoded samples for listening: interleaved signed 16-bit PCM, chunk by chunk, from any sample (no Qt).

The player (``desktop_app.ui.player``) feeds these bytes to Qt's ``QAudioSink``, so the app needs no
media backend of Qt's own: one FFmpeg (PyAV's) decodes for inspection and for listening.

``PcmSource(path, solo=None, chunk_ms=50)`` opens any recording the app reads: PCM, float, µ-law and
A-law WAV/RF64 straight from the data chunk (as ``reader.Reader`` does), everything else through
PyAV. Samples keep the file's rate and channel count (no resampling: the sound server converts), so
sample *n* of the output is sample *n* of the file.

- ``read()`` gives the next chunk (``chunk_ms`` of audio, the last one shorter; ``b""`` at the end).
- ``seek(ms)`` / ``seek_frame(n)`` land on that exact sample: a PyAV file is sought to the packet at or
  before it (a little earlier still for lossy codecs, whose decoder needs to warm up) and the samples
  before the target are dropped.
- ``solo=k`` plays channel *k* alone **on every output channel**: an agent soloing the caller hears the
  caller in both ears, at the caller's own level, rather than one ear of silence. ``None`` plays the
  channels as they are.
- Memory is one chunk plus at most one decoded frame, whatever the length of the call.
- A stretch whose timestamps jump (a damaged frame the demuxer dropped) is filled with silence so
  that positions stay true, as in the analysis.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from desktop_app.audio.model import ProbeResult
from desktop_app.audio.probe import WAV_PCM, probe
from desktop_app.audio.reader import (
    MAX_GAP_S,
    Reader,
    ReadError,
    _to_float,
    decode_frames,
    is_lossless,
    open_audio,
)

log = logging.getLogger(__name__)

CHUNK_MS = 50
# Lossy decoders (AAC, MP3, Opus, Vorbis…) start from an empty state after a seek: decode this much
# before the target and drop it, so the first samples heard are the right ones.
LOSSY_PREROLL_S = 0.5


class PcmError(Exception):
    """The recording cannot be played (the message is a sentence for the agent)."""


def to_s16(block: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1) -> int16 (scaled by 32768, as ``reader`` divides, and clipped)."""
    scaled = np.rint(np.asarray(block, dtype=np.float32) * np.float32(32768.0))
    out: np.ndarray = np.clip(scaled, -32768, 32767).astype("<i2")
    return out


def frame_to_s16(data: np.ndarray, fmt: str, channels: int) -> np.ndarray:
    """A decoded frame's ``to_ndarray()`` -> int16 (frames, channels)."""
    planar = fmt.endswith("p")
    x = data if planar else data.reshape(-1, channels).T  # (channels, frames)
    base = fmt[:-1] if planar else fmt
    if base == "s16":
        out = x.astype("<i2", copy=False)
    elif base == "s32":
        out = (x.astype(np.int32, copy=False) >> 16).astype("<i2")
    elif base == "s64":
        out = (x.astype(np.int64, copy=False) >> 48).astype("<i2")
    elif base == "u8":
        out = ((x.astype(np.int16) - 128) << 8).astype("<i2")
    elif base in ("flt", "dbl"):
        out = to_s16(x)
    else:
        raise PcmError(f"The decoder gives samples as {fmt}, which cannot be played.")
    return np.ascontiguousarray(out.T)


class PcmSource:
    """One recording as interleaved little-endian int16 chunks at its own rate and channel count."""

    def __init__(self, path: str | os.PathLike[str], *, solo: int | None = None, chunk_ms: int = CHUNK_MS,
                 probed: ProbeResult | None = None) -> None:
        self.path = Path(path)
        self.probe = probed if probed is not None else probe(self.path)
        if not self.probe.readable or not self.probe.channels:
            messages = [f.message for f in self.probe.findings if f.severity == "error"]
            raise PcmError(" ".join(messages) or f"{self.path.name} cannot be read for listening.")
        self.channels: int = self.probe.channels
        self.rate: int = self.probe.sample_rate or 0
        if solo is not None and not 0 <= solo < self.channels:
            raise PcmError(f"{self.path.name} has no channel {solo + 1}.")
        self.solo = solo
        self.chunk_ms = max(1, chunk_ms)
        self._backend: _Backend = _RawWav(self.probe) if Reader(self.probe).raw else _Decoded(self.path)
        self.rate = self._backend.rate or self.rate
        self.channels = self._backend.channels or self.channels
        if not self.rate:
            self._backend.close()
            raise PcmError(f"{self.path.name} does not say its sample rate.")
        self.chunk_frames = max(1, self.rate * self.chunk_ms // 1000)
        self._parts: list[np.ndarray] = []  # decoded, not yet handed out: (frames, channels) int16
        self._have = 0
        self._position = 0  # the next frame read() hands out
        self._ended = False

    # --- facts ---------------------------------------------------------------------------------
    @property
    def frame_bytes(self) -> int:
        return 2 * self.channels

    @property
    def duration_ms(self) -> int:
        """The length as the header says it (what the player's seek bar spans)."""
        if self.probe.duration_s:
            return int(round(self.probe.duration_s * 1000))
        frames = self._backend.total_frames
        return int(frames * 1000 // self.rate) if frames else 0

    @property
    def position_frames(self) -> int:
        return self._position

    @property
    def position_ms(self) -> float:
        return self._position * 1000 / self.rate

    @property
    def errors(self) -> int:
        """Damaged stretches met so far (filled with silence or skipped)."""
        return self._backend.errors

    # --- moving and reading --------------------------------------------------------------------
    def seek(self, ms: float) -> None:
        self.seek_frame(int(round(max(0.0, ms) * self.rate / 1000)))

    def seek_frame(self, frame: int) -> None:
        frame = max(0, frame)
        self._parts, self._have, self._ended = [], 0, False
        self._backend.seek(frame)
        self._position = frame

    def read(self) -> bytes:
        """The next chunk (``chunk_ms`` of audio; shorter at the end, ``b""`` once the end is reached)."""
        while self._have < self.chunk_frames and not self._ended:
            piece = self._backend.next_piece()
            if piece is None:
                self._ended = True
                break
            if len(piece):
                self._parts.append(piece)
                self._have += len(piece)
        if not self._have:
            return b""
        joined = self._parts[0] if len(self._parts) == 1 else np.concatenate(self._parts)
        take = min(self.chunk_frames, len(joined))
        chunk, rest = joined[:take], joined[take:]
        self._parts = [rest] if len(rest) else []
        self._have = len(rest)
        self._position += take
        if self.solo is not None and self.channels > 1:
            chunk = np.repeat(chunk[:, self.solo:self.solo + 1], self.channels, axis=1)
        return np.ascontiguousarray(chunk, dtype="<i2").tobytes()

    def chunks(self) -> Iterator[bytes]:
        while True:
            data = self.read()
            if not data:
                return
            yield data

    def close(self) -> None:
        self._backend.close()

    def __enter__(self) -> PcmSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Backend:
    rate = 0
    channels = 0
    total_frames: int | None = None
    errors = 0

    def seek(self, frame: int) -> None:
        raise NotImplementedError

    def next_piece(self) -> np.ndarray | None:
        """Next decoded samples (frames, channels) int16 from the sought position, or None at the end."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class _RawWav(_Backend):
    """PCM/float/µ-law/A-law WAV/RF64 read from the data chunk (16-bit PCM is handed out as it is)."""

    BLOCK_FRAMES = 4096

    def __init__(self, p: ProbeResult) -> None:
        assert p.data_offset is not None and p.data_bytes is not None and p.block_align and p.channels
        self.probe = p
        self.rate = p.sample_rate or 0
        self.channels = p.channels
        self.align = p.block_align
        self.width = self.align // self.channels
        self.total_frames = p.data_bytes // self.align
        try:
            self.fh: BinaryIO = open(p.path, "rb")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise PcmError(f"The file cannot be read: {exc.strerror or exc}.") from None
        self.frame = 0

    def seek(self, frame: int) -> None:
        self.frame = min(frame, self.total_frames or 0)

    def next_piece(self) -> np.ndarray | None:
        left = (self.total_frames or 0) - self.frame
        if left <= 0:
            return None
        assert self.probe.data_offset is not None
        self.fh.seek(self.probe.data_offset + self.frame * self.align)
        buf = self.fh.read(min(left, self.BLOCK_FRAMES) * self.align)
        usable = len(buf) - len(buf) % self.align
        if usable <= 0:
            return None
        self.frame += usable // self.align
        if self.probe.format_tag == WAV_PCM and self.width == 2:
            return np.frombuffer(buf, dtype="<i2", count=usable // 2).reshape(-1, self.channels)
        raw = np.frombuffer(buf, dtype=np.uint8, count=usable)
        return np.ascontiguousarray(to_s16(_to_float(raw, self.width, self.probe.format_tag, self.channels)).T)

    def close(self) -> None:
        self.fh.close()


class _Decoded(_Backend):
    """Everything else, through PyAV: seek to a packet at or before the target, drop what is before it."""

    SILENCE_FRAMES = 4096

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.container, self.stream = open_audio(path)
        except ReadError as exc:
            raise PcmError(str(exc)) from None
        ctx = self.stream.codec_context
        self.rate = ctx.sample_rate or 0
        self.channels = ctx.channels or 0
        self.lossy = not is_lossless(ctx.name)
        tb = self.stream.time_base
        self.tb_num: int
        self.tb_den: int
        self.tb_num, self.tb_den = (tb.numerator, tb.denominator) if tb is not None else (0, 1)
        if self.stream.duration is not None and self.tb_num and self.rate:
            self.total_frames = self.stream.duration * self.tb_num * self.rate // self.tb_den
        self.tolerance = max(2, self.rate // 100)
        self.target = 0  # the sample asked for: nothing before it is handed out
        self.next = 0  # the sample the next decoded frame is expected to start at
        self._silence = 0  # frames of silence still to hand out (a gap in the timestamps)
        self._fresh = False  # just sought: the next frame's timestamp says where decoding restarts
        self._from_start = True  # decoding runs from the first frame (positions are counted)
        self._frames: Iterator[Any] = self._decode()
        # The first frame's timestamp is sample 0 (an MP4's priming, a stream starting late…).
        self.origin: int | None = None
        first = next(self._frames, None)
        if first is not None and first.pts is not None and self.tb_num:
            self.origin = self._ts(first.pts)
        self._held: Any = first  # decoded, not yet used

    def _ts(self, pts: int) -> int:
        return int(pts * self.tb_num * self.rate // self.tb_den)

    def _pts(self, sample: int) -> int:
        """The stream timestamp of sample ``sample`` (counted from the origin), rounded down."""
        assert self.origin is not None
        return int((sample + self.origin) * self.tb_den // (self.tb_num * self.rate))

    def seek(self, frame: int) -> None:
        self.target = frame
        self._silence, self._held = 0, None
        preroll = int(self.rate * LOSSY_PREROLL_S) if self.lossy else 0
        start = max(0, frame - preroll)
        if start > 0 and self.origin is not None:
            self._restart(self._pts(start), from_start=False)
        else:
            self._rewind()

    def _rewind(self) -> None:
        """Decode from the very first frame, counting positions (always exact, costs the way there)."""
        pts = self._pts(0) if self.origin is not None else 0
        self._restart(pts, from_start=True)

    def _restart(self, pts: int, *, from_start: bool) -> None:
        import av

        try:
            self.container.seek(pts, stream=self.stream, backward=True, any_frame=False)
        except (av.error.FFmpegError, OSError) as exc:
            if not from_start:
                self._error(exc)
                self._rewind()
                return
            # cannot seek back at all: open the file again
            self.container.close()
            try:
                self.container, self.stream = open_audio(self.path)
            except ReadError as again:
                raise PcmError(str(again)) from None
        self._frames = self._decode()
        self._fresh, self._from_start, self.next = True, from_start, 0

    def _decode(self) -> Iterator[Any]:
        return decode_frames(self.container, self.stream, self._error)

    def _error(self, exc: Exception | str) -> None:
        self.errors += 1
        log.debug("decode error in %s: %s", self.path, exc)

    def next_piece(self) -> np.ndarray | None:
        while True:
            if self._silence:
                n = min(self._silence, self.SILENCE_FRAMES)
                self._silence -= n
                start, self.next = self.next, self.next + n
                piece = self._trim(np.zeros((n, self.channels), dtype="<i2"), start)
                if piece is not None:
                    return piece
                continue
            frame, self._held = (self._held, None) if self._held is not None else (next(self._frames, None), None)
            if frame is None:
                return None
            n = frame.samples
            if not n:
                continue
            stamped = frame.pts is not None and self.tb_num and self.origin is not None
            start = self._ts(frame.pts) - self.origin if stamped else self.next  # type: ignore[operator]
            if self._fresh:
                self._fresh = False
                if self._from_start:
                    start = 0 if not stamped else start
                elif not stamped or start > self.target + self.tolerance:
                    # the demuxer cannot tell where it landed, or landed past the target: go the long way
                    self._rewind()
                    continue
                self.next = start
            elif start > self.next + self.tolerance:  # frames were dropped: keep time with silence
                self._error(f"{start - self.next} samples missing")
                self._silence = min(start - self.next, self.rate * MAX_GAP_S)
                self.next = start - self._silence
                self._held = frame
                continue
            piece = self._trim(frame_to_s16(frame.to_ndarray(), frame.format.name, self.channels), start)
            self.next = start + n
            if piece is not None:
                return piece

    def _trim(self, samples: np.ndarray, start: int) -> np.ndarray | None:
        """The part of ``samples`` (which start at sample ``start``) from the target on, or None."""
        if start + len(samples) <= self.target:
            return None
        return samples[self.target - start:] if start < self.target else samples

    def close(self) -> None:
        self.container.close()
