"""Header-only probe: what a recording really is, read from its first bytes, never decoded.

WAV/RF64, FLAC and MP4 are parsed here (a few seeks, whatever the file's length); the formats that
must be converted anyway (MP3, Ogg, WebM/Matroska, AMR, AIFF, ...) are described by PyAV's demuxer.
``probe`` never raises: what went wrong is carried in ``ProbeResult.findings``.
"""

from __future__ import annotations

import logging
import os
import stat
import struct
from pathlib import Path
from typing import BinaryIO, NamedTuple

from desktop_app.audio import flac as _flac
from desktop_app.audio import mp4 as _mp4
from desktop_app.audio.model import ProbeResult, Problem, trailing_data

log = logging.getLogger(__name__)

# Container -> (extension we would give it, extensions that are honest for it).
EXTENSIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "wav": (".wav", (".wav", ".wave")),
    "rf64": (".wav", (".wav", ".rf64", ".bw64")),
    "flac": (".flac", (".flac",)),
    "mp4": (".mp4", (".mp4", ".m4a")),
    "mp3": (".mp3", (".mp3",)),
    "ogg": (".ogg", (".ogg", ".oga", ".opus")),
    "webm": (".webm", (".webm",)),
    "matroska": (".mka", (".mka", ".mkv")),
    "amr": (".amr", (".amr", ".3ga")),
    "aac": (".aac", (".aac",)),
    "aiff": (".aiff", (".aiff", ".aif", ".aifc")),
    "caf": (".caf", (".caf",)),
    "asf": (".wma", (".wma", ".asf", ".wmv")),
}

# WAVE format tags (after WAVE_FORMAT_EXTENSIBLE is resolved to its sub-format).
WAV_PCM, WAV_FLOAT, WAV_ALAW, WAV_MULAW, WAV_GSM, WAV_EXTENSIBLE = 0x0001, 0x0003, 0x0006, 0x0007, 0x0031, 0xFFFE
WAV_CODECS = {0x0002: "adpcm_ms", 0x0011: "adpcm_ima_wav", 0x0055: "mp3", 0x0040: "g721", 0x0045: "g726",
              0x0014: "g723", 0x0022: "truespeech", 0x0092: "ac3"}
MAX_WAV_CHUNKS = 1024  # before the data chunk; real files have a handful
# Tags whose samples analysis reads straight from the file (no decoder).
RAW_TAGS = (WAV_PCM, WAV_FLOAT, WAV_ALAW, WAV_MULAW)


