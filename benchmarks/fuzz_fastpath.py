"""Differential fuzz of the recording server's C fast path (``_fastserve.c``) against the general path.

    .venv/bin/python benchmarks/fuzz_fastpath.py [--count 1000000] [--seed N]

The C path parses HTTP that reaches it from the internet (through the tunnel), so it must answer
exactly what the general Python path (httptools, ``RecordingServer._handle``) answers. Two
``RecordingServer``s share one store, one signing key and so the same links; one has the C path,
the other has it switched off. Each generated connection (requests valid and not: single, multiple,
suffix and open ranges, huge numbers, every header field the C path's strict subset refuses, HEAD and
other methods, bad lines and garbage; several pipelined per write, the bytes split at random
boundaries, some to a socket that takes the answers in parts) is fed to both servers' connection handler in-process through a socketpair
(``core.Connection`` as the event loop drives it, no TCP); the bytes answered and the access-log
lines must be equal, but for what must differ: the Date line, a multipart boundary and the log's
time and duration. Prints the count of requests, the differences (each one's case, the first few)
and the rate; exits 1 on any difference. tests/server/test_fastpath_fuzz.py runs a bounded number.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import select
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CLIENT = "203.0.113.7"
KEY = "fuzz-signing-key"
SIZES = (1, 1000, 70_000)  # the stored recordings: one byte, small, more than a few socket writes
REFUSED = ("If-Range", "If-None-Match", "If-Match", "If-Modified-Since", "If-Unmodified-Since", "If-Foo",
           "Connection", "Proxy-Connection", "Transfer-Encoding", "Content-Length", "Expect", "Upgrade")
# an external id near the longest a link carries, each character escaped in the log line (\u0001, \\)
LONG_ID = "call-é\"1" + "\x01\\" * 290
_DATE = re.compile(rb"\r\nDate: [^\r]*\r\n")
_BOUNDARY = re.compile(rb"boundary=([0-9a-f]{24})\r\n")
_VARYING = re.compile(r'"(time|duration_ms)":[0-9.]+')


@dataclass
class Outcome:
    answer: bytes
    log: list[str]
    c_answered: int = 0  # requests the C path answered (whole, in one call)


@dataclass
class Side:
    """One server's connection handler, driven by hand (its loop is never run: callbacks are called)."""

    server: object
    http: object
    c_calls: list[int] = field(default_factory=list)

    def run(self, chunks: list[bytes], small: bool = False) -> Outcome:
        from desktop_app.server.core import Connection, Peer

        http = self.http
        here, there = socket.socketpair()
        here.setblocking(False)
        there.setblocking(False)
        if small:  # a socket that takes an answer in parts: the rest waits in the output queue
            here.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        conn = Connection(http, here, CLIENT, False, Peer())  # type: ignore[arg-type]
        http.conns.add(conn)  # type: ignore[attr-defined]
        conn.peer.count += 1
        conn.start()
        got = bytearray()
        self.c_calls.clear()
        try:
            for chunk in chunks:
                view = memoryview(chunk)
                while view:
                    try:
                        view = view[there.send(view):]
                    except (BlockingIOError, InterruptedError):
                        pass
                    except OSError:  # the server has closed the connection
                        break
                    self._pump(conn, here, there, got)
            try:
                there.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # the client's end: what is left is answered or dropped
            self._pump(conn, here, there, got)
        finally:
            conn.abort("fuzz case done")
            there.close()
        log = self.server.access_log.lines  # type: ignore[attr-defined]
        lines = list(log)
        log.clear()
        return Outcome(bytes(got), lines, sum(self.c_calls))

    def _pump(self, conn: object, here: socket.socket, there: socket.socket, got: bytearray) -> None:
        ready = self.http.loop._ready  # type: ignore[attr-defined]
        for _ in range(10_000):
            progress = False
            while True:
                try:
                    data = there.recv(1 << 20)
                except (BlockingIOError, InterruptedError):
                    break
                if not data:
                    break
                got += data
                progress = True
            if conn.closed:  # type: ignore[attr-defined]
                return
            if conn.writing:  # type: ignore[attr-defined]
                conn._on_writable()  # type: ignore[attr-defined]
                progress = True
            while ready:
                ready.popleft()()
                progress = True
            if conn.reading and not conn.closed and select.select([here], [], [], 0)[0]:  # type: ignore[attr-defined]
                conn._on_readable()  # type: ignore[attr-defined]
                progress = True
            if not progress:
                return
        raise RuntimeError("a connection that never settles")


