"""A small HTTP/1.1 server core: a lean event loop (``loop.py``), httptools' parser, ``os.sendfile``.

Why not a framework: see "Recording server" in docs/ARCHITECTURE.md (measured here, aiohttp and
Starlette serve random 64 KiB ranges at a tenth of nginx's rate or less). This core does only what
the recording server needs: keep-alive and pipelining, responses made of byte strings and file
segments (sent zero-copy with ``os.sendfile`` straight from the non-blocking socket, falling back to
read+send where the OS has no sendfile), back-pressure (a connection stops reading while its
response waits on the socket), idle/slow-client time-outs, a connection cap answered with 503, and
one access-log record per response, written when the response ends or the client hangs up.

Everything runs on one event-loop thread; ``handler(conn, request)`` is called there and must
answer synchronously with ``conn.respond(...)``.
"""

from __future__ import annotations

import collections
import logging
import os
import socket
import sys
import time
from collections.abc import Callable
from email.utils import formatdate
from json.encoder import encode_basestring
from typing import Any

import httptools

from desktop_app.server.loop import Loop, Timer

log = logging.getLogger("desktop_app.server")

MAX_HEADER_BYTES = 32 * 1024
MAX_BODY_BYTES = 64 * 1024
RECV_BYTES = 64 * 1024  # a request's head is at most 32 KiB, its body 64 KiB
# Pipelined requests: a connection's requests answered in one turn of the loop; the rest wait unparsed,
# and the connection reads no more, until its next turn once those answers have gone (see _take).
MAX_PIPELINED = 16
# Unparsed input held, over all the connections of one client address: beyond it, the connection that
# would hold more is closed (a client pipelining much more than it reads).
CLIENT_INPUT_BYTES = 1024 * 1024
# A connection whose answer the client has not read for this long may be closed to make room for a
# new one when the server is full (after the idle ones).
STALLED_S = 2.0
LINGER_S = 2.0  # how long a closing connection may take to read the client's end
ACCEPT_DEFER_S = 0.002  # how long a busier worker process leaves a new connection to a less busy one
# The most one sendfile call sends. A client that reads as fast as we send (curl on loopback) never
# fills the socket, and one call would carry a whole 200 MB file while this process's other
# connections wait ~70 ms; the rest goes when the loop next finds the socket writable (nginx's
# sendfile_max_chunk, 2m). Also in _fastserve.c.
SENDFILE_CHUNK = 2 * 1024 * 1024
_HAS_SENDFILE = hasattr(os, "sendfile") and sys.platform != "win32"
_FALLBACK_CHUNK = 256 * 1024
_CLOSE = "Connection: close\r\n"
# the lower-case names of the header fields clients send most, as they send them (decoding and
# lowering each name took a tenth of the Python time of a range request)
_NAMES = {
    spelling.encode("latin-1"): name
    for name in ("host", "range", "if-range", "user-agent", "accept", "accept-encoding", "accept-language",
                 "connection", "referer", "origin", "cookie", "cache-control", "pragma", "if-none-match",
                 "if-modified-since", "if-match", "if-unmodified-since", "content-length", "content-type",
                 "sec-fetch-site", "sec-fetch-mode", "sec-fetch-dest", "x-hubspot-signature-v3",
                 "x-hubspot-request-timestamp", "icy-metadata")
    for spelling in (name, "-".join(w.capitalize() for w in name.split("-")), name.upper())
}
_REASONS = {
    200: "OK", 204: "No Content", 206: "Partial Content", 304: "Not Modified", 400: "Bad Request",
    401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    408: "Request Timeout", 412: "Precondition Failed", 413: "Content Too Large",
    416: "Range Not Satisfiable", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 503: "Service Unavailable",
}


class Request:
    """One parsed request. ``headers`` has lower-case names; repeated fields joined with ", "."""

    __slots__ = ("method", "target", "path", "query", "headers", "body", "keep_alive", "client", "received")

    def __init__(self, method: str, target: str, headers: dict[str, str], body: bytes, keep_alive: bool,
                 client: str, received: float) -> None:
        self.method = method
        self.target = target  # the request-target as sent (path and query, still percent-encoded)
        path, _, query = target.partition("?")
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive
        self.client = client
        self.received = received  # time.monotonic() when its bytes arrived


