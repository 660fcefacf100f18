"""The thread helper: work runs on the pool, results and errors arrive on the GUI thread."""

from __future__ import annotations

import threading

from PySide6.QtCore import QCoreApplication, QThread

from desktop_app.ui import tasks


def test_result_arrives_on_the_gui_thread(qtbot):
    seen: dict[str, object] = {}
    gui = QCoreApplication.instance().thread()

    def work(a, b):
        seen["worker"] = threading.get_ident()
        return a * b

    def done(result):
        seen["result"] = result
        seen["on_gui"] = QThread.currentThread() is gui

    tasks.run_task(work, 6, 7, on_result=done)
    qtbot.waitUntil(lambda: "result" in seen, timeout=5000)
    assert seen["result"] == 42
    assert seen["on_gui"] is True
    assert seen["worker"] != threading.get_ident()


def test_error_goes_to_on_error_with_its_traceback(qtbot):
    errors: list[BaseException] = []

    def work():
        raise ValueError("disk full")

    tasks.run_task(work, on_result=lambda r: errors.append(AssertionError("no result expected")),
                   on_error=errors.append)
    qtbot.waitUntil(lambda: bool(errors), timeout=5000)
    assert isinstance(errors[0], ValueError) and str(errors[0]) == "disk full"
    assert "work" in errors[0].__traceback_text__


def test_a_cancelled_task_delivers_nothing(qtbot):
    release = threading.Event()
    got: list[object] = []
    task = tasks.run_task(lambda: release.wait(5) and "late", on_result=got.append)
    task.cancel()
    release.set()
    qtbot.waitUntil(task.done.is_set, timeout=5000)
    qtbot.wait(20)
    assert got == [] and tasks.pending() == 0


def test_to_gui_moves_a_core_callback_to_the_gui_thread(qtbot):
    gui = QCoreApplication.instance().thread()
    calls: list[tuple[object, bool]] = []
    marshalled = tasks.to_gui(lambda value: calls.append((value, QThread.currentThread() is gui)))
    worker = threading.Thread(target=marshalled, args=("changed",))
    worker.start()
    worker.join()
    assert calls == []  # not called on the worker
    qtbot.waitUntil(lambda: bool(calls), timeout=5000)
    assert calls == [("changed", True)]


def test_long_work_never_starves_short_work(qtbot):
    release = threading.Event()
    long_tasks = [tasks.run_task(release.wait, 10, pool=tasks.long_pool()) for _ in range(8)]
    got: list[str] = []
    tasks.run_task(lambda: "inspected", on_result=got.append)
    try:
        qtbot.waitUntil(lambda: got == ["inspected"], timeout=5000)
        assert not any(t.done.is_set() for t in long_tasks)  # still blocked, yet short work ran
    finally:
        release.set()
    qtbot.waitUntil(lambda: all(t.done.is_set() for t in long_tasks), timeout=5000)
    assert tasks.shutdown(5.0)


def test_progress_reports_are_coalesced_for_the_gui_thread(qtbot):
    """An inspection reports progress for every block of audio (360 for a 60-minute call, more with
    smaller blocks); the GUI thread gets one call per step of the bar at most, and while a report
    waits in its queue a newer one replaces it instead of queuing behind it."""
    gui = QCoreApplication.instance().thread()
    seen: list[tuple[float, bool]] = []
    report = tasks.to_gui_progress(lambda f: seen.append((f, QThread.currentThread() is gui)))

    def work():  # all reported before the GUI thread runs a single event: it is busy
        for i in range(3601):
            report(i / 3600)

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    qtbot.waitUntil(lambda: bool(seen) and seen[-1][0] == 1.0, timeout=5000)
    qtbot.wait(50)
    assert len(seen) <= 2, seen  # the first report, then the newest one
    assert all(on_gui for _f, on_gui in seen)

    seen.clear()
    report = tasks.to_gui_progress(lambda f: seen.append((f, QThread.currentThread() is gui)))
    for i in range(3601):  # from the GUI's own thread, with its events run between reports
        report(i / 3600)
        QCoreApplication.processEvents()
    fractions = [f for f, _g in seen]
    assert 90 <= len(fractions) <= 101 and fractions == sorted(fractions) and fractions[-1] == 1.0


def test_a_burst_of_results_is_spread_over_turns_of_the_event_loop(qtbot):
    """Results that workers deliver while the GUI thread is busy queue up and would all run in one
    pass of the event loop (their times added up: a stall). Once a pass has run its share, the rest
    wait for the next turn, so timers (a repaint, an animation) run in between."""
    import time

    from PySide6.QtCore import QTimer

    log: list[str] = []
    ticker = QTimer()
    ticker.setInterval(0)
    ticker.timeout.connect(lambda: log.append("T") if log and log[-1] != "T" else None)

    def heavy(i: int) -> None:
        time.sleep(0.015)  # a panel built, a long list refreshed: GUI-thread work
        log.append(f"R{i}")

    deliveries = [tasks.to_gui(lambda i=i: heavy(i)) for i in range(6)]
    worker = threading.Thread(target=lambda: [d() for d in deliveries])
    worker.start()
    worker.join()  # all six are queued before the GUI thread runs an event
    log.append("T")
    ticker.start()
    qtbot.waitUntil(lambda: sum(e.startswith("R") for e in log) == 6, timeout=5000)
    ticker.stop()
    assert [e for e in log if e.startswith("R")] == [f"R{i}" for i in range(6)]  # in order
    runs = "".join("R" if e.startswith("R") else " " for e in log).split()
    assert max(len(r) for r in runs) <= 2, log
