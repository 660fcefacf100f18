"""MP4/M4A box headers, read by seeking: tracks, codec, channels, rate, duration; nothing decoded.

Only the boxes on the way to each track's sample description are read (``moov/trak/mdia/{hdlr,mdhd}``
and ``minf/stbl/stsd``); the sample tables, which grow with the recording's length, are skipped.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from desktop_app.audio.model import Problem, trailing_data

CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"udta"}
MAX_BOXES = 4096  # side by side in one box (or the file): real files have a few


@dataclass
class Mp4Info:
    has_audio: bool = False
    has_video: bool = False
    codec: str | None = None
    channels: int | None = None
    sample_rate: int | None = None
    bit_depth: int | None = None
    duration_s: float | None = None
    brand_m4a: bool = False
    needs_demuxer: bool = False  # fragmented or unusual: let PyAV describe it
    findings: list[Problem] = field(default_factory=list)


def _boxes(fh: BinaryIO, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, box end) of each box in [start, end); ValueError for an impossible size."""
    pos = start
    for _ in range(MAX_BOXES):
        if pos + 8 > end:
            return
        fh.seek(pos)
        hdr = fh.read(16)
        if len(hdr) < 8:
            return
        size, kind = struct.unpack(">I4s", hdr[:8])
        head = 8
        if size == 1:
            if len(hdr) < 16:
                return
            size = struct.unpack(">Q", hdr[8:16])[0]
            head = 16
        elif size == 0:
            size = end - pos
        if size < head:
            raise ValueError(f"box {kind!r} at byte {pos} has an impossible size {size}")
        yield kind, pos + head, pos + size
        pos += size
    raise ValueError(f"more than {MAX_BOXES} boxes follow each other")


def parse(fh: BinaryIO, size: int) -> Mp4Info:
    info = Mp4Info()
    scan = _top_level(fh, size, info)
    if scan is None:
        return info
    moov, seen, at = scan
    if at < size:
        info.findings.append(trailing_data(size - at))
    if moov is None:
        _without_movie(info, seen)
        return info
    try:
        _movie(fh, moov, info)
    except (ValueError, IndexError, struct.error):
        info.findings.append(_damaged("The MP4 file is damaged: its description of the tracks cannot be read."))
    return info


def _top_level(fh: BinaryIO, size: int, info: Mp4Info) -> tuple[tuple[int, int] | None, set[bytes], int] | None:
    """The movie box, the kinds of top-level box seen and where the last one ends; None when the file is
    too damaged to go on (the finding is in ``info``)."""
    moov: tuple[int, int] | None = None
    seen: set[bytes] = set()
    at = 0  # where the next top-level box starts
    try:
        for kind, payload, end in _boxes(fh, 0, size):
            if {b"moov", b"mdat"} <= seen and (not _printable(kind) or end > size):
                break  # the movie and its data are whole: what follows is not part of them
            if not _printable(kind):
                info.findings.append(_damaged(f"The MP4 file is damaged: no valid box at byte {at}."))
                return None
            if kind == b"ftyp":
                fh.seek(payload)
                info.brand_m4a = fh.read(4) == b"M4A "
            if end > size:
                info.findings.append(Problem(
                    "truncated", "error",
                    f"The MP4 file is incomplete: its '{kind.decode('latin-1')}' box claims {end - payload} "
                    f"bytes but the file ends {end - size} bytes early (the recording was cut off)."))
                if kind == b"moov":
                    return None
            seen.add(kind)
            if kind == b"moov":
                moov = (payload, min(end, size))
            at = end
    except ValueError as exc:
        if not {b"moov", b"mdat"} <= seen:
            info.findings.append(_damaged(f"The MP4 file is damaged: {exc}."))
            return None
    return moov, seen, at


def _without_movie(info: Mp4Info, seen: set[bytes]) -> None:
    """No 'moov' box: fragmented (the demuxer's job), never finished, or no tracks at all."""
    if b"moof" in seen:
        info.needs_demuxer = True
    elif b"mdat" in seen:
        info.findings[:] = [Problem("truncated", "error", "The MP4 file was never finished: it has audio data "
                                    "but no index (the 'moov' box), so no player can read it.")]
    else:
        info.findings.append(_damaged("The MP4 file holds no tracks (no 'moov' box)."))


