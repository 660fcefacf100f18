"""The access log when it cannot be written (a full disk, for real: a 64 KiB tmpfs) and when two
processes rotate it at once; and what the sync pipeline concludes from it then.

The pipeline decides from the log whether HubSpot fetched a recording. Lines that could not be
written must not make it conclude "never fetched": the log records that lines were lost, the server
says so on /healthz while it cannot write, and ``fetched_since`` then answers None (unknown)."""

from __future__ import annotations

import datetime as dt
import logging
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from server_helpers import SIGNING_KEY, cpus, on_cpu

from desktop_app.server import RecordingServer
from desktop_app.server.accesslog import AccessLog, read_entries
from desktop_app.server.recordings import RecordingStore, StoredRecording
from desktop_app.sync.serverlink import ServerLink, fetched_since

ENDPOINT = "/retrieve/authenticated/recordings"


def mount_small_tmpfs(where: Path) -> None:
    """A 64 KiB file system at ``where`` (root only: the test is skipped where mounting is refused)."""
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip()}")


def unmount(where: Path) -> None:
    subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True)


def fill(directory: Path) -> Path:
    """Fill the file system holding ``directory``; the filler file, to remove to free it again. The
    access log there, if any, gets empty lines up to the end of its last page (which a reader skips):
    else its next lines would still fit there."""
    filler = directory / "filler"
    for path, chunk in ((filler, b"x" * 1024), (directory / "access.log", b"\n")):
        if path != filler and not path.exists():
            continue
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            while True:
                os.write(fd, chunk)
        except OSError:
            pass
        finally:
            os.close(fd)
    return filler


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "small"
    mount_small_tmpfs(where)
    yield where
    unmount(where)


def log_problems(caplog: pytest.LogCaptureFixture) -> tuple[list[str], list[str]]:
    """(warnings about the access log, errors or tracebacks of any kind)."""
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "access log" in r.getMessage()]
    bad = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    return warned, bad


def since(seconds_ago: float) -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=seconds_ago)


