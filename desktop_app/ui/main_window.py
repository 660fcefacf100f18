"""The main window: Upload & Log, Sync history and Settings pages; status bar; tray icon.

The window is given a runtime (``desktop_app.runtime.Runtime``, Qt-free) that it starts in a worker;
until it is up, the pages show state but cannot submit. The runtime's submission listener and the
tunnel's events are called from worker threads and reach the window through ``tasks.to_gui``.
Closing the window with a tray icon available hides it: the server and the queue keep running
until "Quit" from the tray menu (or Ctrl+Q).
"""

from __future__ import annotations

import base64
import logging
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QByteArray, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QPushButton,
    QStyle,
    QSystemTrayIcon,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop_app import settings as settings_mod
from desktop_app.sync import history as h
from desktop_app.ui import first_run, shortcuts, take_over, tasks
from desktop_app.ui.explain import short_error
from desktop_app.ui.history_page import HistoryPage
from desktop_app.ui.notify import desktop_notify
from desktop_app.ui.settings_page import SettingsPage
from desktop_app.ui.upload_page import UploadPage

if TYPE_CHECKING:  # the window is given the root; importing it here would start the core with Qt
    from desktop_app.runtime import Runtime

log = logging.getLogger(__name__)

UPLOAD, HISTORY, SETTINGS = 0, 1, 2
TUNNEL_BROKEN = ("down", "stopped")  # states in which HubSpot cannot fetch a recording


