"""Support for the HubSpot client's tests: a scripted stand-in for HubSpot on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# Requests a test makes in place of the user's browser (the OAuth pages); the contract check skips them.
BROWSER_AGENT = "Mozilla/5.0 (test browser)"


@dataclass
class Answer:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    action: str = "respond"  # respond | reset | stall (read the request, say nothing)
    delay: float = 0.0


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Scripted:
    """A real HTTP server on 127.0.0.1 that answers from a script, for exact error cases."""

    def __init__(self) -> None:
        self.script: list[Answer] = []
        self.received: list[Received] = []
        self.default = Answer(200, {})
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with outer._lock:
                    outer.received.append(Received(self.command, self.path, dict(self.headers), body))
                    answer = outer.script.pop(0) if outer.script else outer.default
                if answer.delay:
                    time.sleep(answer.delay)
                if answer.action == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                    return
                if answer.action == "stall":
                    time.sleep(2.0)
                    self.close_connection = True
                    return
                payload = b"" if answer.body is None else (
                    answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode())
                self.send_response(answer.status)
                for k, v in answer.headers.items():
                    self.send_header(k, v)
                if payload:
                    self.send_header("Content-Type", "application/json;charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def add(self, *answers: Answer) -> None:
        with self._lock:
            self.script.extend(answers)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def hubspot_error(category: str, message: str, **extra: Any) -> dict[str, Any]:
    """A HubSpot ``Error`` body."""
    return {"status": "error", "category": category, "message": message,
            "correlationId": "aeb5f871-7f07-4993-9211-075dc63e7cbf", **extra}
