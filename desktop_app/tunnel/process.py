"""Child processes of the tunnel (ssh, cloudflared): clean environment, own process group, never left behind.

A PyInstaller bundle sets ``LD_LIBRARY_PATH`` (``DYLD_LIBRARY_PATH`` on macOS) to its own library
folder and keeps the caller's value in ``*_ORIG``; a system program started with the bundle's value
loads the bundle's libraries and may crash. ``clean_child_env`` restores the original.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence

from desktop_app.tunnel import orphans

log = logging.getLogger(__name__)

LIBRARY_PATH_VARS = ("LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH")
_SIGKILL = int(getattr(signal, "SIGKILL", signal.SIGTERM))


def clean_child_env(env: Mapping[str, str], frozen: bool) -> dict[str, str]:
    """The environment for a system program started by the app.

    In a frozen (PyInstaller) app each library path variable gets back the value saved in
    ``<NAME>_ORIG``, or is removed when there was none. Outside a bundle the environment is kept.
    """
    out = dict(env)
    if not frozen:
        return out
    for name in LIBRARY_PATH_VARS:
        original = out.pop(name + "_ORIG", None)
        if original:
            out[name] = original
        else:
            out.pop(name, None)
    return out


def child_env() -> dict[str, str]:
    return clean_child_env(os.environ, bool(getattr(sys, "frozen", False)))


class ChildProcess:
    """One program run in its own process group; its output lines go to ``on_line``, its exit to ``on_exit``.

    ``stop`` terminates the whole group, waits, then kills it. Every child still running when the
    interpreter exits is stopped by an ``atexit`` hook.
    """

    _live: set[ChildProcess] = set()
    _live_lock = threading.Lock()

    def __init__(
        self,
        argv: Sequence[str],
        *,
        on_line: Callable[[str], None] | None = None,
        on_exit: Callable[[int], None] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.argv = list(argv)
        self._on_line = on_line
        self._on_exit = on_exit
        self._stopping = False
        self.output: list[str] = []  # the last lines, for error messages
        self._proc = subprocess.Popen(  # noqa: S603 - argv is built by the providers, never a shell
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else child_env(),
            start_new_session=True,  # own process group: stop() reaches grandchildren too (POSIX)
            creationflags=getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0),  # the same on Windows
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
        )
        with ChildProcess._live_lock:
            ChildProcess._live.add(self)
        try:
            orphans.remember(self.pid, os.path.basename(self.argv[0]))
        except OSError as exc:  # the note is for a later app after a crash; this one stops its children
            log.warning("could not note %s (pid %d) for a later clean-up: %s", self.argv[0], self.pid, exc)
        self._reader = threading.Thread(target=self._read, name=f"child-{self.pid}", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        return self._proc.poll()

    def running(self) -> bool:
        return self._proc.poll() is None

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for raw in self._proc.stdout:
            line = raw.rstrip("\r\n")
            self.output.append(line)
            del self.output[:-40]
            log.debug("%s: %s", os.path.basename(self.argv[0]), line)
            if self._on_line is not None:
                try:
                    self._on_line(line)
                except Exception:  # a listener's bug must not stop the reader
                    log.exception("output handler failed")
        code = self._proc.wait()
        try:
            self._forget()
            if self._on_exit is not None and not self._stopping:
                self._on_exit(code)
        except Exception:  # on a daemon thread nobody would see it: log it
            log.exception("handling the exit of %s failed", self.argv[0])

    def _forget(self) -> None:
        with ChildProcess._live_lock:
            if self not in ChildProcess._live:
                return
            ChildProcess._live.discard(self)
        orphans.forget(self.pid)

    def _signal_group(self, sig: int) -> None:
        if not hasattr(os, "killpg"):  # Windows: the process alone
            if self._proc.poll() is None:
                self._proc.kill() if sig == _SIGKILL else self._proc.terminate()
            return
        try:
            os.killpg(self._proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self, timeout: float = 3.0) -> None:
        """Terminate the process group, then kill it if it is still there after ``timeout`` seconds."""
        self._stopping = True
        if self._proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(_SIGKILL)
                self._proc.wait()
        # the group may outlive its leader (a grandchild): make sure none is left
        self._signal_group(_SIGKILL)
        if threading.current_thread() is not self._reader:
            self._reader.join(timeout)
        self._forget()

    @classmethod
    def stop_all(cls) -> None:
        with cls._live_lock:
            live = list(cls._live)
        for child in live:
            child.stop(timeout=1.0)


atexit.register(ChildProcess.stop_all)
