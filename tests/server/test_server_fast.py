"""The C fast path (``RecordingServer._fast_raw``, ``_fastserve.c``: a GET of one range through a link
answered before, answered from the bytes as they arrive) gives exactly the answer, and the access-log
line, of the general path. (The Python fast path these tests also covered is gone: issue 16.)

Two servers serve the same store: one as it runs, one with the C fast path switched off. The same
requests go to both over one kept-alive connection each; the answers must be equal byte for byte
(but for the Date line), and the fast path must really have answered the ones it should."""

from __future__ import annotations

import json
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_helpers import SIGNING_KEY, random_file

from desktop_app.server import RecordingServer
from desktop_app.server.accesslog import AccessLog
from desktop_app.server.recordings import RecordingStore, StoredRecording

SIZE = 300_000


class KeptAlive:
    """One HTTP/1.1 connection; ``get`` sends a request and reads its whole answer."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""

    def get(self, target: str, headers: dict[str, str]) -> tuple[list[bytes], bytes]:
        lines = [f"GET {target} HTTP/1.1", "Host: 127.0.0.1"] + [f"{k}: {v}" for k, v in headers.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        while b"\r\n\r\n" not in self.buf:
            self.buf += self._recv()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        head_lines = head.split(b"\r\n")
        length = next((int(h.split(b":", 1)[1]) for h in head_lines if h.lower().startswith(b"content-length:")), 0)
        while len(self.buf) < length:
            self.buf += self._recv()
        body, self.buf = self.buf[:length], self.buf[length:]
        return [h for h in head_lines if not h.startswith(b"Date:")], body

    def _recv(self) -> bytes:
        data = self.sock.recv(1 << 20)
        if not data:
            raise ConnectionError("the server closed the connection")
        return data

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def pair(store: RecordingStore, tmp_path: Path) -> Iterator[tuple[RecordingServer, RecordingServer, list[bool]]]:
    """(fast, general, what the C fast path said to each request it was asked about): ``_fast_raw``,
    built on Linux (this fails where it was not built); the general server has it switched off."""
    fast = RecordingServer(store, signing_key=SIGNING_KEY)
    general = RecordingServer(store, signing_key=SIGNING_KEY)
    general.access_log = AccessLog(tmp_path / "general.log")
    fast.access_log = AccessLog(tmp_path / "fast.log")
    fast.start()
    general.start()
    answered: list[bool] = []
    assert fast._http is not None and general._http is not None
    general._http.fast_raw = None
    real_raw = fast._http.fast_raw
    assert real_raw is not None, "the C fast path (desktop_app/server/_fastserve.c) was not built"

    def watched_raw(conn: object, data: bytes) -> int:
        done = real_raw(conn, data)  # type: ignore[arg-type]
        answered.append(done > 0)
        return done

    fast._http.fast_raw = watched_raw
    yield fast, general, answered
    fast.stop()
    general.stop()


def _said(answered: list[bool], n: int) -> list[bool]:
    """The fast path's first ``n`` answers (it notes one just after the answer has gone: wait for it)."""
    deadline = time.monotonic() + 5
    while len(answered) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    return answered[:n]


def _log(server: RecordingServer) -> list[dict[str, object]]:
    server.access_log.flush()
    entries = [json.loads(line) for line in server.access_log.path.read_text().splitlines()]
    for e in entries:
        for varying in ("time", "duration_ms", "pid"):
            assert isinstance(e.pop(varying), (int, float))
    return entries


def _same_boundary(answer: tuple[list[bytes], bytes]) -> tuple[list[bytes], bytes]:
    """A multipart answer with its (random) boundary replaced by one that is the same every time."""
    head, body = answer
    for line in head:
        if b"boundary=" in line:
            boundary = line.split(b"boundary=")[1]
            return [h.replace(boundary, b"BOUNDARY") for h in head], body.replace(boundary, b"BOUNDARY")
    return answer


def _logs(n: int, *servers: RecordingServer) -> list[list[dict[str, object]]]:
    """Each server's access log once it holds ``n`` lines (a line is written just after its answer
    has gone), or as it is after 5 s."""
    deadline = time.monotonic() + 5
    while True:
        logged = [_log(server) for server in servers]
        if all(len(entries) >= n for entries in logged) or time.monotonic() > deadline:
            return logged
        time.sleep(0.05)