class FileSegment:
    """Bytes ``offset .. offset+count`` of an open file (the file stays open: whoever opened it closes it,
    e.g. from the response's ``on_end``)."""

    __slots__ = ("fd", "offset", "count", "end")

    def __init__(self, fd: int, offset: int, count: int) -> None:
        self.fd = fd
        self.offset = offset
        self.count = count
        self.end: End | None = None  # the response it belongs to (set when queued)


class End:
    """Marks where one response ends in a connection's output queue; once it has ended, what the
    access log needs of it goes to ``log_request(end)``: the handler's ``record`` (whatever it passed,
    e.g. a dict of fields), status, method, client, body bytes sent, when the request arrived
    (``started``, monotonic) and whether the client went before the end (``aborted``)."""

    __slots__ = ("record", "on_end", "close", "started", "body_bytes", "status", "method", "client", "aborted")

    def __init__(self, record: Any, on_end: Callable[[], None] | None, close: bool, started: float, method: str,
                 client: str, status: int) -> None:
        self.record = record
        self.on_end = on_end
        self.close = close
        self.started = started
        self.method = method
        self.client = client
        self.status = status
        self.body_bytes = 0
        self.aborted = False


def _reason(status: int) -> str:
    return _REASONS.get(status, "Unknown")


def _status_line(status: int) -> str:
    return f"HTTP/1.1 {status} {_reason(status)}\r\n"


_STATUS_LINES = {status: _status_line(status) for status in _REASONS}


class Peer:
    """One client address: its connections and the unparsed input they hold."""

    __slots__ = ("count", "held")

    def __init__(self) -> None:
        self.count = 0
        self.held = 0


