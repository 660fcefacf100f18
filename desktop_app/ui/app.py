"""Starting the desktop app: QApplication, the exception hook, the runtime, the main window."""

from __future__ import annotations

import logging
import os
import sys
import traceback
from types import TracebackType
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QAbstractSpinBox, QApplication, QComboBox, QMessageBox, QWidget

from desktop_app import paths
from desktop_app import settings as settings_mod
from desktop_app.ui import inspector, look, tasks

if TYPE_CHECKING:  # imported when the app starts it (make_runtime), after the window is up
    from desktop_app.runtime import Runtime

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


class WheelGuard(QObject):
    """Only a focused spin box, combo box or date/time editor takes the mouse wheel.

    Scrolling Settings or the call form with the wheel used to change whatever field passed under the
    pointer (Link TTL 3600 → 3574, unseen). Installed on the application, this filter gives those
    fields a focus policy without wheel focus as they are polished, and hands the wheel of an
    unfocused one on to its parents (the scroll area scrolls instead)."""

    KINDS = (QAbstractSpinBox, QComboBox)  # QAbstractSpinBox covers spin, double-spin, date and time editors

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        kind = event.type()
        if kind not in (QEvent.Type.Wheel, QEvent.Type.Polish) or not isinstance(watched, self.KINDS):
            return False
        assert isinstance(watched, QWidget)
        if watched.focusPolicy() == Qt.FocusPolicy.WheelFocus:
            watched.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        if kind == QEvent.Type.Wheel and not watched.hasFocus():
            assert isinstance(event, QWheelEvent)
            _to_parents(watched, event)
            return True
        return False


def _to_parents(widget: QWidget, event: QWheelEvent) -> None:
    """Offer a wheel event to the widget's parents, nearest first, until one takes it (the scroll area)."""
    parent = widget.parentWidget()
    while parent is not None:
        pos = parent.mapFrom(widget, event.position())
        copy = QWheelEvent(pos, event.globalPosition(), event.pixelDelta(), event.angleDelta(), event.buttons(),
                           event.modifiers(), event.phase(), event.inverted())
        copy.ignore()
        QApplication.sendEvent(parent, copy)
        if copy.isAccepted() or parent.isWindow():
            break
        parent = parent.parentWidget()
    event.accept()  # taken care of: the field under the pointer keeps its value


def install_wheel_guard(app: QApplication) -> WheelGuard:
    """Install the ``WheelGuard`` on the whole application (every window and dialog of the app)."""
    guard = WheelGuard(app)
    app.installEventFilter(guard)
    return guard


def install_look(app: QApplication) -> look.SchemeFollower:
    """The app's palette follows the system's colour scheme (dark mode), now and as it changes."""
    return look.follow_system_scheme(app)


def decorate(window: QWidget) -> None:
    """Icons on the main window's pages (the upload page puts its own on its actions)."""
    look.decorate_window(window)


def restart_command() -> list[str]:
    """The command that starts the desktop app again ("Restart now" in Settings)."""
    if getattr(sys, "frozen", False):  # the bundle: its own executable, with the arguments it was given
        return [sys.executable, *sys.argv[1:]]
    return [sys.executable, "-m", "desktop_app", "gui"]


def _restart() -> None:
    """Replace this process by a fresh start of the app (the runtime was stopped, the window closed)."""
    command = restart_command()
    log.info("restarting: %s", " ".join(command))
    logging.shutdown()
    os.execv(command[0], command)


def make_runtime(settings: settings_mod.Settings) -> Runtime:
    """The composition root of the core (not started: the window starts it in a worker).

    Without a usable keyring the app still starts, in sandbox mode (the runtime's ``keyring_notice``
    says why, and the window shows it)."""
    from desktop_app.runtime import Runtime

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
    install_wheel_guard(app)
    install_look(app)
    try:
        settings = settings_mod.load()
    except settings_mod.SettingsError as exc:
        QMessageBox.critical(None, "Call Relay", str(exc))
        return 1
    runtime = make_runtime(settings)
    window = MainWindow(settings, runtime)
    decorate(window)
    restart: list[bool] = []

    def restart_now() -> None:
        restart.append(True)
        window.quit()
    window.settings_page.restartRequested.connect(restart_now)
    window.show()
    window.first_run_if_needed()
    if window.tray is None:
        app.setQuitOnLastWindowClosed(True)
    code = app.exec()
    try:
        runtime.stop()
    except Exception as exc:  # noqa: BLE001 - shutting down anyway
        log.warning("stopping the runtime: %s", exc)
    inspector.close()
    if not tasks.shutdown(5.0):
        # A submission is sleeping through a back-off: its progress is in the history (each step is
        # written before and after it talks to HubSpot) and the next start resumes it. Do not wait.
        log.warning("leaving unfinished background work; it resumes on the next start")
        if restart:
            _restart()
        logging.shutdown()
        os._exit(int(code))
    if restart:
        _restart()
    return int(code)