REQUESTS: list[dict[str, str]] = [
    {"Range": "bytes=0-0"},
    {"Range": "bytes=100-65635"},
    {"Range": f"bytes={SIZE - 10}-{SIZE + 500}"},  # the end past the file: cut to it
    {"Range": f"bytes=0-{SIZE - 1}"},
    {"Range": "bytes=200-100"},  # last before first: ignored, the whole file
    {"Range": f"bytes={SIZE}-{SIZE + 10}"},  # unsatisfiable: 416
    {"Range": "bytes=0-9,20-29"},  # multipart
    {"Range": "bytes=-500"},
    {"Range": "bytes=5-9", "If-Range": '"not-the-etag"'},  # If-Range that fails: the whole file
    {"Range": "bytes=5-9", "If-None-Match": "*"},  # 304
    {},  # no Range: the whole file
    {"Range": "bytes=1000-1999", "User-Agent": "HubSpot Connect 2.0"},
    {"range": "bytes=7-70"},  # a field name in lower case
]


def test_the_fast_path_answers_and_logs_as_the_general_path(
        pair: tuple[RecordingServer, RecordingServer, list[bool]], stored: StoredRecording) -> None:
    fast, general, answered = pair
    assert stored.size == SIZE
    path = "/" + fast.make_link(stored.sha256, external_id="call-1").split("/", 3)[3]
    a, b = KeptAlive(fast.port), KeptAlive(general.port)
    try:
        for round_ in range(2):  # the first answer of a link opens it; from the second on the fast path may answer
            for headers in REQUESTS:
                got, want = _same_boundary(a.get(path, headers)), _same_boundary(b.get(path, headers))
                assert got == want, (round_, headers)
                spans = [h.split(b" ")[2].split(b"/")[0] for h in got[0] if h.startswith(b"Content-Range: bytes ")]
                if got[0][0].startswith(b"HTTP/1.1 206") and spans:  # one range: the right bytes
                    first, last = (int(x) for x in spans[0].split(b"-"))
                    assert got[1] == stored.path.read_bytes()[first:last + 1]
    finally:
        a.close()
        b.close()
    # the fast path answered the single ranges of the second round (6 of the 13 requests), no other
    # every request is put to it; it answers the single ranges, but for the link's very first request
    singles = [0, 1, 2, 3, 11, 12]
    expected = [i for i in singles if i] + [len(REQUESTS) + i for i in singles]
    assert [i for i, yes in enumerate(_said(answered, 2 * len(REQUESTS))) if yes] == expected
    fast_log, general_log = _logs(2 * len(REQUESTS), fast, general)
    assert fast_log == general_log


def test_a_link_that_expires_or_a_removed_recording_leaves_the_fast_path(
        pair: tuple[RecordingServer, RecordingServer, list[bool]], store: RecordingStore,
        stored: StoredRecording) -> None:
    fast, _, answered = pair
    link = fast.make_link(stored.sha256, ttl_s=1.5)
    path = "/" + link.split("/", 3)[3]
    conn = KeptAlive(fast.port)
    try:
        assert conn.get(path, {"Range": "bytes=0-9"})[0][0] == b"HTTP/1.1 206 Partial Content"
        assert conn.get(path, {"Range": "bytes=0-9"})[0][0] == b"HTTP/1.1 206 Partial Content"
        assert _said(answered, 2) == [False, True]
        time.sleep(2.0)  # expired: 403 as a link never seen
        assert conn.get(path, {"Range": "bytes=0-9"})[0][0] == b"HTTP/1.1 403 Forbidden"
        assert _said(answered, 3)[-1] is False
        path2 = "/" + fast.make_link(stored.sha256).split("/", 3)[3]
        assert conn.get(path2, {"Range": "bytes=0-9"})[0][0] == b"HTTP/1.1 206 Partial Content"
        assert conn.get(path2, {"Range": "bytes=0-9"})[0][0] == b"HTTP/1.1 206 Partial Content"
        assert _said(answered, 5)[3:] == [False, True]
        store.remove(stored.sha256)
        deadline = time.monotonic() + 5
        status = b""
        asked = 5
        while time.monotonic() < deadline:  # retired within the server's once-a-second check
            status = conn.get(path2, {"Range": "bytes=0-9"})[0][0]
            asked += 1
            if status != b"HTTP/1.1 206 Partial Content":
                break
            time.sleep(0.1)
        assert status == b"HTTP/1.1 403 Forbidden"
        assert _said(answered, asked)[-1] is False
    finally:
        conn.close()


