"""The Upload & Log page: a queue of recordings (dropped or picked) and one panel for each."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDragLeaveEvent, QDropEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from desktop_app.sync import history as h
from desktop_app.sync.cli import AUDIO_SUFFIXES
from desktop_app.ui import look, tasks
from desktop_app.ui.recording_panel import RecordingPanel

SUFFIXES = tuple(sorted(AUDIO_SUFFIXES))  # what `callrelay upload --folder` takes, too
FILE_FILTER = "Audio recordings (" + " ".join(f"*{s}" for s in SUFFIXES) + ");;All files (*)"


def seats_of(runtime: Any) -> dict[str, bool]:
    """Which owners have a paid Sales/Service seat, where the app can know it (runs in a worker).

    HubSpot's owners API does not say; the sandbox keeps the flag for each of its owners."""
    sandbox = getattr(runtime, "sandbox", None)
    if sandbox is None:
        return {}
    return {str(o["id"]): bool(o.get("paid_seat")) for o in sandbox.owners()}


def has_audio(paths: list[str]) -> bool:
    """Whether a drag holds something to queue: an audio file or a folder (cheap: no listing)."""
    return any(p.lower().endswith(SUFFIXES) or os.path.isdir(p) for p in paths)


# The drop zone (the list and the empty page) while a drag with recordings is over the page.
DROP_STYLE = ("QListWidget[dropActive=\"true\"], QLabel#dropZone[dropActive=\"true\"] {"
              " border: 2px dashed palette(highlight); background: palette(alternate-base); }")


def expand(paths: list[str]) -> list[str]:
    """Files as given, folders as the audio files they hold (sorted); runs in a worker."""
    out: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            for root, _dirs, files in os.walk(p):
                out.extend(os.path.join(root, f) for f in sorted(files) if f.lower().endswith(SUFFIXES))
        elif os.path.isfile(p):
            out.append(p)
    return out