def _printable(kind: bytes) -> bool:
    return all(32 <= b < 127 for b in kind)


def _damaged(message: str) -> Problem:
    return Problem("unreadable", "error", message)


def _movie(fh: BinaryIO, moov: tuple[int, int], info: Mp4Info) -> None:
    movie_timescale = 0
    for kind, payload, end in _boxes(fh, *moov):
        if kind == b"mvhd":
            fh.seek(payload)
            body = fh.read(24)
            movie_timescale = struct.unpack(">I", body[20:24] if body[0] == 1 else body[12:16])[0]
        if kind == b"mvex":
            info.needs_demuxer = True
        if kind == b"trak":
            _track(fh, payload, end, info, movie_timescale)


def _edit_seconds(fh: BinaryIO, start: int, end: int, movie_timescale: int) -> float | None:
    """Duration the edit list presents (encoders skip the codec's priming samples this way)."""
    edts = _child(fh, start, end, b"edts")
    elst = _child(fh, *edts, b"elst") if edts else None
    if elst is None or not movie_timescale:
        return None
    fh.seek(elst[0])
    head = fh.read(8)
    version, count = head[0], struct.unpack(">I", head[4:8])[0]
    size = 20 if version == 1 else 12
    body = fh.read(min(count, 64) * size)
    total = 0
    for i in range(len(body) // size):
        entry = body[i * size:(i + 1) * size]
        if version == 1:
            duration, media_time = struct.unpack(">Qq", entry[:16])
        else:
            duration, media_time = struct.unpack(">Ii", entry[:8])
        if media_time >= 0:
            total += duration
    return total / movie_timescale if total else None


def _track(fh: BinaryIO, start: int, end: int, info: Mp4Info, movie_timescale: int = 0) -> None:
    mdia = _child(fh, start, end, b"mdia")
    if mdia is None:
        return
    handler, timescale, duration, minf = _media(fh, mdia)
    if handler == b"vide":
        info.has_video = True
        return
    if handler != b"soun" or info.has_audio or minf is None:
        return
    info.has_audio = True
    if timescale:
        info.duration_s = duration / timescale
    edited = _edit_seconds(fh, start, end, movie_timescale)
    if edited is not None:
        info.duration_s = edited
    stbl = _child(fh, *minf, b"stbl")
    stsd = _child(fh, *stbl, b"stsd") if stbl else None
    entries = list(_boxes(fh, stsd[0] + 8, stsd[1])) if stsd else []
    if not entries:
        info.findings.append(_damaged("The MP4 file is damaged: its audio track does not say how the audio is "
                                      "coded (no sample description)."))
        return
    fourcc, epayload, eend = entries[0]
    fh.seek(epayload)
    entry = fh.read(28)
    version = struct.unpack(">H", entry[8:10])[0]
    channels, sample_size = struct.unpack(">HH", entry[16:20])
    rate = struct.unpack(">I", entry[24:28])[0] >> 16
    info.channels, info.sample_rate = channels, rate or timescale
    child_start = epayload + 28 + {1: 16, 2: 36}.get(version, 0)
    info.codec = _entry_codec(fh, fourcc, child_start, eend, sample_size, info)


def _media(fh: BinaryIO, mdia: tuple[int, int]) -> tuple[bytes | None, int, int, tuple[int, int] | None]:
    """The track's handler ('soun', 'vide', ...), timescale and duration, and where its 'minf' box is."""
    handler = None
    timescale = duration = 0
    minf = None
    for kind, payload, bend in _boxes(fh, *mdia):
        if kind == b"hdlr":
            fh.seek(payload + 8)
            handler = fh.read(4)
        elif kind == b"mdhd":
            fh.seek(payload)
            body = fh.read(32)
            if body[0] == 1:
                timescale, duration = struct.unpack(">IQ", body[20:32])
            else:
                timescale, duration = struct.unpack(">II", body[12:20])
        elif kind == b"minf":
            minf = (payload, bend)
    return handler, timescale, duration, minf


# Sample entries whose codec is named by their fourcc alone; in those of _SIZED_ENTRIES the entry's
# sample size is the bit depth.
_ENTRY_CODECS = {b"fLaC": "flac", b"Opus": "opus", b"opus": "opus", b".mp3": "mp3", b"mp3 ": "mp3",
                 b"ulaw": "pcm_mulaw", b"alaw": "pcm_alaw", b"sowt": "pcm", b"twos": "pcm", b"lpcm": "pcm",
                 b"in24": "pcm", b"in32": "pcm", b"fl32": "pcm"}
_SIZED_ENTRIES = {b"fLaC", b"sowt", b"twos", b"lpcm", b"in24", b"in32", b"fl32"}


def _entry_codec(fh: BinaryIO, fourcc: bytes, child_start: int, eend: int, sample_size: int,
                 info: Mp4Info) -> str:
    """The codec of the track's first sample entry (AAC/MP3 from its 'esds', ALAC's cookie read)."""
    if fourcc == b"mp4a":
        return _mp4a_codec(fh, child_start, eend, info)
    if fourcc == b"alac":
        _alac_cookie(fh, child_start, eend, info)
        return "alac"
    if fourcc in _SIZED_ENTRIES:
        info.bit_depth = sample_size
    return _ENTRY_CODECS.get(fourcc) or fourcc.decode("latin-1").strip()


def _mp4a_codec(fh: BinaryIO, child_start: int, eend: int, info: Mp4Info) -> str:
    esds = _child(fh, child_start, eend, b"esds")
    if esds is None:
        wave = _child(fh, child_start, eend, b"wave")
        esds = _child(fh, *wave, b"esds") if wave else None
    if esds is None:
        return "aac"
    fh.seek(esds[0])
    return _esds(fh.read(min(esds[1] - esds[0], 256)), info)


def _alac_cookie(fh: BinaryIO, child_start: int, eend: int, info: Mp4Info) -> None:
    cookie = _child(fh, child_start, eend, b"alac")
    if cookie is not None:
        fh.seek(cookie[0] + 4)
        c = fh.read(24)
        if len(c) >= 24:
            info.bit_depth = c[5]
            info.channels = c[9]
            info.sample_rate = struct.unpack(">I", c[20:24])[0] or info.sample_rate


def _child(fh: BinaryIO, start: int, end: int, want: bytes) -> tuple[int, int] | None:
    for kind, payload, bend in _boxes(fh, start, end):
        if kind == want:
            return payload, bend
    return None


_AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
_AAC_CHANNELS = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 8}


