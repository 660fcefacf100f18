"""Connection floods against a real recording server on loopback (issue 15's two).

Each of ``count`` rounds makes both floods, against the server as the app runs it (a cap of 256
connections, a 30 s idle time-out):
- idle: one client address opens the cap + 64 connections and sends nothing;
- pipelined: 40 connections of one address send ~1 MB each of tiny pipelined requests (/healthz, and
  ranges through a link: the C fast path's) and never read an answer.
During and after each, another client (another loopback address, and the flooder's own address, as
everything through a tunnel comes from 127.0.0.1) must get /healthz and a range within a bounded
wait. A try fails on a late or missing answer, a range with other bytes than the file's, a traceback
or error in the log, or the server's memory growing by more than ``RSS_GROWTH_MB`` over the rounds.
"""

from __future__ import annotations

import select
import socket
import time
from pathlib import Path

from tests.attacks.common import Result
from tests.attacks.crafted_requests import read_answer, request, serving

CAP = 256
PROMPT_S = 1.0  # "promptly": what another client may wait for an answer during a flood
RSS_GROWTH_MB = 20.0
PIPELINED_CLIENTS = 40
PIPELINED_BYTES = 1_100_000  # each: 40 of them make the 43 MB
SEND_S = 2.0  # how long the pipelining clients keep sending (the server may stop reading them)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 1e6


def connect(port: int, source: str) -> socket.socket:
    s = socket.socket()
    s.bind((source, 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    return s


def probe(result: Result, port: int, path: str, data: bytes, source: str, when: str) -> None:
    """/healthz and one range asked from ``source``: each answered right within ``PROMPT_S``."""
    for target, headers, want in (("/healthz", [], None), (path, [("Range", "bytes=1000-1999")], data[1000:2000])):
        result.tries += 1
        started = time.monotonic()
        try:
            with connect(port, source) as s:
                s.sendall(request("GET", target, headers))
                answer = read_answer(s, timeout=PROMPT_S + 4)
        except OSError as exc:
            result.fail(f"{when}: {target} from {source}: {exc}")
            continue
        took = time.monotonic() - started
        if answer.status is None:
            result.fail(f"{when}: {target} from {source} got no answer in {took:.1f} s")
        elif answer.status not in (200, 206) or (want is not None and answer.body != want):
            result.fail(f"{when}: {target} from {source} answered {answer.status}")
        elif took > PROMPT_S:
            result.fail(f"{when}: {target} from {source} took {took:.2f} s")


def idle_flood(result: Result, port: int, path: str, data: bytes) -> None:
    held: list[socket.socket] = []
    try:
        for _ in range(CAP + 64):
            try:
                held.append(connect(port, "127.0.0.1"))
            except OSError as exc:
                result.fail(f"idle flood: connection {len(held) + 1} could not be made: {exc}")
                break
        time.sleep(0.2)
        for source in ("127.0.0.2", "127.0.0.1"):
            probe(result, port, path, data, source, f"{len(held)} idle connections held")
    finally:
        for s in held:
            s.close()


def pipelined_flood(result: Result, port: int, path: str, data: bytes) -> None:
    tiny = [request("GET", "/healthz"), request("GET", path, [("Range", "bytes=0-0")])]
    kinds = [(t * (PIPELINED_BYTES // len(t) + 1))[:PIPELINED_BYTES] for t in tiny]
    payloads = [kinds[i % 2] for i in range(PIPELINED_CLIENTS)]  # shared: only the server's memory grows
    socks = [connect(port, "127.0.0.1") for _ in range(PIPELINED_CLIENTS)]
    try:
        for s in socks:
            s.setblocking(False)
        sent = [0] * len(socks)
        deadline = time.monotonic() + SEND_S
        next_probe = time.monotonic() + 0.3
        while time.monotonic() < deadline:
            pending = [i for i, s in enumerate(socks) if sent[i] < len(payloads[i]) and s.fileno() >= 0]
            if not pending:
                break
            _, writable, _ = select.select([], [socks[i] for i in pending], [], 0.05)
            for s in writable:
                i = socks.index(s)
                try:
                    sent[i] += s.send(payloads[i][sent[i]:sent[i] + 65536])
                except BlockingIOError:
                    pass
                except OSError:
                    sent[i] = len(payloads[i])  # the server closed it: it sent much more than it read
            if time.monotonic() >= next_probe:  # while they send
                probe(result, port, path, data, "127.0.0.2", "pipelined flood")
                next_probe = time.monotonic() + 0.5
        for source in ("127.0.0.2", "127.0.0.1"):
            probe(result, port, path, data, source, f"after {sum(sent) / 1e6:.0f} MB pipelined, unread")
    finally:
        for s in socks:
            s.close()


def attack(count: int, workdir: Path) -> Result:
    result = Result("connection_floods")
    with serving(workdir, max_connections=CAP, idle_timeout_s=30.0) as (server, stored, watch):
        port = server.port  # type: ignore[attr-defined]
        path = "/" + server.make_link(stored.sha256).split("/", 3)[3]  # type: ignore[attr-defined]
        data = stored.path.read_bytes()  # type: ignore[attr-defined]
        probe(result, port, path, data, "127.0.0.2", "before")  # opens the link: the fast paths know it
        before = rss_mb()
        for round_ in range(count):
            idle_flood(result, port, path, data)
            pipelined_flood(result, port, path, data)
            deadline = time.monotonic() + 5
            while server.connections() > 0 and time.monotonic() < deadline:  # type: ignore[attr-defined]
                time.sleep(0.05)
            left = server.connections()  # type: ignore[attr-defined]
            if left:
                result.fail(f"round {round_}: {left} connections still open 5 s after the clients left")
            for bad in watch.bad:
                result.fail(f"round {round_}: logged {bad}")
            watch.bad.clear()
        grown = rss_mb() - before
        result.tries += 1
        if grown > RSS_GROWTH_MB:
            result.fail(f"the server's process grew by {grown:.0f} MB over {count} rounds")
    return result
