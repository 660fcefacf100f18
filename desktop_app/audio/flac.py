"""FLAC read by seeking: STREAMINFO, the first and the last frame headers, data after the audio.

``parse`` reads the metadata blocks, the first frame header (what every frame of the stream looks
like) and the file's last 256 KB, where the last frame header tells whether the file was cut short
and what follows the audio. ``Feed`` is the file object PyAV decodes a FLAC through: FFmpeg's FLAC
parser keeps everything from the last frame header it found until it finds the next one or the end
of the file, so hundreds of megabytes of zeros after (or inside) the audio would all be held at once;
the feed leaves out what holds no frame header, and stops at the end of a complete stream.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import BinaryIO

from desktop_app.audio.model import Problem, trailing_data

TAIL = 256 * 1024  # the probe reads this much of the file's end
MAX_METADATA_BLOCKS = 1024  # real files have a handful; more is damage (or a loop of empty blocks)
_SYNC = re.compile(b"\xff[\xf8\xf9]")


class Damaged(Exception):
    """The stream cannot be described: ``code`` and ``message`` become the probe's finding."""

    def __init__(self, code: str, message: str, info: FlacInfo | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.info = info  # what STREAMINFO says, when it could be read


@dataclass(frozen=True)
class Frame:
    """One frame header: where it is, the samples it holds, and what it says about the stream."""

    pos: int
    start: int  # first sample
    block: int  # samples
    signature: tuple[int, int, int, int]  # blocking strategy, rate code, sample-size code, channels

    @property
    def end(self) -> int:
        return self.start + self.block


@dataclass
class FlacInfo:
    rate: int
    channels: int
    bits: int
    total: int  # samples per channel; 0 when STREAMINFO does not say
    max_block: int
    max_frame: int  # bytes one frame can take at most
    audio_start: int  # the first frame header
    signature: tuple[int, int, int, int] | None  # the first frame's, which every frame shares
    duration_s: float = 0.0
    findings: list[Problem] = field(default_factory=list)

    def plausible(self, frame: Frame | None, after: int = -1) -> bool:
        """A frame header of this stream starting after sample ``after`` (not a lookalike in other bytes)."""
        if frame is None or frame.start <= after or (self.total and frame.start >= self.total):
            return False
        return self.signature is None or frame.signature == self.signature


def frame_bound(block: int, channels: int, bits: int) -> int:
    """The most bytes a frame of ``block`` samples can take: verbatim subframes (side channel: one bit
    more per sample), frame and subframe headers, padding and CRC-16."""
    return 18 + channels * ((block * (bits + 1) + 7) // 8 + 8)


def parse(fh: BinaryIO, size: int, offset: int) -> FlacInfo:
    """Describe the FLAC stream at ``offset`` (after an ID3 tag, if any). Raises ``Damaged``."""
    info = layout(fh, size, offset)
    tail_start = max(info.audio_start, size - TAIL)
    fh.seek(tail_start)
    tail = fh.read(size - tail_start)
    last = last_frame(info, tail, tail_start)
    tags = tag_bytes(tail)
    rate, total = info.rate, info.total
    info.duration_s = total / rate
    if last is not None:
        if total and last.end < total:  # the final frame is not there (or its header is damaged)
            info.findings.append(Problem("truncated", "error", f"The FLAC file is incomplete: its header promises "
                                         f"{total / rate:.1f} s but the audio stops at {last.end / rate:.1f} s "
                                         "(the file was cut off)."))
            info.duration_s = last.end / rate
            return info
        if not total:
            info.duration_s = last.end / rate
        # the last frame is no longer than a frame of its samples can be: anything beyond is not audio
        extra = size - tags - (last.pos + min(info.max_frame, frame_bound(last.block, info.channels, info.bits)))
        if extra > 0:
            info.findings.append(trailing_data(extra, at_least=True))
    elif tail_start > info.audio_start and info.max_frame < len(tail) - tags:
        # no frame header at all in the last 256 KB, though frames are smaller: the audio ended before them
        info.findings.append(trailing_data(len(tail) - tags - info.max_frame, at_least=True))
    return info


def layout(fh: BinaryIO, size: int, offset: int) -> FlacInfo:
    """STREAMINFO, where the frames start and the first frame's header; raises ``Damaged``."""
    streaminfo, pos = _metadata_blocks(fh, size, offset)
    max_block = int.from_bytes(streaminfo[2:4], "big")
    max_frame = int.from_bytes(streaminfo[7:10], "big")
    rate = streaminfo[10] << 12 | streaminfo[11] << 4 | streaminfo[12] >> 4
    channels = ((streaminfo[12] >> 1) & 7) + 1
    bits = ((streaminfo[12] & 1) << 4 | streaminfo[13] >> 4) + 1
    total = (streaminfo[13] & 0x0F) << 32 | int.from_bytes(streaminfo[14:18], "big")
    bound = frame_bound(max_block or 65535, channels, bits)
    info = FlacInfo(rate=rate, channels=channels, bits=bits, total=total, max_block=max_block,
                    max_frame=min(max_frame, bound) if max_frame else bound, audio_start=pos, signature=None)
    if rate == 0:
        raise Damaged("unreadable", "The FLAC header is damaged (sample rate 0).", info)
    if pos >= size:
        raise Damaged("empty", "The FLAC file has a header but no audio in it.", info)
    fh.seek(pos)
    head = fh.read(16)
    if len(head) < 2 or head[0] != 0xFF or (head[1] & 0xFE) != 0xF8:
        raise Damaged("unreadable", "The FLAC file is damaged: its first audio frame is not where the header "
                      "ends.", info)
    first = frame_at(head, 0, 0, max_block)
    if first is not None:
        info.signature = first.signature
    return info


def _metadata_blocks(fh: BinaryIO, size: int, offset: int) -> tuple[bytes, int]:
    """The STREAMINFO block's 34 bytes and where the metadata blocks end; raises ``Damaged``."""
    pos = offset + 4
    streaminfo: bytes | None = None
    for _ in range(MAX_METADATA_BLOCKS):
        fh.seek(pos)
        hdr = fh.read(4)
        if len(hdr) < 4:
            raise Damaged("truncated", "The FLAC file ends inside its header: the recording was cut off.")
        last, btype, length = hdr[0] & 0x80, hdr[0] & 0x7F, int.from_bytes(hdr[1:4], "big")
        if btype == 127:
            raise Damaged("unreadable", "The FLAC header is damaged (invalid metadata block).")
        if btype == 0:
            streaminfo = fh.read(34)
            if length < 34 or len(streaminfo) < 34:
                raise Damaged("unreadable", "The FLAC header is damaged (short STREAMINFO).")
        pos += 4 + length
        if last:
            break
        if pos > size:
            raise Damaged("truncated", "The FLAC file ends inside its header: the recording was cut off.")
    else:
        raise Damaged("unreadable", "The FLAC header is damaged (its metadata blocks never end).")
    if streaminfo is None:
        raise Damaged("unreadable", "The FLAC header is damaged (no STREAMINFO block).")
    return streaminfo, pos


def tag_bytes(tail: bytes) -> int:
    """Bytes at the end of the file that are tags players know (ID3v1, APEv2), not stray data."""
    n = 128 if len(tail) >= 128 and tail[-128:-125] == b"TAG" else 0
    end = len(tail) - n
    if end >= 32 and tail[end - 32:end - 24] == b"APETAGEX":
        ape = int.from_bytes(tail[end - 20:end - 16], "little")
        flags = int.from_bytes(tail[end - 12:end - 8], "little")
        n += ape + (32 if flags & 0x80000000 else 0)
    return min(n, len(tail))


def last_frame(info: FlacInfo, buf: bytes, base: int, after: int = -1) -> Frame | None:
    """The last frame header of the stream in ``buf`` (which starts at byte ``base`` of the file) whose
    first sample comes after ``after``."""
    # the sync code with the stream's blocking strategy (one pattern: rfind stops at the first hit)
    sync = b"\xff" if info.signature is None else (b"\xff\xf9" if info.signature[0] else b"\xff\xf8")
    end = len(buf)
    while True:
        i = buf.rfind(sync, 0, end)
        if i < 0 or base + i < info.audio_start:
            return None
        frame = frame_at(buf, i, base, info.max_block)
        if info.plausible(frame, after):
            return frame
        end = i + len(sync) - 1


_BLOCK_SIZES = {1: 192, 2: 576, 3: 1152, 4: 2304, 5: 4608, 8: 256, 9: 512, 10: 1024, 11: 2048, 12: 4096,
                13: 8192, 14: 16384, 15: 32768}

_CRC8 = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = ((_c << 1) ^ 0x07) & 0xFF if _c & 0x80 else (_c << 1) & 0xFF
    _CRC8.append(_c)


def _crc8(data: bytes) -> int:
    c = 0
    for b in data:
        c = _CRC8[c ^ b]
    return c


def frame_at(buf: bytes, i: int, base: int, max_block: int) -> Frame | None:
    """The frame header at ``buf[i]`` (byte ``base + i`` of the file) if its fields and CRC-8 are valid."""
    if i + 6 > len(buf) or buf[i] != 0xFF or (buf[i + 1] & 0xFE) != 0xF8:
        return None
    variable = buf[i + 1] & 1
    bs_code, sr_code = buf[i + 2] >> 4, buf[i + 2] & 0x0F
    ch_code, ss_code = buf[i + 3] >> 4, (buf[i + 3] >> 1) & 7
    if bs_code == 0 or sr_code == 15 or ch_code > 10 or ss_code == 3 or buf[i + 3] & 1:
        return None
    j = i + 4
    first = buf[j]
    n = 0
    while n < 8 and first & (0x80 >> n):
        n += 1
    if n == 1 or n > 7:
        return None
    value = first & (0x7F >> n) if n else first
    for k in range(1, max(n, 1)):
        if j + k >= len(buf) or buf[j + k] & 0xC0 != 0x80:
            return None
        value = value << 6 | (buf[j + k] & 0x3F)
    j += max(n, 1)
    if bs_code == 6:
        block = buf[j] + 1 if j < len(buf) else 0
        j += 1
    elif bs_code == 7:
        block = int.from_bytes(buf[j:j + 2], "big") + 1
        j += 2
    else:
        block = _BLOCK_SIZES.get(bs_code, 0)
    if sr_code == 12:
        j += 1
    elif sr_code in (13, 14):
        j += 2
    if j >= len(buf) or _crc8(buf[i:j]) != buf[j]:
        return None
    start = value if variable else value * max_block
    channels = ch_code + 1 if ch_code < 8 else 2
    return Frame(base + i, int(start), int(block), (variable, sr_code, ss_code, channels))


class Feed:
    """A FLAC file as PyAV reads it (``av.open(feed, format="flac")``), leaving out what is not audio.

    Bytes are handed out as they are; every ``bound / 2`` bytes or so the latest frame header is noted.
    When none is found in ``bound`` bytes (a few frames' worth): if the stream's final frame is behind,
    the file ends there for FFmpeg; otherwise reading goes on at the next frame header of this stream.
    So FFmpeg's parser never holds more than a few frames of what is not audio. ``skipped`` counts the
    bytes left out.
    """

    CHUNK = 1 << 20  # read ahead this much when looking for the next frame header

    def __init__(self, path: str | os.PathLike[str], info: FlacInfo) -> None:
        self._fh = open(path, "rb")  # noqa: SIM115 - closed by close() (PyAV calls it with the container)
        self.size = os.fstat(self._fh.fileno()).st_size
        self.info = info
        self.bound = max(256 * 1024, 2 * info.max_frame + 64 * 1024)
        self.pos = 0
        self.stop = self.size  # reading ends here
        self.seen = info.audio_start  # where the latest frame header noted is (or reading restarted)
        self.last: Frame | None = None  # that frame header
        self.final_at: int | None = None  # where the stream's final frame header is, once noted
        self.skipped = 0

    def read(self, n: int = -1) -> bytes:
        if self.pos < self.stop and self.pos - self.seen > self.bound:
            self._resync()
        want = self.stop - self.pos if n < 0 else min(n, self.stop - self.pos)
        if want <= 0:
            return b""
        start = self.pos
        data = self._fh.read(want)
        self.pos += len(data)
        if self.pos - self.seen > self.bound // 2:
            self._note(data, start)
        return data

    def _note(self, data: bytes, base: int) -> None:
        """Note the last frame header in ``data`` (the file's bytes from ``base``), if it holds one."""
        frame = last_frame(self.info, data, base, self.last.start if self.last is not None else -1)
        if frame is not None:
            self.last, self.seen = frame, frame.pos
            if self.info.total and frame.end >= self.info.total:
                self.final_at = frame.pos

    def _resync(self) -> None:
        """No frame header noted for ``bound`` bytes: end the file, or go on at the next frame header."""
        # the bytes handed out since the last one noted (after a seek, FFmpeg may have read the stream's
        # end just before: look that far back too)
        back = self.seen if self.last is not None else max(self.info.audio_start, self.pos - 2 * self.bound)
        self._fh.seek(back)
        self._note(self._fh.read(self.pos - back), back)
        self._fh.seek(self.pos)
        if self.pos - self.seen <= self.bound:
            return
        if self.final_at is not None and self.pos > self.final_at:  # the whole stream was handed out
            self.stop = self.pos
            return
        after = self.last.start if self.last is not None else -1
        at = self.pos
        while at < self.size:
            self._fh.seek(at)
            buf = self._fh.read(self.CHUNK + 16)
            for m in _SYNC.finditer(buf, 0, min(len(buf), self.CHUNK)):
                frame = frame_at(buf, m.start(), at, self.info.max_block)
                if self.info.plausible(frame, after):
                    self.skipped += m.start() + at - self.pos
                    self.pos = self.seen = m.start() + at
                    self._fh.seek(self.pos)
                    return
            at += self.CHUNK
        self.stop = self.pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self.pos, os.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        self._fh.seek(self.pos)
        self.stop, self.last = self.size, None
        self.seen = max(self.pos, self.info.audio_start)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def close(self) -> None:
        self._fh.close()