class Connection:
    """One client connection: parses requests, queues responses, sends them."""

    def __init__(self, server: HttpServer, sock: socket.socket, client: str, over_cap: bool, peer: Peer) -> None:
        self.server = server
        self.sock = sock
        self.fd = sock.fileno()
        self.client = client
        self.peer = peer
        self.client_json = encode_basestring(client)  # as the access log writes it
        self.over_cap = over_cap
        self.parser = httptools.HttpRequestParser(self)
        self.out: collections.deque[Any] = collections.deque()
        self.inbuf = b""  # received, not parsed yet: pipelined requests waiting for their turn (see _take)
        self._resuming = False
        self.reading = False
        self.writing = False
        self.closing = False  # response sent with Connection: close; waiting for the client's end
        self.closed = False
        self.peer_closed = False
        self.closing_since = 0.0
        self.last_activity = time.monotonic()
        self.request_started: float | None = None
        self._in_message = False  # the parser holds part of a request
        self._reset_request()

    # -- parser callbacks (httptools) -----------------------------------------------------------
    def _reset_request(self) -> None:
        self._url = b""
        self._headers: dict[str, str] = {}
        self._body = b""
        self._header_bytes = 0

    def on_message_begin(self) -> None:
        self._in_message = True
        self._reset_request()
        self.request_started = self.last_activity  # the time its first bytes arrived

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._header_bytes += len(url)
        if self._header_bytes > MAX_HEADER_BYTES:
            raise _TooLarge(431)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value)
        if self._header_bytes > MAX_HEADER_BYTES:
            raise _TooLarge(431)
        key = _NAMES.get(name) or name.decode("latin-1").lower()
        text = value.decode("latin-1").strip()
        old = self._headers.get(key)
        self._headers[key] = text if old is None else f"{old}, {text}"

    def on_body(self, body: bytes) -> None:
        self._body += body
        if len(self._body) > MAX_BODY_BYTES:
            raise _TooLarge(413)

    def on_message_complete(self) -> None:
        self._in_message = False
        started = self.request_started or self.last_activity
        self.request_started = None
        method = self.parser.get_method()
        keep_alive = self.parser.should_keep_alive()
        request = Request(method.decode("latin-1"), self._url.decode("latin-1"), self._headers, self._body,
                          keep_alive, self.client, started)
        if self.closing:
            return  # a pipelined request after one that closes the connection: not answered
        if self.over_cap:
            self.respond(request, 503, [("Retry-After", "1")], b"Too many connections\n",
                         record={"kind": "other"}, close=True)
            return
        try:
            self.server.handler(self, request)
        except Exception:  # a bug: answer 500, keep serving others
            log.exception("Error while answering %s %s", request.method, request.path)
            self.respond(request, 500, [], b"Internal error\n", record={"kind": "other"}, close=True)

    # -- responses ------------------------------------------------------------------------------
    def respond(
        self,
        request: Request,
        status: int,
        headers: list[tuple[str, str]] | str,
        body: bytes | list[bytes | FileSegment] = b"",
        *,
        record: Any,
        on_end: Callable[[], None] | None = None,
        close: bool = False,
    ) -> None:
        """Queue a response (``record`` goes to the access log with it, see ``End``). ``headers`` are (name, value) pairs or a block already rendered as
        "Name: value\r\n" lines. ``body`` is bytes or a list of bytes and file segments; ``on_end`` is
        called once the response has ended, sent or not (to release the file the segments read). A
        HEAD answer gets the head only, with the Content-Length of the body."""
        parts = [body] if isinstance(body, bytes) else body
        close = close or not request.keep_alive or self.closing
        if isinstance(headers, str):
            extra = headers
        else:
            extra = "".join(f"{name}: {value}\r\n" for name, value in headers)
        length = None if status == 304 or status == 204 else sum(
            len(p) if isinstance(p, bytes) else p.count for p in parts)
        head = self.head(status, extra, length, close)
        end = End(record, on_end, close, request.received, request.method, request.client, status)
        out = self.out
        out.append((head, None))
        if request.method != "HEAD":
            for p in parts:
                if isinstance(p, bytes):
                    if p:
                        out.append((p, end))
                elif p.count:
                    p.end = end
                    out.append(p)
        out.append(end)
        if close:
            self.closing = True

    def respond_file(self, request: Request, status: int, headers: str, fd: int, offset: int, count: int, *,
                     record: Any, on_end: Callable[[], None] | None = None) -> None:
        """``respond(request, status, headers, [FileSegment(fd, offset, count)], ...)``, the answer that
        nearly every request gets (one range, or the whole file), sent at once when nothing waits before
        it on this connection: the head with ``send``, the body with ``os.sendfile``. Whatever the socket
        doesn't take at once waits in the output queue like any other answer's (as do errors: the queue's
        sending meets them again and closes the connection)."""
        if self.out or self.closing or not request.keep_alive or request.method != "GET":
            self.respond(request, status, headers, [FileSegment(fd, offset, count)], record=record, on_end=on_end)
            return
        end = End(record, on_end, False, request.received, request.method, request.client, status)
        sent = self.send_file_now(self.head(status, headers, count), fd, offset, count)
        if sent < 0:
            end.body_bytes = count
            self._finish(end, aborted=False)
        else:
            self.end_queued(end, sent)

    def head(self, status: int, headers: str, length: int | None, close: bool = False) -> bytes:
        """The head of an answer: ``headers`` are rendered lines; no Content-Length when ``length`` is
        None (204, 304); ``Connection: close`` when it closes."""
        server = self.server
        content_length = "" if length is None else f"Content-Length: {length}\r\n"
        return (f"{_STATUS_LINES.get(status) or _status_line(status)}Date: {server.date()}\r\n"
                f"Server: {server.server_name}\r\n{headers}{content_length}"
                f"{_CLOSE if close else ''}\r\n").encode("latin-1")

    def send_file_now(self, head: bytes, fd: int, offset: int, count: int) -> int:
        """Send ``head`` (from ``head()``) and bytes ``offset .. offset+count`` of ``fd`` now; only while
        nothing waits in the output queue and the connection stays open (see ``respond_file``). Returns
        -1 when all of it went; else the body bytes sent, the rest waits in the output queue and the
        caller ends the answer there with ``end_queued``."""
        sent = 0
        rest: bytes | memoryview = head
        if _HAS_SENDFILE:  # else all of it goes through the queue (read + send)
            try:
                sent = self.sock.send(head)
            except OSError:
                pass
            if sent == len(head):
                rest = b""
                body = 0
                if count:
                    try:
                        body = os.sendfile(self.fd, fd, offset, min(count, SENDFILE_CHUNK))
                    except OSError:
                        pass
                if body == count:
                    return -1
                offset += body
                count -= body
                sent = body
            elif sent:
                rest = memoryview(head)[sent:]
                sent = 0
        self.queue_rest(rest, fd, offset, count)
        return sent

    def queue_rest(self, head: bytes | memoryview, fd: int, offset: int, count: int) -> None:
        """Queue what ``send_file_now`` (or the C fast path) could not send at once."""
        if head:
            self.out.append((head, None))
        if count:
            self.out.append(FileSegment(fd, offset, count))

    def end_queued(self, end: End, body_sent: int) -> None:
        """End the answer ``send_file_now`` left in the queue (``body_sent``: what it returned)."""
        end.body_bytes = body_sent
        out = self.out
        if out and type(out[-1]) is FileSegment:
            out[-1].end = end
        out.append(end)

    # -- I/O ------------------------------------------------------------------------------------
    def start(self) -> None:
        self._want_read(True)

    def _want_read(self, on: bool) -> None:
        if on and not self.reading:
            self.server.loop.add_reader(self.fd, self._on_readable)
            self.reading = True
        elif not on and self.reading:
            self.server.loop.remove_reader(self.fd)
            self.reading = False

    def _want_write(self, on: bool) -> None:
        if on and not self.writing:
            self.server.loop.add_writer(self.fd, self._on_writable)
            self.writing = True
        elif not on and self.writing:
            self.server.loop.remove_writer(self.fd)
            self.writing = False

    def _on_readable(self) -> None:
        if self.out and not self.closing:
            # back-pressure: a new request while an answer still waits on the socket stays in the
            # kernel's buffer until that answer is sent
            self._want_read(False)
            return
        try:
            data = self.sock.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.abort("reset")
            return
        if not data:
            if self.out:
                self._want_read(False)  # half-closed: finish the answers, then close
                self.closing = self.peer_closed = True
            else:
                self.abort("eof")
            return
        if self.closing:
            return  # draining the client's side before closing (not activity: the answers must move)
        self.last_activity = time.monotonic()
        self._take(data)

    def _take(self, data: bytes) -> None:
        """Answer the requests in ``data`` (just received, or held in ``inbuf``): at most
        ``MAX_PIPELINED`` of them now. The rest is held unparsed, and the socket not read, until this
        connection's next turn of the loop once its answers have gone (a client that sends requests
        without reading the answers waits for itself): each connection gets its share of the loop in
        turn, and what one costs stays bounded however much it sends. Pipelined requests are parsed a
        head at a time (up to each blank line) to count them."""
        fast_raw = self.server.fast_raw
        if fast_raw is not None and not self.out and not self.over_cap and not self._in_message:
            done = fast_raw(self, data)  # at most MAX_PIPELINED answers
            if done:
                if done < len(data):
                    self._hold(data[done:])
                if self.out or not self.reading:
                    self._flush()
                return
        size = len(data)
        start = 0
        parser = self.parser
        parsed = 0
        while start < size:
            if parsed == MAX_PIPELINED:
                self._hold(data[start:])
                break
            end = data.find(b"\r\n\r\n", start)
            stop = size if end < 0 else end + 4
            try:
                # nearly always all of it: one request
                parser.feed_data(data if stop == size and not start else memoryview(data)[start:stop])
            except httptools.HttpParserUpgrade:
                self._reject(400)
            except httptools.HttpParserError as exc:  # a callback's exception arrives as the context
                self._reject(exc.__context__.status if isinstance(exc.__context__, _TooLarge) else 400)
            parsed += 1
            start = stop
            if self.closing:
                break  # nothing after an answer that closes the connection is read
        if self.out or self.writing or not self.reading:  # else there is nothing for _flush to do
            self._flush()

    def _hold(self, rest: bytes) -> None:
        """Keep ``rest`` unparsed for this connection's next turn (see ``_take``), reading no more
        meanwhile; a client holding more than ``CLIENT_INPUT_BYTES`` so loses the connection."""
        peer = self.peer
        if peer.held + len(rest) > CLIENT_INPUT_BYTES:
            log.info("connection from %s closed: it sends requests much faster than it reads the answers",
                     self.client)
            self.abort("too much pipelined input")
            return
        peer.held += len(rest)
        self.inbuf = rest
        self._want_read(False)

    def _resume(self) -> None:
        """This connection's next turn: the requests held back."""
        self._resuming = False
        if self.closed or self.closing or self.out or not self.inbuf:
            return
        held = self.inbuf
        self._drop_held()
        self._take(held)

    def _drop_held(self) -> None:
        if self.inbuf:
            self.peer.held -= len(self.inbuf)
            self.inbuf = b""

    def _reject(self, status: int) -> None:
        req = Request("?", "", {}, b"", False, self.client, time.monotonic())
        self.respond(req, status, [], f"{_reason(status)}\n".encode(), record={"kind": "other"}, close=True)

    def _on_writable(self) -> None:
        self._flush()

    def _flush(self) -> None:  # noqa: C901 — the hot send loop: one pass, no call per queued item
        out = self.out
        sock = self.sock
        while out:
            item = out[0]
            kind = type(item)
            if kind is tuple:
                data, end = item
                try:
                    n = sock.send(data)  # no MSG_MORE: measured, it made the sendfile after it 3x slower
                except (BlockingIOError, InterruptedError):
                    n = 0
                except OSError:
                    self.abort("reset")
                    return
                if n:
                    self.last_activity = time.monotonic()
                    if end is not None:
                        end.body_bytes += n
                if n < len(data):
                    out[0] = (memoryview(data)[n:], end)
                    self._want_write(True)
                    return
                out.popleft()
            elif kind is FileSegment:
                try:
                    if _HAS_SENDFILE:
                        n = os.sendfile(self.fd, item.fd, item.offset, min(item.count, SENDFILE_CHUNK))
                    else:
                        n = self._send_file_copy(item)
                    if n == 0:  # end of file before the segment's end: the file shrank
                        log.error("A file being served is shorter than when it was opened")
                        self.abort("file shrank")
                        return
                except (BlockingIOError, InterruptedError):
                    n = 0
                except OSError:
                    self.abort("reset")
                    return
                if n:
                    self.last_activity = time.monotonic()
                    item.end.body_bytes += n
                    item.offset += n
                    item.count -= n
                if item.count > 0:
                    self._want_write(True)
                    return
                out.popleft()
            else:  # End
                out.popleft()
                self._finish(item, aborted=False)
                if item.close:
                    self._close_gracefully()
                    return
        if self.writing:
            self._want_write(False)
        if self.peer_closed:
            self.abort("eof")
        elif not self.reading and not self.closed and not self.closing:
            if not self.inbuf:
                self._want_read(True)
            elif not self._resuming:  # the requests held back, at the loop's next turn
                self._resuming = True
                self.server.loop.call_soon(self._resume)

    def _send_file_copy(self, seg: FileSegment) -> int:
        """read+send, where the OS has no sendfile."""
        os.lseek(seg.fd, seg.offset, os.SEEK_SET)
        chunk = os.read(seg.fd, min(seg.count, _FALLBACK_CHUNK))
        return self.sock.send(chunk) if chunk else 0

    def _finish(self, end: End, *, aborted: bool) -> None:
        if end.on_end is not None:
            try:
                end.on_end()
            except Exception:
                log.exception("Error after a response ended")
        end.aborted = aborted
        self.server.log_request(end)

    def _close_gracefully(self) -> None:
        """Send FIN, read what the client still sends, close on its end or after LINGER_S."""
        self._want_write(False)
        self.closing = True
        self.closing_since = time.monotonic()
        self._drop_held()
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.abort("reset")
            return
        self._want_read(True)

    def abort(self, why: str) -> None:
        """Close now; responses still queued are logged as aborted (a client hanging up mid-body,
        as Chromium does on every seek, is normal)."""
        if self.closed:
            return
        self.closed = True
        self._want_read(False)
        self._want_write(False)
        for item in self.out:
            if type(item) is End:
                self._finish(item, aborted=True)
        self.out.clear()
        self._drop_held()
        self.server.forget(self)
        try:
            self.sock.close()
        except OSError:
            pass
        log.debug("connection from %s closed (%s)", self.client, why)

    def spare(self, now: float) -> tuple[int, float] | None:
        """How readily this connection may be closed to make room for a new one (the smaller, the
        sooner), or None while it is busy (an answer going out, read by its client): one closing
        anyway, then an idle one (the oldest first), then one whose request is still arriving, then one
        whose client has not read its answer for ``STALLED_S``."""
        if self.closing and not self.out:
            return (0, self.closing_since)
        if not self.out and not self.inbuf:
            return (1, self.last_activity) if self.request_started is None else (2, self.request_started)
        if now - self.last_activity > STALLED_S:
            return (3, self.last_activity)
        return None

    def sweep(self, now: float, idle_timeout: float) -> None:
        if self.closing and not self.out and now - self.closing_since > LINGER_S:
            self.abort("closed")
        elif now - self.last_activity > idle_timeout:
            self.abort("idle")
        elif self.request_started is not None and now - self.request_started > idle_timeout:
            self.abort("slow request")


