"""The server's event loop (``desktop_app.server.loop``) on both its backends: epoll (Linux) and
``selectors`` (what macOS and Windows use), and a real server on the ``selectors`` one."""

from __future__ import annotations

import functools
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests
from server_helpers import SIGNING_KEY

from desktop_app.server import RecordingServer, core
from desktop_app.server.loop import Loop
from desktop_app.server.recordings import RecordingStore, StoredRecording


@pytest.fixture(params=[True, False], ids=["epoll", "selectors"])
def loop(request: pytest.FixtureRequest) -> Iterator[Loop]:
    lp = Loop(use_epoll=request.param)
    yield lp
    lp.close()


def _run(lp: Loop, seconds: float = 5.0) -> None:
    guard = lp.call_later(seconds, lp.stop)  # a test that goes wrong ends anyway
    lp.run_forever()
    guard.cancel()


def test_timers_run_in_order_and_a_cancelled_one_never(loop: Loop) -> None:
    seen: list[str] = []
    loop.call_later(0.06, seen.append, "c")
    loop.call_later(0.02, seen.append, "a")
    loop.call_later(0.04, seen.append, "b")
    loop.call_later(0.03, seen.append, "never").cancel()
    loop.call_soon(seen.append, "soon")
    loop.call_later(0.1, loop.stop)
    started = time.monotonic()
    _run(loop)
    assert seen == ["soon", "a", "b", "c"]
    assert 0.09 < time.monotonic() - started < 2


def test_readers_and_writers_and_their_removal(loop: Loop) -> None:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    got: list[bytes] = []
    writable: list[int] = []

    def on_read() -> None:
        got.append(b.recv(100))
        if got[-1] == b"stop":
            loop.stop()

    def on_write() -> None:
        writable.append(1)
        loop.remove_writer(a.fileno())  # writable at once: it would be called every turn
        a.send(b"hello")

    loop.add_reader(b.fileno(), on_read)
    loop.add_writer(a.fileno(), on_write)
    loop.call_later(0.05, a.send, b"stop")
    _run(loop)
    assert writable == [1] and got == [b"hello", b"stop"]
    assert loop.remove_reader(b.fileno()) is True
    assert loop.remove_reader(b.fileno()) is False
    a.send(b"unheard")
    loop.call_later(0.05, loop.stop)
    _run(loop)
    assert got == [b"hello", b"stop"]
    a.close()
    b.close()


def test_another_thread_wakes_it_and_a_failing_callback_stops_nothing(loop: Loop) -> None:
    seen: list[str] = []

    def boom() -> None:
        raise RuntimeError("a bug in a callback")

    loop.call_soon(boom)
    loop.call_soon(seen.append, "after the bug")
    # no timer: only the wake-up brings the thread's call in (a socket of the test's ends a loop
    # that never wakes, after 5 s)
    guard_r, guard_w = socket.socketpair()
    loop.add_reader(guard_r.fileno(), lambda: (seen.append("guard"), loop.stop()))
    threading.Timer(0.1, loop.call_soon_threadsafe, args=(loop.stop,)).start()
    guard = threading.Timer(5, guard_w.send, args=(b"x",))
    guard.start()
    started = time.monotonic()
    loop.run_forever()
    guard.cancel()
    assert seen == ["after the bug"]
    assert 0.05 < time.monotonic() - started < 3
    loop.remove_reader(guard_r.fileno())
    guard_r.close()
    guard_w.close()


def test_a_server_on_the_selectors_backend(monkeypatch: pytest.MonkeyPatch, store: RecordingStore,
                                           stored: StoredRecording) -> None:
    monkeypatch.setattr(core, "Loop", functools.partial(Loop, use_epoll=False))
    srv = RecordingServer(store, signing_key=SIGNING_KEY)
    srv.start()
    try:
        assert srv._http is not None and srv._http.loop._epoll is None
        url = srv.make_link(stored.sha256)
        data = stored.path.read_bytes()
        with requests.Session() as s:
            for first in (0, 1000, 250_000):
                r = s.get(url, headers={"Range": f"bytes={first}-{first + 65535}"}, timeout=5)
                assert r.status_code == 206 and r.content == data[first:first + 65536]
            assert s.get(url, timeout=5).content == data
        assert requests.get(f"{srv.local_url}/healthz", timeout=5).json()["status"] == "ok"
    finally:
        srv.stop()
    assert not srv.running
