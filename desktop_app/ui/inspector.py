"""Recording inspection in a child process, so its CPU work never holds this process's GIL.

The analysis of a long recording is seconds of NumPy and decoding; in a thread of the GUI's process
it competes with the GUI thread for the interpreter lock, and on a busy machine that shows as
stalls of the window. One long-lived helper process (started with ``spawn`` on first use, so it
never inherits Qt's threads; at a lower CPU priority than the app's, so that on a busy machine the
GUI thread gets a CPU first) runs ``desktop_app.audio.inspect`` and streams progress back over a
pipe; a worker thread of the GUI waits on the pipe (waiting releases the lock). Inspections are
served one at a time. Cancelling stops the helper (a new one starts on the next request).

In a frozen bundle (PyInstaller) a spawned child needs the entry point's
``multiprocessing.freeze_support()``, which the bundle's start-up script calls (the self-test's
"helper process" check proves it). Set ``CALLRELAY_INSPECT_IN_PROCESS=1`` to inspect in the calling
thread instead.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

log = logging.getLogger(__name__)
ENV_IN_PROCESS = "CALLRELAY_INSPECT_IN_PROCESS"


# How much lower than the app's the helper's CPU priority is (its nice value, added): on a busy machine
# the GUI thread gets a CPU before the analysis does.
HELPER_NICENESS = 10


def _serve(conn: Connection) -> None:  # runs in the helper process
    from desktop_app.audio import fixes_for, inspect

    try:
        os.nice(HELPER_NICENESS)
    except OSError:  # not allowed here: the app's priority, as before
        pass

    while True:
        try:
            kind, path = conn.recv()
        except (EOFError, OSError):
            return  # the app went away
        if kind != "inspect":
            continue
        try:
            inspection = inspect(path, progress=lambda f: conn.send(("progress", f)))
            conn.send(("result", (inspection, fixes_for(inspection))))
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the caller
            conn.send(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))


class Cancelled(Exception):
    pass


class Inspector:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: Any = None
        self._conn: Connection | None = None

    @staticmethod
    def isolated() -> bool:
        # (a PyInstaller bundle calls multiprocessing.freeze_support() first, so it can spawn the helper too)
        return os.environ.get(ENV_IN_PROCESS) != "1"

    def _ensure(self) -> Connection:
        if self._proc is None or not self._proc.is_alive() or self._conn is None:
            ctx = mp.get_context("spawn")
            parent, child = ctx.Pipe()
            self._proc = ctx.Process(target=_serve, args=(child,), daemon=True, name="callrelay-inspector")
            self._proc.start()
            child.close()
            self._conn = parent
        return self._conn

    def _stop(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.join(5)
        if self._conn is not None:
            self._conn.close()
        self._proc, self._conn = None, None

    def inspect(self, path: str, progress: Callable[[float], None] | None = None,
                cancel: threading.Event | None = None) -> tuple[Any, list[Any]]:
        """``(Inspection, fixes)`` of ``path``; raises Cancelled when ``cancel`` is set meanwhile."""
        if not self.isolated():
            from desktop_app.audio import fixes_for, inspect

            inspection = inspect(path, progress=progress, cancel=cancel)
            return inspection, fixes_for(inspection)
        with self._lock:
            conn = self._ensure()
            conn.send(("inspect", str(path)))
            while True:
                if cancel is not None and cancel.is_set():
                    self._stop()
                    raise Cancelled(path)
                try:
                    ready = conn.poll(0.05)
                    if not ready:
                        if not self._proc.is_alive():
                            raise EOFError
                        continue
                    kind, value = conn.recv()
                except (EOFError, OSError):
                    self._stop()
                    raise RuntimeError("The inspection process ended unexpectedly.") from None
                if kind == "progress":
                    if progress is not None:
                        progress(value)
                elif kind == "result":
                    inspection, fixes = value  # what _serve sent: (Inspection, fixes)
                    return inspection, list(fixes)
                else:
                    raise value

    def close(self) -> None:
        with self._lock:
            self._stop()


_inspector = Inspector()


def inspect(path: str, progress: Callable[[float], None] | None = None,
            cancel: threading.Event | None = None) -> tuple[Any, list[Any]]:
    return _inspector.inspect(path, progress, cancel)


def close() -> None:
    _inspector.close()
