"""Starting the desktop app: QApplication, the exception hook, the runtime, the main window."""

from __future__ import annotations

import logging
import os
import sys
import traceback
from types import TracebackType
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox

from desktop_app import paths
from desktop_app import settings as settings_mod
from desktop_app.ui import inspector, tasks

log = logging.getLogger(__name__)


def install_excepthook() -> None:
    """A bug (an exception nobody caught) is written to the log file and shown, instead of vanishing."""

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        text = "".join(traceback.format_exception(kind, exc, tb))
        report = paths.logs_dir() / "crash.log"
        try:
            with report.open("a", encoding="utf-8") as fh:
                fh.write(text + "\n")
        except OSError:
            pass
        log.error("unexpected error:\n%s", text)
        app = QApplication.instance()
        if app is not None and not getattr(hook, "showing", False):
            hook.showing = True  # type: ignore[attr-defined]
            try:
                QMessageBox.critical(None, "Call Relay: unexpected error",
                                     f"Something went wrong inside Call Relay: {exc}\n\nA report was written to "
                                     f"{report}. Please send it to your administrator.")
            finally:
                hook.showing = False  # type: ignore[attr-defined]

    sys.excepthook = hook


def make_runtime(settings: settings_mod.Settings) -> Any:
    """The composition root of the core, or None when it cannot be built (the window still shows history).

    Without a usable keyring the app still starts, in sandbox mode (the runtime's ``keyring_notice``
    says why, and the window shows it)."""
    try:
        from desktop_app.runtime import Runtime
    except ImportError as exc:
        log.warning("no runtime: %s", exc)
        return None
    return Runtime(settings=settings, sandbox_if_no_keyring=True)


def main(argv: list[str] | None = None) -> int:
    from desktop_app.ui.main_window import MainWindow

    QApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(argv or sys.argv[:1])
    app.setApplicationName("Call Relay")
    app.setOrganizationName("callrelay")
    app.setQuitOnLastWindowClosed(False)  # the tray keeps the server and the queue running
    install_excepthook()
    try:
        settings = settings_mod.load()
    except settings_mod.SettingsError as exc:
        QMessageBox.critical(None, "Call Relay", str(exc))
        return 1
    runtime = make_runtime(settings)
    window = MainWindow(settings, runtime)
    window.show()
    if window.tray is None:
        app.setQuitOnLastWindowClosed(True)
    code = app.exec()
    if runtime is not None:
        try:
            runtime.stop()
        except Exception as exc:  # noqa: BLE001 - shutting down anyway
            log.warning("stopping the runtime: %s", exc)
    inspector.close()
    if not tasks.shutdown(5.0):
        # A submission is sleeping through a back-off: its progress is in the history (each step is
        # written before and after it talks to HubSpot) and the next start resumes it. Do not wait.
        log.warning("leaving unfinished background work; it resumes on the next start")
        logging.shutdown()
        os._exit(int(code))
    return int(code)
