"""Streamed sample reading: blocks of float32 samples shaped (channels, frames), bounded memory.

PCM, float, µ-law and A-law WAV/RF64 are read straight from the file's data chunk with NumPy (no
decoder needed, and it reads audio that a header with a wrong size hides); everything else is
decoded by PyAV, whose wheels carry FFmpeg. Decoding errors (a damaged frame) are counted, not raised.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from desktop_app.audio import flac
from desktop_app.audio.model import ProbeResult
from desktop_app.audio.probe import RAW_TAGS, WAV_ALAW, WAV_FLOAT, WAV_MULAW, sniff

log = logging.getLogger(__name__)

LOSSLESS_CODECS = ("flac", "alac", "wavpack", "tta", "ape")


def is_lossless(codec: str) -> bool:
    """Whether FFmpeg's decoder ``codec`` gives back exactly what was recorded (PCM and the lossless
    codecs): a conversion then keeps up to 24 bits, and the player needs no pre-roll after a seek."""
    return codec in LOSSLESS_CODECS or codec.startswith("pcm_")


MAX_GAP_S = 600  # a gap in the timestamps longer than this is not filled beyond it


class ReadError(Exception):
    """The samples cannot be read at all (the message is a sentence for the agent)."""


def _mulaw_table() -> np.ndarray:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    sign, exp, mant = u & 0x80, (u >> 4) & 0x07, u & 0x0F
    mag = (((mant << 3) + 0x84) << exp) - 0x84
    return (np.where(sign, -mag, mag) / 32768.0).astype(np.float32)


def _alaw_table() -> np.ndarray:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    sign, exp, mant = a & 0x80, (a >> 4) & 0x07, a & 0x0F
    mag = np.where(exp == 0, (mant << 4) + 8, ((mant << 4) + 0x108) << np.maximum(exp - 1, 0))
    return (np.where(sign, mag, -mag) / 32768.0).astype(np.float32)


MULAW = _mulaw_table()
ALAW = _alaw_table()


def open_audio(path: Path) -> tuple[Any, Any]:
    """PyAV's container of ``path`` and its first audio stream; ``ReadError`` (a sentence for the agent)
    when the file cannot be opened, has no audio track or no decoder for it.

    A FLAC file is read through ``flac.Feed``, which keeps what follows (or interrupts) its frames
    out of FFmpeg's parser, so memory stays bounded whatever the file holds besides its audio.
    """
    import av

    feed: flac.Feed | None = None
    try:
        feed = _flac_feed(path)
        container = av.open(str(path), "r", timeout=5.0) if feed is None else av.open(feed, "r", format="flac")
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        if feed is not None:
            feed.close()
        raise ReadError(f"The file cannot be opened for decoding: {exc}.") from None
    if not container.streams.audio:
        container.close()
        raise ReadError("The file has no audio track.")
    stream = container.streams.audio[0]
    if stream.codec_context is None:
        container.close()
        raise ReadError("Its audio is in a format no decoder here knows.")
    if feed is not None:  # a frame whose CRC-16 fails is dropped (a gap, counted), not decoded into noise
        stream.codec_context.options = {"err_detect": "crccheck+explode"}
    return container, stream


def _flac_feed(path: Path) -> flac.Feed | None:
    """A ``flac.Feed`` for a FLAC file (``None`` for any other, or when its header cannot be read)."""
    with open(path, "rb") as fh:
        kind, offset = sniff(fh.read(4096))
        if kind != "flac":
            return None
        try:
            info = flac.layout(fh, os.fstat(fh.fileno()).st_size, offset)
        except flac.Damaged:
            return None
    return flac.Feed(path, info)


def decode_frames(container: Any, stream: Any, on_error: Callable[[Exception], None]) -> Iterator[Any]:
    """The decoded frames of ``stream``, going on past damage: a packet that fails to decode is told
    to ``on_error`` and skipped; a demuxer error is told and ends the stream."""
    import av

    demux = container.demux(stream)
    while True:
        try:
            packet = next(demux)
        except StopIteration:
            return
        except av.error.FFmpegError as exc:
            on_error(exc)
            return
        try:
            yield from packet.decode()
        except (av.error.FFmpegError, ValueError) as exc:
            on_error(exc)


class Reader:
    """Reads one file's samples in blocks; ``frames`` counts what was delivered."""

    def __init__(self, probe: ProbeResult) -> None:
        self.probe = probe
        self.path = Path(probe.path)
        self.channels = probe.channels or 0
        self.rate = probe.sample_rate or 0
        self.frames = 0
        self._pos = 0  # samples decoded so far (frame by frame)
        self.errors = 0
        self.error_at_s: float | None = None
        self.lossless = True
        self.raw = (probe.container in ("wav", "rf64") and probe.format_tag in RAW_TAGS
                    and probe.data_offset is not None)

    def blocks(self, frames_per_block: int, multiple: int = 1) -> Iterator[np.ndarray]:
        """Contiguous float32 blocks (channels, frames) of about ``frames_per_block`` frames each.

        Full blocks hold a whole number of ``multiple`` frames (the rest starts the next block, without
        a copy); the last block and those cut by a gap or a format change may not.
        """
        if self.raw:
            yield from self._raw_blocks(max(multiple, frames_per_block // multiple * multiple))
        else:
            yield from self._decoded_blocks(frames_per_block, max(1, multiple))

    # --- WAV data chunk, read directly ------------------------------------------------------------
    def _raw_blocks(self, frames_per_block: int) -> Iterator[np.ndarray]:
        p = self.probe
        assert p.data_offset is not None and p.data_bytes is not None and p.block_align
        ch, align = self.channels, p.block_align
        width = align // ch
        tag = p.format_tag
        remaining = p.data_bytes
        try:
            fh = open(self.path, "rb")
        except OSError as exc:
            raise ReadError(f"The file cannot be read: {exc.strerror or exc}.") from None
        with fh:
            fh.seek(p.data_offset)
            while remaining > 0:
                want = min(remaining, frames_per_block * align)
                buf = fh.read(want)
                if not buf:
                    break
                usable = len(buf) - len(buf) % align
                remaining -= len(buf)
                raw = np.frombuffer(buf, dtype=np.uint8, count=usable)
                block = _to_float(raw, width, tag, ch)
                self.frames += block.shape[1]
                yield block

    # --- anything else, through PyAV ------------------------------------------------------------
    def _decoded_blocks(self, frames_per_block: int, multiple: int = 1) -> Iterator[np.ndarray]:
        container, stream = open_audio(self.path)
        with container:
            self.rate = stream.codec_context.sample_rate or self.rate
            self.channels = stream.codec_context.channels or self.channels
            self.lossless = is_lossless(stream.codec_context.name)
            tb = stream.time_base
            tb_num, tb_den = (tb.numerator, tb.denominator) if tb is not None else (0, 1)
            channels = self.channels
            # Per block, the bytes of each plane of each frame (zero-copy views), joined once per block.
            parts: list[list[memoryview]] = []
            counts: list[int] = []  # frames in each chunk of parts[*]
            have = 0
            fmt: _Fmt | None = None
            origin: int | None = None
            tolerance = max(2, self.rate // 100)
            for frame in self._frames(container, stream):
                n = frame.samples
                if fmt is None or frame.format.name != fmt.name:
                    if parts and fmt is not None and have:
                        yield self._emit(parts, fmt, have)
                    fmt = _Fmt(frame.format.name, channels)
                    parts, counts, have = [[] for _ in range(fmt.planes)], [], 0
                    if fmt.dtype is None:
                        raise ReadError(f"The decoder gives samples as {fmt.name}, which is not supported.")
                gap, origin = self._gap(frame.pts, tb_num, tb_den, origin)
                if gap > tolerance:  # frames were dropped (a damaged stretch): keep time with silence
                    self._error(f"{gap} samples missing")
                    gap = min(gap, self.rate * MAX_GAP_S)
                    if have:
                        yield self._emit(parts, fmt, have)
                        parts, counts, have = [[] for _ in range(fmt.planes)], [], 0
                    self._pos += gap
                    self.frames += gap
                    yield np.zeros((channels, gap), dtype=np.float32)
                planes = frame.planes
                size = n * fmt.frame_bytes
                if len(planes) != fmt.planes or planes[0].buffer_size < size:
                    self._error("frame layout does not match the stream")
                    continue
                for i, plane in enumerate(planes):
                    parts[i].append(memoryview(plane)[:size])
                counts.append(n)
                have += n
                self._pos += n
                if have >= frames_per_block:
                    rest = have % multiple
                    head, parts, counts = _split(parts, counts, rest, fmt.frame_bytes)
                    yield self._emit(head, fmt, have - rest)
                    have = rest
            if have and fmt is not None:
                yield self._emit(parts, fmt, have)
            self._check_flac_end(container, stream, tb_num, tb_den, tolerance)

    def _gap(self, pts: int | None, tb_num: int, tb_den: int, origin: int | None) -> tuple[int, int | None]:
        """Samples between where a frame stamped ``pts`` starts and where the decoded audio has got to
        (0 without a timestamp), and the stream's first timestamp in samples (``origin``, set once)."""
        if pts is None or not tb_num:
            return 0, origin
        at = pts * tb_num * self.rate // tb_den
        if origin is None:
            origin = at
        return at - origin - self._pos, origin

    def _check_flac_end(self, container: Any, stream: Any, tb_num: int, tb_den: int, tolerance: int) -> None:
        if container.format.name == "flac" and stream.duration and tb_num:  # STREAMINFO's exact length
            missing = stream.duration * tb_num * self.rate // tb_den - self._pos
            if missing > tolerance:  # the last frames were dropped (damaged) or are not there
                self._error(f"{missing} samples missing at the end")

    def _emit(self, parts: list[list[memoryview]], fmt: _Fmt, frames: int) -> np.ndarray:
        block = fmt.to_float(parts, frames)
        self.frames += block.shape[1]
        return block

    def _frames(self, container: Any, stream: Any) -> Iterator[Any]:
        return decode_frames(container, stream, self._error)

    def _error(self, exc: Exception | str) -> None:
        self.errors += 1
        if self.error_at_s is None:
            self.error_at_s = self._pos / self.rate if self.rate else 0.0
        log.debug("decode error in %s: %s", self.path, exc)


def _to_float(raw: np.ndarray, width: int, tag: int | None, channels: int) -> np.ndarray:
    """Interleaved little-endian sample bytes -> contiguous float32 (channels, frames) in [-1, 1)."""
    def planar(values: np.ndarray) -> np.ndarray:
        return np.array(values.reshape(-1, channels).T, dtype=np.float32, order="C")

    if tag == WAV_MULAW:
        return planar(MULAW[raw])
    if tag == WAV_ALAW:
        return planar(ALAW[raw])
    if tag == WAV_FLOAT:
        return planar(raw.view("<f4" if width == 4 else "<f8"))
    if width == 1:
        x = planar(raw)
        x -= 128.0
        x *= 1 / 128.0
        return x
    if width == 2:
        x = planar(raw.view("<i2"))
        x *= 1 / 32768.0
        return x
    if width == 3:
        b = raw.reshape(-1, 3).astype(np.int32)
        x = planar((b[:, 0] << 8 | b[:, 1] << 16 | b[:, 2] << 24) >> 8)
        x *= 1 / 8388608.0
        return x
    if width == 4:
        return np.array((raw.view("<i4").reshape(-1, channels).T / 2147483648.0), dtype=np.float32, order="C")
    raise ReadError(f"{width * 8}-bit samples are not supported.")


_SCALE = {"s16": 1 / 32768.0, "s16p": 1 / 32768.0, "s32": 1 / 2147483648.0, "s32p": 1 / 2147483648.0,
          "u8": 1 / 128.0, "u8p": 1 / 128.0}
_DTYPES = {"u8": np.uint8, "s16": np.int16, "s32": np.int32, "flt": np.float32, "dbl": np.float64,
           "s64": np.int64}


def _split(parts: list[list[memoryview]], counts: list[int], rest: int,
           frame_bytes: int) -> tuple[list[list[memoryview]], list[list[memoryview]], list[int]]:
    """Cut the last ``rest`` frames off ``parts``: (head parts, tail parts, tail counts), no copy."""
    if rest == 0:
        return parts, [[] for _ in parts], []
    idx, left = len(counts) - 1, rest
    while left > counts[idx]:
        left -= counts[idx]
        idx -= 1
    cut = (counts[idx] - left) * frame_bytes
    head = [chunks[:idx] + [chunks[idx][:cut]] for chunks in parts]
    tail = [[chunks[idx][cut:]] + chunks[idx + 1:] for chunks in parts]
    return head, tail, [left] + counts[idx + 1:]


class _Fmt:
    """A decoder's sample format, and how to turn its planes' bytes into float32 (channels, frames)."""

    def __init__(self, name: str, channels: int) -> None:
        self.name = name
        self.channels = channels
        self.planar = name.endswith("p")
        self.base = name[:-1] if self.planar else name
        dtype = _DTYPES.get(self.base)
        self.dtype = None if dtype is None else np.dtype(dtype)
        self.planes = channels if self.planar else 1
        itemsize = self.dtype.itemsize if self.dtype is not None else 0
        self.frame_bytes = itemsize if self.planar else itemsize * channels

    def to_float(self, parts: list[list[memoryview]], frames: int) -> np.ndarray:
        assert self.dtype is not None
        if self.planar:  # the planes one after the other: (channels, frames) in one copy
            joined = bytearray().join(chunk for chunks in parts for chunk in chunks)
            data = np.frombuffer(joined, dtype=self.dtype, count=frames * self.channels)
            x = data.reshape(self.channels, frames)
            if self.dtype != np.float32:
                x = x.astype(np.float32)
        else:
            data = np.frombuffer(b"".join(parts[0]), dtype=self.dtype, count=frames * self.channels)
            x = np.array(data.reshape(-1, self.channels).T, dtype=np.float32, order="C")
        if self.base == "u8":
            x -= 128.0
        scale = _SCALE.get(self.base)
        if scale is not None:
            x *= np.float32(scale)
        return x
