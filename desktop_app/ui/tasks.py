"""The one way the UI runs work off its thread.

``run_task(func, *args, on_result=..., on_error=...)`` runs ``func`` on a ``QThreadPool`` and
delivers its result (or the exception it raised) to the callback **on the GUI thread**. Widgets
never make threads; they call this. The returned ``Task`` can be cancelled: its callbacks are then
never called (the function itself runs to its end; long work takes a ``threading.Event`` to stop).

``to_gui(callback)`` wraps a callback that the core calls from its worker threads (the runtime's
submission listener) so that it runs on the GUI thread instead; ``to_gui_progress(callback)`` does
so for frequent progress reports, coalesced (one per step of the bar, never a backlog).

Modelled on MusicBrainz Picard's ``picard/util/thread.py``.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import (
    QCoreApplication,
    QObject,
    QRunnable,
    Qt,
    QThread,
    QThreadPool,
    QTimer,
    Signal,
    Slot,
)

log = logging.getLogger(__name__)


class Task:
    """A handle on work sent to the pool."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.cancel_event = threading.Event()
        self.done = threading.Event()

    def cancel(self) -> None:
        self.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()


# How long one pass of the event loop runs delivered work before the rest waits for the next turn.
PASS_BUDGET_S = 0.020


class _Relay(QObject):
    """Lives on the GUI thread; a signal emitted from a worker is queued to it.

    Deliveries that queued up while the GUI thread was busy all run in one pass of the event loop,
    their times added up; once a pass has run ``PASS_BUDGET_S`` of them, the rest are queued again
    (in order) for the next turn, so that timers and repaints run in between."""

    deliver = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self.deliver.connect(self._run, Qt.ConnectionType.QueuedConnection)
        self._pass_started: float | None = None

    @Slot(object)
    def _run(self, thunk: Callable[[], None]) -> None:
        now = time.perf_counter()
        if self._pass_started is None:
            self._pass_started = now
            QTimer.singleShot(0, self, self._next_pass)  # runs after this pass of posted events
        elif now - self._pass_started > PASS_BUDGET_S:
            self.deliver.emit(thunk)  # behind the others deferred: the order stays
            return
        thunk()

    def _next_pass(self) -> None:
        self._pass_started = None


_relay: _Relay | None = None
_pending: set[Task] = set()
_pending_lock = threading.Lock()


def _get_relay() -> _Relay:
    global _relay
    app = QCoreApplication.instance()
    if app is None:
        raise RuntimeError("run_task needs a QApplication")
    if _relay is None or _relay.thread() is not app.thread():
        relay = _Relay()
        relay.moveToThread(app.thread())
        _relay = relay
    return _relay


def on_gui_thread() -> bool:
    app = QCoreApplication.instance()
    return app is not None and QThread.currentThread() is app.thread()


def post(thunk: Callable[[], None]) -> None:
    """Run ``thunk`` on the GUI thread (soon, from its event loop), whatever thread calls this."""
    _get_relay().deliver.emit(thunk)


def to_gui(callback: Callable[..., None]) -> Callable[..., None]:
    """A callable that, called from any thread, calls ``callback`` with the same arguments on the GUI thread."""
    _get_relay()  # made now, on the GUI thread
    owner = getattr(callback, "__self__", None)  # a widget's method: dropped once the widget is gone

    def deliver(*args: Any, **kwargs: Any) -> None:
        if isinstance(owner, QObject) and not shiboken6.isValid(owner):
            return  # e.g. a recording removed from the queue while its inspection still reports progress
        callback(*args, **kwargs)

    def marshalled(*args: Any, **kwargs: Any) -> None:
        post(lambda: deliver(*args, **kwargs))

    return marshalled


