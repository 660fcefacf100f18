"""Channel analysis: levels, silence, crosstalk, first speaker, peaks, progress, cancel, bounded memory."""

from __future__ import annotations

import threading
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from desktop_app.audio import Cancelled, analyse

from . import gen


def test_levels_and_silence_match_the_signal(folder: Path, x: np.ndarray) -> None:
    a = analyse(gen.write_wav(folder / "a.wav", x))
    for c in range(2):
        rms = 20 * np.log10(np.sqrt(np.mean(x[c].astype(np.float64) ** 2)))
        peak = 20 * np.log10(np.max(np.abs(x[c])))
        assert a.channels[c].rms_dbfs == pytest.approx(rms, abs=0.05)
        assert a.channels[c].peak_dbfs == pytest.approx(peak, abs=0.05)
    # caller: silent 0-0.3 s then 0.6 s on / 0.4 s off; recipient: silent 0-1.0 s then 0.5 on / 0.5 off
    assert a.channels[0].silence_ratio == pytest.approx((0.3 + 0.4 * 3 + 0.1) / 4.0, abs=0.03)
    assert a.channels[1].silence_ratio == pytest.approx((1.0 + 0.5 * 3) / 4.0, abs=0.03)
    assert a.channels[0].first_speech_s == pytest.approx(0.3, abs=0.03)
    assert a.channels[1].first_speech_s == pytest.approx(1.0, abs=0.03)
    assert a.first_speaker == 1
    assert a.duration_s == pytest.approx(4.0)
    assert not a.identical_channels and a.silent_channels == []
    assert a.crosstalk_db is not None and a.crosstalk_db < -60


def test_first_speaker_follows_who_speaks_first(folder: Path) -> None:
    y = gen.call(4.0, caller_start=1.5, recipient_start=0.2)
    assert analyse(gen.write_wav(folder / "a.wav", y)).first_speaker == 2


@pytest.mark.parametrize("leak,expected", [(0.1, -20.0), (0.03, -30.5), (0.3, -10.5)])
def test_crosstalk_measures_the_leak(folder: Path, leak: float, expected: float) -> None:
    y = gen.call(4.0, leak=leak)
    a = analyse(gen.write_wav(folder / "a.wav", y))
    assert a.crosstalk_db == pytest.approx(expected, abs=2.0)


def test_peaks_give_a_waveform_lane_per_channel(folder: Path, x: np.ndarray) -> None:
    a = analyse(gen.write_wav(folder / "a.wav", x), peaks_per_channel=40)
    assert len(a.peaks) == 2 and all(len(lane) == 40 for lane in a.peaks)
    bucket = x.shape[1] // 40
    for c in range(2):
        expected = np.abs(x[c]).reshape(40, bucket).max(axis=1)
        assert np.allclose(a.peaks[c], expected, atol=2e-4)
    assert a.peaks[1][:9] == [0.0] * 9  # the recipient says nothing for the first second


def test_same_results_whatever_the_block_size(folder: Path, x: np.ndarray) -> None:
    path = gen.write_wav(folder / "a.wav", x)
    big = analyse(path, block_seconds=10.0, peaks_per_channel=100)
    small = analyse(path, block_seconds=0.05, peaks_per_channel=100)
    assert small.peaks == big.peaks
    assert [c.first_speech_s for c in small.channels] == [c.first_speech_s for c in big.channels]
    assert small.channels[0].rms_dbfs == pytest.approx(big.channels[0].rms_dbfs, abs=0.01)
    assert small.crosstalk_db == big.crosstalk_db


@pytest.mark.parametrize("encoding,name", [("flac", "a.flac"), ("aac", "a.mp4"), ("alac", "a.m4a"),
                                           ("opus", "a.ogg"), ("mp3", "a.mp3")])
def test_decoded_formats_give_the_same_picture(encoding: str, name: str, folder: Path, x: np.ndarray) -> None:
    a = analyse(gen.encode(folder / name, x, encoding))
    assert a.first_speaker == 1
    assert a.channels[0].first_speech_s == pytest.approx(0.3, abs=0.06)
    assert a.channels[1].first_speech_s == pytest.approx(1.0, abs=0.06)
    assert a.crosstalk_db is not None and a.crosstalk_db < -40
    assert a.duration_s == pytest.approx(4.0, abs=0.15)


def test_progress_is_reported_and_ends_at_one(folder: Path) -> None:
    path = gen.write_wav(folder / "a.wav", gen.call(20.0))
    seen: list[float] = []
    analyse(path, block_seconds=1.0, progress=seen.append)
    assert len(seen) >= 20
    assert seen == sorted(seen) and seen[-1] == 1.0 and 0 < seen[0] < 0.2


def test_cancel_stops_the_analysis(folder: Path) -> None:
    path = gen.write_wav(folder / "a.wav", gen.call(20.0))
    cancel = threading.Event()
    calls: list[float] = []

    def progress(fraction: float) -> None:
        calls.append(fraction)
        if fraction > 0.2:
            cancel.set()

    with pytest.raises(Cancelled):
        analyse(path, block_seconds=1.0, progress=progress, cancel=cancel)
    assert max(calls) < 0.5


def test_memory_stays_bounded_by_the_block_not_the_file(folder: Path) -> None:
    """A 5-minute stereo file (9.6 MB of samples): the analysis holds a few blocks, not the recording."""
    one = gen.call(10.0)
    path = folder / "long.wav"
    path.write_bytes(gen.wav_bytes(np.tile(one, 30)))
    size = path.stat().st_size
    tracemalloc.start()
    try:
        a = analyse(path, block_seconds=5.0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert a.duration_s == pytest.approx(300.0)
    assert peak < size / 3, f"analysis peaked at {peak / 1e6:.1f} MB for a {size / 1e6:.1f} MB file"
