"""Verdicts: what HubSpot will do with a recording, as stable codes with a sentence for the agent.

HubSpot plays and transcribes WAV, FLAC and MP4 audio and treats each channel as one speaker
(caller on channel 1, recipient on channel 2). ``error`` blocks the upload, ``warning`` asks the
agent, ``info`` only tells.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from desktop_app.audio.analysis import AnalysisError, Cancelled
from desktop_app.audio.analysis import analyse as _analyse
from desktop_app.audio.model import Analysis, Fix, Inspection, ProbeResult, Problem
from desktop_app.audio.probe import probe

# What HubSpot takes as it is: container -> codecs.
ACCEPTED = {
    "wav": {"pcm_u8", "pcm_s16le", "pcm_s24le", "pcm_s32le", "pcm_f32le"},
    "rf64": {"pcm_u8", "pcm_s16le", "pcm_s24le", "pcm_s32le", "pcm_f32le"},
    "flac": {"flac"},
    "mp4": {"aac", "alac"},
}
# Accepted containers whose codec browsers do not all play: warn and offer FLAC.
RISKY_CODECS = {"pcm_mulaw": "G.711 µ-law", "pcm_alaw": "G.711 A-law", "pcm_f64le": "64-bit float"}
NAMES = {"wav": "WAV", "rf64": "RF64 (WAV over 4 GB)", "flac": "FLAC", "mp4": "MP4", "mp3": "MP3", "ogg": "Ogg",
         "webm": "WebM", "matroska": "Matroska", "amr": "AMR", "aac": "raw AAC (ADTS)", "aiff": "AIFF",
         "caf": "Core Audio (CAF)", "asf": "Windows Media"}
CODEC_NAMES = {"gsm_ms": "GSM 6.10", "opus": "Opus", "vorbis": "Vorbis", "mp3": "MP3", "amr_nb": "AMR-NB",
               "amr_wb": "AMR-WB", "adpcm_ms": "Microsoft ADPCM", "adpcm_ima_wav": "IMA ADPCM"}

log = logging.getLogger(__name__)

VERY_SHORT_S = 2.0
LOW_RATE_HZ = 8000
TRUNCATION_TOLERANCE_S = 0.5


def _p(code: str, severity: str, message: str) -> Problem:
    return Problem(code, severity, message)  # type: ignore[arg-type]


def judge(pr: ProbeResult, analysis: Analysis | None = None, analysis_error: str | None = None) -> list[Problem]:
    problems: list[Problem] = list(pr.findings)
    codes = {p.code for p in problems}
    if pr.readable and pr.codec is None and not any(p.severity == "error" for p in problems):
        problems.append(_p("unreadable", "error", "The file's header does not say how its audio is coded, so it "
                           "cannot be played."))
    if not pr.readable or pr.codec is None:
        return problems
    if analysis_error:
        problems.append(_p("unreadable", "error", f"The audio cannot be decoded: {analysis_error}"))
        return problems
    problems.extend(_judge_format(pr))
    if pr.duration_s is not None and pr.duration_s <= 0 and "truncated" not in codes:
        problems.append(_p("empty", "error", "The recording holds no audio (0 seconds)."))
        return problems
    problems.extend(_judge_shape(pr))
    if analysis is not None:
        problems.extend(_judge_analysis(pr, analysis, codes))
    return problems


def _judge_format(pr: ProbeResult) -> list[Problem]:
    """What HubSpot makes of the container and codec, a video track and a misleading name."""
    out: list[Problem] = []
    name = NAMES.get(pr.container or "", pr.container or "?")
    codec = CODEC_NAMES.get(pr.codec or "", pr.codec or "?")
    accepted = ACCEPTED.get(pr.container or "")
    if accepted is None or pr.codec not in accepted | set(RISKY_CODECS):
        if accepted is not None:
            inside = f"{codec} audio in a {name} file"
        else:
            inside = f"{name} audio" if codec.lower() == name.lower() else f"{name} ({codec} audio)"
        out.append(_p("unsupported-format", "error",
                      f"HubSpot plays and transcribes only WAV, FLAC and MP4 audio; this is {inside}. "
                      "Convert it to FLAC (lossless, channels kept) or WAV."))
    elif pr.codec in RISKY_CODECS:
        out.append(_p("unsupported-format", "warning",
                      f"This WAV holds {RISKY_CODECS[pr.codec or '']} audio, which not every browser "
                      "plays in HubSpot's player. Converting it to FLAC plays everywhere."))
    if pr.has_video and pr.has_audio:
        out.append(_p("unsupported-format", "warning",
                      "This MP4 also carries a video track; HubSpot expects a recording. Converting to "
                      "FLAC keeps only the audio (and makes the file smaller)."))
    if pr.extension_mismatch:
        said = pr.extension or "no extension"
        out.append(_p("extension-mismatch", "warning",
                      f"The file is named {said} but is really {name} ({pr.detected_extension}); HubSpot "
                      "and players go by the name. Converting writes a correctly named file."))
    return out


def _judge_shape(pr: ProbeResult) -> list[Problem]:
    """What the channel count, length and sample rate mean for the transcript."""
    out: list[Problem] = []
    channels = pr.channels or 0
    if channels == 1:
        out.append(_p("mono", "warning",
                      "The recording has one channel, so HubSpot's transcript cannot tell the caller from "
                      "the recipient. If the PBX wrote the other leg as its own file, merge the two."))
    elif channels > 2:
        out.append(_p("too-many-channels", "warning",
                      f"The recording has {channels} channels; HubSpot transcribes one speaker per channel "
                      "for two-channel calls (caller on 1, recipient on 2). Channels will not be mixed "
                      "together here: export the call as two channels from the phone system."))
    if pr.duration_s is not None and 0 < pr.duration_s < VERY_SHORT_S:
        out.append(_p("very-short", "warning",
                      f"The recording lasts only {pr.duration_s:.1f} s: probably a missed or dropped call, "
                      "with nothing to transcribe."))
    if pr.sample_rate and pr.sample_rate < LOW_RATE_HZ:
        out.append(_p("low-sample-rate", "warning",
                      f"The sample rate is {pr.sample_rate} Hz, below telephone quality (8000 Hz): "
                      "the transcript will be poor."))
    return out


def _judge_analysis(pr: ProbeResult, a: Analysis, codes: set[str]) -> list[Problem]:
    out: list[Problem] = []
    cut_at_end = ("truncated" in codes and a.decode_errors == 1 and a.decode_error_at_s is not None
                  and a.decode_error_at_s >= a.duration_s - TRUNCATION_TOLERANCE_S)
    if a.decode_errors and not cut_at_end:
        at = f" (first at {_clock(a.decode_error_at_s)})" if a.decode_error_at_s is not None else ""
        out.append(_p("unreadable", "warning",
                      f"Part of the audio is damaged: {a.decode_errors} block(s) cannot be decoded{at}, so "
                      "players may skip or stop there. Converting writes a clean file from what is readable."))
    if (pr.duration_s and "truncated" not in codes
            and a.duration_s < pr.duration_s - max(TRUNCATION_TOLERANCE_S, 0.02 * pr.duration_s)):
        out.append(_p("truncated", "error",
                      f"The file is incomplete: its header promises {pr.duration_s:.1f} s but only "
                      f"{a.duration_s:.1f} s of audio can be decoded (the recording was cut off)."))
    if a.duration_s <= 0 or all(c.peak_dbfs is None for c in a.channels):
        out.append(_p("empty", "error", "The recording is digital silence from start to end: nothing was "
                      "recorded."))
        return out
    if len(a.channels) >= 2:
        if a.identical_channels:
            out.append(_p("identical-channels", "warning",
                          "Both channels carry the same sound (a mono recording copied to two channels), so "
                          "HubSpot will hear every word twice and cannot tell the speakers apart."))
        elif a.silent_channels:
            names = {1: "channel 1 (the caller)", 2: "channel 2 (the recipient)"}
            which = " and ".join(names.get(c, f"channel {c}") for c in a.silent_channels)
            out.append(_p("silent-channel", "warning",
                          f"{which[0].upper()}{which[1:]} is silent, so that side of the call will be missing "
                          "from the transcript."))
    return out


def _clock(seconds: float | None) -> str:
    s = int(seconds or 0)
    return f"{s // 60}:{s % 60:02d}"


def inspect(path: str | os.PathLike[str], *, analyse: bool = True,
            progress: Callable[[float], None] | None = None,
            cancel: threading.Event | None = None) -> Inspection:
    """Probe ``path``, analyse its channels if asked, and give the verdicts.

    Never raises for bad input; raises ``Cancelled`` only when ``cancel`` is set during analysis.
    """
    pr = probe(path)
    analysis: Analysis | None = None
    error: str | None = None
    if analyse and pr.readable and pr.channels:
        try:
            analysis = _analyse(path, probe_result=pr, progress=progress, cancel=cancel)
        except AnalysisError as exc:
            error = str(exc)
        except Cancelled:
            raise
        except Exception as exc:  # a bug (or a decoder's surprise) is this file's verdict, not a traceback
            log.warning("analysis failed on %s: %s: %s", path, type(exc).__name__, exc,
                        exc_info=log.isEnabledFor(logging.DEBUG))
            error = "an unexpected problem stopped the analysis (the log has the details)."
    problems = judge(pr, analysis, error)
    if analysis is not None and any(p.code == "truncated" for p in problems):
        pr.duration_s = analysis.duration_s  # a cut-off file lasts what can be decoded, not what its header says
    return Inspection(probe=pr, analysis=analysis, problems=problems)


def fixes_for(inspection: Inspection) -> list[Fix]:
    """The fixes that apply to an inspected file (the GUI shows one button for each)."""
    pr = inspection.probe
    codes = set(inspection.codes())
    fixes: list[Fix] = []
    convertible = pr.readable and bool(pr.channels) and not any(
        p.code == "unreadable" and p.severity == "error" for p in inspection.problems)
    if convertible and (codes & {"unsupported-format", "extension-mismatch", "truncated", "unreadable", "trailing-data"}):
        reasons = [c for c in ("unsupported-format", "truncated", "unreadable", "trailing-data", "extension-mismatch")
                   if c in codes]
        fixes.append(Fix("convert", "Convert to FLAC", f"Writes a clean FLAC copy ({', '.join(reasons)}).",
                         fmt="flac"))
        fixes.append(Fix("convert", "Convert to WAV", f"Writes a clean WAV copy ({', '.join(reasons)}).",
                         fmt="wav"))
    if convertible and pr.channels == 2 and "identical-channels" not in codes:
        fixes.append(Fix("swap", "Swap channels", "Puts the caller on channel 1 and the recipient on channel 2 "
                         "when the phone system recorded them the other way round."))
    if convertible and ("mono" in codes or "identical-channels" in codes):
        fixes.append(Fix("merge", "Merge with the other leg…", "Combines this file with the recipient's (or "
                         "caller's) own recording into one two-channel file.", needs_second_file=True))
    return fixes