class _Bad(Exception):
    """A header problem found while parsing: becomes a finding."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _find(result: ProbeResult, code: str, message: str, severity: str = "error") -> None:
    result.findings.append(Problem(code, severity, message))  # type: ignore[arg-type]


def probe(path: str | os.PathLike[str]) -> ProbeResult:
    """Describe ``path`` from its headers. Never raises for bad input; never decodes audio."""
    p = Path(path)
    result = ProbeResult(path=str(path), extension=p.suffix.lower())
    try:
        st = os.stat(p)
    except FileNotFoundError:
        _find(result, "unreadable", f"There is no file at {p}.")
        return result
    except OSError as exc:
        _find(result, "unreadable", f"The file cannot be reached: {exc.strerror or exc}.")
        return result
    if stat.S_ISDIR(st.st_mode):
        _find(result, "unreadable", "This is a folder, not a recording.")
        return result
    if not stat.S_ISREG(st.st_mode):
        _find(result, "unreadable", "This is not a regular file (a device, pipe or socket).")
        return result
    result.size_bytes = st.st_size
    if st.st_size == 0:
        _find(result, "empty", "The file is empty (0 bytes): the recording was never written.")
        return result
    try:
        with open(p, "rb") as fh:
            _probe_open(fh, result, st.st_size)
    except PermissionError:
        _find(result, "unreadable", "You are not allowed to read this file (no read permission).")
    except (_Bad, _flac.Damaged) as bad:
        _find(result, bad.code, bad.message)
    except OSError as exc:
        _find(result, "unreadable", f"The file cannot be read: {exc.strerror or exc}.")
    except Exception as exc:  # a parser bug must not become a traceback for the agent (-vv logs it)
        log.warning("probe failed on %s: %s: %s", p, type(exc).__name__, exc,
                    exc_info=log.isEnabledFor(logging.DEBUG))
        _find(result, "unreadable", "The file's header cannot be understood.")
    _check_extension(result)
    return result


def _check_extension(result: ProbeResult) -> None:
    if result.container in EXTENSIONS:
        ext, honest = EXTENSIONS[result.container]
        if result.container == "mp4" and not result.has_video and result.detected_extension == ".m4a":
            ext = ".m4a"
        result.detected_extension = ext
        result.extension_mismatch = result.extension not in honest


def sniff(head: bytes) -> tuple[str | None, int]:
    """The container named by a file's first bytes, and where it starts (after an ID3 tag)."""
    if head[:3] == b"ID3" and len(head) >= 10:
        size = (head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | (head[9] & 0x7F)
        offset = 10 + size + (10 if head[5] & 0x10 else 0)
        return ("flac" if head[offset:offset + 4] == b"fLaC" else "mp3"), offset
    return (_sniff_riff_flac_mp4(head) or _sniff_other_magic(head) or _sniff_frames(head)), 0


_RIFF_FORMS = {b"RIFF": "wav", b"RF64": "rf64", b"BW64": "rf64"}
_MP4_FIRST_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip")


def _sniff_riff_flac_mp4(head: bytes) -> str | None:
    """The formats Call Relay parses itself (checked first, in this order)."""
    if head[8:12] == b"WAVE" and head[:4] in _RIFF_FORMS:
        return _RIFF_FORMS[head[:4]]
    if head[:4] == b"fLaC":
        return "flac"
    if head[4:8] in _MP4_FIRST_BOXES and head[:4] != b"RIFF":
        return "mp4"
    return None


def _sniff_other_magic(head: bytes) -> str | None:
    """The formats PyAV's demuxer describes, by their magic bytes."""
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm" if b"webm" in head[:64] else "matroska"
    if head[:5] == b"#!AMR":
        return "amr"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if head[:4] == b"caff":
        return "caf"
    if head[:4] == b"\x30\x26\xb2\x75":
        return "asf"
    return None


def _sniff_frames(head: bytes) -> str | None:
    """Raw AAC (ADTS) or MP3 frames with no container."""
    if _adts_frames(head):
        return "aac"
    if _mpeg_frames(head, 0):
        return "mp3"
    return None


_MPEG_BITRATES = {  # (version is MPEG-1, layer) -> kbit/s by index
    (True, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (True, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (False, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
}
_MPEG_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _mpeg_frame_len(h: bytes) -> int:
    """Length of the MPEG audio frame whose header is ``h`` (4 bytes), 0 when it is not one."""
    if len(h) < 4 or h[0] != 0xFF or (h[1] & 0xE0) != 0xE0:
        return 0
    version, layer_bits = (h[1] >> 3) & 3, (h[1] >> 1) & 3
    br_index, sr_index, padding = h[2] >> 4, (h[2] >> 2) & 3, (h[2] >> 1) & 1
    if version == 1 or layer_bits == 0 or br_index in (0, 15) or sr_index == 3:
        return 0
    layer = 4 - layer_bits
    mpeg1 = version == 3
    bitrate = _MPEG_BITRATES[(mpeg1, layer)][br_index] * 1000
    rate = _MPEG_RATES[version][sr_index]
    if layer == 1:
        return (12 * bitrate // rate + padding) * 4
    return (144 if mpeg1 or layer == 2 else 72) * bitrate // rate + padding


def _mpeg_frames(head: bytes, offset: int) -> bool:
    """Two MPEG audio frame headers in a row: an MP3 (one alone could be chance)."""
    first = _mpeg_frame_len(head[offset:offset + 4])
    if not first:
        return False
    nxt = offset + first
    if nxt + 4 > len(head):
        return nxt >= len(head) - 4 and len(head) < 4096  # a file of one frame
    return _mpeg_frame_len(head[nxt:nxt + 4]) > 0 and (head[nxt + 1] & 0xFE) == (head[offset + 1] & 0xFE)


def _adts_frames(head: bytes) -> bool:
    if len(head) < 7 or head[0] != 0xFF or (head[1] & 0xF6) != 0xF0:
        return False
    length = (head[3] & 0x03) << 11 | head[4] << 3 | head[5] >> 5
    if length < 7:
        return False
    if length + 2 > len(head):
        return len(head) < 4096
    return head[length] == 0xFF and (head[length + 1] & 0xF6) == 0xF0


def _probe_open(fh: BinaryIO, result: ProbeResult, size: int) -> None:
    head = fh.read(4096)
    kind, offset = sniff(head)
    if kind is None:
        raise _Bad("unreadable", "This is not an audio file Call Relay recognises "
                   "(its first bytes match no known audio format).")
    result.container = kind
    if kind in ("wav", "rf64"):
        _parse_wav(fh, result, size, rf64=kind == "rf64")
    elif kind == "flac":
        _parse_flac(fh, result, size, offset)
    elif kind == "mp4":
        info = _mp4.parse(fh, size)
        result.findings.extend(info.findings)
        if info.needs_demuxer:
            _probe_with_pyav(result)
            return
        result.has_video = info.has_video
        result.has_audio = info.has_audio
        if info.brand_m4a:
            result.detected_extension = ".m4a"
        if not info.has_audio and not any(f.severity == "error" for f in result.findings):
            _find(result, "no-audio-stream", "The file has no audio track"
                  + (" (only video)." if info.has_video else "."))
            return
        result.codec = info.codec
        result.channels = info.channels
        result.sample_rate = info.sample_rate
        result.bit_depth = info.bit_depth
        result.duration_s = info.duration_s
    else:
        _probe_with_pyav(result)


def _fourcc_ok(cid: bytes) -> bool:
    return len(cid) == 4 and all(32 <= b < 127 for b in cid)


class _WavChunks(NamedTuple):
    """What the walk over a WAV file's chunks found before (and at) its data chunk."""

    fmt: bytes | None
    fact: int | None
    data_off: int | None
    data_size: int
    end: int  # where the walk stopped


class _WavFormat(NamedTuple):
    tag: int  # WAVE_FORMAT_EXTENSIBLE resolved to its sub-format
    channels: int
    rate: int
    byte_rate: int
    block_align: int
    bits: int
    valid_bits: int


def _parse_wav(fh: BinaryIO, result: ProbeResult, size: int, *, rf64: bool) -> None:
    chunks = _wav_chunks(fh, size, rf64=rf64)
    if chunks.fmt is None:
        raise _Bad("unreadable", "The WAV header is damaged: it has no format chunk.")
    f = _wav_format(chunks.fmt)
    result.format_tag = f.tag
    result.channels = f.channels
    result.sample_rate = f.rate
    _check_wav_frames(result, f)
    if chunks.data_off is None:
        if chunks.end >= size:
            raise _Bad("empty", "The WAV file has a header but no audio data.")
        raise _Bad("unreadable", "The WAV header is damaged: no audio data chunk was found.")
    usable = _wav_usable(fh, result, size, f, chunks.data_off, chunks.data_size, rf64=rf64)
    usable -= usable % f.block_align
    result.data_offset = chunks.data_off
    result.data_bytes = usable
    result.block_align = f.block_align
    if usable == 0:
        raise _Bad("empty", "The WAV file has a header but no audio in it (0 seconds).")
    result.duration_s = _wav_seconds(f.tag, usable, f.block_align, f.rate, f.byte_rate, f.channels,
                                     chunks.fact if usable == chunks.data_size else None)


def _wav_chunks(fh: BinaryIO, size: int, *, rf64: bool) -> _WavChunks:
    """Walk the chunks from byte 12 up to the data chunk, keeping ds64, fmt and fact."""
    fh.seek(12)
    pos = 12
    data64: int | None = None
    fmt: bytes | None = None
    fact: int | None = None
    chunks = 0
    while pos + 8 <= size:
        chunks += 1
        if chunks > MAX_WAV_CHUNKS:
            raise _Bad("unreadable", f"The WAV header is damaged: more than {MAX_WAV_CHUNKS} chunks come before "
                       "the audio.")
        fh.seek(pos)
        hdr = fh.read(8)
        cid, csz = hdr[:4], struct.unpack("<I", hdr[4:8])[0]
        if not _fourcc_ok(cid):
            raise _Bad("unreadable", f"The WAV header is damaged: at byte {pos} there is no valid chunk "
                       "(a chunk size before it is wrong), so the audio cannot be found.")
        if cid == b"ds64":
            body = fh.read(min(csz, 28))
            if len(body) >= 16:
                data64 = struct.unpack("<Q", body[8:16])[0]
        elif cid == b"fmt ":
            fmt = _wav_fmt_chunk(fh, csz)
        elif cid == b"fact" and csz >= 4:
            body = fh.read(4)
            fact = struct.unpack("<I", body)[0] if len(body) == 4 else None
        elif cid == b"data":
            data_size = data64 if (rf64 and csz == 0xFFFFFFFF and data64 is not None) else csz
            return _WavChunks(fmt, fact, pos + 8, data_size, pos)
        pos += 8 + csz + (csz & 1)
    return _WavChunks(fmt, fact, None, 0, pos)


def _wav_fmt_chunk(fh: BinaryIO, csz: int) -> bytes:
    if csz < 14 or csz > 4096:
        raise _Bad("unreadable", f"The WAV header is damaged: its format chunk claims {csz} bytes.")
    fmt = fh.read(csz)
    if len(fmt) < csz:
        raise _Bad("truncated", "The WAV file ends inside its header: the recording was cut off.")
    return fmt


def _wav_format(fmt: bytes) -> _WavFormat:
    """The format chunk's fields, WAVE_FORMAT_EXTENSIBLE resolved to its sub-format."""
    tag, channels, rate, byte_rate, block_align = struct.unpack("<HHIIH", fmt[:14])
    bits = struct.unpack("<H", fmt[14:16])[0] if len(fmt) >= 16 else 0
    valid_bits = bits
    if tag == WAV_EXTENSIBLE:
        if len(fmt) < 40:
            raise _Bad("unreadable", f"The WAV header is damaged: its format is said to be in an extended "
                       f"format chunk, but the chunk has only {len(fmt)} bytes.")
        valid_bits = struct.unpack("<H", fmt[18:20])[0] or bits
        tag = struct.unpack("<H", fmt[24:26])[0]
    if tag == 0:
        raise _Bad("unreadable", "The WAV header is damaged: its format is 0 (unknown), so the audio cannot "
                   "be read.")
    return _WavFormat(tag, channels, rate, byte_rate, block_align, bits, valid_bits)


def _check_wav_frames(result: ProbeResult, f: _WavFormat) -> None:
    """The codec and sample size, and whether the frame size fits them."""
    tag, channels, rate, block_align, bits = f.tag, f.channels, f.rate, f.block_align, f.bits
    if channels == 0 or rate == 0 or block_align == 0:
        raise _Bad("unreadable", f"The WAV header is damaged: it says {channels} channels at {rate} Hz "
                   f"with {block_align}-byte frames.")
    result.codec = _wav_codec(tag, bits)
    if tag in (WAV_PCM, WAV_FLOAT):
        result.bit_depth = f.valid_bits
        if bits % 8 or block_align != channels * bits // 8:
            raise _Bad("unreadable", f"The WAV header is damaged: {bits}-bit samples in {channels} channels "
                       f"do not fit its {block_align}-byte frames.")
        if tag == WAV_FLOAT and bits not in (32, 64):
            raise _Bad("unreadable", f"The WAV header is damaged: it says {bits}-bit floating-point samples.")
    elif tag in (WAV_ALAW, WAV_MULAW):
        result.bit_depth = 8
        if block_align != channels:
            raise _Bad("unreadable", f"The WAV header is damaged: 8-bit G.711 samples in {channels} channels "
                       f"do not fit its {block_align}-byte frames.")


def _wav_usable(fh: BinaryIO, result: ProbeResult, size: int, f: _WavFormat, data_off: int, data_size: int,
                *, rf64: bool) -> int:
    """How many bytes of audio there really are: a data size that overruns the file (cut off) or hides
    audio after it (a wrong header) is a finding; metadata chunks after the audio are not."""
    available = size - data_off
    if data_size > available:
        claimed, real = _wav_claimed_and_real(f, data_size, available)
        if data_size in (0xFFFFFFFF, 0xFFFFFFFE) and not rf64:
            why = "its header was never finished (the recording program stopped before writing the length)"
        else:
            why = f"the header claims {claimed:.1f} s but only {real:.1f} s is there: the recording was cut off"
        _find(result, "truncated", f"The file is incomplete: {why}.")
        return available
    if data_size < available:
        end = data_off + data_size + (data_size & 1)
        trailing = size - end
        if not _chunks_to_end(fh, end, size):
            if trailing >= max(f.block_align, 1) * max(f.rate // 10, 1):  # enough to be audio the header hides
                claimed, real = _wav_claimed_and_real(f, data_size, available)
                _find(result, "truncated", f"The WAV header's data size is wrong: it claims {claimed:.1f} s but "
                      f"the file holds {real:.1f} s, so players stop early. Converting rewrites the header.")
                return available
            result.findings.append(trailing_data(trailing))
    return data_size


def _wav_claimed_and_real(f: _WavFormat, claimed: int, available: int) -> tuple[float, float]:
    return (_wav_seconds(f.tag, claimed, f.block_align, f.rate, f.byte_rate, f.channels, None),
            _wav_seconds(f.tag, available, f.block_align, f.rate, f.byte_rate, f.channels, None))


def _chunks_to_end(fh: BinaryIO, pos: int, size: int) -> bool:
    """True when the bytes from ``pos`` to the end are whole RIFF chunks (metadata after the audio)."""
    for _ in range(64):
        if pos >= size - 1:  # the end, or one pad byte before it
            return True
        fh.seek(pos)
        hdr = fh.read(8)
        if len(hdr) < 8 or not _fourcc_ok(hdr[:4]):
            return False
        csz = struct.unpack("<I", hdr[4:8])[0]
        pos += 8 + csz + (csz & 1)
        if pos > size + 1:
            return False
    return False


def _wav_codec(tag: int, bits: int) -> str:
    if tag == WAV_PCM:
        return {8: "pcm_u8", 16: "pcm_s16le", 24: "pcm_s24le", 32: "pcm_s32le"}.get(bits, f"pcm_s{bits}le")
    if tag == WAV_FLOAT:
        return "pcm_f64le" if bits == 64 else "pcm_f32le"
    if tag == WAV_ALAW:
        return "pcm_alaw"
    if tag == WAV_MULAW:
        return "pcm_mulaw"
    if tag == WAV_GSM:
        return "gsm_ms"
    return WAV_CODECS.get(tag, f"wav-format-0x{tag:04x}")


def _wav_seconds(tag: int, nbytes: int, block_align: int, rate: int, byte_rate: int, channels: int,
                 fact: int | None) -> float:
    if tag in RAW_TAGS:
        return (nbytes // block_align) / rate
    if tag == WAV_GSM:
        return (nbytes // block_align) * 320 / rate
    if fact:
        return fact / rate
    return nbytes / byte_rate if byte_rate else 0.0


def _parse_flac(fh: BinaryIO, result: ProbeResult, size: int, offset: int) -> None:
    try:
        info = _flac.parse(fh, size, offset)
    except _flac.Damaged as bad:
        if bad.info is not None:
            _describe_flac(result, bad.info)
        raise
    _describe_flac(result, info)
    result.duration_s = info.duration_s
    result.findings.extend(info.findings)


def _describe_flac(result: ProbeResult, info: _flac.FlacInfo) -> None:
    result.codec, result.channels, result.sample_rate, result.bit_depth = "flac", info.channels, info.rate, info.bits


# --- everything else: PyAV's demuxer (opens the container, reads headers, decodes nothing) --------

def _probe_with_pyav(result: ProbeResult) -> None:
    import av

    try:
        container = av.open(result.path, "r", timeout=5.0)
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise _Bad("unreadable", f"The file cannot be opened as {result.container or 'audio'}: "
                   f"{getattr(exc, 'strerror', None) or exc}.") from None
    with container:
        result.has_video = bool(container.streams.video)
        audio = container.streams.audio
        if not audio:
            result.has_audio = False
            raise _Bad("no-audio-stream", "The file has no audio track" +
                       (" (only video)." if result.has_video else "."))
        stream = audio[0]
        cc = stream.codec_context
        if cc is None:
            raise _Bad("unreadable", "The file's audio is in a format no decoder here knows.")
        result.codec = str(getattr(cc.codec, "canonical_name", None) or cc.name)
        result.channels = cc.channels
        result.sample_rate = cc.sample_rate
        raw_bits = int(getattr(cc, "bits_per_raw_sample", 0) or 0)
        result.bit_depth = raw_bits or None
        if stream.duration is not None and stream.time_base is not None:
            result.duration_s = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            result.duration_s = container.duration / 1_000_000
        fmt_name = container.format.name
        if result.container == "matroska" and "webm" in fmt_name and cc.name in ("opus", "vorbis"):
            result.container = "webm"
