"""The sandbox stands in for HubSpot, so its judgement of a fetched recording (decoding the whole file
with PyAV) runs in a child process, not in the process that runs the sandbox: in the desktop app's
sandbox mode that process is the GUI's, and a 60-minute recording decoded there holds the interpreter
lock long enough to stall the window (``benchmarks/ui.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from sandbox_helpers import TinyRecordingServer
from test_fetch import log_call, mark_ready, register

from desktop_app.sandbox import Sandbox, judge


def test_the_fetch_judges_the_recording_in_a_child_process(
        sandbox: Sandbox, http: requests.Session, recording_server: TinyRecordingServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    in_this_process: list[Path] = []
    real = judge.judge

    def recorded(path: Path) -> judge.Verdict:
        in_this_process.append(Path(path))
        return real(path)

    monkeypatch.setattr(judge, "judge", recorded)  # seen only by a judgement in this process
    register(sandbox, http, recording_server)
    outcomes = {}
    for ext, name in (("good", "stereo.wav"), ("cut", "cut.wav"), ("same", "same.wav")):
        recording_server.map[ext] = name
        call_id = log_call(sandbox, http, ext)
        mark_ready(sandbox, http, call_id)
        outcomes[name] = sandbox.wait_for_fetch(call_id, timeout=60)
    assert in_this_process == []
    good, cut, same = outcomes["stereo.wav"], outcomes["cut.wav"], outcomes["same.wav"]
    assert good.status == "transcribed" and good.container == "wav" and good.channels == 2, good
    assert (cut.reason, cut.detail[:7]) == ("bad_audio", "cut off"), cut  # the child's detail comes back
    assert same.reason == "identical_channels", same
