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
import time
from collections.abc import Iterator
from dataclasses import dataclass
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any

from desktop_app import paths

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

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
    for the next flush.

    A log that cannot be written (a full disk, a quota) never raises: the lines are dropped, which is
    said once, ``lost_since`` tells since when, and the first write that succeeds again begins with a
    ``{"kind": "lost", "since", "until", "lines"}`` line, so a reader knows which times the log cannot
    vouch for (``fetched_since`` answers "unknown" for them)."""

    BATCH = 1024

    def __init__(self, path: Path | None = None, *, max_bytes: int = MAX_BYTES) -> None:
        self.path = path or paths.logs_dir() / LOG_NAME
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._fd: int | None = None
        self.lines: list[str] = []  # waiting to be written (the server's C fast path appends here)
        self._torn = False  # a write failed part-way: the file may end inside a line
        self._taken_at = time.time()  # when the lines last written were taken (those lost are newer)
        self._lost_since: float | None = None
        self._lost_until = 0.0
        self._lost_lines = 0
        self._rotate_failed = False
        self._shared: tuple[Any, int] | None = None  # (an array shared by the serving processes, slot)

    @property
    def lost_since(self) -> float | None:
        """Since when lines are lost (the log cannot be written), or None while it can be."""
        return self._lost_since

    def share_loss(self, array: Any, slot: int) -> None:
        """Also keep ``lost_since`` in ``array[slot]`` (0: none lost), where the other serving processes
        see it (``RecordingServer.access_log_lost_since``)."""
        self._shared = (array, slot)
        array[slot] = self._lost_since or 0.0

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
        """access.log becomes access.log.1, unless another process writing this log has just done it:
        the check and the rename hold a lock on the file (``flock``, where there is one), so two
        processes crossing the size at once rotate once, and the second never moves the first's new file."""
        fd = self._fd
        assert fd is not None
        try:
            _lock(fd)
            try:
                if self._current():
                    os.replace(self.path, self.path.with_name(self.path.name + ".1"))
            finally:
                _unlock(fd)
        except FileNotFoundError:
            pass  # rotated by another process meanwhile (where there is no lock)
        except OSError as exc:
            if not self._rotate_failed:
                self._rotate_failed = True
                logger.warning("The access log %s cannot be rotated (%s); it goes on growing", self.path,
                               exc.strerror or exc)
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
            taken_at = time.time()
            pending = self.lines
            lines = pending[: len(pending)]
            del pending[: len(lines)]
            if lines and logger.isEnabledFor(logging.INFO):
                for line in lines:
                    logger.info("%s", line)
            if lines:
                if self._lost_since is not None:  # say first what this log lacks
                    lines.insert(0, encode_line({"kind": "lost", "since": self._lost_since, "until": self._lost_until,
                                                 "lines": self._lost_lines, "time": taken_at,
                                                 "pid": os.getpid()}))
                data = ("\n" if self._torn else "") + "\n".join(lines) + "\n"
                try:
                    self._write(data.encode("utf-8"))
                except OSError as exc:
                    self._lose(len(lines) - (self._lost_since is not None), taken_at, exc)
                    return
                if self._lost_since is not None:
                    logger.warning("The access log %s is written again; %d lines of it were lost (it says so)",
                                   self.path, self._lost_lines)
                    self._set_lost(None)
            self._taken_at = taken_at  # every line taken until now is written
            try:
                if self._fd is not None and not self._current():
                    self._close_fd()
            except OSError:
                pass

    def _write(self, data: bytes) -> None:
        while data:
            fd = self._open()
            # the file's size, not what this writer wrote: the other processes append to it too
            size = os.fstat(fd).st_size
            room = self.max_bytes - size
            # all of it, or up to the end of the line that crosses the size: then rotate
            cut = len(data) if len(data) <= room else data.index(b"\n", max(room, 0)) + 1
            view = memoryview(data)[:cut]
            self._torn = True  # until the cut, whole lines, is written
            while view:
                view = view[os.write(fd, view) :]
            self._torn = False
            if size + cut > self.max_bytes:
                self._rotate()
            data = data[cut:]

    def _lose(self, count: int, taken_at: float, exc: OSError) -> None:
        """``count`` lines taken at ``taken_at`` could not be written."""
        if self._lost_since is None:
            logger.warning("The access log %s cannot be written (%s): its lines are lost until it can be, and "
                           "whether HubSpot fetched a recording meanwhile cannot be told from it", self.path,
                           exc.strerror or exc)
            self._lost_lines = 0
            self._set_lost(self._taken_at)
        self._lost_lines += count
        self._lost_until = taken_at
        try:  # a file that failed may work again once reopened (a new disk, rotated away)
            self._close_fd()
        except OSError:
            self._fd = None

    def _set_lost(self, since: float | None) -> None:
        self._lost_since = since
        if self._shared is not None:
            array, slot = self._shared
            array[slot] = since or 0.0

    def close(self) -> None:
        self.flush()
        with self._lock:
            try:
                self._close_fd()
            except OSError:
                self._fd = None


if fcntl is not None:
    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
else:  # pragma: no cover - Windows: one process serves there
    def _lock(fd: int) -> None:
        pass

    def _unlock(fd: int) -> None:
        pass


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


@dataclass(frozen=True)
class Loss:
    """Lines the log could not hold: ``lines`` lines from between ``since`` and ``until`` were lost."""

    since: float
    until: float
    lines: int


def evidence(external_id: str, *, path: Path | None = None) -> tuple[list[Fetch], list[Loss]]:
    """One reading of the log: the requests about the call ``external_id`` (``fetches_for``) and every
    stretch of time whose lines were lost (when any request may have gone unrecorded)."""
    fetches: list[Fetch] = []
    losses: list[Loss] = []
    for e in read_entries(path):
        kind = e.get("kind")
        if kind == "lost":
            try:
                losses.append(Loss(float(e["since"]), float(e["until"]), int(e.get("lines", 0))))
            except (KeyError, TypeError, ValueError):
                losses.append(Loss(0.0, float("inf"), 0))  # a damaged record of a loss: any time may be affected
            continue
        if e.get("external_id") != external_id or kind not in ("endpoint", "recording"):
            continue
        fetches.append(
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
    return fetches, losses


def fetches_for(external_id: str, *, path: Path | None = None) -> list[Fetch]:
    """The requests about the call ``external_id``: HubSpot asking for its link and reading the file
    through a link issued for it. An empty list means none was recorded (see ``evidence`` for the
    times the log lost lines)."""
    return evidence(external_id, path=path)[0]
