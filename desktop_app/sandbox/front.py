"""The sandbox's HTTP front: a ``ThreadingHTTPServer`` on loopback (HTTP/1.1 keep-alive) that reads each
request, hands it to the sandbox's pipeline (``Sandbox.process``) and writes the ``Outcome``: an answer in
one write (``TCP_NODELAY``), or a dropped connection (a TCP reset, or a stall then a close) when a fault
rule says so. ``close_connections`` ends kept-alive connections when the sandbox stops.
"""

from __future__ import annotations

import http.server
import io
import json
import logging
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any

from desktop_app.sandbox.operation import Outcome

log = logging.getLogger(__name__)

# (method, target, lower-case headers, body) -> the answer
Process = Callable[[str, str, dict[str, str], bytes], Outcome]


class FrontServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], process: Process, stopping: threading.Event) -> None:
        self.process = process  # the sandbox's request pipeline (``Sandbox.process``)
        self.stopping = stopping
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End kept-alive connections, so that no pooled client connection outlives the sandbox."""
        with self.sockets_lock:
            sockets = list(self.open_sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("sandbox: connection from %s ended with an error", client_address, exc_info=True)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "HubSpot-sandbox"
    sys_version = ""
    timeout = 120  # an idle kept-alive connection is closed after this many seconds
    server: FrontServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        log.debug("sandbox %s - " + format, self.address_string(), *args)

    def _dispatch(self) -> None:
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self._read_chunked()
        else:
            body = self.rfile.read(int(length)) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        outcome = self.server.process(self.command, self.path, headers, body)
        if outcome.network == "timeout":
            self.server.stopping.wait(outcome.seconds)
            self._drop(reset=False)
            return
        if outcome.network == "reset":
            self._drop(reset=True)
            return
        data = outcome.raw if outcome.raw is not None else (
            b"" if outcome.payload is None else json.dumps(outcome.payload).encode("utf-8"))
        self.send_response(outcome.status)
        sent = {name.lower() for name, _ in outcome.headers}
        for name, value in outcome.headers:
            self.send_header(name, value)
        if data and "content-type" not in sent:
            self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        body = data if self.command != "HEAD" else b""
        # Headers and body in one write where the stdlib lets us (with TCP_NODELAY set in setup()):
        # separate small writes meet delayed ACKs, 40 ms a request.
        buffer: list[bytes] | None = getattr(self, "_headers_buffer", None)
        if buffer is not None:
            buffer.append(b"\r\n")
            if body:
                buffer.append(body)
            self.flush_headers()
        else:  # pragma: no cover - another Python's http.server
            self.end_headers()
            if body:
                self.wfile.write(body)

    def _read_chunked(self) -> bytes:
        out = bytearray()
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return bytes(out)
            out += self.rfile.read(size)
            self.rfile.readline()

    def _drop(self, *, reset: bool) -> None:
        """End the connection without an answer: a TCP reset, or a plain close after a stall."""
        try:
            if reset:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass
        self.close_connection = True
        self.wfile = io.BytesIO()  # nothing left to flush to the closed socket

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch  # noqa: N815

    def __getattr__(self, name: str) -> Any:
        """Any other method (TRACE, OPTIONS, PROPFIND…) goes through the same path: a HubSpot-shaped JSON
        404 or 405, never the standard library's HTML 501."""
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

