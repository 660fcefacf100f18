"""Issue 18's fix traps: a fix never turns an error into a clean verdict unless its result really is clean."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from desktop_app import paths
from desktop_app.audio import FixError, convert, inspect

from . import gen


@pytest.mark.parametrize("keep", [48, 200])
def test_converting_a_truncated_recording_never_makes_an_empty_file(folder: Path, x: np.ndarray, keep: int) -> None:
    """A WAV cut off after its first samples (silence before anyone spoke) once became a 0:00 FLAC."""
    cut = folder / "cut.wav"
    cut.write_bytes(gen.wav_bytes(x)[:keep])
    assert not inspect(cut).uploadable
    with pytest.raises(FixError, match="no audio worth uploading") as err:
        convert(cut)
    assert "cut.wav" in str(err.value) and "\n" not in str(err.value)
    assert not list(paths.fixes_dir().iterdir())  # nothing written, not even a temporary file
    assert cut.read_bytes() == gen.wav_bytes(x)[:keep]


def test_converting_a_cut_mp3_with_only_a_blip_left_is_refused(folder: Path, x: np.ndarray) -> None:
    raw = gen.encode(folder / "a.mp3", x, "mp3").read_bytes()
    cut = folder / "cut.mp3"
    cut.write_bytes(raw[: len(raw) // 20])
    with pytest.raises(FixError, match="no audio worth uploading"):
        convert(cut, folder.parent / "out.flac")
    assert not (folder.parent / "out.flac").exists()


def test_converting_a_truncated_recording_with_speech_left_still_works(folder: Path, x: np.ndarray) -> None:
    cut = folder / "cut.wav"
    cut.write_bytes(gen.wav_bytes(x)[: 44 + 8000 * 4 * 2])
    out = convert(cut)
    ins = inspect(out)
    assert ins.uploadable and ins.probe.duration_s == pytest.approx(2.0, abs=0.001)
