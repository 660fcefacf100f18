"""Channel analysis in one streamed pass: levels, silence, identical/silent channels, crosstalk,
who speaks first, and downsampled peaks for a waveform, with memory bounded by the block size.

Levels are measured over 20 ms windows. A window under ``SILENCE_DBFS`` is silence; the first
window over ``SPEECH_DBFS`` is where a channel starts speaking. Crosstalk is the median, over the
windows where someone speaks, of how far the quieter channel sits below the louder one: a separated
call gives -60 dB or less, a leak of 10 % about -20 dB, the same sound on both channels 0 dB. The
median comes from a fixed histogram, so nothing grows with the recording's length.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable

import numpy as np

from desktop_app.audio.model import Analysis, ChannelStats, ProbeResult
from desktop_app.audio.probe import probe as _probe
from desktop_app.audio.reader import Reader, ReadError

WINDOW_S = 0.02
SILENCE_DBFS = -50.0
SPEECH_DBFS = -40.0
SILENT_CHANNEL_ACTIVE_MAX = 0.005  # a channel with less than 0.5 % non-silent windows is silent
IDENTICAL_DIFF_DB = -40.0  # channels whose difference is this far below the signal are "the same"
FLOOR_DB = -120.0
MAX_BLOCK_FRAMES = 1 << 18  # at most 2 MB of stereo float32 per block, whatever the sample rate
MAX_CHANNELS = 64  # more is a damaged header's number: blocks and waveform lanes would only grow huge
MAX_RATE = 1 << 20  # Hz, the same (audio interfaces go up to 768 kHz)
_HIST_BINS = np.arange(-120.0, 0.5, 1.0)  # crosstalk histogram, 1 dB steps


class Cancelled(Exception):
    """Raised by ``analyse`` when its cancel event is set."""


class AnalysisError(Exception):
    """The file's samples cannot be read (the message is for the agent)."""


