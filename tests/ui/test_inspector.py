"""Inspection in the helper process: same answer as in-process, progress streamed, cancel stops it."""

from __future__ import annotations

import os
import threading

import pytest
from ui_helpers import speech, write_wav

from desktop_app import audio
from desktop_app.ui import inspector


def test_the_helper_process_gives_the_same_inspection_with_progress(tmp_path):
    path = write_wav(tmp_path / "call.wav", [speech(3, start=0.2, freq=220), speech(3, start=1.0, freq=340)])
    seen: list[float] = []
    inspection, fixes = inspector.inspect(str(path), seen.append)
    assert inspector._inspector._proc is not None and inspector._inspector._proc.pid != os.getpid()
    local = audio.inspect(path)
    assert inspection.to_full_dict() == local.to_full_dict()
    assert [f.kind for f in fixes] == [f.kind for f in audio.fixes_for(local)]
    assert seen and seen[-1] == 1.0


def test_cancel_stops_the_helper_and_the_next_request_starts_another(tmp_path):
    path = write_wav(tmp_path / "call.wav", [speech(2, start=0.1, freq=220), speech(2, start=0.5, freq=340)])
    inspector.inspect(str(path))
    first = inspector._inspector._proc
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(inspector.Cancelled):
        inspector.inspect(str(path), None, cancel)
    assert not first.is_alive()
    inspection, _fixes = inspector.inspect(str(path))
    assert inspection.uploadable and inspector._inspector._proc.pid != first.pid


def test_an_unreadable_file_is_a_verdict_not_a_crash(tmp_path):
    bad = tmp_path / "not-audio.wav"
    bad.write_bytes(b"hello, this is not a recording")
    inspection, fixes = inspector.inspect(str(bad))
    assert not inspection.uploadable and fixes == []


def test_the_helper_runs_below_the_apps_priority(tmp_path):
    """The analysis is background work: on a busy machine (two cores, other programs) the GUI thread
    gets a CPU before the helper does, so the window stays responsive while a long call is analysed."""
    path = write_wav(tmp_path / "call.wav", [speech(1, start=0.1, freq=220), speech(1, start=0.5, freq=340)])
    inspector.inspect(str(path))
    helper = inspector._inspector._proc
    assert helper is not None and helper.is_alive()
    assert os.getpriority(os.PRIO_PROCESS, helper.pid) >= os.getpriority(os.PRIO_PROCESS, 0) + 10
