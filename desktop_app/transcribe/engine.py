"""Speech to text on this computer: faster-whisper (CTranslate2), one speaker per channel (issue 20).

``transcribe_recording`` decodes each channel of a recording as the app decodes (``audio.reader``:
NumPy for WAV's PCM and µ-law, PyAV for the rest), resamples it with PyAV to 16 kHz mono float32,
transcribes each channel on its own with voice-activity detection (``vad_filter=True``), so that the
speaker is the channel exactly as HubSpot does it, and merges the segments of both channels by start
time into ``Utterance``s. The language is set (``transcribe.language``) or detected once per call,
from the channel with the most speech, and then used for every channel.

faster-whisper is an optional extra (``pip install 'callrelay[transcribe]'``), imported only here and
only when a transcription starts. The model is a folder the user points at (``transcribe.model_dir``);
nothing is downloaded at run time. On the CPU, int8, one transcription at a time in this process.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from desktop_app.errors import UserError
from desktop_app.transcribe import Transcript, Utterance

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000  # what Whisper hears
EXTRA_HINT = "pip install 'callrelay[transcribe]'"
# What a CTranslate2 Whisper model folder holds (faster-whisper would fetch a missing tokenizer.json from
# a model hub, so it is required here: nothing is downloaded at run time).
MODEL_FILES = ("model.bin", "config.json", "tokenizer.json")
VOCABULARY_FILES = ("vocabulary.txt", "vocabulary.json")
SPEECH_DBFS = -40.0  # a 20 ms window louder than this counts as speech when choosing the channel to detect on
DECODE_SHARE = 0.05  # of the progress bar: decoding is fast next to transcribing

_ONE_AT_A_TIME = threading.Lock()
_loaded: tuple[str, Any] | None = None  # (model folder, WhisperModel): loading takes a second or more


class TranscribeError(UserError):
    """A transcription that cannot be made; the message is one sentence the user can act on."""


class ModelError(TranscribeError):
    """The model folder is missing, incomplete or cannot be loaded."""


class Cancelled(TranscribeError):
    """The transcription was cancelled (its ``cancel`` event was set); nothing was kept."""

    exit_code = 130

    def __init__(self) -> None:
        super().__init__("The transcription was cancelled; nothing was kept.")


def whisper_module() -> Any:
    """faster_whisper, or TranscribeError naming the extra that provides it."""
    try:
        import faster_whisper
    except ImportError:
        raise TranscribeError("Transcription needs faster-whisper, which this installation does not have: "
                              f"install the transcribe extra ({EXTRA_HINT}).") from None
    return faster_whisper


def check_model_dir(model_dir: str | os.PathLike[str] | None) -> Path:
    """``model_dir`` as a Path when it is a CTranslate2 Whisper model folder; ModelError (one sentence naming
    what is missing) otherwise."""
    if model_dir is None or not str(model_dir).strip():
        raise ModelError("No transcription model is set: point the transcribe.model_dir setting at a folder "
                         "holding a CTranslate2 Whisper model (see the README's Transcription section).")
    folder = Path(model_dir).expanduser()
    if not folder.is_dir():
        raise ModelError(f"The transcription model folder {folder} does not exist or is not a folder: point the "
                         "transcribe.model_dir setting at a CTranslate2 Whisper model folder.")
    missing = [name for name in MODEL_FILES if not (folder / name).is_file()]
    if not any((folder / name).is_file() for name in VOCABULARY_FILES):
        missing.append(" or ".join(VOCABULARY_FILES))
    if missing:
        raise ModelError(f"The transcription model folder {folder} lacks {', '.join(missing)}: it must be a whole "
                         "CTranslate2 Whisper model (model.bin, config.json, tokenizer.json and the vocabulary).")
    return folder


def _model(folder: Path) -> Any:
    """The WhisperModel of ``folder`` on the CPU, int8 (the last one loaded is kept for the next call)."""
    global _loaded
    key = str(folder.resolve())
    if _loaded is not None and _loaded[0] == key:
        return _loaded[1]
    fw = whisper_module()
    try:
        model = fw.WhisperModel(key, device="cpu", compute_type="int8", local_files_only=True)
    except (RuntimeError, ValueError, OSError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"The transcription model in {folder} cannot be loaded ({reason}): check that the "
                         "folder holds a complete CTranslate2 Whisper model.") from None
    _loaded = (key, model)
    return model


# --- audio ---------------------------------------------------------------------------------------

def decode_channels(path: str | os.PathLike[str], *, progress: Callable[[float], None] | None = None,
                    cancel: threading.Event | None = None) -> list[np.ndarray]:
    """Each channel of ``path`` as 16 kHz mono float32, decoded as the app decodes and resampled by PyAV."""
    import av

    from desktop_app.audio.probe import probe
    from desktop_app.audio.reader import Reader, ReadError

    pr = probe(path)
    if not pr.readable or not pr.channels or not pr.sample_rate:
        reason = pr.findings[0].message if pr.findings else "The file cannot be read as audio."
        raise TranscribeError(reason)
    reader = Reader(pr)
    expected = max(1, int((pr.duration_s or 0.0) * pr.sample_rate))
    channels = _Resampling(pr.sample_rate)
    try:
        for block in reader.blocks(max(pr.sample_rate * 10, 1)):
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            channels.add(block, reader.rate)
            if progress is not None:
                progress(min(1.0, reader.frames / expected))
        channels.finish()
    except ReadError as exc:
        raise TranscribeError(str(exc)) from None
    except av.error.FFmpegError as exc:
        raise TranscribeError(f"The recording cannot be resampled for transcription: {exc}.") from None
    if not channels.parts:
        raise TranscribeError("No audio could be decoded from the recording.")
    return [np.concatenate(p) if p else np.zeros(0, dtype=np.float32) for p in channels.parts]


_MAX_RESAMPLER_RATE = 2**31 - 1


class _Resampling:
    """Each channel of the decoded blocks resampled to 16 kHz mono by PyAV, its pieces kept per channel
    (one resampler per channel of the first block, at the reader's rate then)."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.resamplers: list[Any] = []
        self.parts: list[list[np.ndarray]] = []

    def add(self, block: np.ndarray, reader_rate: int | None) -> None:
        import av

        if not self.resamplers:
            self.rate = reader_rate or self.rate
            if self.rate > _MAX_RESAMPLER_RATE:  # a damaged header's: PyAV's frames take a C int
                raise TranscribeError(f"The recording's header gives an impossible sample rate ({self.rate} Hz): "
                                      "the file is damaged, so it cannot be transcribed.")
            self.resamplers = [av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
                               for _ in range(block.shape[0])]
            self.parts = [[] for _ in self.resamplers]
        for ch, resampler in enumerate(self.resamplers):
            if ch >= block.shape[0]:
                break
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block[ch:ch + 1]), format="fltp",
                                               layout="mono")
            frame.sample_rate = self.rate
            self._take(ch, resampler.resample(frame))

    def finish(self) -> None:
        """What the resamplers still hold."""
        for ch, resampler in enumerate(self.resamplers):
            self._take(ch, resampler.resample(None))

    def _take(self, ch: int, frames: list[Any]) -> None:
        for frame in frames:
            self.parts[ch].append(frame.to_ndarray().reshape(-1).astype(np.float32, copy=False))


