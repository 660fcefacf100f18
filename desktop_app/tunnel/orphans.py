"""Children of an app that was killed (SIGKILL, a crash, power loss of the session) outlive it: the
``atexit`` hook never ran. Each child is noted in ``run/tunnel-children.json`` with its owner; the
next app to start a tunnel stops the ones whose owner is gone. Linux only (process start times from
/proc guard against a reused process id); elsewhere this does nothing.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from desktop_app import paths

log = logging.getLogger(__name__)

REGISTRY = "tunnel-children.json"
_PROC = Path("/proc")


def supported() -> bool:
    return (_PROC / "self" / "stat").exists() and hasattr(os, "killpg")


def start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot), or None when there is no such process."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return None
    return fields[19]


@contextlib.contextmanager
def _locked() -> Iterator[Path]:
    import fcntl

    path = paths.run_dir() / REGISTRY
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield path
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _load(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [e for e in data if isinstance(e, dict)] if isinstance(data, list) else []


def _save(path: Path, entries: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entries), encoding="utf-8")
    os.replace(tmp, path)


def remember(pid: int, program: str) -> None:
    if not supported():
        return
    entry = {"pid": pid, "start": start_time(pid), "program": program,
             "owner": os.getpid(), "owner_start": start_time(os.getpid())}
    with _locked() as path:
        _save(path, [*_load(path), entry])


def forget(pid: int) -> None:
    if not supported():
        return
    with _locked() as path:
        entries = _load(path)
        kept = [e for e in entries if e.get("pid") != pid or e.get("owner") != os.getpid()]
        if kept != entries:
            _save(path, kept)


def _stop_group(pid: int, started: str) -> None:
    for sig, wait in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 2.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if start_time(pid) != started:
                return
            time.sleep(0.05)


def reap_orphans() -> list[int]:
    """Stop the children noted by owners that are gone; return their process ids."""
    if not supported():
        return []
    stopped: list[int] = []
    with _locked() as path:
        kept: list[dict[str, Any]] = []
        for entry in _load(path):
            pid, started = entry.get("pid"), entry.get("start")
            if not isinstance(pid, int) or started is None or start_time(pid) != started:
                continue  # gone already (or the id now names another process)
            owner = entry.get("owner")
            if isinstance(owner, int) and start_time(owner) == entry.get("owner_start"):
                kept.append(entry)  # its app is still running (the GUI and `serve` may both run)
                continue
            log.warning("stopping %s (pid %d) left behind by an app that ended without stopping it",
                        entry.get("program"), pid)
            _stop_group(pid, started)
            stopped.append(pid)
        _save(path, kept)
    return stopped