class _TooLarge(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def default_per_client(max_connections: int) -> int:
    """All but a quarter of the cap (at least one connection is kept for the other clients)."""
    return max(1, max_connections - max(1, max_connections // 4))


class HttpServer:
    """The listening socket and its connections, on one event loop (``loop.Loop``)."""

    def __init__(
        self,
        handler: Callable[[Connection, Request], None],
        log_request: Callable[[End], None],
        *,
        max_connections: int,
        idle_timeout_s: float,
        server_name: str,
        max_per_client: int,
    ) -> None:
        self.handler = handler
        self.log_request = log_request
        self.max_connections = max_connections
        # one client address may hold this many (see default_per_client: room is kept for the others); a
        # new one beyond it closes that client's own most spare connection
        self.max_per_client = max_per_client
        self.peers: dict[str, Peer] = {}
        self.idle_timeout_s = idle_timeout_s
        self.server_name = server_name
        self.loop = Loop()
        self.conns: set[Connection] = set()
        self.listener: socket.socket | None = None
        self._date_at = 0
        self._date = ""
        self._sweeper: Timer | None = None
        self.on_tick: Callable[[], None] | None = None
        # Answers complete requests at the start of what a connection received, before the parser
        # sees them, and says how many bytes it answered: fast_raw(conn, data), see
        # RecordingServer._fast_raw (the C fast path). Only called at a request's boundary.
        self.fast_raw: Callable[[Connection, bytes], int] | None = None
        # Worker processes: each writes its number of connections into its slot of a shared array,
        # and the cap is for the sum. balance: they share one listening socket (else each has its
        # own, fed by the kernel), and a busier one leaves new connections to the least busy.
        self.counts: Any = None
        self.slot = 0
        self.balance = False
        self._deferred = False

    def active(self) -> int:
        """Connections open now, over every process sharing the listening socket."""
        return sum(self.counts) if self.counts is not None else len(self.conns)

    def _count(self) -> None:
        if self.counts is not None:
            self.counts[self.slot] = len(self.conns)

    def date(self) -> str:
        now = int(time.time())
        if now != self._date_at:
            self._date_at = now
            self._date = formatdate(now, usegmt=True)
        return self._date

    def bind(self, host: str, port: int) -> tuple[str, int]:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            if os.name == "posix":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(1024)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self.listener = sock
        addr = sock.getsockname()
        return str(addr[0]), int(addr[1])

    def start_serving(self) -> None:
        assert self.listener is not None
        self.loop.add_reader(self.listener.fileno(), self._on_accept)
        self._schedule_sweep()

    def _on_accept(self) -> None:
        assert self.listener is not None
        # On a socket of our own, take every waiting connection. Sharing it with other processes (all
        # are woken), take one per wake-up, and none while holding more than the least busy process:
        # that one takes it. Only for a moment (ACCEPT_DEFER_S), so a stuck process can't keep them waiting.
        if self.balance and len(self.conns) > min(self.counts) and not self._deferred:
            self._deferred = True
            self.loop.remove_reader(self.listener.fileno())
            self.loop.call_later(ACCEPT_DEFER_S, self._resume_accept)
            return
        self._deferred = False
        for _ in range(1 if self.balance else 64):
            try:
                sock, addr = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of file descriptors: pause accepting a moment
                log.warning("accept failed: %s", exc)
                self.loop.remove_reader(self.listener.fileno())
                self.loop.call_later(0.1, self._resume_accept)
                return
            client = str(addr[0])
            peer = self.peers.get(client)
            if peer is None:
                peer = self.peers[client] = Peer()
            now = time.monotonic()
            # full: the most spare connection (the client's own first) makes room; none: 503
            over_cap = peer.count >= self.max_per_client and not self._make_room(now, client)
            if self.active() >= self.max_connections and not self._make_room(now):
                if self.active() >= self.max_connections + 64:
                    if not peer.count and self.peers.get(client) is peer:
                        del self.peers[client]
                    sock.close()  # far beyond the cap: not even a 503
                    continue
                over_cap = True
            sock.setblocking(False)
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
            conn = Connection(self, sock, client, over_cap, peer)
            self.peers[client] = peer  # again: making room may have closed its last connection
            peer.count += 1
            self.conns.add(conn)
            self._count()
            conn.start()

    def _make_room(self, now: float, client: str | None = None) -> bool:
        """Close the connection that can best go (``Connection.spare``), of ``client`` only when given;
        among clients, one of the client holding the most. False when every one is busy."""
        best: Connection | None = None
        best_key: tuple[int, int, float] | None = None
        for conn in self.conns:
            if client is not None and conn.client != client:
                continue
            spare = conn.spare(now)
            if spare is None:
                continue
            key = (spare[0], -conn.peer.count, spare[1])
            if best_key is None or key < best_key:
                best, best_key = conn, key
        if best is None:
            return False
        log.debug("connection from %s closed to make room for a new one", best.client)
        best.abort("making room")
        return True

    def _resume_accept(self) -> None:
        if self.listener is not None:
            self.loop.add_reader(self.listener.fileno(), self._on_accept)  # _deferred stays set: accepts once

    def forget(self, conn: Connection) -> None:
        if conn in self.conns:
            self.conns.discard(conn)
            peer = conn.peer
            peer.count -= 1
            if peer.count <= 0 and self.peers.get(conn.client) is peer:
                del self.peers[conn.client]
        self._count()

    def _schedule_sweep(self) -> None:
        interval = min(1.0, self.idle_timeout_s / 4)
        self._sweeper = self.loop.call_later(interval, self._sweep)

    def _sweep(self) -> None:
        now = time.monotonic()
        for conn in list(self.conns):
            conn.sweep(now, self.idle_timeout_s)
        if self.on_tick is not None:
            self.on_tick()
        self._schedule_sweep()

    def close(self) -> None:
        """Stop accepting and close every connection (called on the loop's thread; the listening
        socket itself is closed by its owner once every worker has stopped)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self.listener is not None:
            self.loop.remove_reader(self.listener.fileno())
            self.listener = None
        for conn in list(self.conns):
            conn.abort("server stopping")
