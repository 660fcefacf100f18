"""The sandbox stands in for HubSpot, so what HubSpot does after "recording ready" (downloading the
recording and decoding the whole file with PyAV to judge it) runs in a child process, not in the
process that runs the sandbox: in the desktop app's sandbox mode that process is the GUI's, and a
60-minute recording downloaded and decoded there holds the interpreter lock long enough to stall
the window (``benchmarks/ui.py``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import requests
from sandbox_helpers import TinyRecordingServer
from test_fetch import log_call, mark_ready, register

from desktop_app.sandbox import Sandbox, fetcher, judge


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


def test_the_fetch_downloads_the_recording_in_a_child_process(
        sandbox: Sandbox, http: requests.Session, recording_server: TinyRecordingServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    in_this_process: list[str] = []
    real = fetcher.Downloader.get_range

    def recorded(self: fetcher.Downloader, url: str, first: int, last: int | None) -> Any:
        in_this_process.append(url)
        return real(self, url, first, last)

    monkeypatch.setattr(fetcher.Downloader, "get_range", recorded)  # seen only by a download in this process
    register(sandbox, http, recording_server)
    recording_server.map["good"] = "stereo.wav"
    recording_server.honour_range = True
    call_id = log_call(sandbox, http, "good")
    mark_ready(sandbox, http, call_id)
    record = sandbox.wait_for_fetch(call_id, timeout=60)
    assert in_this_process == []
    # what the child did comes back in the record: the signed retrieve, the Range requests, the size
    assert record.status == "transcribed", (record.reason, record.detail)
    size = recording_server.files["stereo.wav"].stat().st_size
    assert record.size == size and record.authenticated_url.endswith("/files/stereo.wav")
    assert record.requests[0]["signed"] is True
    # by a child process, at a lower priority than this one's: the GUI thread gets a CPU first
    assert record.fetched_by not in (0, os.getpid())
    assert record.fetched_at_priority >= os.getpriority(os.PRIO_PROCESS, 0) + 10
    assert [r["status"] for r in record.requests[1:]] == [206] * (len(record.requests) - 1) == \
        [f["status"] for f in recording_server.log.files]

    recording_server.honour_range = False  # a failure in the child comes back as its reason
    call_id = log_call(sandbox, http, "good")
    mark_ready(sandbox, http, call_id)
    record = sandbox.wait_for_fetch(call_id, timeout=60)
    assert in_this_process == []
    assert record.reason == "range_not_supported" and record.warnings, record


def test_fetches_one_after_another_reuse_one_helper_process(
        sandbox: Sandbox, http: requests.Session, recording_server: TinyRecordingServer) -> None:
    """Spawning a process per fetch costs the imports of PyAV and requests each time: a test of 300 calls
    drove a 2-core machine's load average to ~100. Fetches in turn are done by one helper, kept."""
    register(sandbox, http, recording_server)
    recording_server.map["good"] = "stereo.wav"
    pids = []
    for _ in range(3):
        call_id = log_call(sandbox, http, "good")
        mark_ready(sandbox, http, call_id)
        record = sandbox.wait_for_fetch(call_id, timeout=60)
        assert record.status == "transcribed", (record.reason, record.detail)
        pids.append(record.fetched_by)
    assert pids[0] not in (0, os.getpid())
    assert len(set(pids)) == 1, pids


def test_a_helper_that_dies_is_replaced(
        sandbox: Sandbox, http: requests.Session, recording_server: TinyRecordingServer) -> None:
    register(sandbox, http, recording_server)
    recording_server.map["good"] = "stereo.wav"
    call_id = log_call(sandbox, http, "good")
    mark_ready(sandbox, http, call_id)
    first = sandbox.wait_for_fetch(call_id, timeout=60).fetched_by
    os.kill(first, 9)
    call_id = log_call(sandbox, http, "good")
    mark_ready(sandbox, http, call_id)
    record = sandbox.wait_for_fetch(call_id, timeout=60)
    assert record.status == "transcribed", (record.reason, record.detail)
    assert record.fetched_by not in (0, first, os.getpid())


def test_many_fetches_at_once_share_a_bounded_number_of_helper_processes(
        sandbox: Sandbox, http: requests.Session, recording_server: TinyRecordingServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """HubSpot fetches each recording marked ready; a batch marks a hundred at once. One helper process per
    fetch at the same time (~45 MB each) ran benchmarks/sync.py's 1,000 calls out of memory: the helpers are
    bounded, and the other fetches wait for one."""
    import multiprocessing
    import threading
    import time

    monkeypatch.setattr(fetcher, "MAX_HELPERS", 2, raising=False)
    register(sandbox, http, recording_server)
    recording_server.map["good"] = "stereo.wav"
    recording_server.file_delay_s = 0.3  # each fetch takes a while: they overlap
    calls = [log_call(sandbox, http, "good") for _ in range(8)]
    for call_id in calls:
        mark_ready(sandbox, http, call_id)
    records: list[fetcher.FetchRecord] = []
    waiter = threading.Thread(target=lambda: records.extend(sandbox.wait_for_fetch(c, timeout=90) for c in calls))
    waiter.start()
    peak = 0
    while waiter.is_alive():
        peak = max(peak, sum(1 for p in multiprocessing.active_children() if p.name == "sandbox-fetch"))
        time.sleep(0.02)
    waiter.join()
    assert len(records) == len(calls)
    assert all(r.status == "transcribed" for r in records), [(r.reason, r.detail) for r in records]
    assert peak <= 2, f"{peak} helper processes at once"
