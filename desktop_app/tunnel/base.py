"""The one tunnel interface: start, stop, public URL, state, last error, events; and its supervision.

A provider subclass only knows how to open and close its connection (``_open`` returns the public
base URL) and tells the base when the connection dropped (``_dropped``). The base runs the rest:
the reachability checks through the public URL on start and every ``check_interval_s`` seconds,
reconnection with back-off when the provider drops (or stays unreachable), and state-change events.
The back-off starts again from its first delay only after a connection stayed open for
``stable_after_s``: a tunnel that opens and drops at once is reopened less and less often. ``stop``
returns within about half a second whatever the tunnel is doing; an open or a check still blocked on the
network is left to finish on its own, and what it finds is ignored.
Plain Python and threads: the GUI adapts the events to Qt signals.
"""

from __future__ import annotations

import logging
import threading
import time
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
    #: seconds a connection must have stayed open for the back-off to start again from its first delay
    stable_after_s = 60.0
    #: seconds ``stop`` waits for the supervisor thread before leaving it to end on its own
    stop_wait_s = 0.5

    def __init__(
        self,
        *,
        check: ReachabilityCheck | None = None,
        check_interval_s: float = 180.0,
        backoff: Backoff | None = None,
        allow_http: bool = False,
        stable_after_s: float | None = None,
    ) -> None:
        self._check = check
        self.check_interval_s = check_interval_s
        self._backoff = backoff or Backoff()
        self.allow_http = allow_http
        if stable_after_s is not None:
            self.stable_after_s = stable_after_s
        self._lock = threading.RLock()
        self._listeners: list[Listener] = []
        self._state = TunnelState.STOPPED
        self._public_url: str | None = None
        self._last_error: str | None = None
        self._last_check: CheckResult | None = None
        self._needs_open = False
        self._failures = 0
        self._opened_at: float | None = None  # when the current connection opened (time.monotonic)
        self._activity: str | None = None  # what the supervisor is busy with, when not just waiting
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._left_running: threading.Thread | None = None  # a supervisor ``stop`` did not wait for

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

    @property
    def activity(self) -> str:
        """What the tunnel is doing now, for progress messages: opening the connection, checking the
        public URL, waiting before reopening, or else its state."""
        return self._activity or str(self._state)

    def add_listener(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def start(self, *, wait: bool = True) -> TunnelState:
        """Open the tunnel and check it once; then keep it checked and reconnected in the background.

        Raises TunnelConfigError when the configuration cannot work. Any other failure leaves the
        tunnel ``down`` with ``last_error`` set while it keeps retrying with back-off.

        ``wait=False`` returns at once (``starting``): the first open and check run in the background
        too, and a configuration that cannot work ends in ``stopped`` with ``last_error`` set.
        """
        left = self._left_running
        if left is not None:  # an earlier run's supervisor, still blocked on the network: let it end first
            left.join()
            self._left_running = None
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("this tunnel was already started")
            self._stopping.clear()
            self._wake.clear()
            self._needs_open = False
            self._opened_at = None
        self._set_state(TunnelState.STARTING, f"opening the {self.name} tunnel")
        if wait:
            self._first_open()
        self._thread = threading.Thread(target=self._run, args=(not wait,), name=f"tunnel-{self.name}",
                                        daemon=True)
        self._thread.start()
        return self._state

    def stop(self) -> None:
        """Stop checking and reconnecting, and close the connection; returns within about ``stop_wait_s``
        (an open or a check blocked on the network is left to end on its own; its outcome is ignored)."""
        self._stopping.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(self.stop_wait_s)
            if thread.is_alive():
                self._left_running = thread
        self._close_quietly()
        self._activity = None
        self._set_state(TunnelState.STOPPED, f"the {self.name} tunnel was stopped")

    def close(self) -> None:
        """The same as ``stop`` (for callers that close handles)."""
        self.stop()

    def check_now(self) -> CheckResult | None:
        """Run the reachability check now (also done on start and every ``check_interval_s``)."""
        url = self._public_url
        if self._check is None or url is None:
            return None
        self._activity = f"checking {url} from the outside"
        try:
            result = self._check.run(url)
        finally:
            self._activity = None
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
            if self._stopping.is_set() and state is not TunnelState.STOPPED:
                return  # a late outcome of an open or a check that ``stop`` did not wait for
            changed = state != self._state
            self._state = state
        if changed:
            log.info("%s tunnel %s: %s", self.name, state, message)
            self._emit(TunnelEvent("state", state, self._public_url, message))

    def _set_url(self, url: str) -> None:
        with self._lock:
            if self._stopping.is_set():
                return
            changed = url != self._public_url
            self._public_url = url
        if changed:
            self._emit(TunnelEvent("url", self._state, url, f"public URL is now {url}"))

    def _close_quietly(self) -> None:
        try:
            self._close()
        except Exception:
            log.exception("closing the %s tunnel failed", self.name)

    def _first_open(self) -> None:
        """The first try at opening: a configuration that cannot work stops the tunnel (TunnelConfigError)."""
        try:
            self._attempt_open()
        except TunnelConfigError:
            self._activity = None
            self._set_state(TunnelState.STOPPED, self._last_error or "")
            raise

    def _attempt_open(self) -> bool:
        """One try at opening the connection and checking it. True when the connection opened."""
        self._close_quietly()
        self._activity = f"opening the {self.name} connection"
        with self._lock:
            self._needs_open = False  # from here on, a drop is news
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
            self._activity = None
            self._set_state(TunnelState.DOWN, str(exc))
            return False
        if self._stopping.is_set():  # stopped while opening: ``stop`` may have closed before this opened
            self._close_quietly()
            return False
        with self._lock:
            self._failures = 0
            self._opened_at = time.monotonic()
        self._activity = f"checking {url} from the outside" if self._check is not None else None
        self._set_url(url)
        if self._check is None:
            if not self._needs_open:  # unless it dropped already
                self._set_state(TunnelState.UP, f"connected: {url}")
        else:
            result = self._check.run(url)
            self._activity = None
            self._apply_check(result)
        return True

    def _apply_check(self, result: CheckResult) -> None:
        with self._lock:
            if self._stopping.is_set():
                return
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

    def _next_delay(self) -> float:
        """The wait before reopening: the back-off starts again only after a connection that lasted."""
        with self._lock:
            opened, self._opened_at = self._opened_at, None
        if opened is not None and time.monotonic() - opened >= self.stable_after_s:
            self._backoff.reset()
        return self._backoff.next()

    def _run(self, first_open: bool) -> None:
        if first_open:
            try:
                self._first_open()
            except TunnelConfigError:
                return
        while not self._stopping.is_set():
            if self._needs_open:
                delay = self._next_delay()
                log.warning("%s tunnel down (%s); reopening in %g s", self.name, self._last_error or "unreachable",
                            delay)
                self._activity = f"waiting {delay:g} s before reopening"
                if self._wait(delay):
                    break
                try:
                    self._attempt_open()
                except TunnelConfigError as exc:
                    self._activity = None
                    self._set_state(TunnelState.DOWN, str(exc))
                    break
            else:
                if self._wait(self.check_interval_s):
                    break
                if not self._needs_open:
                    self.check_now()