def _esds(body: bytes, info: Mp4Info) -> str:
    """Codec from the ES descriptor (AAC or MP3 in MP4), channels from AAC's AudioSpecificConfig."""
    i = 4
    codec = "aac"
    while i + 2 <= len(body):
        tag = body[i]
        length, i = _descriptor_length(body, i + 1)
        if tag == 0x03:
            flags = body[i + 2]
            i += 3 + (2 if flags & 0x80 else 0) + (2 if flags & 0x20 else 0)
            if flags & 0x40:
                i += 1 + body[i]
        elif tag == 0x04:
            oti = body[i]
            if oti in (0x69, 0x6B):
                return "mp3"
            if oti not in (0x40, 0x66, 0x67, 0x68):
                codec = f"mp4a-0x{oti:02x}"
            i += 13
        elif tag == 0x05:
            _audio_specific_config(body[i:i + length], info)
            return codec
        else:
            i += length
    return codec


def _descriptor_length(body: bytes, i: int) -> tuple[int, int]:
    """A descriptor's length (up to four 7-bit bytes) read at ``i``, and where its body starts."""
    length = 0
    for _ in range(4):
        b = body[i]
        i += 1
        length = length << 7 | (b & 0x7F)
        if not b & 0x80:
            break
    return length, i


def _audio_specific_config(asc: bytes, info: Mp4Info) -> None:
    """Channels (and the rate, unless the sample entry gave one) from AAC's AudioSpecificConfig."""
    if len(asc) >= 2:
        freq_index = (asc[0] & 0x07) << 1 | asc[1] >> 7
        if freq_index == 15 and len(asc) >= 5:
            chan_config = (asc[4] >> 3) & 0x0F
        else:
            chan_config = (asc[1] >> 3) & 0x0F
            if freq_index < len(_AAC_RATES) and not info.sample_rate:
                info.sample_rate = _AAC_RATES[freq_index]
        if chan_config in _AAC_CHANNELS:
            info.channels = _AAC_CHANNELS[chan_config]
