"""Kill the uploading process at every step boundary (as a kill would: ``os._exit``), then resume.

The recording server and the sandbox run in this test's process, as the app or ``callrelay serve``
and HubSpot would; ``callrelay upload`` and ``callrelay resume`` are real subprocesses sharing the
data directory. Across every boundary: the submission ends ``ready``, the sandbox holds exactly one
call for the recording, and that call is marked ready exactly once.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sync_helpers import callrelay, history, write_call

from desktop_app.sandbox import Sandbox
from desktop_app.server import RecordingServer
from desktop_app.sync.pipeline import STEPS

BOUNDARIES = [f"{step}:{when}" for step, _, _ in STEPS for when in ("before", "after")]


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_killed_at_a_step_boundary_resumes_to_exactly_one_ready_call(
        world: tuple[Sandbox, RecordingServer, dict[str, str]], tmp_path: Path, boundary: str) -> None:
    sb, _server, env = world
    contact = str(sb.contacts()[0]["id"])
    rec = write_call(tmp_path / "call.wav", seed=BOUNDARIES.index(boundary))

    crashed = callrelay(env, "upload", str(rec), "--contact", contact, "--title", "Crash test", crash=boundary)
    assert crashed.returncode == 137, (crashed.stdout, crashed.stderr)
    [sub] = history(env)
    assert sub["status"] == "running"

    resumed = callrelay(env, "resume", "--no-transcripts")
    assert resumed.returncode == 0, (resumed.stdout, resumed.stderr)
    [sub] = history(env)
    assert sub["status"] == "ready", sub
    calls = [c for c in sb.calls() if c["properties"].get("hs_call_external_id") == sub["external_id"]]
    assert len(calls) == 1, calls
    assert str(calls[0]["id"]) == sub["call_id"]
    assert sb.ready_marked().count(str(sub["call_id"])) == 1, sb.ready_marked()
    links = [(a["fromType"], a["fromId"], a["toType"], a["toId"]) for a in sb.associations()]
    assert ("calls", sub["call_id"], "contacts", contact) in links
    steps = sub["steps"]
    assert isinstance(steps, list)
    crashed_step = boundary.split(":")[0]
    # the attempt cut short is written down as started and never ended
    assert any(s["step"] == crashed_step and s["outcome"] == "started" and s["ended_at"] is None for s in steps)


def test_upload_refuses_without_a_running_recording_server(tmp_path: Path, callrelay_home: Path) -> None:
    with Sandbox(port=0) as sb:
        env = {**os.environ, **sb.env(), "CALLRELAY_HOME": str(callrelay_home)}
        out = callrelay(env, "upload", str(write_call(tmp_path / "c.wav")))
        assert out.returncode == 1
        assert "No recording server is running" in out.stderr
        assert sb.calls() == []