def test_a_full_disk_is_said_once_and_the_lost_lines_are_recorded(small_disk: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    path = small_disk / "access.log"
    log = AccessLog(path)
    log.write({"kind": "endpoint", "external_id": "before", "status": 200, "time": time.time()})
    log.flush()
    filler = fill(small_disk)
    start = time.time()
    for i in range(50):  # 50 flushes that cannot write: one warning, no exception
        log.write({"kind": "endpoint", "external_id": "lost", "status": 200, "time": time.time(), "n": i})
        log.flush()
    warned, bad = log_problems(caplog)
    assert len(warned) == 1 and bad == []
    assert log.lost_since is not None and log.lost_since <= start
    assert fetched_since("lost", since(60), path, lost_since=log.lost_since) is None
    assert fetched_since("before", since(60), path, lost_since=log.lost_since) is True
    filler.unlink()
    log.write({"kind": "endpoint", "external_id": "after", "status": 200, "time": time.time()})
    log.flush()
    assert log.lost_since is None
    entries = list(read_entries(path))
    lost = [e for e in entries if e.get("kind") == "lost"]
    assert len(lost) == 1 and lost[0]["lines"] == 50 and lost[0]["since"] <= start <= lost[0]["until"]
    assert [e.get("external_id") for e in entries if e.get("kind") == "endpoint"] == ["before", "after"]
    # from the file alone (another process, or after the server stopped): unknown over the lost time,
    # known before and after it
    assert fetched_since("lost", since(60), path) is None
    assert fetched_since("after", since(60), path) is True
    assert fetched_since("lost", dt.datetime.fromtimestamp(lost[0]["until"] + 0.001, dt.timezone.utc), path) is False
    log.close()
    assert len(log_problems(caplog)[0]) == 2  # and once that it is written again
    assert log_problems(caplog)[1] == []


def test_a_line_cut_short_by_the_full_disk_does_not_swallow_the_next(small_disk: Path) -> None:
    path = small_disk / "access.log"
    log = AccessLog(path)
    filler = fill(small_disk)
    filler_size = filler.stat().st_size
    os.truncate(filler, filler_size - 100)  # room for part of one line only
    log.write({"kind": "endpoint", "external_id": "x" * 300, "status": 200, "time": time.time()})
    log.flush()
    filler.unlink()
    log.write({"kind": "endpoint", "external_id": "next", "status": 200, "time": time.time()})
    log.close()
    kinds = [(e.get("kind"), e.get("external_id")) for e in read_entries(path)]
    assert ("lost", None) in kinds and ("endpoint", "next") in kinds


def serve(store: RecordingStore, log_dir: Path, **kwargs: object) -> RecordingServer:
    server = RecordingServer(store, signing_key=SIGNING_KEY, **kwargs)  # type: ignore[arg-type]
    server.access_log = AccessLog(log_dir / "access.log")
    return server


def endpoint_and_range(server: RecordingServer, external_id: str) -> None:
    """What HubSpot does for a call: ask the endpoint for a link, then read a range through it."""
    url = f"{server.local_url}{ENDPOINT}/{quote(external_id)}?externalAccountId=acct&appId=1"
    r = requests.get(url, timeout=5)
    assert r.status_code == 200
    assert requests.get(r.json()["authenticatedUrl"], headers={"Range": "bytes=0-99"}, timeout=5).status_code == 206


@pytest.mark.parametrize("workers", [1, 2])
def test_the_server_on_a_full_disk_keeps_serving_and_says_fetches_are_unknown(
        small_disk: Path, store: RecordingStore, stored: StoredRecording, caplog: pytest.LogCaptureFixture,
        workers: int) -> None:
    store.share("call-1", stored.sha256, app_id="1", external_account_id="acct")
    server = serve(store, small_disk, workers=workers)
    with server:
        endpoint_and_range(server, "call-1")
        server.access_log.flush()
        assert fetched_since("call-1", since(60), server.access_log.path) is True
        filler = fill(small_disk)
        asked = since(0)
        # every process serves some, so each one's lines are lost
        for cpu in cpus():
            with on_cpu(cpu):
                endpoint_and_range(server, "call-1")
        time.sleep(1.5)  # the servers' once-a-second flush
        link = ServerLink(local_url=server.local_url, endpoint_template=server.recording_endpoint_template(),
                          log_path=server.access_log.path)
        assert link.fetched_since("call-1", asked) is None
        # /healthz says so, whichever process answers
        for cpu in cpus():
            with on_cpu(cpu):
                for _ in range(3):
                    health = requests.get(f"{server.local_url}/healthz", timeout=5).json()
                    assert health["access_log"]["lost_since"] is not None, health
        assert fetched_since("call-1", asked, server.access_log.path,
                             lost_since=server.access_log_lost_since()) is None
        warned, bad = log_problems(caplog)
        assert bad == [] and 1 <= len(warned) <= workers
        filler.unlink()
        deadline = time.monotonic() + 5
        while server.access_log_lost_since() is not None and time.monotonic() < deadline:
            for cpu in cpus():
                with on_cpu(cpu):
                    requests.get(f"{server.local_url}/healthz", timeout=5)
            time.sleep(0.3)
        assert server.access_log_lost_since() is None
        assert link.fetched_since("call-1", asked) is None  # the file still says lines were lost then
    assert log_problems(caplog)[1] == []


def test_two_processes_rotating_the_log_at_once(tmp_path: Path) -> None:
    """Each process flushes after every line into a log that rotates every few lines: neither may
    fail (before: one got FileNotFoundError from os.replace), and the file kept as .1 is a full one,
    not another process's fresh file moved over it."""
    code = textwrap.dedent("""
        import sys, time
        from pathlib import Path
        from desktop_app.server.accesslog import AccessLog
        log = AccessLog(Path(sys.argv[1]), max_bytes=400)
        end = time.monotonic() + 1.5
        i = 0
        while time.monotonic() < end:
            log.write_line('{"w":"%s","n":%d}' % (sys.argv[2], i))
            log.flush()
            i += 1
        log.close()
        print(i)
    """)
    path = tmp_path / "access.log"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path), name], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for name in ("a", "b")]
    outs = [p.communicate(timeout=60) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0 and err == "", err[-2000:]
        assert int(out) > 1000
    assert path.with_name("access.log.1").stat().st_size >= 400


def test_the_pipeline_does_not_conclude_never_fetched_from_lost_lines(callrelay_home: Path, tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    """HubSpot fetched the recording but the lines could not be written: the transcript check that
    runs out of time does not say "HubSpot never fetched the recording"."""
    from desktop_app import paths
    from desktop_app import settings as settings_mod
    from desktop_app.runtime import Runtime
    from desktop_app.sync import history as h
    from desktop_app.sync.pipeline import CallDetails, RetryPolicy
    from tests.sync.sync_helpers import write_call

    logs = paths.logs_dir()
    mount_small_tmpfs(logs)
    try:
        policy = RetryPolicy(base_s=0.01, transcript_first_check_s=0.01, transcript_deadline_s=86400)
        with Runtime(settings_mod.Settings(), sandbox=True, policy=policy) as rt:
            sid = rt.submit(write_call(tmp_path / "c.wav"), CallDetails(title="x", duration_ms=3000))
            filler = fill(logs)
            rt.sandbox.faults.add_spec("recordings.ready:400x1")
            assert rt.run_submission(sid).status == h.FAILED
            sub = rt.history.get(sid)
            assert sub is not None
            endpoint_and_range_as_hubspot(rt, sub.external_id)
            rt.history.update(sid, status=h.READY, state="ready_marked",
                              ready_at=h.iso(h.now() - dt.timedelta(days=2)), next_attempt_at=None)
            last = rt.check_transcript(sid)
            assert last.submission.status == h.NOT_TRANSCRIBED
            assert "never fetched" not in (last.submission.error or "")
            assert "access log" in (last.submission.error or "")
            filler.unlink()
        assert log_problems(caplog)[1] == []
    finally:
        unmount(logs)


def endpoint_and_range_as_hubspot(rt: Any, external_id: str) -> None:
    """HubSpot asking the endpoint for the call's link and reading a range through it."""
    share = rt.server.store.lookup(external_id)
    url = (f"{rt.server.local_url}{rt.server.endpoint_prefix}/{quote(external_id)}"
           f"?externalAccountId={share.external_account_id}&appId={share.app_id}")
    r = requests.get(url, timeout=5)
    assert r.status_code == 200
    assert requests.get(r.json()["authenticatedUrl"], headers={"Range": "bytes=0-99"}, timeout=5).status_code == 206


def test_the_pipeline_re_sends_ready_at_once_when_fetches_cannot_be_known(tmp_path: Path,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    """"Ready" was sent but its answer lost; whether HubSpot then fetched the recording would show in the
    access log, which cannot be written: the pipeline re-sends "ready" (never skips it), without first
    waiting for evidence that cannot come."""
    from desktop_app import paths
    from desktop_app import settings as settings_mod
    from desktop_app.runtime import Runtime
    from desktop_app.sync import history as h
    from desktop_app.sync.pipeline import CallDetails, RetryPolicy
    from tests.sync.sync_helpers import write_call

    logs = paths.logs_dir()
    mount_small_tmpfs(logs)
    try:
        policy = RetryPolicy(base_s=0.01, cap_s=0.05, ready_evidence_wait_s=30.0)
        with Runtime(settings_mod.Settings(), sandbox=True, policy=policy) as rt:
            filler = fill(logs)
            rt.sandbox.faults.add_spec("recordings.ready:lost")
            sid = rt.submit(write_call(tmp_path / "c.wav"), CallDetails(title="x", duration_ms=3000))
            started = time.monotonic()
            sub = rt.run_submission(sid)
            took = time.monotonic() - started
            assert sub.status == h.READY, sub.error
            assert rt.sandbox.ready_marked().count(sub.call_id) == 2  # sent again, not skipped
            assert [s.outcome for s in sub.steps if s.step == "mark_ready"][-1] == h.OK
            assert took < 15, took
            filler.unlink()
        assert log_problems(caplog)[1] == []
    finally:
        unmount(logs)