class Pair:
    """A store with a few recordings, and the two servers answering from it."""

    def __init__(self, home: Path) -> None:
        os.environ["CALLRELAY_HOME"] = str(home)
        from desktop_app.server import app as app_mod
        from desktop_app.server.accesslog import AccessLog
        from desktop_app.server.recordings import RecordingStore

        if app_mod._fastserve is None:
            raise SystemExit("The C fast path (desktop_app/server/_fastserve.c) is not built: nothing to compare.")
        self.store = RecordingStore()
        rng = random.Random(1)
        self.recordings = []
        for i, size in enumerate(SIZES):
            path = home / f"call {i} é.wav"
            path.write_bytes(rng.randbytes(size))
            self.recordings.append(self.store.add(path))
        self.sides: list[Side] = []
        for with_c in (True, False):
            server = app_mod.RecordingServer(self.store, signing_key=KEY)
            server.access_log = AccessLog(home / f"access-{with_c}.log")
            http = server._new_http()
            side = Side(server, http)
            if with_c:
                assert http.fast_raw is not None
                real = http.fast_raw

                def watched(conn: object, data: bytes, real: Callable[..., int] = real, side: Side = side) -> int:
                    lines = side.server.access_log.lines  # type: ignore[attr-defined]
                    before = len(lines)
                    done = real(conn, data)
                    side.c_calls.append(len(lines) - before)  # the answers it gave whole (one log line each)
                    return done

                http.fast_raw = watched
            else:
                http.fast_raw = None
            self.sides.append(side)
        c_server = self.sides[0].server
        # links: the same tokens for both servers (one signer key); some warmed (answered once)
        self.links = [
            "/recordings/" + c_server.make_link(rec.sha256, external_id=ext).split("/recordings/", 1)[1]  # type: ignore[attr-defined]
            for rec in self.recordings for ext in ("", LONG_ID)
        ]
        self.cold = ["/recordings/" + c_server.make_link(rec.sha256).split("/recordings/", 1)[1]  # type: ignore[attr-defined]
                     for rec in self.recordings]
        for link in self.links:
            for side in self.sides:
                side.run([f"GET {link} HTTP/1.1\r\nHost: x\r\n\r\n".encode()])

    def compare(self, chunks: list[bytes], small: bool = False) -> tuple[bool, Outcome, Outcome]:
        c, general = (side.run(chunks, small) for side in self.sides)
        return normal(c) == normal(general), c, general

    def close(self) -> None:
        for side in self.sides:
            side.http.close()  # type: ignore[attr-defined]
            side.server._close_recordings()  # type: ignore[attr-defined]
            side.http.loop.close()  # type: ignore[attr-defined]
        self.store.close()


def normal(o: Outcome) -> tuple[bytes, list[str]]:
    answer = _DATE.sub(b"\r\nDate: D\r\n", o.answer)
    for boundary in set(_BOUNDARY.findall(answer)):  # multipart answers' random boundaries
        answer = answer.replace(boundary, b"B" * 24)
    return answer, [_VARYING.sub(r'"\1":0', line) for line in o.log]


# -- generating requests --------------------------------------------------------------------------
def _num(rng: random.Random, size: int) -> str:
    pick = rng.random()
    if pick < 0.5:
        return str(rng.randrange(0, size + 2))
    if pick < 0.6:
        return "0" * rng.randrange(1, 20) + str(rng.randrange(0, size))
    if pick < 0.7:
        return str(rng.randrange(10**17, 10**18))  # 18 digits
    if pick < 0.8:
        return "9" * rng.choice((18, 19, 20, 40, 5000))
    if pick < 0.9:
        return str(size - 1 + rng.randrange(-2, 3))
    return rng.choice(("", "-1", "+1", "1e3", "0x10", " 5", "5 ", "١"))


