"""Shared by the providers that run a program (ssh, cloudflared): start it, wait for its ready line."""

from __future__ import annotations

import errno
import shutil
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from desktop_app.tunnel import orphans
from desktop_app.tunnel.base import Tunnel, TunnelConfigError, TunnelError
from desktop_app.tunnel.process import ChildProcess


def find_program(program: str, what: str, hint: str) -> str:
    """The full path of ``program`` (a name on PATH or a path), or TunnelConfigError saying what to do."""
    if Path(program).is_absolute() or "/" in program:
        found = program if Path(program).is_file() else None
    else:
        found = shutil.which(program)
    if not found:
        raise TunnelConfigError(f"{what} was not found ({program!r}): {hint}")
    return found


def cannot_run(what: str, program: str, exc: OSError, hint: str) -> TunnelConfigError:
    """The sentence for a program the system refused to start (a retry will not help)."""
    if exc.errno == errno.ENOEXEC:
        why = "it is not a program for this computer (built for another processor or system?)"
    elif exc.errno == errno.EACCES:
        why = "it is not executable (chmod +x)"
    else:
        why = exc.strerror or str(exc)
    return TunnelConfigError(f"{what} ({program}) cannot be run: {why}. To fix it, {hint}")


class ChildTunnel(Tunnel):
    """A tunnel whose connection is one child process; ``_on_line`` reads its output lines."""

    open_timeout_s = 30.0
    #: seconds the program gets to exit after SIGTERM before it is killed (cloudflared would otherwise
    #: wait up to its 30 s grace period for requests in flight; a stop must be prompt)
    stop_grace_s = 1.0
    #: what to do when the program is missing or cannot run
    program_hint = "install it."

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._child: ChildProcess | None = None
        self._ready = threading.Event()
        self._exited = threading.Event()

    @property
    def child_pid(self) -> int | None:
        child = self._child
        return child.pid if child is not None and child.running() else None

    def _argv(self) -> Sequence[str]:
        raise NotImplementedError

    def _on_line(self, line: str) -> None:
        """Look at one output line; call ``self._ready.set()`` when the connection is usable."""
        raise NotImplementedError

    def _public(self) -> str:
        raise NotImplementedError

    def _failure(self, output: list[str], code: int | None) -> TunnelError:
        """The error for a program that exited (or never got ready); providers refine it."""
        tail = " / ".join(line for line in output[-5:] if line.strip()) or "no output"
        if code is None:
            return TunnelError(f"{self.name} did not connect within {self.open_timeout_s:.0f} s: {tail}")
        return TunnelError(f"{self.name} exited with code {code}: {tail}")

    def _open(self) -> str:
        argv = list(self._argv())
        orphans.reap_orphans()  # children of an earlier app that was killed
        self._ready.clear()
        self._exited.clear()
        exit_cb: Callable[[int], None] = self._on_child_exit
        try:
            child = ChildProcess(argv, on_line=self._on_line, on_exit=exit_cb)
        except OSError as exc:  # not executable, another processor's program, a missing interpreter
            raise cannot_run(self.name, argv[0], exc, self.program_hint) from None
        self._child = child
        deadline_hit = True
        for _ in range(int(self.open_timeout_s * 20)):
            if self._ready.wait(0.05):
                deadline_hit = False
                break
            if self._stopping.is_set():
                child.stop()
                raise TunnelError(f"the {self.name} tunnel was stopped while opening")
            if self._exited.is_set() or not child.running():
                child.stop()
                raise self._failure(child.output, child.returncode)
        if deadline_hit:
            child.stop()
            raise self._failure(child.output, None)
        return self._public()

    def _on_child_exit(self, code: int) -> None:
        self._exited.set()
        child = self._child
        if self._ready.is_set() and child is not None:
            err = self._failure(child.output, code)
            self._dropped(f"the {self.name} connection dropped ({err})")

    def _close(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            child.stop(self.stop_grace_s)
