"""The recording server's event loop: readiness callbacks on sockets, timers, a thread-safe wake-up.

It is what the server used of asyncio's selector loop (``add_reader``/``add_writer`` and their
removal, ``call_soon``, ``call_later``, ``call_soon_threadsafe``, ``run_forever``, ``stop``,
``close``), without the per-event machinery a general loop needs (a Handle and a context switch per
callback, a fresh list of ready handles per turn). Measured under wrk at 8 connections that machinery
cost about 2.5 µs of the ~30 µs a 64 KiB range takes, and the tail latency of a server grows sharply
once it needs more CPU per request than its client (see "Recording server" in docs/ARCHITECTURE.md).

On Linux it waits with ``epoll`` directly; elsewhere through ``selectors.DefaultSelector`` (kqueue on
macOS, select on Windows). Everything but ``call_soon_threadsafe`` and ``stop`` is called on the
loop's own thread.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import select
import selectors
import socket
import time
from collections import deque
from collections.abc import Callable
from typing import Any

log = logging.getLogger("desktop_app.server")
_READ = 1
_WRITE = 2


class Timer:
    """A pending ``call_later``; ``cancel()`` keeps it from running."""

    __slots__ = ("when", "callback", "cancelled")

    def __init__(self, when: float, callback: Callable[[], Any]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


def _bind(callback: Callable[..., Any], args: tuple[Any, ...]) -> Callable[[], Any]:
    return (lambda: callback(*args)) if args else callback


class Loop:
    def __init__(self, *, use_epoll: bool | None = None) -> None:
        if use_epoll is None:
            use_epoll = hasattr(select, "epoll")
        self._epoll: Any = select.epoll() if use_epoll else None
        self._selector: selectors.BaseSelector | None = None if use_epoll else selectors.DefaultSelector()
        self._in = select.EPOLLIN if use_epoll else selectors.EVENT_READ
        self._out = select.EPOLLOUT if use_epoll else selectors.EVENT_WRITE
        self._readers: dict[int, Callable[[], Any]] = {}
        self._writers: dict[int, Callable[[], Any]] = {}
        self._masks: dict[int, int] = {}
        self._timers: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._ready: deque[Callable[[], Any]] = deque()
        self._stopping = False
        self._closed = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.add_reader(self._wake_r.fileno(), self._drain_wakeups)

    # -- readiness ------------------------------------------------------------------------------
    def _update(self, fd: int, mask: int) -> None:
        old = self._masks.get(fd, 0)
        if mask == old:
            return
        poller: Any = self._epoll if self._epoll is not None else self._selector
        events = (self._in if mask & _READ else 0) | (self._out if mask & _WRITE else 0)
        if not old:
            poller.register(fd, events)
        elif mask:
            poller.modify(fd, events)
        else:
            poller.unregister(fd)
        if mask:
            self._masks[fd] = mask
        else:
            del self._masks[fd]

    def _add(self, table: dict[int, Callable[[], Any]], bit: int, fd: int, callback: Callable[..., Any],
             args: tuple[Any, ...]) -> None:
        table[fd] = _bind(callback, args)
        self._update(fd, self._masks.get(fd, 0) | bit)

    def _remove(self, table: dict[int, Callable[[], Any]], bit: int, fd: int) -> bool:
        if table.pop(fd, None) is None:
            return False
        self._update(fd, self._masks.get(fd, 0) & ~bit)
        return True

    def add_reader(self, fd: int, callback: Callable[..., Any], *args: Any) -> None:
        self._add(self._readers, _READ, fd, callback, args)

    def remove_reader(self, fd: int) -> bool:
        return self._remove(self._readers, _READ, fd)

    def add_writer(self, fd: int, callback: Callable[..., Any], *args: Any) -> None:
        self._add(self._writers, _WRITE, fd, callback, args)

    def remove_writer(self, fd: int) -> bool:
        return self._remove(self._writers, _WRITE, fd)

    # -- callbacks and timers -------------------------------------------------------------------
    def call_soon(self, callback: Callable[..., Any], *args: Any) -> None:
        self._ready.append(_bind(callback, args))

    def call_soon_threadsafe(self, callback: Callable[..., Any], *args: Any) -> None:
        """From any thread: run ``callback`` on the loop's thread soon."""
        self.call_soon(callback, *args)
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass  # a wake-up is pending already (the socket is full), or the loop has ended (closed)

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Timer:
        timer = Timer(time.monotonic() + delay, _bind(callback, args))
        heapq.heappush(self._timers, (timer.when, next(self._seq), timer))
        return timer

    def _drain_wakeups(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    # -- running --------------------------------------------------------------------------------
    def stop(self) -> None:
        """End ``run_forever`` after the current turn (from the loop's thread; from another thread,
        ``call_soon_threadsafe(loop.stop)``)."""
        self._stopping = True

    def run_forever(self) -> None:  # noqa: C901 — the loop's hot turn, kept whole
        self._stopping = False
        readers, writers, ready, timers = self._readers, self._writers, self._ready, self._timers
        epoll, selector = self._epoll, self._selector
        if epoll is not None:
            readable = select.EPOLLIN | select.EPOLLERR | select.EPOLLHUP
            writable = select.EPOLLOUT | select.EPOLLERR | select.EPOLLHUP
        else:
            readable, writable = selectors.EVENT_READ, selectors.EVENT_WRITE
        monotonic = time.monotonic
        while not self._stopping:
            try:
                if ready:
                    timeout = 0.0
                elif timers:
                    timeout = max(0.0, timers[0][0] - monotonic())
                else:
                    timeout = -1.0 if epoll is not None else None  # type: ignore[assignment]
                if epoll is not None:
                    events = epoll.poll(timeout)
                else:
                    assert selector is not None
                    events = [(key.fd, ev) for key, ev in selector.select(timeout)]
                for fd, ev in events:
                    if ev & readable:
                        cb = readers.get(fd)
                        if cb is not None:
                            cb()
                    if ev & writable:
                        cb = writers.get(fd)
                        if cb is not None:
                            cb()
                if timers:
                    now = monotonic()
                    while timers and timers[0][0] <= now:
                        timer = heapq.heappop(timers)[2]
                        if not timer.cancelled:
                            ready.append(timer.callback)
                for _ in range(len(ready)):  # those queued now; what they queue runs next turn
                    ready.popleft()()
            except Exception:  # a bug in a callback: the others go on being served
                log.exception("Error in a callback of the recording server's loop")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._readers.clear()
        self._writers.clear()
        self._ready.clear()
        self._timers.clear()
        if self._epoll is not None:
            self._epoll.close()
        elif self._selector is not None:
            self._selector.close()
        self._wake_r.close()
        self._wake_w.close()
