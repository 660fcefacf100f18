"""The plain data the audio package hands out: typed dataclasses, each JSON-ready via ``to_dict``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning", "info"]

# Every verdict code, with the severity it usually carries (some codes are milder in milder cases).
CODES: dict[str, Severity] = {
    "unsupported-format": "error",
    "unreadable": "error",
    "truncated": "error",
    "empty": "error",
    "no-audio-stream": "error",
    "trailing-data": "warning",
    "extension-mismatch": "warning",
    "mono": "warning",
    "identical-channels": "warning",
    "silent-channel": "warning",
    "too-many-channels": "warning",
    "very-short": "warning",
    "low-sample-rate": "warning",
}


@dataclass(frozen=True)
class Problem:
    code: str
    severity: Severity
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "severity": self.severity, "message": self.message}


def trailing_data(nbytes: int, *, at_least: bool = False) -> Problem:
    """The ``trailing-data`` warning: ``nbytes`` (or more) after the end of the audio that are not audio."""
    amount = f"{nbytes / 2**20:.1f} MB" if nbytes >= 2**20 else f"{nbytes:,} bytes"
    return Problem("trailing-data", "warning",
                   f"The file goes on after its audio ends: {'at least ' if at_least else ''}{amount} that "
                   "are not audio (two files joined, or a copy that went wrong). Players stop where the audio "
                   "ends; converting writes a file without them.")


@dataclass
class ProbeResult:
    """What a file is, read from its headers only. ``error`` carries why it could not be read."""

    path: str
    size_bytes: int | None = None
    extension: str = ""  # as named, lower case with the dot ("" when none)
    container: str | None = None  # wav, rf64, flac, mp4, mp3, ogg, webm, matroska, amr
    codec: str | None = None  # ffmpeg's codec names: pcm_s16le, flac, aac, alac, opus, ...
    channels: int | None = None
    sample_rate: int | None = None
    bit_depth: int | None = None  # None for lossy codecs
    duration_s: float | None = None
    detected_extension: str | None = None
    extension_mismatch: bool = False
    has_video: bool = False
    has_audio: bool = True
    # What the header read found wrong (unreadable, truncated, empty, no-audio-stream, trailing-data).
    findings: list[Problem] = field(default_factory=list)
    # Byte range of raw PCM in a WAV/RF64 (lets analysis read it without a decoder).
    data_offset: int | None = None
    data_bytes: int | None = None
    block_align: int | None = None
    format_tag: int | None = None

    @property
    def readable(self) -> bool:
        return not any(f.severity == "error" and f.code != "truncated" for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["findings"] = [f.to_dict() for f in self.findings]
        return d


@dataclass
class ChannelStats:
    rms_dbfs: float | None  # None for digital silence (minus infinity)
    peak_dbfs: float | None
    silence_ratio: float  # share of 20 ms windows below the silence threshold
    first_speech_s: float | None  # start of the first window above the speech threshold

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Analysis:
    channels: list[ChannelStats]
    sample_rate: int
    duration_s: float  # what was actually decoded
    identical_channels: bool
    silent_channels: list[int]  # 1-based
    crosstalk_db: float | None  # level left on the other channel while one speaks alone (dB, <= 0)
    first_speaker: int | None  # 1-based channel that speaks first
    peaks: list[list[float]]  # per channel, 0..1, downsampled for a waveform lane
    decode_errors: int = 0
    decode_error_at_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["channels"] = [c.to_dict() for c in self.channels]
        return d


@dataclass
class Inspection:
    probe: ProbeResult
    analysis: Analysis | None
    problems: list[Problem]

    @property
    def uploadable(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)

    def codes(self) -> list[str]:
        return [p.code for p in self.problems]

    def to_dict(self) -> dict[str, Any]:
        """Exactly the object ``callrelay check --json`` prints for one file."""
        p = self.probe
        return {
            "path": p.path,
            "container": p.container,
            "codec": p.codec,
            "channels": p.channels,
            "sample_rate": p.sample_rate,
            "bit_depth": p.bit_depth,
            "duration_s": None if p.duration_s is None else round(p.duration_s, 3),
            "size_bytes": p.size_bytes,
            "uploadable": self.uploadable,
            "problems": [q.to_dict() for q in self.problems],
        }

    def to_full_dict(self) -> dict[str, Any]:
        """Everything: the probe, the analysis (peaks included) and the verdicts (for the GUI, logs)."""
        return {
            "probe": self.probe.to_dict(),
            "analysis": None if self.analysis is None else self.analysis.to_dict(),
            "problems": [q.to_dict() for q in self.problems],
            "uploadable": self.uploadable,
        }


@dataclass(frozen=True)
class Fix:
    """A fix that applies to an inspected file: ``kind`` is swap, merge or convert."""

    kind: Literal["swap", "merge", "convert"]
    label: str  # button text
    reason: str  # why it is offered
    fmt: str = "flac"
    needs_second_file: bool = False  # merge needs the other leg

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Prefill:
    path: str
    pattern: str | None = None  # name of the file-name pattern that matched
    start: str | None = None  # ISO 8601, local time as the PBX wrote it (no zone)
    duration_s: float | None = None
    from_number: str | None = None
    to_number: str | None = None
    direction: Literal["inbound", "outbound"] | None = None
    caller_name: str | None = None
    unique_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
