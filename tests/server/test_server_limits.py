"""The recording server under connection floods: one client holding many idle connections, and many
clients pipelining requests they never read. Other clients must still be answered promptly, and what
the server holds for one client is bounded."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from server_helpers import SIGNING_KEY, random_file, wait_until

from desktop_app.server import RecordingServer, core
from desktop_app.server.recordings import RecordingStore, StoredRecording

HEALTH = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


def connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    """A connection to the server from ``source`` (any 127.x.y.z address is this machine: another client)."""
    s = socket.socket()
    s.bind((source, 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    return s


def health(port: int, source: str = "127.0.0.1", timeout: float = 2.0) -> tuple[bytes, float]:
    """The status line of /healthz asked from ``source``, and how long the answer took."""
    start = time.monotonic()
    with connect(port, source) as s:
        s.settimeout(timeout)
        s.sendall(HEALTH)
        got = b""
        try:
            while b"\r\n" not in got:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        except TimeoutError:
            pass
    return got.split(b"\r\n", 1)[0], time.monotonic() - start


def closed_by_server(s: socket.socket) -> bool:
    s.settimeout(0.5)
    try:
        return s.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionError:
        return True


@contextmanager
def held(port: int, count: int, source: str = "127.0.0.1") -> Iterator[list[socket.socket]]:
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            socks.append(connect(port, source))
        yield socks
    finally:
        for s in socks:
            s.close()


def rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4


# -- idle connections -------------------------------------------------------------------------------
def test_one_client_holding_the_cap_plus_64_idle_connections_locks_no_one_out(store: RecordingStore) -> None:
    """The issue's flood: 320 idle connections from one address (cap 256 + 64). Another address, and
    the same address again (everything through a tunnel comes from 127.0.0.1), are answered at once;
    the flooder's oldest idle connections are the ones closed."""
    with RecordingServer(store, signing_key=SIGNING_KEY, max_connections=256, idle_timeout_s=30) as srv, \
            held(srv.port, 320) as flood:
        time.sleep(0.3)
        assert srv.connections() <= 256
        for source in ("127.0.0.2", "127.0.0.1"):
            status, took = health(srv.port, source)
            assert status == b"HTTP/1.1 200 OK", (source, status)
            assert took < 1.0, (source, took)
        closed = [closed_by_server(s) for s in flood[:10]] + [closed_by_server(s) for s in flood[-10:]]
        assert closed == [True] * 10 + [False] * 10  # the oldest went first, the newest are kept


def test_a_client_keeps_room_for_others_and_its_own_oldest_idle_connection_goes(store: RecordingStore) -> None:
    with RecordingServer(store, signing_key=SIGNING_KEY, max_connections=8, idle_timeout_s=30) as srv:
        per_client = srv.max_per_client
        assert 1 <= per_client < 8
        with held(srv.port, per_client) as mine:
            assert wait_until(lambda: srv.connections() == per_client)
            with held(srv.port, 1) as (newest,):
                assert closed_by_server(mine[0])  # the oldest idle one made room
                assert not any(closed_by_server(s) for s in mine[1:])
                newest.sendall(HEALTH)
                assert newest.recv(100).startswith(b"HTTP/1.1 200 ")
            # the others (another address) still have the rest of the cap
            with held(srv.port, 8 - per_client, "127.0.0.3") as theirs:
                time.sleep(0.1)
                assert not any(closed_by_server(s) for s in theirs)
                assert health(srv.port, "127.0.0.3")[0] == b"HTTP/1.1 200 OK"


def test_a_client_allowed_one_connection_keeps_exactly_one(store: RecordingStore) -> None:
    """Each new connection closes the client's previous one, and the count stays right when that one
    was its last (the per-client record is not lost on the way)."""
    with RecordingServer(store, signing_key=SIGNING_KEY, max_connections=2, idle_timeout_s=30) as srv:
        assert srv.max_per_client == 1
        with held(srv.port, 5) as mine:
            assert wait_until(lambda: srv.connections() == 1)
            assert [closed_by_server(s) for s in mine] == [True] * 4 + [False]
            http = srv._http
            assert http is not None and http.peers["127.0.0.1"].count == 1
            assert health(srv.port, "127.0.0.2")[0] == b"HTTP/1.1 200 OK"


