"""Helpers for the sandbox tests: WAV files made here, and a small real recording server on loopback
(HubSpot's side of the recording fetch talks to it)."""

from __future__ import annotations

import http.server
import json
import threading
import time
import urllib.parse
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def write_wav(path: Path, *, seconds: float = 2.0, rate: int = 8000, channels: int = 2,
              identical: bool = False) -> Path:
    """A 16-bit PCM WAV: a different tone on each channel (or the same one when ``identical``)."""
    t = np.arange(int(seconds * rate)) / rate
    tones = [np.sin(2 * np.pi * (300 + (0 if identical else 170 * ch)) * t) for ch in range(channels)]
    samples = (np.stack(tones, axis=1) * 12000).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return path


@dataclass
class RecordingServerLog:
    retrieve: list[dict[str, Any]] = field(default_factory=list)  # method, path, query, headers
    files: list[dict[str, Any]] = field(default_factory=list)  # path, range, status


class TinyRecordingServer:
    """Answers ``/retrieve/<externalId>`` with an authenticatedUrl and serves ``/files/<name>`` with
    single-range support (or without it, when ``honour_range`` is False)."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files
        self.log = RecordingServerLog()
        self.honour_range = True
        self.retrieve_status = 200
        self.file_delay_s = 0.0  # how long each /files/ answer waits (to make fetches overlap)
        self.map: dict[str, str] = {}  # externalId -> file name
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_GET(self) -> None:  # noqa: N802
                parts = urllib.parse.urlsplit(self.path)
                if parts.path.startswith("/retrieve/"):
                    ext = urllib.parse.unquote(parts.path[len("/retrieve/"):])
                    owner.log.retrieve.append({"path": parts.path, "query": urllib.parse.parse_qs(parts.query),
                                               "headers": {k.lower(): v for k, v in self.headers.items()},
                                               "target": self.path, "externalId": ext})
                    name = owner.map.get(ext)
                    if owner.retrieve_status != 200 or name is None:
                        self._send(owner.retrieve_status if owner.retrieve_status != 200 else 404, b"{}",
                                   "application/json")
                        return
                    host, port = self.server.server_address[:2]
                    body = json.dumps({"authenticatedUrl": f"http://{host}:{port}/files/{name}"}).encode()
                    self._send(200, body, "application/json")
                    return
                if parts.path.startswith("/files/"):
                    time.sleep(owner.file_delay_s)
                    data = owner.files[parts.path[len("/files/"):]].read_bytes()
                    header = self.headers.get("Range")
                    if header and owner.honour_range:
                        first_s, last_s = header.removeprefix("bytes=").split("-")
                        first = int(first_s)
                        last = min(int(last_s) if last_s else len(data) - 1, len(data) - 1)
                        owner.log.files.append({"range": header, "status": 206})
                        self._send(206, data[first:last + 1], "application/octet-stream",
                                   [("Content-Range", f"bytes {first}-{last}/{len(data)}")])
                    else:
                        owner.log.files.append({"range": header, "status": 200})
                        self._send(200, data, "application/octet-stream")
                    return
                self._send(404, b"", "text/plain")

            def _send(self, status: int, body: bytes, ctype: str, extra: list[tuple[str, str]] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                for k, v in extra or []:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> TinyRecordingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