def test_an_answer_the_socket_takes_in_parts_or_a_client_leaves(
        pair: tuple[RecordingServer, RecordingServer, list[bool]], store: RecordingStore, tmp_path: Path) -> None:
    """A long answer: the fast path sends what the socket takes
    and queues the rest (the recording stays open until it has gone); one that hangs up mid-body is
    logged as aborted, as by the general path. 16 MB: more than the kernel buffers for a socket."""
    fast, general, answered = pair
    size = 16 << 20
    big = store.add(random_file(tmp_path / "long call.wav", size, seed=3))
    path = "/" + fast.make_link(big.sha256).split("/", 3)[3]
    data = big.path.read_bytes()
    request = f"GET {path} HTTP/1.1\r\nHost: x\r\nRange: bytes=0-{size - 1}\r\n\r\n".encode()
    for server in (fast, general):
        for attempt in range(3):  # the first opens the link; the second reads it all; the third leaves
            with socket.socket() as s:
                s.connect(("127.0.0.1", server.port))
                s.sendall(request)
                got = bytearray()
                if attempt == 2:
                    got += s.recv(1000)
                    time.sleep(0.2)
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    continue  # closed with a reset, most of the body unsent
                while b"\r\n\r\n" not in got or len(got.partition(b"\r\n\r\n")[2]) < size:
                    chunk = s.recv(1 << 20)
                    assert chunk, "the server closed the connection"
                    got += chunk
                assert got.partition(b"\r\n\r\n")[2] == data
    assert _said(answered, 3) == [False, True, True]
    fast_log, general_log = _logs(3, fast, general)
    assert [e["bytes"] for e in fast_log[:2]] == [size, size]
    assert fast_log[2].get("aborted") is True and int(fast_log[2]["bytes"]) < size  # type: ignore[call-overload]
    for a, b in zip(fast_log, general_log, strict=True):  # the same lines but for how much a leaving client got
        a.pop("bytes"), b.pop("bytes")
    assert fast_log == general_log


def test_no_log_line_is_lost_while_another_thread_flushes(
        pair: tuple[RecordingServer, RecordingServer, list[bool]], stored: StoredRecording) -> None:
    """The sync pipeline flushes the access log from its own thread while the server answers (and the
    C fast path appends lines): every answer keeps its line. Thread switches are forced often."""
    import sys
    import threading

    fast, _, _ = pair
    path = "/" + fast.make_link(stored.sha256).split("/", 3)[3]
    done = threading.Event()

    def flusher() -> None:
        while not done.is_set():
            fast.access_log.flush()

    conn = KeptAlive(fast.port)
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    t = threading.Thread(target=flusher)
    t.start()
    try:
        for i in range(3000):
            conn.get(path, {"Range": f"bytes={i}-{i + 99}"})
    finally:
        done.set()
        t.join()
        sys.setswitchinterval(old)
        conn.close()
    (fast_log,) = _logs(3000, fast)
    assert sorted(str(e["range"]) for e in fast_log) == sorted(f"bytes={i}-{i + 99}" for i in range(3000))


def test_proxy_connection_close_closes_as_the_general_path_does(
        pair: tuple[RecordingServer, RecordingServer, list[bool]], stored: StoredRecording) -> None:
    """``Proxy-Connection: close`` is a ``Connection: close`` to llhttp (so to the general path): the
    answer says so and the connection ends, the request pipelined after it unanswered. The C path
    left it to the general path (found by benchmarks/fuzz_fastpath.py: it answered both and kept
    the connection)."""
    from server_helpers import raw_request

    fast, general, _ = pair
    path = "/" + fast.make_link(stored.sha256).split("/", 3)[3]
    opener = f"GET {path} HTTP/1.1\r\nHost: x\r\nRange: bytes=0-0\r\n\r\n".encode()
    request = f"GET {path} HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9\r\nProxy-Connection: close\r\n\r\n".encode()
    answers = []
    for server in (fast, general):
        raw_request(server.port, opener)  # the link answered once: the C path may answer it now
        got = raw_request(server.port, request + request)
        answers.append(b"\r\n".join(line for line in got.split(b"\r\n") if not line.startswith(b"Date:")))
    assert answers[0] == answers[1]
    assert answers[1].count(b"HTTP/1.1 206") == 1 and b"Connection: close" in answers[1]