class MainWindow(QMainWindow):
    runtimeStarted = Signal()
    runtimeFailed = Signal(str)
    submissionChanged = Signal(object)
    notified = Signal(str, str)  # (title, text) of a notification shown while the window was not in front

    def __init__(self, settings: settings_mod.Settings, runtime: Runtime | None = None, *,
                 history: h.History | None = None, start: bool = True) -> None:
        super().__init__()
        self.settings = settings
        self.runtime: Runtime | None = runtime
        if runtime is not None:  # another's recording URL in HubSpot: ask
            runtime.take_over = take_over.asker(self)
        self.runtime_up = False
        self.quitting = False
        self._told: set[tuple[int, str]] = set()  # (submission, outcome) already said
        self.history = history or (runtime.history if runtime is not None else None) or h.History()
        self.setWindowTitle("Call Relay")
        self.setMinimumSize(720, 520)

        self.banner = QWidget()
        self.banner.setObjectName("sandboxBanner")
        self.banner.setStyleSheet("#sandboxBanner { background: #f5b041; } #sandboxBanner QLabel { color: #222; }")
        brow = QHBoxLayout(self.banner)
        brow.setContentsMargins(10, 4, 10, 4)
        self.banner_text = QLabel(
            "<b>Sandbox mode</b> — calls go to the local HubSpot emulator, not to a real account. "
            "Try the whole flow safely; switch to your account in Settings → HubSpot.")
        self.banner_text.setWordWrap(True)
        self.banner_notice = QLabel()  # no keyring: one sentence on what this run lacks and what to install
        self.banner_notice.setObjectName("keyringNotice")
        self.banner_notice.setTextFormat(Qt.TextFormat.PlainText)
        self.banner_notice.setWordWrap(True)
        self.banner_notice.setVisible(False)
        self.banner_button = QPushButton("Use a real account…")
        texts = QVBoxLayout()
        texts.setSpacing(2)
        texts.addWidget(self.banner_text)
        texts.addWidget(self.banner_notice)
        brow.addLayout(texts, 1)
        brow.addWidget(self.banner_button)
        self.banner.setVisible(self._sandbox())

        self.upload_page = UploadPage(region=settings.get("calls.default_region"),
                                      last_folder=settings.get("ui.last_folder"))
        self.history_page = HistoryPage(self.history)
        self.settings_page = SettingsPage(settings)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.upload_page, "&Upload && Log")
        self.tabs.addTab(self.history_page, "Sync &history")
        self.tabs.addTab(self.settings_page, "&Settings")
        central = QWidget()
        col = QVBoxLayout(central)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(0)
        col.addWidget(self.banner)
        col.addWidget(self.tabs, 1)
        self.setCentralWidget(central)

        self.hubspot_state = QLabel("HubSpot: connecting…")
        self.server_state = QLabel("Server: starting…")
        self.tunnel_state = QLabel("Tunnel: starting…")
        for w in (self.hubspot_state, self.server_state, self.tunnel_state):
            self.statusBar().addPermanentWidget(w)

        self._actions()
        self._tray()
        self.banner_button.clicked.connect(self.show_account_settings)
        self.upload_page.folderUsed.connect(self._remember_folder)
        self.upload_page.ownersLoaded.connect(lambda owners: self.history_page.set_names("owner", owners))
        self.submissionChanged.connect(self._submission_changed)
        self._restore_geometry()
        if runtime is not None and start:
            self.start_runtime()
        elif runtime is None:
            self.hubspot_state.setText("HubSpot: not configured")
            self.server_state.setText("Server: not running")
            self.tunnel_state.setText("Tunnel: not running")

    # -- set-up ----------------------------------------------------------------------------------
    def _sandbox(self) -> bool:
        if self.runtime is not None:
            return self.runtime.is_sandbox
        return bool(self.settings.get("hubspot.sandbox"))

    def _actions(self) -> None:
        """The shortcuts of ``shortcuts.SHORTCUTS`` (the one table) as actions, a File and a Help menu."""
        slots: dict[str, Any] = {
            "open": self.upload_page.pick_files, "upload": self.upload_page.upload_current,
            "next": lambda: self.step_recording(1), "previous": lambda: self.step_recording(-1),
            "play": self.play_pause, "page_upload": lambda: self.tabs.setCurrentIndex(UPLOAD),
            "page_history": lambda: self.tabs.setCurrentIndex(HISTORY),
            "page_settings": lambda: self.tabs.setCurrentIndex(SETTINGS), "find": self._find,
            "refresh": self.history_page.apply_filters, "shortcuts": self.show_shortcuts, "quit": self.quit,
        }
        self.shortcut_actions: dict[str, QAction] = {}
        for s in shortcuts.SHORTCUTS:
            action = QAction(s.label.replace("&", "&&"), self)
            action.setShortcuts([QKeySequence(k) for k in s.keys])
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            action.triggered.connect(lambda _c=False, slot=slots[s.name]: slot())
            # F5 belongs to the history page: active while it is shown, wherever the focus is
            (self.history_page if s.name == "refresh" else self).addAction(action)
            self.shortcut_actions[s.name] = action
        self.upload_action = self.shortcut_actions["upload"]
        self.open_action = self.shortcut_actions["open"]
        self.quit_action = self.shortcut_actions["quit"]
        self.find_action = self.shortcut_actions["find"]
        self.page_actions = [self.shortcut_actions[n] for n in ("page_upload", "page_history", "page_settings")]
        self.shortcuts_dialog: shortcuts.ShortcutsDialog | None = None
        file_menu = self.menuBar().addMenu("Fi&le")  # not Alt+F/Alt+H: From and Sync history have those
        for name in ("open", "upload"):
            file_menu.addAction(self.shortcut_actions[name])
        file_menu.addSeparator()
        self.setup_action = QAction("Set &up…", self)  # the first-run choice again (ui/first_run.py)
        self.setup_action.setStatusTip("Choose again: the sandbox, your own HubSpot account, or your team's relay")
        self.setup_action.triggered.connect(self.show_first_run)
        file_menu.addAction(self.setup_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        help_menu = self.menuBar().addMenu("Hel&p")
        help_menu.addAction(self.shortcut_actions["shortcuts"])
        app = QApplication.instance()
        if isinstance(app, QApplication):
            app.focusChanged.connect(self._keys_follow_focus)
        self.tabs.currentChanged.connect(lambda _i: self._keys_follow_focus(None, QApplication.focusWidget()))
        self._keys_follow_focus(None, QApplication.focusWidget())

    def _keys_follow_focus(self, _old: QWidget | None, now: QWidget | None) -> None:
        """Space, Alt+Down/Up act on the queue only on the Upload page, and give way to the focused
        control that uses the same key (a space typed, a button pressed, a combo box's list opened)."""
        on_upload = self.tabs.currentIndex() == UPLOAD
        for name in ("play", "next", "previous"):
            self.shortcut_actions[name].setEnabled(
                on_upload and not shortcuts.yields_to(shortcuts.by_name(name), now))

    def step_recording(self, step: int) -> None:
        """The next (1) or previous (-1) recording of the queue; the ends stay where they are."""
        queue = self.upload_page.queue
        row = queue.currentRow() + step
        if 0 <= row < queue.count():
            queue.setCurrentRow(row)

    def play_pause(self) -> None:
        panel = self.upload_page.current()
        if panel is not None and self.tabs.currentIndex() == UPLOAD:
            panel.card.player.toggle()

    def show_shortcuts(self) -> None:
        if self.shortcuts_dialog is None:
            self.shortcuts_dialog = shortcuts.ShortcutsDialog(self)
        self.shortcuts_dialog.show()
        self.shortcuts_dialog.raise_()

    def _find(self) -> None:
        self.tabs.setCurrentIndex(HISTORY)
        self.history_page.text.setFocus()

    def _tray(self) -> None:
        self.tray: QSystemTrayIcon | None = None
        if not QSystemTrayIcon.isSystemTrayAvailable():
            return
        icon = QApplication.windowIcon()
        if icon.isNull():
            icon = self.style().standardIcon(QStyle.StandardPixmap.SP_MediaVolume)
        self.tray = QSystemTrayIcon(icon, self)
        menu = QMenu(self)
        menu.addAction("Show Call Relay", self.show_normal)
        menu.addSeparator()
        menu.addAction("Quit", self.quit)
        self.tray.setContextMenu(menu)
        self.tray.setToolTip("Call Relay")
        self.tray.activated.connect(lambda reason: self.show_normal()
                                    if reason == QSystemTrayIcon.ActivationReason.Trigger else None)
        self.tray.show()

    def show_normal(self) -> None:
        self.show()
        self.raise_()
        self.activateWindow()

    def first_run_if_needed(self) -> None:
        """On the first start of a data directory: the first-run choice (once; remembered in the settings)."""
        if first_run.needed(self.settings):
            self.show_first_run()

    def show_first_run(self) -> first_run.FirstRunDialog:
        dialog = first_run.FirstRunDialog(self.settings, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.restartRequested.connect(self.settings_page.restartRequested.emit)
        dialog.finished_choice.connect(lambda _choice: self.settings_page.load())  # its fields show what was saved
        self.first_run_dialog = dialog
        dialog.open()
        return dialog

    def show_account_settings(self) -> None:
        self.tabs.setCurrentIndex(SETTINGS)
        self.settings_page.show_account()

    # -- the runtime -----------------------------------------------------------------------------
    def start_runtime(self) -> tasks.Task:
        runtime = self.runtime
        assert runtime is not None, "the window was given no runtime"
        runtime.add_listener(tasks.to_gui(self.submissionChanged.emit))
        return tasks.run_task(runtime.start, owner=self, name="runtime-start", pool=tasks.long_pool(), on_result=lambda _r: self._started(),
                              on_error=self._start_failed)

    def _started(self) -> None:
        rt = self.runtime
        assert rt is not None, "started without a runtime"
        self.runtime_up = True
        region = self.settings.get("calls.default_region")
        self.upload_page.set_runtime(rt, region)
        self.history_page.set_runtime(rt)
        self.settings_page.set_runtime(rt)
        self.banner.setVisible(self._sandbox())
        self._keyring_notice(rt.keyring_notice)
        self.hubspot_state.setText("HubSpot: sandbox" if self._sandbox() else "HubSpot: connected")
        self.server_state.setText(f"Server: {describe_server(rt.server)}")
        tunnel = rt.tunnel
        problem = rt.tunnel_problem
        if tunnel is None:
            if self._sandbox():
                self.tunnel_state.setText("Tunnel: not needed (sandbox)")
            elif problem:
                self._tunnel_failed(problem)
            else:
                self.tunnel_state.setText("Tunnel: none (public URL from the settings)")
        else:
            tunnel.add_listener(tasks.to_gui(self._tunnel_event))
            self.tunnel_state.setText(f"Tunnel: {tunnel.state}" + (f" · {tunnel.public_url}" if tunnel.public_url else ""))
            self.settings_page.show_tunnel(str(tunnel.state), tunnel.last_error or "", tunnel.public_url,
                                           tunnel.last_check)
            if str(tunnel.state) in TUNNEL_BROKEN:  # it failed before the listener was there
                self._tunnel_failed(tunnel.last_error or f"the tunnel is {tunnel.state}")
        if rt.team is not None:  # a desk that joined a team: the relay answers HubSpot
            self.hubspot_state.setText("HubSpot: through the team relay")
            self.tunnel_state.setText("Tunnel: not needed (team relay)")
        rt.start_worker()  # resumes what a previous run left, retries as they fall due, transcripts
        log.info("window ready: %s, %s", "sandbox" if self._sandbox() else "HubSpot account",
                 self.server_state.text())
        self.runtimeStarted.emit()

    def _keyring_notice(self, notice: str) -> None:
        """No keyring: the run went on in sandbox mode; say so under the banner's text and in the status bar."""
        self.banner_notice.setText(notice)
        self.banner_notice.setVisible(bool(notice))
        if notice:
            self.banner.setVisible(True)
            self.hubspot_state.setToolTip(notice)

    def _start_failed(self, exc: BaseException) -> None:
        message = getattr(exc, "agent_message", None) or str(exc)
        self.banner.setVisible(True)
        self.banner.setStyleSheet("#sandboxBanner { background: #e6b0aa; } #sandboxBanner QLabel { color: #222; }")
        self.banner_text.setText(f"<b>Not connected</b> — {message}")
        self.banner_button.setText("Open Settings")
        self.upload_page.set_offline(f"Not connected to HubSpot: {message}")
        self.hubspot_state.setText("HubSpot: not connected")
        self.hubspot_state.setToolTip(message)
        self.server_state.setText("Server: not running")
        self.tunnel_state.setText("Tunnel: not running")
        self.statusBar().showMessage(f"Could not start: {message}")
        self.runtimeFailed.emit(message)

    def _tunnel_failed(self, reason: str) -> None:
        """No way for HubSpot to fetch recordings: say so where the agent looks, and block uploads."""
        reason = reason.strip().rstrip(".")
        self.tunnel_state.setText("Tunnel: not working")
        self.tunnel_state.setToolTip(reason)
        self.upload_page.set_fetch_problem(
            f"HubSpot could not fetch the recording: {reason}. Fix the tunnel (or give a public URL) in "
            f"Settings → Tunnel, then upload.")
        self.statusBar().showMessage(f"The tunnel is not working: {reason}.", 30000)

    def _tunnel_event(self, event: Any) -> None:
        if str(event.state) in TUNNEL_BROKEN:
            self._tunnel_failed(event.message or f"the tunnel is {event.state}")
        else:
            url = f" · {event.public_url}" if event.public_url else ""
            self.tunnel_state.setText(f"Tunnel: {event.state}{url}")
            self.tunnel_state.setToolTip(event.message)
            self.upload_page.set_fetch_problem("")
        tunnel = self.runtime.tunnel if self.runtime is not None else None
        self.settings_page.show_tunnel(str(event.state), event.message, event.public_url,
                                       getattr(tunnel, "last_check", None))

    def _submission_changed(self, sub: h.Submission) -> None:
        for panel in self.upload_page.panels:
            found = panel.form.contact()
            if panel.submission_id == sub.id and found is not None and found.name:
                self.history_page.set_names("contact", [(found.id, found.name)])
        self.upload_page.update_submission(sub)
        self.history_page.update_submission(sub)
        self._tell_outcome(sub)

    def _tell_outcome(self, sub: h.Submission) -> None:
        """A call's outcome, once: in the status bar, and as a desktop notification (tray) when the window
        is not in front, so an agent working elsewhere learns that a call failed or was not transcribed."""
        said = {h.FAILED: "failed", h.NOT_TRANSCRIBED: "was logged but not transcribed",
                h.TRANSCRIBED: "was transcribed"}.get(sub.status)
        if said is None or (sub.id, sub.status) in self._told:
            return
        self._told.add((sub.id, sub.status))
        text = f"{sub.recording_name}: {short_error(sub.error)}" if sub.error and sub.status != h.TRANSCRIBED else \
            f"{sub.recording_name} {said}."
        self.statusBar().showMessage(text, 30000)
        in_front = self.isVisible() and not self.isMinimized() and self.isActiveWindow()
        if in_front or sub.status == h.TRANSCRIBED:
            return
        title = "Call Relay: " + ("a submission failed" if sub.status == h.FAILED else "a call was not transcribed")
        self.notify(title, text)

    def notify(self, title: str, text: str) -> None:
        """A desktop notification (the tray's balloon where there is a tray) and the taskbar's attention."""
        if self.tray is not None:
            self.tray.showMessage(title, text, QSystemTrayIcon.MessageIcon.Warning, 15000)
        else:  # no tray: the desktop's notification service (in a worker: it talks over D-Bus)
            tasks.run_task(desktop_notify, title, text, owner=self, name="notify", on_error=lambda _e: None)
        QApplication.alert(self)
        self.notified.emit(title, text)

    # -- window state ----------------------------------------------------------------------------
    def _restore_geometry(self) -> None:
        text = self.settings.get("ui.geometry")
        if text:
            try:
                self.restoreGeometry(QByteArray(base64.b64decode(text)))
                return
            except ValueError:
                pass
        self.resize(1100, 760)

    def _remember_folder(self, folder: str) -> None:
        self.settings.set("ui.last_folder", folder)

    def save_state(self) -> None:
        self.settings.set("ui.geometry", base64.b64encode(bytes(self.saveGeometry().data())).decode("ascii"))
        self.settings.set("ui.last_folder", self.upload_page.last_folder)
        try:
            self.settings.save()
        except OSError as exc:
            log.warning("window state not saved: %s", exc)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        self.save_state()
        if self.tray is not None and self.tray.isVisible() and not self.quitting:
            self.hide()
            self.tray.showMessage("Call Relay keeps running",
                                  "The recording server and the queue keep going. Quit from this icon's menu.",
                                  QSystemTrayIcon.MessageIcon.Information, 4000)
            event.ignore()
            return
        event.accept()

    def quit(self) -> None:
        self.quitting = True
        self.save_state()
        self.close()
        app = QApplication.instance()
        if app is not None:
            app.quit()


def describe_server(server: Any) -> str:
    if server is None:
        return "not running"
    for attr in ("base_url", "url", "local_url"):
        value = getattr(server, attr, None)
        if value:
            return str(value() if callable(value) else value)
    address = getattr(server, "address", None)
    if address:
        return f"listening on {address[0]}:{address[1]}" if isinstance(address, tuple) else str(address)
    return "running"