def gen_range(rng: random.Random, size: int) -> str:
    pick = rng.random()
    a, b = _num(rng, size), _num(rng, size)
    if pick < 0.55:
        return f"bytes={a}-{b}"
    if pick < 0.62:
        return f"bytes=-{b}"
    if pick < 0.68:
        return f"bytes={a}-"
    if pick < 0.76:
        return "bytes=" + ",".join(f"{_num(rng, size)}-{_num(rng, size)}" for _ in range(rng.randrange(2, 5)))
    if pick < 0.84:
        return rng.choice(("Bytes", "BYTES", "bytes ", "byte", "items", "")) + f"={a}-{b}"
    if pick < 0.92:
        return rng.choice((" ", "\t", "", "  ")) + f"bytes={a}-{b}" + rng.choice((" ", "\t", ",", " ,", ";", ""))
    return rng.choice(("", "bytes=", "bytes=-", "bytes=--1", "=", "bytes=1-2-3", "bytes=0-0", "bytes=0-1,0-1"))


_OTHER = ("Host", "User-Agent", "Accept", "Accept-Encoding", "Referer", "X-Forwarded-For", "Cookie", "Origin",
          "Icy-MetaData", "Sec-Fetch-Mode", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Via")
_NAME_ODD = ("range", "RANGE", "rAnGe", "Range ", " Range", "Ran ge", "Range\t", "X_Y", "x!#$%&'*+-.^_`|~",
             "", "Räng", "R\x00nge", "\x7f")
_VALUE_ODD = ("", " ", "\t", "a\tb", "\x00", "\x01", "\x7f", "\x80", "é", "\xff", "a\rb", "a\nb", "\x0b", "\x0c",
              "x" * 3000)


def _good_range(rng: random.Random, size: int) -> str:
    first = rng.randrange(0, size)
    return f"bytes={first}-{rng.randrange(first, size + 3)}"


def gen_request(rng: random.Random, p: Pair) -> bytes:
    """One request: over half as the C path answers them (GET of one range through a link answered
    before), the others changed in one to four ways, each taking it nearer the strict subset's edge or
    past it; a few are garbage."""
    if rng.random() < 0.02:
        return rng.randbytes(rng.randrange(1, 200))
    rec_i = rng.randrange(len(p.recordings))
    size = p.recordings[rec_i].size
    method, target, version = "GET", p.links[2 * rec_i + rng.randrange(2)], "HTTP/1.1"
    headers: list[tuple[str, str]] = [("Host", "127.0.0.1"), ("Range", _good_range(rng, size))]
    if rng.random() < 0.5:
        headers.append((rng.choice(_OTHER), rng.choice(("x", "keep-alive", "*/*", "Mozilla/5.0", "1", "", "close",
                                                        "chunked", "upgrade", "100-continue"))))
    eol, colon, extra = "\r\n", ": ", b""
    for _ in range(rng.choices((0, 1, 2, 4), (55, 30, 10, 5))[0]):
        q = rng.randrange(16)
        if q == 0:
            method = rng.choice(("HEAD", "POST", "OPTIONS", "get", "GET ", "PUT", "G\x00T", "DELETE"))
        elif q == 1:
            link = target
            target = rng.choice((link + "?a=1", link + "#f", link[:-1], link + "x", "/recordings/", "/nothing", "*",
                                 "http://h" + link, link.replace("/recordings/", "/recordings//"), link + "%20",
                                 "/" + "a" * 2100, link + "\x01", link + "é", "/recordings/" + "A" * 3000, "",
                                 p.cold[rec_i], link.upper()))
        elif q == 2:
            version = rng.choice(("HTTP/1.0", "HTTP/1.2", "http/1.1", "HTTP/2.0", "HTTP/1.1 ", "HTTP/1", "",
                                  "HTTP/1.10", "HTTP/01.1"))
        elif q in (3, 4, 5):
            headers = [h for h in headers if h[0] != "Range"]
            headers.append((rng.choice(("Range", "range", "RANGE", "rAnGe")), gen_range(rng, size)))
        elif q in (6, 7):
            name = rng.choice(REFUSED)
            value = {"Connection": rng.choice(("keep-alive", "close", "Upgrade", "")),
                     "Proxy-Connection": rng.choice(("keep-alive", "close", "Upgrade", "")),
                     "Transfer-Encoding": rng.choice(("chunked", "identity", "gzip")),
                     "Content-Length": rng.choice(("0", "5", "-1", "", "99999999999999999999")),
                     "Expect": "100-continue", "Upgrade": "websocket"}.get(
                         name, rng.choice(('"' + p.recordings[rec_i].sha256 + '"', '"x"', "*",
                                           "Thu, 01 Jan 2099 00:00:00 GMT", "")))
            headers.append((rng.choice((name, name.lower(), name.upper())), value))
        elif q == 8:
            headers.append(("Range", gen_range(rng, size) if rng.random() < 0.5 else _good_range(rng, size)))
        elif q == 9:
            headers.append((rng.choice(_NAME_ODD), "v"))
        elif q == 10:
            headers.append((rng.choice(_OTHER + ("Range",)), rng.choice(_VALUE_ODD)))
        elif q == 11:
            eol = rng.choice(("\n", "\r", "\r\n ", "\n\r"))
        elif q == 12:
            colon = rng.choice((":", " :", ":\t", ":  ", ": \t "))
        elif q == 13:
            headers.insert(rng.randrange(len(headers) + 1), (" folded", "x") if rng.random() < 0.5 else ("X-Pad", "p" * rng.choice((20_000, 33_000))))
        elif q == 14:
            extra = rng.randbytes(rng.randrange(0, 10))
        else:
            headers = [h for h in headers if h[0] != "Host"] if rng.random() < 0.5 else headers[:1]
    rng.shuffle(headers)
    lines = [f"{method} {target} {version}"] + [f"{n}{colon}{v}" for n, v in headers]
    return (eol.join(lines) + eol + eol).encode("utf-8", "surrogateescape") + extra


def gen_case(rng: random.Random, p: Pair) -> tuple[list[bytes], int]:
    """A connection's input, as the writes that carry it, and how many requests it holds."""
    n = rng.choices((1, 2, 3, 8, 17, 40), (50, 20, 10, 10, 5, 5))[0]
    stream = b"".join(gen_request(rng, p) for _ in range(n))
    if rng.random() < 0.1:
        stream = stream[:rng.randrange(0, len(stream) + 1)]  # the client stops mid-request
    cuts: list[int] = []
    if rng.random() < 0.3:  # split at random byte boundaries
        cuts = sorted(rng.sample(range(1, max(2, len(stream))), min(len(stream) - 1, rng.randrange(1, 6)))) \
            if len(stream) > 1 else []
    chunks, last = [], 0
    for cut in cuts:
        chunks.append(stream[last:cut])
        last = cut
    chunks.append(stream[last:])
    return [c for c in chunks if c], n


def fuzz(count: int, seed: int, *, report: Callable[[str], None] = print, show: int = 3) -> tuple[int, int, int]:
    """Run cases until ``count`` requests have gone to both paths; returns (requests, differences,
    requests the C path answered)."""
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="fuzz-fastpath-") as tmp:
        p = Pair(Path(tmp))
        try:
            done = diffs = c_answered = 0
            while done < count:
                chunks, n = gen_case(rng, p)
                small = rng.random() < 0.15
                same, c, general = p.compare(chunks, small)
                done += n
                c_answered += c.c_answered
                if not same:
                    diffs += 1
                    if diffs <= show:
                        report(f"DIFFERENCE for input {b''.join(chunks)[:3000]!r} (written as {len(chunks)} parts"
                               f"{', to a small socket buffer' if small else ''})\n"
                               f"  C path:  {c.answer[:600]!r}\n           {c.log}\n"
                               f"  general: {general.answer[:600]!r}\n           {general.log}")
        finally:
            p.close()
    return done, diffs, c_answered


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=1_000_000, help="requests to generate (default 1,000,000)")
    ap.add_argument("--seed", type=int, default=None, help="the generator's seed (default: a random one, printed)")
    args = ap.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    print(f"seed {seed}", flush=True)
    started = time.monotonic()
    done, diffs, c_answered = fuzz(args.count, seed)
    took = time.monotonic() - started
    print(f"requests {done}, answered whole by the C path {c_answered}, differences {diffs}, "
          f"{done / took:,.0f} requests/s over both paths ({took:.1f} s)")
    return 1 if diffs else 0


if __name__ == "__main__":
    raise SystemExit(main())
