"""Every location on disk comes from here.

One switch, ``CALLRELAY_HOME``, moves them all (tests and scripts use it to isolate themselves);
otherwise the platform's user data directory (platformdirs) is used.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

ENV_HOME = "CALLRELAY_HOME"


def data_dir() -> Path:
    """The one directory that holds all of the app's state; created on first use."""
    home = os.environ.get(ENV_HOME)
    path = Path(home).expanduser() if home else Path(platformdirs.user_data_dir("callrelay", appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def is_isolated() -> bool:
    """True when ``CALLRELAY_HOME`` moved the data directory away from the platform default."""
    return bool(os.environ.get(ENV_HOME))


def _sub(name: str) -> Path:
    path = data_dir() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def settings_file() -> Path:
    return data_dir() / "settings.json"


def recordings_dir() -> Path:
    """The recording store: files named by content hash, read-only."""
    return _sub("recordings")


def fixes_dir() -> Path:
    """Where inspection fixes (swapped, merged, converted files) are written."""
    return _sub("fixed")


def history_db() -> Path:
    return data_dir() / "history.sqlite3"


def logs_dir() -> Path:
    return _sub("logs")


def run_dir() -> Path:
    """Files describing running processes (the recording server's address, its public URL)."""
    return _sub("run")


def sandbox_dir() -> Path:
    return _sub("sandbox")
