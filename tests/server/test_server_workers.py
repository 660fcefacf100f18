"""The recording server's worker processes: one port, several processes, one access log.

Each test starts the real server with ``workers=2`` (a spawned child process beside the test's own
loop thread) and talks to it over loopback with fresh connections made from each CPU in turn (on
Linux a new connection goes to the process for the CPU it came in on), so both processes answer;
which process answered is read from ``/healthz`` and the access log (``pid``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import requests
from server_helpers import SIGNING_KEY, cpus, from_each_cpu, on_cpu, random_file, wait_until

from desktop_app.server import RecordingServer
from desktop_app.server.accesslog import AccessLog, read_entries
from desktop_app.server.recordings import RecordingStore, StoredRecording

ROOT = Path(__file__).resolve().parents[2]


def fresh_get(url: str, **headers: str) -> requests.Response:
    """A GET on a new connection (a new connection may go to any of the serving processes)."""
    with requests.Session() as s:
        return s.get(url, headers=headers, timeout=5)


def get_from(cpu: int, url: str, **headers: str) -> requests.Response:
    """A GET on a new connection made from ``cpu``."""
    with on_cpu(cpu):
        return fresh_get(url, **headers)


def ended(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in state  # exited, waiting to be reaped by whoever adopted it


def files_open_on(path: Path) -> int:
    """How many of this process's descriptors are open on ``path`` (removed or not)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        count += target in (str(path), f"{path} (deleted)")
    return count


def test_two_processes_serve_one_port(store: RecordingStore, stored: StoredRecording) -> None:
    with RecordingServer(store, signing_key=SIGNING_KEY, workers=2) as srv:
        pids = srv.processes
        assert len(pids) == 2 and pids[0] == os.getpid() and pids[1] != os.getpid()
        assert not ended(pids[1])
        seen: set[int] = set()
        for cpu in from_each_cpu(300):
            seen.add(get_from(cpu, f"{srv.local_url}/healthz").json()["pid"])
            if seen == set(pids):
                break
        assert seen == set(pids)
        # a link the parent made is good in every process, and each answers the right bytes
        link = srv.make_link(stored.sha256)
        data = stored.path.read_bytes()
        for i, cpu in enumerate(from_each_cpu(40)):
            answer = get_from(cpu, link, Range=f"bytes={i * 1000}-{i * 1000 + 999}")
            assert answer.status_code == 206
            assert answer.content == data[i * 1000 : i * 1000 + 1000]
    assert wait_until(lambda: ended(pids[1]), 5), "the worker process outlived the server"


def test_connections_go_to_the_process_of_the_cpu_they_come_in_on(store: RecordingStore) -> None:
    """On Linux with a CPU for each process, each process listens on its own socket and the kernel hands
    a new connection to process number (its CPU) mod (processes): a client's connections stay with one
    process, which the scheduler keeps on the client's CPU."""
    import socket

    with RecordingServer(store, signing_key=SIGNING_KEY, workers=2) as srv:
        pids = srv.processes
        assert srv.steered == (sys.platform.startswith("linux") and (os.cpu_count() or 1) >= 2)
        if not srv.steered:  # one CPU: the processes share one socket (the next test)
            return
        for cpu in from_each_cpu(12):
            assert get_from(cpu, f"{srv.local_url}/healthz").json()["pid"] == pids[cpu % 2], cpu
        # twenty connections held open from one CPU all go to that CPU's process
        with on_cpu(cpus()[-1]):
            held = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(20)]
        try:
            assert wait_until(lambda: srv.connections() == 20, 5)
            per_process = srv.connections_per_process()
            assert per_process[cpus()[-1] % 2] == 20, per_process
        finally:
            for s in held:
                s.close()


def test_a_second_server_cannot_join_the_port_of_a_running_one(store: RecordingStore) -> None:
    """The steered sockets allow SO_REUSEPORT; a second server (a second app, `callrelay serve` beside
    the GUI) on the same port must still be refused rather than silently share the connections."""
    with RecordingServer(store, signing_key=SIGNING_KEY, workers=2) as srv:
        for workers in (1, 2):
            other = RecordingServer(store, signing_key=SIGNING_KEY, port=srv.port, workers=workers)
            with pytest.raises(OSError):
                other.start()
        assert {get_from(cpu, f"{srv.local_url}/healthz").json()["pid"] for cpu in from_each_cpu(8)} <= set(srv.processes)


def test_a_dead_workers_connections_go_to_the_others(store: RecordingStore) -> None:
    """A worker that dies takes its socket with it; the connections the kernel would have handed it go
    to the processes left, none waits in a queue no one reads."""
    with RecordingServer(store, signing_key=SIGNING_KEY, workers=2) as srv:
        parent, child = srv.processes
        os.kill(child, signal.SIGKILL)
        assert wait_until(lambda: ended(child), 5)
        for cpu in from_each_cpu(8):
            assert get_from(cpu, f"{srv.local_url}/healthz").json()["pid"] == parent


def test_new_connections_are_shared_out_evenly_on_one_socket(store: RecordingStore) -> None:
    """Where the processes share one socket (not Linux, a single CPU, or steer_by_cpu=False), a burst of
    connections is spread over them: the busier one leaves a new connection to the other for a moment."""
    import socket

    with RecordingServer(store, signing_key=SIGNING_KEY, workers=2, steer_by_cpu=False) as srv:
        assert not srv.steered
        held = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(40)]
        try:
            assert wait_until(lambda: srv.connections() == 40, 5)
            first, second = srv.connections_per_process()
            assert abs(first - second) <= 2, (first, second)
        finally:
            for s in held:
                s.close()
        assert wait_until(lambda: srv.connections() == 0, 5)


