"""Closing the window to the tray: the real app (``desktop_app.ui.app.main``) on a real X server (Xvfb, the
xcb platform), in sandbox mode as on a first start, with a minimal system-tray host (``xtray.py``).

With a tray, closing the window hides it (the tray icon says the app keeps running) and the recording
server goes on answering, from both of its processes; a submission that fails while the window is
hidden is told by the tray icon; "Quit" in the tray icon's menu stops the app and the server. Without
a tray, closing the window quits. The app runs in a child process driven by a small script (``DRIVER``) that only closes the
window and picks "Quit" from the tray menu as a user would; the server is checked from this process
over HTTP.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from ui_helpers import speech, write_wav

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

DRIVER = textwrap.dedent("""
    import json, select, sys
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication
    app = QApplication(sys.argv[:1])
    from desktop_app.ui import app as ui_app
    from desktop_app.ui.main_window import MainWindow

    def window():
        return next(w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow))

    def close_when_up():
        w = window()
        if not w.runtime_up:
            QTimer.singleShot(100, close_when_up)
            return
        server = w.runtime.server
        print(json.dumps({"tray": w.tray is not None and w.tray.isVisible(), "url": server.local_url,
                          "processes": server.processes}), flush=True)
        w.close()
        print(json.dumps({"visible": w.isVisible(), "told": balloon()}), flush=True)
        QTimer.singleShot(50, quit_when_told)

    def quit_when_told():
        line = sys.stdin.readline().split() if select.select([sys.stdin], [], [], 0)[0] else []
        if line[:1] == ["quit"]:
            menu = window().tray.contextMenu()
            next(a for a in menu.actions() if a.text() == "Quit").trigger()
            return
        if line[:1] == ["fail"]:  # a submission that HubSpot refuses, carried on in the background
            fail_in_background(line[1])
            QTimer.singleShot(50, show_notification)
        QTimer.singleShot(50, quit_when_told)

    def fail_in_background(recording):
        import threading, time
        from desktop_app.sync.pipeline import CallDetails
        runtime = window().runtime
        runtime.sandbox.faults.fail("calls.create", status=400)
        details = CallDetails(title="Refused", timestamp=time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
                              duration_ms=3000, direction="OUTBOUND",
                              contact_id=str(runtime.sandbox.contacts()[0]["id"]))
        sid = runtime.submit(recording, details)
        threading.Thread(target=runtime.run_submission, args=(sid,), daemon=True).start()

    def balloon():
        # the texts of the tray icon's message on screen (Qt's X11 tray shows it in a QBalloonTip)
        from PySide6.QtWidgets import QLabel
        tips = [w for w in QApplication.topLevelWidgets()
                if w.isVisible() and w.metaObject().className() == "QBalloonTip"]
        return [label.text() for label in tips[0].findChildren(QLabel) if label.text()] if tips else []

    def show_notification(tries=400):
        texts = balloon()
        if "Call Relay: a submission failed" not in texts and tries:
            QTimer.singleShot(50, lambda: show_notification(tries - 1))
            return
        print(json.dumps({"notification": texts}), flush=True)

    QTimer.singleShot(0, close_when_up)
    code = ui_app.main([])
    print(json.dumps({"exit": code}), flush=True)
    sys.exit(code)
""")


@pytest.fixture
def tray_host(display: str) -> Iterator[None]:
    host = subprocess.Popen([sys.executable, str(HERE / "xtray.py")], env=dict(os.environ, DISPLAY=display),
                            stdout=subprocess.PIPE, text=True)
    try:
        assert host.stdout is not None and host.stdout.readline().strip() == "ready"
        yield
    finally:
        host.kill()
        host.wait(10)


@contextlib.contextmanager
def app_on(display: str) -> Iterator[subprocess.Popen[str]]:
    """The app, driven by DRIVER, on ``display``; killed at the end if it is still running."""
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
    env.update(DISPLAY=display, QT_QPA_PLATFORM="xcb", PYTHONPATH=str(ROOT))
    app = subprocess.Popen([sys.executable, "-c", DRIVER], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        yield app
    finally:
        if app.poll() is None:
            app.kill()
            app.wait(10)


def assert_quit(app: subprocess.Popen[str], url: str, why: str = "") -> None:
    """The app ends with code 0, and its recording server with it."""
    assert read_json(app, timeout=30) == {"exit": 0}, why
    assert app.wait(30) == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/healthz", timeout=2)


def read_json(app: subprocess.Popen[str], timeout: float = 60) -> dict[str, object]:
    """The driver's next line; fails if none comes within ``timeout`` or the app ended."""
    assert app.stdout is not None
    if not select.select([app.stdout], [], [], timeout)[0]:
        app.kill()
        raise AssertionError(f"the app said nothing for {timeout:g} s")
    line = app.stdout.readline()
    if not line:
        app.kill()
        raise AssertionError(f"the app ended: {app.stderr.read() if app.stderr else ''}")
    return dict(json.loads(line))


def answering_pids(url: str) -> set[int]:
    """Which processes answer /healthz on new connections, made from each CPU in turn."""
    available = sorted(os.sched_getaffinity(0))
    before = os.sched_getaffinity(0)
    pids: set[int] = set()
    try:
        for i in range(40):
            os.sched_setaffinity(0, {available[i % len(available)]})
            with requests.Session() as s:
                pids.add(s.get(f"{url}/healthz", timeout=5).json()["pid"])
    finally:
        os.sched_setaffinity(0, before)
    return pids


def test_closed_to_the_tray_the_server_keeps_serving_until_quit(callrelay_home: Path, display: str,
                                                                  tray_host: None) -> None:
    with app_on(display) as app:
        up = read_json(app)
        assert up["tray"] is True, "Qt saw no system tray on the display"
        url, processes = str(up["url"]), list(up["processes"])  # type: ignore[call-overload]
        assert processes[0] == app.pid and len(processes) == 2
        closed = read_json(app)
        assert closed["visible"] is False
        assert closed["told"] == ["Call Relay keeps running",
                                  "The recording server and the queue keep going. Quit from this icon's menu."]
        time.sleep(0.5)  # hidden a moment: still serving, from the app's process and its helper
        assert app.poll() is None
        assert answering_pids(url) == set(processes)
        # a submission failing while the window is hidden is told by the tray icon
        recording = write_wav(callrelay_home / "refused.wav", [speech(3, start=0.2, freq=220),
                                                              speech(3, start=1.0, freq=340)])
        assert app.stdin is not None
        app.stdin.write(f"fail {recording}\n")
        app.stdin.flush()
        texts = read_json(app, timeout=30)["notification"]
        assert texts[0] == "Call Relay: a submission failed", texts  # type: ignore[index]
        assert texts[1].startswith("refused.wav: HubSpot rejected the request"), texts  # type: ignore[index]
        app.stdin.write("quit\n")
        app.stdin.flush()
        assert_quit(app, url)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and Path(f"/proc/{processes[1]}").exists():
        time.sleep(0.05)
    assert not Path(f"/proc/{processes[1]}").exists(), "the server's helper process outlived the app"


def test_without_a_tray_closing_the_window_quits(callrelay_home: Path, display: str) -> None:
    with app_on(display) as app:
        up = read_json(app)
        assert up["tray"] is False
        assert read_json(app) == {"visible": False, "told": []}
        assert_quit(app, str(up["url"]), "closing the only window did not quit")
