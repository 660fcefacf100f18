"""Support for the HubSpot client's tests: the contract check of one request, and a scripted stand-in
for HubSpot on 127.0.0.1."""

from __future__ import annotations

import functools
import json
import socket
import struct
import threading
import time
import urllib.parse
import warnings
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from desktop_app import USER_AGENT, openapi


@dataclass(frozen=True)
class Sent:
    """A request as it left the client (after auth was added)."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None


@functools.cache
def _openapi_core_specs() -> list[Any]:
    """HubSpot's descriptions (the trimmed copy) loaded by openapi-core: a second validator, written by
    others, so that the project's own checker (which the sandbox uses too) is not the only judge."""
    from openapi_core import Config, OpenAPI

    folder = openapi.SPEC_DIR
    return [OpenAPI.from_dict(json.loads(f.read_text()), config=Config(spec_validator_cls=None))
            for f in sorted(folder.glob("*.json")) if f.name != "SOURCE.json"]


def openapi_core_problems(sent: Sent) -> list[str]:
    """What openapi-core finds wrong with ``sent`` (path, method, parameters, body, security)."""
    from openapi_core.contrib.requests import RequestsOpenAPIRequest
    from openapi_core.templating.paths.exceptions import PathNotFound

    parts = urllib.parse.urlsplit(sent.url)
    url = urllib.parse.urlunsplit(("https", "api.hubapi.com", parts.path, parts.query, ""))
    prepared = requests.Request(sent.method, url, headers=sent.headers, data=sent.body).prepare()
    for described in _openapi_core_specs():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Unsupported scheme type" (oauth2) is not checked
            try:
                described.validate_request(RequestsOpenAPIRequest(prepared))
            except PathNotFound:
                continue
            except Exception as exc:  # noqa: BLE001 - every validation failure is a contract problem
                return [f"openapi-core: {type(exc).__name__}: {exc}"]
        return []
    return [f"openapi-core: {sent.method} {parts.path} is in none of HubSpot's descriptions"]


def contract_problems(sent: Sent) -> tuple[str | None, list[str]]:
    """(operationId, problems) of one sent request, judged by HubSpot's descriptions alone."""
    parts = urllib.parse.urlsplit(sent.url)
    check = openapi.check_request(sent.method, parts.path, parts.query, sent.headers.get("Content-Type"),
                               sent.body, as_written=True)  # the client sends what the description asks for
    if check.operation is None:
        return None, [f"{sent.method} {parts.path} is no operation HubSpot describes "
                      f"(methods there: {check.allowed_methods or 'none'})"]
    problems = [p.message for p in check.problems] + openapi_core_problems(sent)
    op = check.operation
    query = urllib.parse.parse_qs(parts.query)
    bearer = sent.headers.get("Authorization", "")
    if sent.headers.get("User-Agent") != USER_AGENT:
        problems.append(f"User-Agent is {sent.headers.get('User-Agent')!r}, not {USER_AGENT!r}")
    security = op.security
    if not security:  # the operation takes no auth (the token endpoint): none may be sent
        if bearer or "hapikey" in query:
            problems.append("credentials sent to an operation that takes none")
    else:
        developer_ok = "/extensions/calling/" in op.path and "/settings" in op.path
        if "hapikey" in query:
            if not developer_ok:
                problems.append("the developer API key was sent to an operation that does not take it")
            if bearer:
                problems.append("both a developer API key and a bearer token were sent")
        elif not any(scheme != "developer_hapikey" for alt in security for scheme in alt):
            problems.append("a bearer token sent to an operation that takes only the developer API key")
        elif not (bearer.startswith("Bearer ") and len(bearer) > len("Bearer ")):
            problems.append("no bearer token sent to an operation that needs one")
    return op.operation_id, problems


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
