"""The one tunnel interface: start, stop, public URL, state, last error, events; and its supervision.

A provider subclass only knows how to open and close its connection (``_open`` returns the public
base URL) and tells the base when the connection dropped (``_dropped``). The base runs the rest:
the reachability checks through the public URL on start and every ``check_interval_s`` seconds,
reconnection with back-off when the provider drops (or stays unreachable), and state-change events.
Plain Python and threads: the GUI adapts the events to Qt signals.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from desktop_app.tunnel.urls import InsecureUrlError, check_public_url
from desktop_app.tunnel.watchdog import CheckResult, ReachabilityCheck

log = logging.getLogger(__name__)


class TunnelState(str, Enum):
    STARTING = "starting"
    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"
    STOPPED = "stopped"

    def __str__(self) -> str:
        return self.value


class TunnelError(RuntimeError):
    """The tunnel could not be opened now (offline, host down); the tunnel retries with back-off."""


class TunnelConfigError(TunnelError):
    """The tunnel cannot work as configured (no program, no token, a bad URL); retrying will not help."""


@dataclass(frozen=True)
class TunnelEvent:
    """``kind`` is ``state`` (the state changed) or ``url`` (the public base URL changed)."""

    kind: str
    state: TunnelState
    public_url: str | None
    message: str


Listener = Callable[[TunnelEvent], None]


class Backoff:
    """Delays between reconnection attempts: ``first``, doubling up to ``maximum``; ``reset`` on success."""

    def __init__(self, first: float = 1.0, maximum: float = 60.0) -> None:
        self.first = first
        self.maximum = maximum
        self._next = first

    def next(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.maximum)
        return delay

    def reset(self) -> None:
        self._next = self.first


class Tunnel:
    """Base of every provider. Thread-safe; listeners are called on the thread that changed the state."""

    name = "tunnel"
    #: consecutive failed checks (provider still connected) after which the provider is reopened
    reopen_after_failures = 3

    def __init__(
        self,
        *,
        check: ReachabilityCheck | None = None,
        check_interval_s: float = 180.0,
        backoff: Backoff | None = None,
        allow_http: bool = False,
    ) -> None:
        self._check = check
        self.check_interval_s = check_interval_s
        self._backoff = backoff or Backoff()
        self.allow_http = allow_http
        self._lock = threading.RLock()
        self._listeners: list[Listener] = []
        self._state = TunnelState.STOPPED
        self._public_url: str | None = None
        self._last_error: str | None = None
        self._last_check: CheckResult | None = None
        self._needs_open = False
        self._failures = 0
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the interface -------------------------------------------------------------------------
    @property
    def state(self) -> TunnelState:
        return self._state

    @property
    def public_url(self) -> str | None:
        return self._public_url

    @property
    def last_error(self) -> str | None:
        return self._last_error

    @property
    def last_check(self) -> CheckResult | None:
        return self._last_check

    def add_listener(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def start(self) -> TunnelState:
        """Open the tunnel and check it once; then keep it checked and reconnected in the background.

        Raises TunnelConfigError when the configuration cannot work. Any other failure leaves the
        tunnel ``down`` with ``last_error`` set while it keeps retrying with back-off.
        """
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("this tunnel was already started")
            self._stopping.clear()
            self._wake.clear()
        self._set_state(TunnelState.STARTING, f"opening the {self.name} tunnel")
        try:
            self._attempt_open()
        except TunnelConfigError:
            self._set_state(TunnelState.STOPPED, self._last_error or "")
            raise
        self._thread = threading.Thread(target=self._run, name=f"tunnel-{self.name}", daemon=True)
        self._thread.start()
        return self._state

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(30)
        self._close_quietly()
        self._set_state(TunnelState.STOPPED, f"the {self.name} tunnel was stopped")

    def close(self) -> None:
        """The same as ``stop`` (for callers that close handles)."""
        self.stop()

    def check_now(self) -> CheckResult | None:
        """Run the reachability check now (also done on start and every ``check_interval_s``)."""
        url = self._public_url
        if self._check is None or url is None:
            return None
        result = self._check.run(url)
        self._apply_check(result)
        return result

    # -- for providers -------------------------------------------------------------------------
    def _open(self) -> str:
        """Open the connection; return the public base URL. Raise TunnelError (or TunnelConfigError)."""
        raise NotImplementedError

    def _close(self) -> None:
        """Close the connection; must be safe to call when it is not open."""

    def _dropped(self, reason: str) -> None:
        """Called by a provider when its connection went away on its own."""
        if self._stopping.is_set():
            return
        with self._lock:
            self._needs_open = True
            self._last_error = reason
        self._set_state(TunnelState.DOWN, reason)
        self._wake.set()

    # -- internals -----------------------------------------------------------------------------
    def _emit(self, event: TunnelEvent) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception:  # one listener's bug must not break the tunnel or the others
                log.exception("tunnel listener failed")

    def _set_state(self, state: TunnelState, message: str) -> None:
        with self._lock:
            changed = state != self._state
            self._state = state
        if changed:
            log.info("%s tunnel %s: %s", self.name, state, message)
            self._emit(TunnelEvent("state", state, self._public_url, message))

    def _set_url(self, url: str) -> None:
        with self._lock:
            changed = url != self._public_url
            self._public_url = url
        if changed:
            self._emit(TunnelEvent("url", self._state, url, f"public URL is now {url}"))

    def _close_quietly(self) -> None:
        try:
            self._close()
        except Exception:
            log.exception("closing the %s tunnel failed", self.name)

    def _attempt_open(self) -> bool:
        """One try at opening the connection and checking it. True when the connection opened."""
        self._close_quietly()
        try:
            try:
                url = check_public_url(self._open(), allow_http=self.allow_http)
            except InsecureUrlError as exc:
                raise TunnelConfigError(str(exc)) from None
        except TunnelConfigError as exc:
            self._close_quietly()
            with self._lock:
                self._last_error = str(exc)
            raise
        except TunnelError as exc:
            self._close_quietly()
            with self._lock:
                self._last_error = str(exc)
                self._needs_open = True
            self._set_state(TunnelState.DOWN, str(exc))
            return False
        with self._lock:
            self._needs_open = False
            self._failures = 0
        self._backoff.reset()
        self._set_url(url)
        if self._check is None:
            self._set_state(TunnelState.UP, f"connected: {url}")
        else:
            self._apply_check(self._check.run(url))
        return True

    def _apply_check(self, result: CheckResult) -> None:
        with self._lock:
            self._last_check = result
            if self._needs_open:  # the connection dropped meanwhile: that is the news
                return
            self._failures = 0 if result.reachable else self._failures + 1
            if result.reachable and not result.ok:
                self._last_error = result.message
            elif not result.reachable:
                self._last_error = result.message
            if self._failures >= self.reopen_after_failures:
                self._needs_open = True
                self._wake.set()
        state = TunnelState.UP if result.ok else TunnelState.DEGRADED if result.reachable else TunnelState.DOWN
        self._set_state(state, result.message)

    def _wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds`` or until woken; True when the tunnel is stopping."""
        self._wake.wait(seconds)
        self._wake.clear()
        return self._stopping.is_set()

    def _run(self) -> None:
        while not self._stopping.is_set():
            if self._needs_open:
                if self._wait(self._backoff.next()):
                    break
                try:
                    self._attempt_open()
                except TunnelConfigError as exc:
                    self._set_state(TunnelState.DOWN, str(exc))
                    break
            else:
                if self._wait(self.check_interval_s):
                    break
                if not self._needs_open:
                    self.check_now()
