"""The access log: one JSON line per request, tokens redacted, in ``paths.logs_dir()/access.log``.

Each line records what a user (or the sync pipeline) needs to tell what HubSpot really did: time,
client, method, path (with the token cut short), status, the Range asked for, body bytes sent,
duration, whether the request carried HubSpot's signature (``signed``: ``valid``, ``invalid``,
``absent``, ``unchecked``), and which recording (``sha256``) and call (``external_id``) it was about.
``fetches_for(external_id)`` reads it back.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any

from desktop_app import paths

LOG_NAME = "access.log"
MAX_BYTES = 16 * 1024 * 1024  # then access.log becomes access.log.1 (one old file kept)
logger = logging.getLogger("desktop_app.server.access")
_INF = float("inf")
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def encode_line(record: dict[str, Any]) -> str:
    """``record`` as one line of compact JSON (what ``_ENCODER.encode`` gives, a third faster for the
    flat records the server writes: one per request)."""
    parts = []
    for key, value in record.items():
        kind = type(value)
        if kind is str:
            text = encode_basestring(value)
        elif kind is int:
            text = int.__repr__(value)
        elif kind is float:
            text = float.__repr__(value) if value == value and value not in (_INF, -_INF) else _ENCODER.encode(value)
        elif value is None:
            text = "null"
        elif value is True:
            text = "true"
        elif value is False:
            text = "false"
        else:
            text = _ENCODER.encode(value)
        parts.append(f"{encode_basestring(key) if type(key) is str else _ENCODER.encode(str(key))}:{text}")
    return "{" + ",".join(parts) + "}"


@dataclass(frozen=True)
class Fetch:
    """One logged request about a call's recording."""

    time: float
    kind: str  # "endpoint" (HubSpot asked for the link) or "recording" (the file was read)
    method: str
    status: int
    range: str | None
    bytes: int
    duration_ms: float
    signed: str | None
    sha256: str | None
    external_id: str | None
    client: str
    user_agent: str | None


class AccessLog:
    """Appends lines to the access log. Lines wait in memory and are written by ``flush()`` (the server
    calls it every second, and a writer does when ``BATCH`` lines wait), many in one ``write``.

    Several processes may append to one log (the server's workers): the file is opened for appending
    and every write holds whole lines, so lines never mix. ``write_line`` may be called from one thread
    while another flushes: lines are taken off the front of ``lines``, so one appended meanwhile waits
    for the next flush."""

    BATCH = 1024

    def __init__(self, path: Path | None = None, *, max_bytes: int = MAX_BYTES) -> None:
        self.path = path or paths.logs_dir() / LOG_NAME
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._fd: int | None = None
        self.lines: list[str] = []  # waiting to be written (the server's C fast path appends here)

    def write(self, record: dict[str, Any]) -> None:
        self.write_line(encode_line(record))

    def write_line(self, line: str) -> None:
        """Append ``line``: one record, already encoded as compact JSON (no newline)."""
        lines = self.lines
        lines.append(line)
        if len(lines) >= self.BATCH:
            self.flush()

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o600)
        return self._fd

    def _close_fd(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _rotate(self) -> None:
        if self._current():  # not already rotated by another process writing this log
            os.replace(self.path, self.path.with_name(self.path.name + ".1"))
        self._close_fd()

    def _current(self) -> bool:
        """True while the open file is still the one at ``path`` (the server's worker processes append
        to one log; when one of them rotates it, the others move to the new file)."""
        assert self._fd is not None
        try:
            return os.stat(self.path).st_ino == os.fstat(self._fd).st_ino
        except OSError:
            return False

    def flush(self) -> None:
        """Write the waiting lines; then follow a rotation another process made, or make one."""
        with self._lock:
            # taken off the front of the one list, never swapped for another: a line another thread
            # appends meanwhile (the server's, or the C fast path's) stays for the next flush
            pending = self.lines
            lines = pending[: len(pending)]
            del pending[: len(lines)]
            if lines and logger.isEnabledFor(logging.INFO):
                for line in lines:
                    logger.info("%s", line)
            data = ("\n".join(lines) + "\n").encode("utf-8") if lines else b""
            while data:
                fd = self._open()
                # the file's size, not what this writer wrote: the other processes append to it too
                size = os.fstat(fd).st_size
                room = self.max_bytes - size
                # all of it, or up to the end of the line that crosses the size: then rotate
                cut = len(data) if len(data) <= room else data.index(b"\n", max(room, 0)) + 1
                view = memoryview(data)[:cut]
                while view:
                    view = view[os.write(fd, view) :]
                if size + cut > self.max_bytes:
                    self._rotate()
                data = data[cut:]
            if self._fd is not None and not self._current():
                self._close_fd()

    def close(self) -> None:
        self.flush()
        with self._lock:
            self._close_fd()


def read_entries(path: Path | None = None) -> Iterator[dict[str, Any]]:
    """Every parsed line of the access log, oldest first (the rotated file too)."""
    path = path or paths.logs_dir() / LOG_NAME
    for candidate in (path.with_name(path.name + ".1"), path):
        try:
            fh = open(candidate, encoding="utf-8")  # noqa: SIM115
        except FileNotFoundError:
            continue
        with fh:
            for line in fh:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a crash
                if isinstance(entry, dict):
                    yield entry


def fetches_for(external_id: str, *, path: Path | None = None) -> list[Fetch]:
    """The requests about the call ``external_id``: HubSpot asking for its link and reading the file
    through a link issued for it. An empty list means HubSpot never came for it."""
    out: list[Fetch] = []
    for e in read_entries(path):
        if e.get("external_id") != external_id or e.get("kind") not in ("endpoint", "recording"):
            continue
        out.append(
            Fetch(
                time=float(e.get("time", 0)),
                kind=str(e["kind"]),
                method=str(e.get("method", "")),
                status=int(e.get("status", 0)),
                range=e.get("range"),
                bytes=int(e.get("bytes", 0)),
                duration_ms=float(e.get("duration_ms", 0)),
                signed=e.get("signed"),
                sha256=e.get("sha256"),
                external_id=e.get("external_id"),
                client=str(e.get("client", "")),
                user_agent=e.get("user_agent"),
            )
        )
    return out