def test_the_cap_answers_503_when_every_connection_is_busy(store: RecordingStore, tmp_path: Path) -> None:
    """Connections in the middle of an answer are not closed to make room (not before their client has
    left it unread for a while): beyond the cap a new one gets 503; once they have gone, it is served."""
    big = store.add(random_file(tmp_path / "big.wav", 30_000_000, seed=5))
    with RecordingServer(store, signing_key=SIGNING_KEY, max_connections=2) as srv:
        path = "/" + srv.make_link(big.sha256).split("/", 3)[3]
        readers = [connect(srv.port, f"127.0.0.{2 + i}") for i in range(2)]
        try:
            for s in readers:
                s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                s.recv(1000)
            status, _ = health(srv.port, "127.0.0.9")
            assert status == b"HTTP/1.1 503 Service Unavailable"
        finally:
            for s in readers:
                s.close()
        assert wait_until(lambda: health(srv.port)[0] == b"HTTP/1.1 200 OK")


# -- pipelined requests that are never read -----------------------------------------------------------
def flood_pipelined(port: int, clients: int, per_client: int, request: bytes, seconds: float) -> list[socket.socket]:
    """``clients`` connections, each sending ``per_client`` bytes of pipelined ``request`` and never
    reading; sending stops after ``seconds`` whatever was sent (the server may stop reading)."""
    payload = request * (per_client // len(request) + 1)
    socks = [connect(port) for _ in range(clients)]
    for s in socks:
        s.setblocking(False)
    sent = dict.fromkeys(socks, 0)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pending = [s for s in socks if sent[s] < len(payload)]
        if not pending:
            break
        _, writable, _ = select.select([], pending, [], 0.05)
        for s in writable:
            try:
                sent[s] += s.send(payload[sent[s]:sent[s] + 65536])
            except (BlockingIOError, ConnectionError):
                pass
    return socks


def test_pipelined_requests_from_clients_that_never_read_are_bounded(store: RecordingStore,
                                                                     stored: StoredRecording) -> None:
    """The issue's second flood: 40 clients pipelining ~1 MB of tiny requests each and never reading.
    /healthz is answered within a second while they send, the answers queued for one connection and the
    input held for one client are bounded, and the server's memory does not grow by tens of MB."""
    with RecordingServer(store, signing_key=SIGNING_KEY) as srv:
        link = srv.make_link(stored.sha256)
        assert requests.get(link, headers={"Range": "bytes=0-0"}, timeout=5).status_code == 206  # the fast path's
        path = "/" + link.split("/", 3)[3]
        before = rss_kib()
        tiny_range = f"GET {path} HTTP/1.1\r\nHost: x\r\nRange: bytes=0-0\r\n\r\n".encode()
        for request in (HEALTH, tiny_range):
            probes: list[float] = []
            socks = flood_pipelined(srv.port, 40, 1_000_000, request, seconds=1.5)
            try:
                for _ in range(3):
                    status, took = health(srv.port, "127.0.0.2", timeout=5)
                    assert status == b"HTTP/1.1 200 OK"
                    probes.append(took)
                assert max(probes) < 1.0, probes
                http = srv._http
                assert http is not None
                for conn in list(http.conns):
                    answers = sum(type(item) is core.End for item in list(conn.out))
                    assert answers <= core.MAX_PIPELINED + 2, answers
                    assert len(conn.inbuf) <= core.RECV_BYTES
                assert sum(len(c.inbuf) for c in list(http.conns)) <= core.CLIENT_INPUT_BYTES
            finally:
                for s in socks:
                    s.close()
        grown = (rss_kib() - before) / 1024
        assert grown < 20, f"RSS grew by {grown:.0f} MB"
        assert wait_until(lambda: srv.connections() == 0)