def to_gui_progress(callback: Callable[[float], None], steps: int = 100) -> Callable[[float], None]:
    """``to_gui`` for progress (0..1) that a worker reports often (an inspection: every block of audio).
    Only a report that moves the bar by a step (1/``steps``) is sent, and while one still waits for the
    GUI thread a newer one takes its place instead of queuing behind it: a busy GUI thread is never
    handed a backlog of stale progress."""
    _get_relay()  # made now, on the GUI thread
    owner = getattr(callback, "__self__", None)
    lock = threading.Lock()
    sent_step, latest, queued = -1, 0.0, False

    def deliver() -> None:
        nonlocal queued
        with lock:
            fraction, queued = latest, False
        if isinstance(owner, QObject) and not shiboken6.isValid(owner):
            return
        callback(fraction)

    def report(fraction: float) -> None:
        nonlocal sent_step, latest, queued
        step = int(min(1.0, max(0.0, fraction)) * steps)
        with lock:
            if step == sent_step:
                return
            sent_step, latest = step, fraction
            if queued:
                return
            queued = True
        post(deliver)

    return report


class _Runnable(QRunnable):
    def __init__(self, task: Task, func: Callable[[], Any],
                 deliver: Callable[[Any, BaseException | None], None]) -> None:
        super().__init__()
        self.task, self.func, self._deliver = task, func, deliver
        self.setAutoDelete(True)

    def run(self) -> None:
        result: Any = None
        error: BaseException | None = None
        if not self.task.cancelled:
            try:
                result = self.func()
            except BaseException as exc:  # noqa: BLE001 - every failure goes to on_error
                error = exc
                exc.__traceback_text__ = traceback.format_exc()  # type: ignore[attr-defined]
        self._deliver(result, error)


def _default_error(task: Task, exc: BaseException) -> None:
    log.error("background task %s failed:\n%s", task.name,
              getattr(exc, "__traceback_text__", "") or repr(exc))


def run_task(
    func: Callable[..., Any],
    *args: Any,
    on_result: Callable[[Any], None] | None = None,
    on_error: Callable[[BaseException], None] | None = None,
    name: str | None = None,
    pool: QThreadPool | None = None,
    owner: QObject | None = None,
    **kwargs: Any,
) -> Task:
    """Run ``func(*args, **kwargs)`` on the pool; its result or error reaches a callback on the GUI thread.

    ``owner`` (by default the object of a bound-method callback): when it has been deleted by the
    time the work ends, the callbacks are skipped, as they are for a cancelled task.
    """
    task = Task(str(name or getattr(func, "__name__", "task")))
    if owner is None:
        bound = getattr(on_result, "__self__", None)
        owner = bound if isinstance(bound, QObject) else None
    relay = _get_relay()
    with _pending_lock:
        _pending.add(task)

    def finish(result: Any, error: BaseException | None) -> None:
        with _pending_lock:
            _pending.discard(task)
        task.done.set()
        if task.cancelled or (owner is not None and not shiboken6.isValid(owner)):
            return
        if error is None:
            if on_result is not None:
                on_result(result)
        elif on_error is not None:
            on_error(error)
        else:
            _default_error(task, error)

    def deliver(result: Any, error: BaseException | None) -> None:
        try:
            relay.deliver.emit(lambda: finish(result, error))
        except RuntimeError:  # the application is gone (shutting down): nobody to deliver to
            task.done.set()

    (pool or short_pool()).start(_Runnable(task, lambda: func(*args, **kwargs), deliver))
    return task


_short: QThreadPool | None = None
_long: QThreadPool | None = None


def short_pool() -> QThreadPool:
    """The default pool: inspection, fixes, searches, history pages — work that ends in seconds."""
    global _short
    if _short is None:
        _short = QThreadPool()
        _short.setMaxThreadCount(max(4, QThreadPool.globalInstance().maxThreadCount()))
    return _short


def long_pool() -> QThreadPool:
    """For work that blocks for long — a submission sleeping through HubSpot's back-off, the runtime's
    start-up — so that it never starves the short work (on 2 cores the global pool has 2 threads)."""
    global _long
    if _long is None:
        _long = QThreadPool()
        _long.setMaxThreadCount(32)
    return _long


def shutdown(timeout_s: float = 5.0) -> bool:
    """Wait up to ``timeout_s`` for running work; True when every pool is idle (nothing left behind)."""
    deadline_ms = int(timeout_s * 1000)
    done = True
    for pool in (_short, _long):
        if pool is not None:
            pool.clear()  # queued work that has not started is dropped
            done = pool.waitForDone(deadline_ms) and done
    return done


def pending() -> int:
    """How many tasks have not delivered yet (tests wait on this)."""
    with _pending_lock:
        return len(_pending)