def speech_seconds(audio: np.ndarray) -> float:
    """Seconds of 20 ms windows louder than SPEECH_DBFS: how much one channel speaks (cheap, no model)."""
    window = SAMPLE_RATE // 50
    n = audio.shape[0] // window
    if n == 0:
        return 0.0
    power = np.mean(np.square(audio[: n * window].reshape(n, window), dtype=np.float64), axis=1)
    loud = int(np.count_nonzero(power > 10 ** (SPEECH_DBFS / 10)))
    return loud * window / SAMPLE_RATE


# --- transcription -------------------------------------------------------------------------------

def transcribe_recording(
    path: str | os.PathLike[str],
    *,
    model_dir: str | os.PathLike[str] | None,
    language: str | None = None,
    progress: Callable[[float], None] | None = None,
    cancel: threading.Event | None = None,
) -> Transcript:
    """The words of ``path``, one speaker per channel (channel 1 the caller, 2 the recipient), in time order.

    ``language``: an ISO 639-1 code, or None/"" to detect it once from the channel with the most speech.
    ``progress(fraction)`` is called as audio is consumed; setting ``cancel`` stops between segments with
    ``Cancelled``. Raises ``TranscribeError`` (one sentence) for a missing extra, model or unreadable file.
    One transcription runs at a time: a second call waits for the first.
    """
    whisper_module()
    folder = check_model_dir(model_dir)
    language = (language or "").strip().lower() or None
    with _ONE_AT_A_TIME:
        model = _model(folder)
        report = progress or (lambda _f: None)
        channels = decode_channels(path, cancel=cancel, progress=lambda f: report(DECODE_SHARE * f))
        total_s = max(1e-9, sum(a.shape[0] for a in channels) / SAMPLE_RATE)
        done_s = 0.0
        # The channel with the most speech first: its speech tells the language, used then for every channel.
        order = sorted(range(len(channels)), key=lambda ch: -speech_seconds(channels[ch]))
        found: list[Utterance] = []
        for ch in order:
            audio = channels[ch]
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            segments, info = model.transcribe(audio, language=language, vad_filter=True, beam_size=5,
                                              word_timestamps=True)
            if language is None and info.all_language_probs is not None and speech_seconds(audio) > 0:
                language = str(info.language)
            log.debug("channel %d: language %s (%.2f)", ch + 1, info.language, info.language_probability)
            try:
                for seg in segments:
                    text = str(seg.text).strip()
                    if text:
                        found.append(Utterance(ch + 1, int(round(seg.start * 1000)), int(round(seg.end * 1000)),
                                               text))
                    report(DECODE_SHARE + (1 - DECODE_SHARE) * min(1.0, (done_s + float(seg.end)) / total_s))
                    if cancel is not None and cancel.is_set():
                        raise Cancelled()
            finally:  # a generator left open holds CTranslate2's work: ended here, not at the interpreter's exit
                segments.close()
            done_s += audio.shape[0] / SAMPLE_RATE
            report(DECODE_SHARE + (1 - DECODE_SHARE) * min(1.0, done_s / total_s))
        found.sort(key=lambda u: (u.start_ms, u.channel, u.end_ms))
        report(1.0)
        return Transcript(language or "", tuple(found))