def _db(power: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        out: np.ndarray = np.maximum(10.0 * np.log10(power), FLOOR_DB)
    return out


def analyse(
    path: str | os.PathLike[str],
    *,
    peaks_per_channel: int = 2000,
    block_seconds: float = 10.0,
    progress: Callable[[float], None] | None = None,
    cancel: threading.Event | None = None,
    probe_result: ProbeResult | None = None,
) -> Analysis:
    """Analyse the channels of ``path`` in one streamed pass. Raises AnalysisError or Cancelled."""
    pr = probe_result or _probe(path)
    if not pr.readable or not pr.channels:
        reason = pr.findings[0].message if pr.findings else "The file cannot be read."
        raise AnalysisError(reason)
    rate = pr.sample_rate or 8000
    channels = pr.channels
    _check_shape(channels, rate)
    reader = Reader(pr)
    window = max(1, int(round(rate * WINDOW_S)))
    most = MAX_BLOCK_FRAMES * 2 // max(2, channels)  # the same bytes per block with more channels
    block = max(window, min(int(block_seconds * rate), most) // window * window)
    expected = max(1, int(round((pr.duration_s or 0.0) * rate)))
    state: _State | None = None
    carry: np.ndarray | None = None
    try:
        for chunk in reader.blocks(block, multiple=window):
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            if state is None:
                rate, channels = reader.rate, reader.channels
                _check_shape(channels, rate)
                window = max(1, int(round(rate * WINDOW_S)))
                expected = max(1, int(round((pr.duration_s or 0.0) * rate)))
                bucket = max(1, math.ceil(expected / max(1, peaks_per_channel)))  # samples per lane
                state = _State(channels, rate, window, bucket, peaks_per_channel)
            if carry is not None and carry.shape[1]:  # the window left open by the last block
                chunk = np.concatenate([carry, chunk], axis=1)
            whole = chunk.shape[1] // window * window
            carry = chunk[:, whole:].copy()
            if whole:
                state.add(chunk[:, :whole])
            if progress is not None:
                progress(min(1.0, state.frames / expected))
    except ReadError as exc:
        raise AnalysisError(str(exc)) from None
    if state is None:
        raise AnalysisError("No audio could be decoded from the file.")
    if carry is not None and carry.shape[1]:
        state.add(carry, partial=True)
    if progress is not None:
        progress(1.0)
    return state.result(reader.errors, reader.error_at_s)


def _check_shape(channels: int, rate: int) -> None:
    """AnalysisError for a channel count or sample rate no recording has (see MAX_CHANNELS, MAX_RATE)."""
    if not 0 < channels <= MAX_CHANNELS:
        raise AnalysisError(f"The file says it has {channels} channels, which cannot be analysed.")
    if not 0 < rate <= MAX_RATE:
        raise AnalysisError(f"The file says its sample rate is {rate} Hz, which cannot be analysed.")


class _State:
    def __init__(self, channels: int, rate: int, window: int, bucket: int, npeaks: int) -> None:
        self.channels, self.rate, self.window, self.bucket = channels, rate, window, bucket
        self.frames = 0
        self.windows = 0
        self.sumsq = np.zeros(channels)
        self.silent = np.zeros(channels, dtype=np.int64)
        self.first: list[float | None] = [None] * channels
        self.cross = 0.0  # sum of channel 1 x channel 2 (identical channels: equal to each one's energy)
        self.hist = np.zeros(len(_HIST_BINS), dtype=np.int64)
        self.peaks = np.zeros((channels, max(1, npeaks)), dtype=np.float32)

    def add(self, x: np.ndarray, *, partial: bool = False) -> None:
        """Take a block of whole windows (or, once at the end, the partial rest); ``x`` may be overwritten."""
        ch, n = x.shape
        if n == 0:
            return
        if partial:
            xw = x.reshape(ch, 1, n)
            power = np.einsum("cmk,cmk->cm", xw, xw, dtype=np.float64) / n
        else:
            xw = x.reshape(ch, -1, self.window)
            power = np.einsum("cmk,cmk->cm", xw, xw).astype(np.float64) / self.window
        sums = power.sum(axis=1) * (n / power.shape[1])
        self.sumsq += sums
        if ch >= 2:
            self.cross += float(np.dot(x[0], x[1]))
        np.abs(x, out=x)
        self._peaks(x, self.frames, self.bucket)  # the overall peak is the loudest lane, at the end
        level = _db(power)
        self.silent += (level < SILENCE_DBFS).sum(axis=1)
        for c in range(ch):
            if self.first[c] is None:
                hits = np.flatnonzero(level[c] > SPEECH_DBFS)
                if hits.size:
                    self.first[c] = round(float(self.frames + hits[0] * self.window) / self.rate, 3)
        if ch >= 2:
            loud = level[:2].max(axis=0)
            quiet = level[:2].min(axis=0)
            talking = loud > SPEECH_DBFS
            if talking.any():
                gap = np.clip(quiet[talking] - loud[talking], -120.0, 0.0)
                idx = np.clip(np.round(gap + 120.0).astype(np.int64), 0, len(_HIST_BINS) - 1)
                self.hist += np.bincount(idx, minlength=len(_HIST_BINS))
        self.windows += power.shape[1]
        self.frames += n

    def _peaks(self, ax: np.ndarray, s0: int, bucket: int) -> None:
        """Fold ``ax`` (absolute sample values starting at sample ``s0``) into the waveform lanes."""
        n = ax.shape[1]
        first = (-s0) % bucket
        starts = np.arange(first, n, bucket)
        if first != 0:
            starts = np.concatenate([[0], starts])
        values = np.maximum.reduceat(ax, starts, axis=1)
        b0 = (s0 + int(starts[0])) // bucket
        last = self.peaks.shape[1] - 1
        if b0 + values.shape[1] - 1 <= last:
            np.maximum(self.peaks[:, b0:b0 + values.shape[1]], values, out=self.peaks[:, b0:b0 + values.shape[1]])
        else:  # more audio than the header announced: fold the excess into the last lane
            fit = max(0, last + 1 - b0)
            if fit:
                np.maximum(self.peaks[:, b0:last + 1], values[:, :fit], out=self.peaks[:, b0:last + 1])
            self.peaks[:, last] = np.maximum(self.peaks[:, last], values[:, fit:].max(axis=1))

    def result(self, errors: int, error_at: float | None) -> Analysis:
        frames = max(self.frames, 1)
        peak = self.peaks.max(axis=1)
        stats = []
        silent_channels = []
        for c in range(self.channels):
            rms = math.sqrt(self.sumsq[c] / frames)
            silence_ratio = float(self.silent[c] / self.windows) if self.windows else 1.0
            stats.append(ChannelStats(
                rms_dbfs=round(20 * math.log10(rms), 2) if rms > 0 else None,
                peak_dbfs=round(20 * math.log10(float(peak[c])), 2) if peak[c] > 0 else None,
                silence_ratio=round(silence_ratio, 4),
                first_speech_s=self.first[c],
            ))
            if 1.0 - silence_ratio < SILENT_CHANNEL_ACTIVE_MAX:
                silent_channels.append(c + 1)
        identical = False
        crosstalk = None
        if self.channels >= 2:
            energy = float(self.sumsq[0])
            diff = max(0.0, float(self.sumsq[0] + self.sumsq[1]) - 2.0 * self.cross)
            identical = energy > 0 and diff <= energy * 10 ** (IDENTICAL_DIFF_DB / 10)
            total = int(self.hist.sum())
            if total:
                median_bin = int(np.searchsorted(np.cumsum(self.hist), (total + 1) // 2))
                crosstalk = float(_HIST_BINS[median_bin])
        starts = [(t, c + 1) for c, t in enumerate(self.first) if t is not None]
        first_speaker = min(starts)[1] if starts else None
        used = min(self.peaks.shape[1], math.ceil(self.frames / self.bucket))
        peaks = [[round(float(v), 4) for v in row[:used]] for row in self.peaks]
        return Analysis(
            channels=stats,
            sample_rate=self.rate,
            duration_s=round(self.frames / self.rate, 3),
            identical_channels=identical,
            silent_channels=silent_channels,
            crosstalk_db=crosstalk,
            first_speaker=first_speaker,
            peaks=peaks,
            decode_errors=errors,
            decode_error_at_s=None if error_at is None else round(error_at, 3),
        )