class UploadPage(QWidget):
    folderUsed = Signal(str)
    ownersLoaded = Signal(list)  # [(id, name)]
    panelAdded = Signal(object)

    def __init__(self, parent: QWidget | None = None, *, region: str = "US", last_folder: str = "") -> None:
        super().__init__(parent)
        self.region = region
        self.last_folder = last_folder
        self.runtime: Any = None
        self.offline_reason = ""
        self.fetch_problem = ""  # why HubSpot could not fetch a recording now (the tunnel), a blocker
        self.owners: list[tuple[str, str]] = []
        self.outcomes: list[tuple[str, str]] = []
        self.seats: dict[str, bool] = {}
        self.panels: list[RecordingPanel] = []
        self.setAcceptDrops(True)
        self.setProperty("dropActive", False)
        self.setStyleSheet(DROP_STYLE)

        self.queue = QListWidget()
        self.queue.setAccessibleName("Recordings")
        self.queue.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.queue.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.stack = QStackedWidget()
        self.empty = QLabel("Drop call recordings (or folders) here, or press “Open recordings…” (Ctrl+O).\n\n"
                            "Each one is inspected: format, the two channels (caller, recipient) and what to fix.")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.empty.setObjectName("dropZone")
        self.stack.addWidget(self.empty)
        self.open_button = QPushButton("&Open recordings…")
        self.open_button.setIcon(look.icon("open", self))
        self.remove_button = QPushButton("Remove")
        self.remove_button.setIcon(look.icon("remove", self))
        self.remove_button.setEnabled(False)

        left = QWidget()
        lcol = QVBoxLayout(left)
        lcol.setContentsMargins(0, 0, 0, 0)
        lcol.addWidget(self.open_button)
        lcol.addWidget(self.queue, 1)
        row = QHBoxLayout()
        row.addWidget(self.remove_button)
        row.addStretch(1)
        lcol.addLayout(row)
        split = QSplitter()
        split.addWidget(left)
        split.addWidget(self.stack)
        split.setStretchFactor(1, 1)
        split.setSizes([260, 1000])
        QVBoxLayout(self).addWidget(split)

        self.open_button.clicked.connect(self.pick_files)
        self.remove_button.clicked.connect(self.remove_current)
        self.queue.currentRowChanged.connect(self._select)

    # -- adding ----------------------------------------------------------------------------------
    def pick_files(self) -> None:
        files, _f = QFileDialog.getOpenFileNames(self, "Open call recordings", self.last_folder, FILE_FILTER)
        if files:
            self.add_paths(files)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt's name
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths and has_audio(paths):
            event.acceptProposedAction()
            self._light(True)
        else:
            event.ignore()

    def dragLeaveEvent(self, event: QDragLeaveEvent) -> None:  # noqa: N802 - Qt's name
        self._light(False)

    def _light(self, on: bool) -> None:
        """Light the drop zone up (or down): a property the page's style sheet draws."""
        for w in (self, self.queue, self.empty):
            w.setProperty("dropActive", on)
            w.style().unpolish(w)
            w.style().polish(w)
            w.update()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt's name
        self._light(False)
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.add_paths(paths)

    def add_paths(self, paths: list[str]) -> tasks.Task:
        """Queue recordings (folders are listed in a worker)."""
        return tasks.run_task(expand, list(paths), owner=self, name="list-files", on_result=self._add_files)

    def _add_files(self, files: list[str]) -> None:
        for f in files:
            self.add_file(f)
        if files:
            self.last_folder = str(Path(files[-1]).parent)
            self.folderUsed.emit(self.last_folder)

    def add_file(self, path: str) -> RecordingPanel:
        panel = RecordingPanel(path, region=self.region)
        look.decorate_panel(panel)
        panel.offline_reason = self.offline_reason
        panel.fetch_problem = self.fetch_problem
        panel.form.set_owners(self.owners)
        panel.form.set_seats(self.seats)
        panel.form.set_outcomes(self.outcomes)
        if self.runtime is not None:
            panel.set_runtime(self.runtime, self.region)
        item = QListWidgetItem(Path(path).name)
        self.queue.addItem(item)
        self.stack.addWidget(panel)
        self.panels.append(panel)
        panel.changed.connect(lambda p=panel, i=item: self._label(p, i))
        self._label(panel, item)
        self.queue.setCurrentItem(item)
        self.remove_button.setEnabled(True)
        self.panelAdded.emit(panel)
        return panel

    def _label(self, panel: RecordingPanel, item: QListWidgetItem) -> None:
        item.setText(f"{Path(panel.path).name}\n{panel.status_text}")
        item.setToolTip(panel.path)
        self._colour(panel, item)

    def _colour(self, panel: RecordingPanel, item: QListWidgetItem) -> None:
        """The status's colour (for this palette, light or dark) and icon on the recording's row."""
        colour = look.status_colour(panel.status_text)  # for the application's palette (light or dark)
        if colour is None:
            item.setData(Qt.ItemDataRole.ForegroundRole, None)  # the palette's text colour
        else:
            item.setForeground(colour)
        item.setIcon(look.status_icon(panel.status_text, self))

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:  # the scheme changed: colours for the new palette
            for row, panel in enumerate(self.panels):
                item = self.queue.item(row)
                if item is not None:
                    self._colour(panel, item)

    def _select(self, row: int) -> None:
        self.stack.setCurrentWidget(self.panels[row] if 0 <= row < len(self.panels) else self.empty)

    def remove_current(self) -> None:
        row = self.queue.currentRow()
        if not (0 <= row < len(self.panels)) or self.panels[row].running:
            return
        panel = self.panels.pop(row)
        panel.close_panel()
        self.queue.takeItem(row)
        self.stack.removeWidget(panel)
        panel.deleteLater()
        self.remove_button.setEnabled(bool(self.panels))

    def current(self) -> RecordingPanel | None:
        row = self.queue.currentRow()
        return self.panels[row] if 0 <= row < len(self.panels) else None

    def upload_current(self) -> None:
        panel = self.current()
        if panel is not None:
            panel.upload()

    # -- the runtime -----------------------------------------------------------------------------
    def set_offline(self, reason: str) -> None:
        """The runtime could not start: say why instead of "Connecting…" on every recording."""
        self.offline_reason = reason
        for panel in self.panels:
            panel.offline_reason = reason
            panel.refresh()

    def set_fetch_problem(self, reason: str) -> None:
        """HubSpot could not fetch recordings now (no working tunnel): uploads wait, saying why."""
        self.fetch_problem = reason
        for panel in self.panels:
            panel.fetch_problem = reason
            panel.refresh()

    def set_runtime(self, runtime: Any, region: str) -> None:
        self.runtime, self.region = runtime, region
        for panel in self.panels:
            panel.set_runtime(runtime, region)
        client = getattr(runtime, "client", None)
        if client is not None:
            tasks.run_task(client.owners, owner=self, name="owners", on_result=self._owners, on_error=lambda _e: None)
            tasks.run_task(seats_of, runtime, owner=self, name="seats", on_result=self._seats, on_error=lambda _e: None)
            tasks.run_task(client.call_dispositions, owner=self, name="dispositions", on_result=self._outcomes,
                           on_error=lambda _e: None)

    def _owners(self, owners: list[Any]) -> None:
        self.owners = [(str(o.id), o.name) for o in owners]
        self.ownersLoaded.emit(self.owners)
        for panel in self.panels:
            panel.form.set_owners(self.owners)

    def _seats(self, seats: dict[str, bool]) -> None:
        self.seats = seats
        for panel in self.panels:
            panel.form.set_seats(seats)

    def _outcomes(self, dispositions: list[Any]) -> None:
        self.outcomes = [(str(d.id), d.label) for d in dispositions]
        for panel in self.panels:
            panel.form.set_outcomes(self.outcomes)

    def update_submission(self, sub: h.Submission) -> None:
        for panel in self.panels:
            panel.update_submission(sub)
