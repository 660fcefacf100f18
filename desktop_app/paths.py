"""Every location on disk comes from here.

One switch, ``CALLRELAY_HOME``, moves them all (tests and scripts use it to isolate themselves);
otherwise the platform's user data directory (platformdirs) is used.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs

from desktop_app.errors import UserError

ENV_HOME = "CALLRELAY_HOME"


class DataDirError(UserError):
    """The data directory, or a folder in it, cannot be made (the message names it and says what to do)."""


def _make(path: Path, what: str, fix: str) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        reason = "is a file, not a folder"
    except OSError as exc:
        reason = f"cannot be created ({exc.strerror or exc})"
    else:
        return path
    raise DataDirError(f"The {what} {path} {reason}: {fix}.")


def data_dir() -> Path:
    """The one directory that holds all of the app's state; created on first use."""
    home = os.environ.get(ENV_HOME)
    path = Path(home).expanduser() if home else Path(platformdirs.user_data_dir("callrelay", appauthor=False))
    return _make(path, "data directory", f"set {ENV_HOME} to a folder you can write")


def is_isolated() -> bool:
    """True when ``CALLRELAY_HOME`` moved the data directory away from the platform default."""
    return bool(os.environ.get(ENV_HOME))


def _sub(name: str) -> Path:
    return _make(data_dir() / name, "folder", "make it a folder you can write")


def settings_file() -> Path:
    return data_dir() / "settings.json"


def recordings_dir() -> Path:
    """The recording store: files named by content hash, read-only."""
    return _sub("recordings")


def fixes_dir() -> Path:
    """Where inspection fixes (swapped, merged, converted files) are written."""
    return _sub("fixed")


def drafts_file() -> Path:
    """The Upload page's queue and the unsent call details typed for it (kept across restarts)."""
    return data_dir() / "drafts.json"


def history_db() -> Path:
    return data_dir() / "history.sqlite3"


def logs_dir() -> Path:
    return _sub("logs")


def run_dir() -> Path:
    """Files describing running processes (the recording server's address, its public URL)."""
    return _sub("run")


def sandbox_dir() -> Path:
    return _sub("sandbox")


def resources_dir() -> Path:
    """The app's bundled files (sample recordings, icons): ``resources/`` inside a PyInstaller bundle
    (``sys._MEIPASS``), else the source tree's."""
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"
