"""The app asks before it re-points HubSpot's recording URL that another desk or the relay registered
(issue 17 item 3): the window's runtime, against the sandbox as a real account, finds another's URL; the
question names it; Leave it keeps it (the registration fails, naming it), Take over re-points it."""

from __future__ import annotations

import os
import threading
from typing import Any

from PySide6.QtWidgets import QApplication

from desktop_app import settings as settings_mod
from desktop_app.hubspot.recording_url import RecordingUrlTaken
from desktop_app.runtime import Runtime
from desktop_app.sandbox import Sandbox
from desktop_app.ui.main_window import MainWindow
from desktop_app.ui.take_over import TakeOverDialog

OTHER = "http://127.0.0.1:9/retrieve/authenticated/recordings/%s"  # the team's relay, say


def shown_dialog() -> TakeOverDialog | None:
    for w in QApplication.topLevelWidgets():
        if isinstance(w, TakeOverDialog) and w.isVisible():
            return w
    return None


def register_in_a_worker(runtime: Runtime) -> tuple[threading.Thread, dict[str, Any]]:
    """What the pipeline's registration step does, on a worker thread as there."""
    result: dict[str, Any] = {}

    def work() -> None:
        try:
            assert runtime.client is not None
            result["ok"] = runtime.client.register_recording_url(runtime.server.recording_endpoint_template())
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            result["error"] = exc

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread, result


def test_the_app_asks_before_taking_over_and_names_the_url_registered_now(qtbot, callrelay_home) -> None:
    settings = settings_mod.Settings()
    settings.update({"hubspot.sandbox": False, "server.port": 0, "server.public_url": "http://127.0.0.1:8",
                     "tunnel.provider": "manual"})
    with Sandbox(port=0) as sb:
        runtime = Runtime(settings, env={**os.environ, **sb.env()})
        win = MainWindow(settings, runtime)
        qtbot.addWidget(win)
        win.show()
        try:
            with qtbot.waitSignal(win.runtimeStarted, timeout=30000):
                pass
            from desktop_app.hubspot.client import HubSpotClient
            from desktop_app.hubspot.config import config_from_env

            HubSpotClient(config_from_env(sb.env())).register_recording_url(OTHER)
            wanted = runtime.server.recording_endpoint_template()

            thread, result = register_in_a_worker(runtime)
            qtbot.waitUntil(lambda: shown_dialog() is not None, timeout=10000)
            dialog = shown_dialog()
            assert dialog is not None and OTHER in dialog.text() and wanted in dialog.informativeText()
            assert dialog.defaultButton() is dialog.leave_button
            dialog.leave_button.click()
            qtbot.waitUntil(lambda: not thread.is_alive(), timeout=10000)
            assert isinstance(result.get("error"), RecordingUrlTaken) and OTHER in str(result["error"])
            assert sb.recording_setting() == {"urlToRetrieveAuthedRecording": OTHER}

            thread, result = register_in_a_worker(runtime)
            qtbot.waitUntil(lambda: shown_dialog() is not None, timeout=10000)
            shown_dialog().take_over_button.click()  # type: ignore[union-attr]
            qtbot.waitUntil(lambda: not thread.is_alive(), timeout=10000)
            assert "error" not in result, result
            assert sb.recording_setting() == {"urlToRetrieveAuthedRecording": wanted}
            assert settings_mod.load().get("hubspot.own_recording_url") == wanted  # remembered as this desk's

            thread, result = register_in_a_worker(runtime)  # its own now: no question
            qtbot.waitUntil(lambda: not thread.is_alive(), timeout=10000)
            assert "error" not in result and shown_dialog() is None
        finally:
            win.quitting = True
            runtime.stop()


def test_asked_on_the_gui_thread_the_question_is_modal_and_answered(qtbot) -> None:
    """Not how the runtime asks (its threads do), but a question asked on the GUI thread is answered too,
    never an exception in the middle of a registration."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QWidget

    from desktop_app.ui.take_over import asker

    parent = QWidget()
    qtbot.addWidget(parent)
    ask = asker(parent)
    clicks: list[str] = []

    def answer() -> None:
        dialog = shown_dialog()
        if dialog is not None and not clicks:
            clicks.append(dialog.text())
            dialog.take_over_button.click()

    timer = QTimer()
    timer.timeout.connect(answer)
    timer.start(50)
    try:
        assert ask(OTHER, "http://127.0.0.1:8/r/%s") is True
    finally:
        timer.stop()
    assert clicks and OTHER in clicks[0]
