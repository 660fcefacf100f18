"""``run/server.json``: how another process (``callrelay upload``, the GUI) finds the recording server
of the same data directory. Written atomically while the server runs, removed when it stops."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from desktop_app import paths

FILE_NAME = "server.json"


def info_path() -> Path:
    return paths.run_dir() / FILE_NAME


def write(info: dict[str, Any], path: Path | None = None) -> None:
    path = path or info_path()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".server-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(info, fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove(instance: str, path: Path | None = None) -> None:
    """Remove the file if it still describes the server ``instance`` (not one started since)."""
    path = path or info_path()
    info = _read_raw(path)
    if info is not None and info.get("instance") == instance:
        path.unlink(missing_ok=True)


def _read_raw(path: Path) -> dict[str, Any] | None:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if os.name != "posix":
        return True  # no cheap check; trust the file (the server removes it when it stops)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read(path: Path | None = None) -> dict[str, Any] | None:
    """The running server's ``pid, host, port, local_url, public_url, started_at, instance``, or None when no
    server of this data directory runs (a file left by a crashed one is ignored)."""
    info = _read_raw(path or info_path())
    if info is None or not isinstance(info.get("pid"), int) or not _alive(info["pid"]):
        return None
    return info
