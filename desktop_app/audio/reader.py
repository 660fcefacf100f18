"""Streamed sample reading: blocks of float32 samples shaped (channels, frames), bounded memory.

PCM, float, µ-law and A-law WAV/RF64 are read straight from the file's data chunk with NumPy (no
decoder needed, and it reads audio that a header with a wrong size hides); everything else is
decoded by PyAV, whose wheels carry FFmpeg. Decoding errors (a damaged frame) are counted, not raised.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np

from desktop_app.audio.model import ProbeResult
from desktop_app.audio.probe import RAW_TAGS, WAV_ALAW, WAV_FLOAT, WAV_MULAW

log = logging.getLogger(__name__)


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

    def blocks(self, frames_per_block: int) -> Iterator[np.ndarray]:
        if self.raw:
            yield from self._raw_blocks(frames_per_block)
        else:
            yield from self._decoded_blocks(frames_per_block)

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
                x = _to_float(raw, width, tag)
                block = x.reshape(-1, ch).T
                self.frames += block.shape[1]
                yield block

    # --- anything else, through PyAV ------------------------------------------------------------
    def _decoded_blocks(self, frames_per_block: int) -> Iterator[np.ndarray]:
        import av

        try:
            container = av.open(str(self.path), "r", timeout=5.0)
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise ReadError(f"The file cannot be opened for decoding: {exc}.") from None
        with container:
            if not container.streams.audio:
                raise ReadError("The file has no audio track.")
            stream = container.streams.audio[0]
            self.rate = stream.codec_context.sample_rate or self.rate
            self.channels = stream.codec_context.channels or self.channels
            self.lossless = stream.codec_context.name in ("flac", "alac") or stream.codec_context.name.startswith(
                "pcm_")
            pending: list[np.ndarray] = []
            have = 0
            origin: int | None = None
            tolerance = max(2, self.rate // 100)
            for frame in self._frames(container, stream):
                arr = _frame_to_float(frame)
                if arr.shape[0] != self.channels:
                    continue
                if frame.pts is not None and frame.time_base is not None:
                    at = int(round(float(frame.pts * frame.time_base) * self.rate))
                    if origin is None:
                        origin = at
                    gap = at - origin - self._pos
                    if gap > tolerance:  # frames were dropped (a damaged stretch): keep time with silence
                        self._error(f"{gap} samples missing")
                        gap = min(gap, self.rate * MAX_GAP_S)
                        pending.append(np.zeros((self.channels, gap), dtype=np.float32))
                        have += gap
                        self._pos += gap
                pending.append(arr)
                have += arr.shape[1]
                self._pos += arr.shape[1]
                if have >= frames_per_block:
                    block = np.concatenate(pending, axis=1) if len(pending) > 1 else pending[0]
                    self.frames += block.shape[1]
                    yield block
                    pending, have = [], 0
            if pending:
                block = np.concatenate(pending, axis=1)
                self.frames += block.shape[1]
                yield block

    def _frames(self, container: Any, stream: Any) -> Iterator[Any]:
        import av

        demux = container.demux(stream)
        while True:
            try:
                packet = next(demux)
            except StopIteration:
                break
            except av.error.FFmpegError as exc:
                self._error(exc)
                break
            try:
                yield from packet.decode()
            except (av.error.FFmpegError, ValueError) as exc:
                self._error(exc)

    def _error(self, exc: Exception | str) -> None:
        self.errors += 1
        if self.error_at_s is None:
            self.error_at_s = self._pos / self.rate if self.rate else 0.0
        log.debug("decode error in %s: %s", self.path, exc)


def _to_float(raw: np.ndarray, width: int, tag: int | None) -> np.ndarray:
    return cast(np.ndarray, _to_float_any(raw, width, tag))


def _to_float_any(raw: np.ndarray, width: int, tag: int | None) -> Any:
    if tag == WAV_MULAW:
        return MULAW[raw]
    if tag == WAV_ALAW:
        return ALAW[raw]
    if tag == WAV_FLOAT:
        return raw.view("<f4" if width == 4 else "<f8").astype(np.float32)
    if width == 1:
        return (raw.astype(np.float32) - 128.0) / 128.0
    if width == 2:
        return raw.view("<i2").astype(np.float32) / 32768.0
    if width == 3:
        b = raw.reshape(-1, 3).astype(np.int32)
        v = (b[:, 0] << 8 | b[:, 1] << 16 | b[:, 2] << 24) >> 8
        return v.astype(np.float32) / 8388608.0
    if width == 4:
        return (raw.view("<i4").astype(np.float64) / 2147483648.0).astype(np.float32)
    raise ReadError(f"{width * 8}-bit samples are not supported.")


_SCALE = {"s16": 1 / 32768.0, "s16p": 1 / 32768.0, "s32": 1 / 2147483648.0, "s32p": 1 / 2147483648.0,
          "u8": 1 / 128.0, "u8p": 1 / 128.0}


def _frame_to_float(frame: object) -> np.ndarray:
    return cast(np.ndarray, _frame_to_float_any(frame))


def _frame_to_float_any(frame: Any) -> Any:
    fmt = frame.format
    arr = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if not fmt.is_planar:
        arr = arr.reshape(-1, channels).T
    name = fmt.name
    if name in ("flt", "fltp"):
        return arr.astype(np.float32, copy=False)
    if name in ("dbl", "dblp"):
        return arr.astype(np.float32)
    if name in ("u8", "u8p"):
        return (arr.astype(np.float32) - 128.0) * _SCALE[name]
    return arr.astype(np.float32) * np.float32(_SCALE.get(name, 1.0))
