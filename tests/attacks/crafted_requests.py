"""Crafted hostile requests against a real recording server on loopback.

``count`` requests, generated from a fixed seed, each of one kind: bad ranges (huge numbers, junk,
too many), altered link tokens, bad methods and versions, malformed headers, header floods, path
tricks, input split in pieces or pipelined, and HubSpot's endpoint with bad signatures. A try fails
when the server answers 5xx, serves an altered link, answers a range with other bytes than the
file's, gives no answer in time, or logs a traceback or an error; and the class fails when the
server stops answering ``/healthz`` at the end.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from tests.attacks.common import Result

SIGNING_KEY = "attack-signing-key"
CLIENT_SECRET = "attack-client-secret"
FILE_SIZE = 300_000
ANSWER_TIMEOUT_S = 5.0
ENDPOINT = "/retrieve/authenticated/recordings"
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


class LogWatch(logging.Handler):
    """Keeps what the server logs at ERROR or with a traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.bad: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.bad.append(f"{record.levelname} {record.getMessage()[:200]}"
                            + (" (with a traceback)" if record.exc_info else ""))


@contextmanager
def serving(workdir: Path, **kwargs: object) -> Iterator[tuple[object, object, LogWatch]]:
    """A real ``RecordingServer`` on loopback with its own data directory in ``workdir`` (the store, the
    access log, run/server.json), one stored recording shared as the call "call-1"; yields (server,
    the stored recording, what it logged badly)."""
    from desktop_app.server import RecordingServer
    from desktop_app.server.recordings import RecordingStore

    old_home = os.environ.get("CALLRELAY_HOME")
    os.environ["CALLRELAY_HOME"] = str(workdir / "home")
    watch = LogWatch()
    logger = logging.getLogger("desktop_app")
    logger.addHandler(watch)
    store = RecordingStore()
    try:
        source = workdir / "call.wav"
        source.write_bytes(random.Random(7).randbytes(FILE_SIZE))
        stored = store.add(source)
        store.share("call-1", stored.sha256, app_id="1", external_account_id="acct")
        server = RecordingServer(store, signing_key=SIGNING_KEY, client_secret=CLIENT_SECRET,
                                 **kwargs)  # type: ignore[arg-type]
        with server:
            yield server, stored, watch
    finally:
        store.close()
        logger.removeHandler(watch)
        if old_home is None:
            os.environ.pop("CALLRELAY_HOME", None)
        else:
            os.environ["CALLRELAY_HOME"] = old_home


# -- talking to it ------------------------------------------------------------------------------------
class Answer:
    def __init__(self, status: int | None, head: bytes, body: bytes) -> None:
        self.status = status  # None: no answer
        self.head = head
        self.body = body

    def header(self, name: bytes) -> bytes | None:
        for line in self.head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == name:
                return value.strip()
        return None


