"""Uploading what was uploaded before: a rerun after ``kill -9`` finishes the batch without doubling a
call, a recording already logged is skipped (``--again`` sends it anyway).

``callrelay upload`` runs as a real subprocess against the sandbox and this data directory's
recording server, both in the test's process; the sandbox's calls are counted after each run.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from sync_helpers import callrelay, history, write_call

from desktop_app.sandbox import Sandbox
from desktop_app.sandbox.faults import Fault
from desktop_app.server import RecordingServer
from desktop_app.sync import history as h

World = tuple[Sandbox, RecordingServer, dict[str, str]]
FILES = 30  # the batch: 30 files, killed once and run again


def calls_per_file(sb: Sandbox, env: dict[str, str]) -> Counter[str]:
    """How many calls the sandbox holds for each recording (by the submissions' external ids)."""
    name_of = {str(s["external_id"]): str(s["recording"]) for s in history(env)}
    return Counter(name_of.get(str(c["properties"].get("hs_call_external_id")), "?") for c in sb.calls())


def a_folder(tmp_path: Path, count: int = FILES) -> Path:
    folder = tmp_path / "calls"
    folder.mkdir()
    for n in range(count):
        write_call(folder / f"call{n:02d}.wav", seconds=2.0, seed=n)
    return folder


def db_count(home: Path, sql: str) -> int:
    """A count from the history the uploading process is writing (read-only; 0 before it exists)."""
    path = home / "history.sqlite3"
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            return int(db.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:  # the schema is being created
        return 0


# When to kill the first run: a fault that makes that moment last (or none), and how to tell it came.
Moment = tuple[str, Callable[[list[Fault], Path], bool]]
MOMENTS: dict[str, Moment] = {
    "while-submitting": ("", lambda _, home: db_count(home, "SELECT COUNT(*) FROM submissions") >= 5),
    # the batch create has reached HubSpot (the sandbox holds it 2 s) and its answer never comes back
    "while-creating-calls": ("calls.batch_create:slow=2", lambda faults, _: faults[0].fired > 0),
    "after-some-are-ready": ("recordings.ready:slow=0.2x*",
                             lambda _, home: db_count(home, "SELECT COUNT(*) FROM submissions WHERE status = 'ready'")
                             >= 8),
}


@pytest.mark.parametrize("moment", MOMENTS)
def test_a_batch_killed_and_run_again_logs_every_file_exactly_once(
        world: World, tmp_path: Path, callrelay_home: Path, moment: str) -> None:
    sb, _server, env = world
    folder = a_folder(tmp_path)
    fault, came = MOMENTS[moment]
    faults = sb.faults.add_spec(fault) if fault else []

    first = subprocess.Popen([sys.executable, "-m", "desktop_app", "upload", "--folder", str(folder), "--jobs", "2"],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not came(faults, callrelay_home):
        assert first.poll() is None, f"the upload ended (exit {first.returncode}) before it could be killed"
        assert time.monotonic() < deadline, "the upload never got there"
        time.sleep(0.01)
    os.kill(first.pid, signal.SIGKILL)
    assert first.wait(timeout=30) == -signal.SIGKILL
    # (read at once: the rerun must start while what the kill left in flight may still be under way)
    before = {status: db_count(callrelay_home, f"SELECT COUNT(*) FROM submissions WHERE status = '{status}'")
              for status in ("queued", "running", "ready")}
    assert before["ready"] < FILES, "the kill came after the whole batch was done"

    rerun = callrelay(env, "upload", "--folder", str(folder))
    assert rerun.returncode == 0, (rerun.stdout, rerun.stderr)
    while faults and not any(r.fault for r in list(sb.requests)):  # HubSpot ends what the kill left in flight
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert rerun.stdout.count("from an earlier run") == before["queued"] + before["running"]
    assert rerun.stdout.count("skipped, already logged") == before["ready"]
    subs = history(env)
    assert len(subs) == FILES and {s["status"] for s in subs} == {"ready"}
    assert calls_per_file(sb, env) == Counter({f"call{n:02d}.wav": 1 for n in range(FILES)})
    assert sorted(sb.ready_marked()) == sorted(str(s["call_id"]) for s in subs)

    # nothing is left for `resume` (or the app) to send a second time, and a third run sends nothing
    resumed = callrelay(env, "resume", "--no-transcripts")
    assert resumed.returncode == 0 and "resumed 0 submission(s)" in resumed.stdout, resumed.stdout
    creates = len(sb.requests_for("calls.batch_create")) + len(sb.requests_for("calls.create"))
    third = callrelay(env, "upload", "--folder", str(folder))
    assert third.returncode == 0 and third.stdout.count("skipped, already logged") == FILES, third.stdout
    assert len(sb.requests_for("calls.batch_create")) + len(sb.requests_for("calls.create")) == creates
    assert len(sb.calls()) == FILES


def test_a_recording_already_logged_is_skipped_with_its_call_and_again_sends_it(
        world: World, tmp_path: Path) -> None:
    sb, _server, env = world
    rec = write_call(tmp_path / "call.wav")
    first = callrelay(env, "upload", str(rec), "--title", "First")
    assert first.returncode == 0, first.stderr
    [sub] = history(env)

    copy = tmp_path / "renamed.wav"  # the same recording under another name is the same recording
    copy.write_bytes(rec.read_bytes())
    for path in (rec, copy):
        again = callrelay(env, "upload", str(path), "--title", "Second")
        assert again.returncode == 0, again.stderr
        assert (f"{path}: skipped, already logged as call {sub['call_id']} (submission {sub['id']}, ready, "
                f"https://app.hubspot.com/contacts/") in again.stdout
        assert "--again" in again.stdout
    assert len(sb.calls()) == 1 and len(history(env)) == 1

    forced = callrelay(env, "upload", str(rec), "--title", "Second", "--again")
    assert forced.returncode == 0, forced.stderr
    assert "skipped" not in forced.stdout
    assert sorted(c["properties"]["hs_call_title"] for c in sb.calls()) == ["First", "Second"]
    assert len(history(env)) == 2

    # a file named twice in one run is sent once
    other = write_call(tmp_path / "other.wav", seed=9)
    twice = callrelay(env, "upload", str(other), str(other))
    assert twice.returncode == 0, twice.stderr
    assert f"{other}: skipped, the same recording as {other}" in twice.stdout
    assert len(sb.calls()) == 3


def test_a_failed_submission_that_logged_no_call_does_not_count(world: World, tmp_path: Path) -> None:
    sb, _server, env = world
    sb.faults.add_spec("calls.create:400x1")
    rec = write_call(tmp_path / "call.wav")
    failed = callrelay(env, "upload", str(rec))
    assert failed.returncode == 1 and sb.calls() == []
    retried = callrelay(env, "upload", str(rec))
    assert retried.returncode == 0, (retried.stdout, retried.stderr)
    assert "skipped" not in retried.stdout and len(sb.calls()) == 1
    assert sorted(s["status"] for s in history(env)) == ["failed", "ready"]


def test_a_recording_counts_as_seen_only_in_the_account_it_went_to(tmp_path: Path) -> None:
    with h.History(tmp_path / "h.sqlite3") as hist:
        for portal, status, call in (("111", h.READY, "901"), ("222", h.QUEUED, None)):
            sid = hist.add_submission(recording_path="/r/a.wav", recording_name="a.wav", external_id=f"x-{portal}",
                                      details={}, agent="a", state="checked", recording_sha256="ab" * 32,
                                      portal_id=portal)
            hist.update(sid, status=status, call_id=call)
        assert [(s.portal_id, s.call_id) for s in hist.of_recording("ab" * 32, "111")] == [("111", "901")]
        assert [s.status for s in hist.of_recording("ab" * 32, "222")] == [h.QUEUED]
        assert hist.of_recording("ab" * 32, "333") == [] and hist.of_recording("cd" * 32, "111") == []