def test_every_process_answers_hubspot_with_the_current_public_url(store: RecordingStore,
                                                                  stored: StoredRecording) -> None:
    store.share("call-1", stored.sha256, app_id="42", external_account_id="acct")
    with RecordingServer(store, signing_key=SIGNING_KEY, workers=2) as srv:
        endpoint = f"{srv.local_url}/retrieve/authenticated/recordings/call-1?externalAccountId=acct&appId=42"
        for base in ("https://first.example.net", "https://second.example.net/relay"):
            srv.set_public_url(base)
            time.sleep(0.2)  # the message reaches the child through its pipe
            for cpu in from_each_cpu(30):
                answer = get_from(cpu, endpoint)
                assert answer.status_code == 200
                link = answer.json()["authenticatedUrl"]
                assert link.startswith(f"{base}/recordings/")
                local = srv.local_url + link[len(base):]
                assert get_from(cpu, local, Range="bytes=0-9").content == stored.path.read_bytes()[:10]
        pids = set(srv.processes)
    entries = [e for e in read_entries() if e.get("external_id") == "call-1"]
    # one whole line per request, whichever process wrote it, and both processes wrote
    assert len(entries) == 2 * 30 * 2
    assert {e["pid"] for e in entries} == pids
    assert sum(e["kind"] == "endpoint" for e in entries) == 60


def test_workers_stop_when_their_parent_dies(tmp_path: Path) -> None:
    """A worker whose parent is killed (the app crashed) must not keep the port or the file open."""
    recording = random_file(tmp_path / "r.wav", 10_000)
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from desktop_app.server import RecordingServer
        from desktop_app.server.recordings import RecordingStore
        store = RecordingStore()
        rec = store.add(Path({str(recording)!r}))
        srv = RecordingServer(store, signing_key="k", workers=2)
        srv.start()
        print(srv.port, *srv.processes, flush=True)
        time.sleep(60)
    """)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert parent.stdout is not None
        port, parent_pid, child_pid = (int(x) for x in parent.stdout.readline().split())
        assert parent_pid == parent.pid and not ended(child_pid)
        assert fresh_get(f"http://127.0.0.1:{port}/healthz").status_code == 200
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(5)
        assert wait_until(lambda: ended(child_pid), 5), "the worker kept running after its parent was killed"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(5)


def test_a_recording_removed_while_open_stops_being_served(store: RecordingStore, tmp_path: Path) -> None:
    """Recordings stay open between requests; one removed from the store (retention, maybe in another
    process) is closed and refused within a second or two."""
    rec = store.add(random_file(tmp_path / "old.wav", 50_000, seed=5))
    with RecordingServer(store, signing_key=SIGNING_KEY) as srv:
        link = srv.make_link(rec.sha256)
        with requests.Session() as s:
            for _ in range(2):
                assert s.get(link, headers={"Range": "bytes=0-99"}, timeout=5).status_code == 206
            assert files_open_on(rec.path) == 1  # kept open between requests
            RecordingStore(store.root).remove(rec.sha256)  # as retention does, with its own connection
            assert wait_until(lambda: s.get(link, timeout=5).status_code == 403, 3)
            assert wait_until(lambda: files_open_on(rec.path) == 0, 3), "the removed recording's file stayed open"


def test_access_log_rotation_by_one_writer_moves_the_others(tmp_path: Path) -> None:
    """Two writers of one log (as two worker processes are): when one rotates it, the other follows to
    the new file at its next flush, and no line is lost or cut."""
    path = tmp_path / "access.log"
    a = AccessLog(path, max_bytes=10**9)
    b = AccessLog(path, max_bytes=6000)
    for i in range(120):  # b rotates once, about two thirds of the way (at the file's size, a's lines too)
        a.write({"kind": "other", "who": "a", "n": i})
        a.flush()
        b.write({"kind": "other", "who": "b", "n": i})
        b.flush()
    a.close()
    b.close()
    old = [json.loads(line) for line in path.with_name("access.log.1").read_text().splitlines()]
    new = [json.loads(line) for line in path.read_text().splitlines()]
    assert old and new
    assert sorted((e["who"], e["n"]) for e in old + new) == sorted((w, n) for w in "ab" for n in range(120))
    # a moved to the new file: its last lines are there, not in the renamed one
    assert max(e["n"] for e in new if e["who"] == "a") == 119
    assert max(e["n"] for e in old if e["who"] == "a") < min(e["n"] for e in new if e["who"] == "a")


def test_access_log_writers_rotate_at_the_size_of_the_file_not_of_what_each_wrote(tmp_path: Path) -> None:
    """Two writers of one log, each appending half of its lines: the log is rotated when the file
    crosses the size, so it never holds much more than ``max_bytes`` (one flush's lines at most),
    rather than ``max_bytes`` from each writer."""
    path = tmp_path / "access.log"
    writers = [AccessLog(path, max_bytes=3000), AccessLog(path, max_bytes=3000)]
    largest = 0
    for i in range(200):
        writer = writers[i % 2]
        writer.write({"kind": "other", "n": i, "pad": "x" * 60})
        writer.flush()
        largest = max(largest, path.stat().st_size if path.exists() else 0)  # none just after a rotation
    for writer in writers:
        writer.close()
    old = [json.loads(x)["n"] for x in path.with_name("access.log.1").read_text().splitlines()]
    new = [json.loads(x)["n"] for x in path.read_text().splitlines()] if path.exists() else []
    line = len(path.with_name("access.log.1").read_text().splitlines()[0]) + 1
    assert largest <= 3000 + line, largest
    assert old == sorted(old) and new == sorted(new) and old[-1] == (new[0] - 1 if new else 199)  # in order