def exchange(port: int, pieces: list[bytes], *, head_request: bool = False,
             timeout: float = ANSWER_TIMEOUT_S) -> Answer:
    """Send ``pieces`` (with a moment between them) on a new connection and read the first answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            for i, piece in enumerate(pieces):
                if i:
                    time.sleep(0.002)
                s.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed early (a 400 sent before the rest): read what it said
        return read_answer(s, head_request=head_request, timeout=timeout)


def read_answer(s: socket.socket, *, head_request: bool = False, timeout: float = ANSWER_TIMEOUT_S) -> Answer:
    deadline = time.monotonic() + timeout
    buf = b""
    try:
        while b"\r\n\r\n" not in buf:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    except TimeoutError:
        pass
    except ConnectionResetError:
        buf += b"(reset)"
    if b"\r\n\r\n" not in buf:
        return Answer(None, buf, b"")
    head, _, body = buf.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return Answer(-1, head, body)
    answer = Answer(status, head, body)
    length = answer.header(b"content-length")
    want = 0 if head_request or status in (204, 304) or length is None else int(length)
    try:
        while len(answer.body) < want and time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            answer.body += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return answer


# -- what is sent ---------------------------------------------------------------------------------------
def request(method: str, target: str, headers: list[tuple[str, str]] | None = None, *, version: str = "HTTP/1.1",
            body: bytes = b"") -> bytes:
    lines = [f"{method} {target} {version}", "Host: 127.0.0.1"] + [f"{k}: {v}" for k, v in headers or []]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


def alter(token: str, rng: random.Random) -> str:
    """The token changed in one small way (never left as it was)."""
    while True:
        i = rng.randrange(len(token))
        how = rng.randrange(9)
        if how == 0:  # one character changed
            altered = token[:i] + rng.choice(ALPHABET) + token[i + 1:]
        elif how == 1:  # the last character of a part: the same bytes to a lax decoder, maybe
            body, tag = token.split(".")
            part = rng.choice([0, 1])
            text = (body, tag)[part]
            text = text[:-1] + ALPHABET[ALPHABET.index(text[-1]) ^ rng.randrange(1, 4)]
            altered = f"{text}.{tag}" if part == 0 else f"{body}.{text}"
        elif how == 2:
            altered = token[:i] + rng.choice(["!", "@@@@", "=", "==", " ", "+", "/", "%", ".", "\t", "~"]) + token[i:]
        elif how == 3:
            altered = token + rng.choice(["=", "==", "A", "AA", ".", "%3D", "%00", "/", "/."])
        elif how == 4:
            altered = token[:i] + token[i + 1:]
        elif how == 5:
            altered = token[:i] + f"%{ord(token[i]):02X}" + token[i + 1:]  # percent-encoded
        elif how == 6:
            altered = token.swapcase()
        elif how == 7:
            altered = token.replace(".", rng.choice(["..", "", ".=", "=."]), 1)
        else:
            altered = token[:i] + token[i:][::-1]
        if altered != token:
            return altered


def junk_range(rng: random.Random) -> str:
    huge = "9" * rng.choice([19, 40, 400, 5000, 20000])
    n = lambda: str(rng.choice([0, 1, 99, FILE_SIZE - 1, FILE_SIZE, FILE_SIZE + 1, 2**63, 2**64]))  # noqa: E731
    return rng.choice([
        f"bytes={huge}-", f"bytes=0-{huge}", f"bytes=-{huge}", f"bytes={huge}-{huge}", f"bytes={huge}9-{huge}",
        f"bytes={n()}-{n()}", f"bytes=-{n()}", f"bytes={n()}-", "bytes=-0", "bytes=--1", "bytes=1--2",
        "bytes=", "bytes=,", "bytes=a-b", "bytes=0x10-0x20", "bytes= 1 - 2 ", "bytes=1-2,", "bytes=١-٢",
        "bytes=" + ",".join(f"{i}-{i}" for i in range(rng.choice([63, 64, 65, 1000]))),
        "bytes=" + ",".join(f"{i * 3}-{i * 3 + 1}" for i in range(rng.randrange(2, 12))),
        "BYTES=0-0", "items=0-1", "bytes 0-1", "bytes=+1-2", "bytes=1-+2", "bytes=1.5-2", "bytes=0-0;x",
        f"bytes=0-{'0' * 5000}1", "bytes=" + "0" * 30 + "1-" + "0" * 30 + "2",
    ])


def bad_signature(rng: random.Random, port: int, target: str) -> list[tuple[str, str]]:
    from desktop_app.server import sign_v3

    now = int(time.time() * 1000)
    good_ts = str(now)
    url = f"http://127.0.0.1:{port}{target}"
    good = sign_v3(CLIENT_SECRET, "GET", url, b"", good_ts)
    return rng.choice([
        [("X-HubSpot-Signature-v3", "AAAA"), ("X-HubSpot-Request-Timestamp", good_ts)],
        [("X-HubSpot-Signature-v3", good), ("X-HubSpot-Request-Timestamp", str(now - 10 * 60 * 1000))],
        [("X-HubSpot-Signature-v3", good), ("X-HubSpot-Request-Timestamp", str(now + 10 * 60 * 1000))],
        [("X-HubSpot-Signature-v3", good), ("X-HubSpot-Request-Timestamp", "9" * 5000)],
        [("X-HubSpot-Signature-v3", good), ("X-HubSpot-Request-Timestamp", "soon")],
        [("X-HubSpot-Signature-v3", good), ("X-HubSpot-Request-Timestamp", "")],
        [("X-HubSpot-Signature-v3", good)],
        [("X-HubSpot-Request-Timestamp", good_ts)],
        [("X-HubSpot-Signature-v3", good + "="), ("X-HubSpot-Request-Timestamp", good_ts)],
        [("X-HubSpot-Signature-v3", "\xe9" * 44), ("X-HubSpot-Request-Timestamp", good_ts)],
        [("X-HubSpot-Signature-v3", sign_v3("another-secret", "GET", url, b"", good_ts)),
         ("X-HubSpot-Request-Timestamp", good_ts)],
        [("X-HubSpot-Signature-v3", good), ("X-HubSpot-Request-Timestamp", good_ts),
         ("X-HubSpot-Signature-v3", good)],  # twice: joined, so no longer the signature
        [("X-HubSpot-Signature-v3", "A" * 30000), ("X-HubSpot-Request-Timestamp", good_ts)],
    ])


class Try:
    """One crafted try: what to send and what it may be answered."""

    def __init__(self, kind: str, pieces: list[bytes], *, altered: bool = False, range_of: str | None = None,
                 head_request: bool = False) -> None:
        self.kind = kind
        self.pieces = pieces
        self.altered = altered  # a changed link: must never be served
        self.range_of = range_of  # a Range to a genuine link: a 206 must carry the file's bytes
        self.head_request = head_request


def make_try(rng: random.Random, port: int, path: str, token: str) -> Try:
    kind = rng.choice(["range", "token", "method", "header", "flood", "path", "split", "pipelined", "endpoint"])
    if kind == "range":
        spec = junk_range(rng)
        return Try(kind, [request("GET", path, [("Range", spec)])], range_of=spec)
    if kind == "token":
        altered = alter(token, rng)
        method = rng.choice(["GET", "GET", "HEAD"])
        target = "/recordings/" + altered.replace(" ", "%20").replace("\t", "%09")
        headers = [("Range", "bytes=0-99")] if rng.random() < 0.7 else []
        return Try(kind, [request(method, target, headers)], altered=True, head_request=method == "HEAD")
    if kind == "method":
        raw = rng.choice([
            request("FOO", path), request("get", path), request("DELETE", path), request("PUT", path, body=b""),
            request("POST", path, [("Content-Length", "3")], body=b"abc"), request("TRACE", "/"),
            request("CONNECT", "127.0.0.1:443"), request("OPTIONS", "*"), request("PATCH", ENDPOINT + "/call-1"),
            request("GET", path, version="HTTP/9.9"), request("GET", path, version="HTTP/1.1.1"),
            request("GET", path, version="http/1.1"), request("GET", path, version="HTTP/0.9"),
            request("GET", path, version="HTTP/1.0"), request("GET", path, version="HTTP/2.0"),
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", b"GET  " + path.encode() + b"  HTTP/1.1\r\nHost: x\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(64)) + b"\r\n\r\n",  # TLS to a plain port
            b"GET / HTTP/1.1\r\n\r\n", b"GET\r\n\r\n",
        ])
        return Try(kind, [raw], head_request=raw.startswith(b"HEAD"))
    if kind == "header":
        bad = rng.choice([
            [("Range", "bytes=0-1"), ("Range", "bytes=5-6")], [("Host", "a"), ("Host", "b")],
            [("Content-Length", "-1")], [("Content-Length", "9" * 40)],
            [("Content-Length", "1"), ("Transfer-Encoding", "chunked")], [("Expect", "100-continue")],
            [("Upgrade", "websocket"), ("Connection", "Upgrade")], [("Connection", "close, keep-alive")],
            [("If-Range", "\xff" * 10), ("Range", "bytes=0-1")], [("If-Modified-Since", "Tue, 99 Foo 99999 99:99:99")],
            [("If-Unmodified-Since", "0" * 5000)], [("If-None-Match", "W/" * 3000)], [("If-Match", "*, *, " * 1000)],
            [("If-Range", "Sat, 01 Jan 10000 00:00:00 GMT"), ("Range", "bytes=0-1")],
            [("If-Modified-Since", "Mon, 01 Jan 0001 00:00:00 GMT")],
        ])
        raw = request("GET", path, bad)
        if rng.random() < 0.1:  # a body in chunks, one of them bad
            raw = request("GET", path, [("Transfer-Encoding", "chunked")], body=rng.choice([b"0\r\n\r\n",
                          b"zz\r\nx\r\n0\r\n\r\n", b"5\r\nabc\r\n0\r\n\r\n", b"f" * 40 + b"\r\n\r\n"]))
        raw = rng.choice([raw, raw, raw.replace(b"Host: 127.0.0.1", b"Host : x"),
                          raw.replace(b"Host: 127.0.0.1", b"Host: 127.0.0.1\r\n folded"),
                          raw.replace(b"Host: 127.0.0.1", b"Host: a\x00b"), raw.replace(b"Host: 127.0.0.1", b"NoColon"),
                          raw.replace(b"\r\n", b"\n"), raw.replace(b"Host: 127.0.0.1", b"X\x7f: y")])
        return Try(kind, [raw])
    if kind == "flood":
        many = rng.choice([100, 1000, 3000])
        size = rng.choice([1, 10, 40])
        headers = [(f"X-H{i}", "v" * size) for i in range(many)] + [("Range", "bytes=0-9")]
        if rng.random() < 0.3:
            headers = [("X-" + "n" * 40_000, "v")]
        return Try(kind, [request("GET", path, headers)], range_of="bytes=0-9")
    if kind == "path":
        target = rng.choice([
            "/recordings/../catalog.sqlite3", f"/recordings/{token}/../../catalog.sqlite3", "/recordings/..%2F..%2F",
            "//recordings/" + token, "/recordings//" + token, "/Recordings/" + token, "/recordings/%2e%2e/%2e%2e/",
            "/healthz/..", "/healthz?x=" + "a" * 5000, f"{ENDPOINT}/..%2F..%2Fcatalog.sqlite3?externalAccountId=acct&appId=1",
            f"{ENDPOINT}/%00?externalAccountId=acct&appId=1", f"{ENDPOINT}/%ff%fe?externalAccountId=acct&appId=1",
            f"{ENDPOINT}/call-1?externalAccountId=acct&appId=1&appId=2", f"{ENDPOINT}/?externalAccountId=&appId=",
            f"{ENDPOINT}/{'%41' * 3000}?externalAccountId=acct&appId=1", "/" + "a" * 8000, "/%", "/%zz", "*",
            f"http://127.0.0.1/recordings/{token}", "/recordings/" + token + "#frag", "/\x01\x02",
            f"{ENDPOINT}/call-1?externalAccountId=acct&appId=1&" + "&".join(f"k{i}=v" for i in range(3000)),
        ])
        return Try(kind, [request("GET", target)])
    if kind == "split":
        raw = request("GET", path, [("Range", "bytes=100-199")])
        cuts = sorted(rng.sample(range(1, len(raw)), rng.randrange(1, 8)))
        pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
        return Try(kind, pieces, range_of="bytes=100-199")
    if kind == "pipelined":
        batch = [request("GET", path, [("Range", f"bytes={i}-{i + 9}")]) for i in range(rng.randrange(2, 40))]
        batch.insert(rng.randrange(len(batch)), rng.choice([b"GARBAGE\r\n\r\n", request("GET", "/healthz"),
                                                           request("GET", "/recordings/" + alter(token, rng))]))
        return Try(kind, [b"".join(batch)], range_of="bytes=0-9")
    target = f"{ENDPOINT}/{quote('call-1')}?externalAccountId=acct&appId=1"
    return Try(kind, [request("GET", target, bad_signature(rng, port, target))])


def check(t: Try, answer: Answer, data: bytes) -> str | None:
    """What is wrong with ``answer`` to ``t``, or None."""
    if answer.status is None:
        return "no answer in time" + (f" (got {answer.head[:60]!r})" if answer.head else "")
    if answer.status >= 500:
        return f"answered {answer.status}"
    if t.altered and answer.status in (200, 206):
        return f"served an altered link ({answer.status})"
    if answer.status == 206 and t.range_of is not None and not t.head_request:
        content_range = answer.header(b"content-range") or b""
        if content_range.startswith(b"bytes ") and b"multipart" not in (answer.header(b"content-type") or b""):
            span = content_range[6:].split(b"/")[0]
            first, last = (int(x) for x in span.split(b"-"))
            if answer.body[: last - first + 1] != data[first:last + 1]:
                return f"a 206 for {content_range.decode()} carried other bytes"
    return None


def healthy(port: int) -> bool:
    answer = exchange(port, [request("GET", "/healthz")], timeout=2.0)
    return answer.status == 200


def attack(count: int, workdir: Path) -> Result:
    result = Result("crafted_requests")
    rng = random.Random(15)
    with serving(workdir) as (server, stored, watch):
        port = server.port  # type: ignore[attr-defined]
        link = server.make_link(stored.sha256, external_id="call-1")  # type: ignore[attr-defined]
        path = "/" + link.split("/", 3)[3]
        token = path.rsplit("/", 1)[1]
        data = stored.path.read_bytes()  # type: ignore[attr-defined]
        first = exchange(port, [request("GET", path, [("Range", "bytes=0-0")])])  # the link is known: fast paths
        if first.status != 206:
            result.fail(f"the genuine link was not served ({first.status})")
        for i in range(count):
            t = make_try(rng, port, path, token)
            result.tries += 1
            try:
                problem = check(t, exchange(port, t.pieces, head_request=t.head_request), data)
            except OSError as exc:
                problem = f"could not talk to it: {exc}"
            if problem:
                result.fail(f"#{i} {t.kind} {t.pieces[0][:120]!r}: {problem}")
            if watch.bad:
                result.fail(f"#{i} {t.kind} {t.pieces[0][:120]!r}: logged {watch.bad[0]}")
                watch.bad.clear()
        if not healthy(port):
            result.fail("/healthz does not answer after the attack")
        still = exchange(port, [request("GET", path, [("Range", "bytes=10-19")])])
        if still.status != 206 or still.body != data[10:20]:
            result.fail(f"the genuine link is no longer served right ({still.status})")
    return result
