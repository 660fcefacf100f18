"""The Upload & Log page: a queue of recordings (dropped or picked) and one panel for each."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import QDragEnterEvent, QDragLeaveEvent, QDropEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from desktop_app.sync import AUDIO_SUFFIXES, drafts
from desktop_app.sync import history as h
from desktop_app.sync.pipeline import Pipeline
from desktop_app.ui import look, tasks
from desktop_app.ui.explain import breakable
from desktop_app.ui.recording_panel import RecordingPanel

if TYPE_CHECKING:
    from desktop_app.runtime import Runtime

SUFFIXES = tuple(sorted(AUDIO_SUFFIXES))  # what `callrelay upload --folder` takes, too
FILE_FILTER = "Audio recordings (" + " ".join(f"*{s}" for s in SUFFIXES) + ");;All files (*)"


def seats_of(runtime: Runtime) -> dict[str, bool]:
    """Which owners have a paid Sales/Service seat, where the app can know it (runs in a worker).

    HubSpot's owners API does not say; the sandbox keeps the flag for each of its owners."""
    sandbox = runtime.sandbox
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


# What a batch is doing for the submission in each pipeline state (the step it is on).
STEP_NOW = {"checked": "keeping the recording", "stored": "registering the recording link",
            "endpoint_registered": "logging the call", "call_logged": "linking the contact",
            "associated": "marking it ready for transcription"}
SAVE_DELAY_MS = 300  # the drafts are written this long after the last change (in a worker)


def run_batch(runtime: Runtime, items: list[tuple[Path, Any, str | None]], cancel: threading.Event,
              submitted: Any) -> list[Any]:
    """Submit each recording as Upload & Log does (``runtime.submit``), then carry them together
    (``runtime.run_many``: HubSpot's batch calls where they fit). Runs in a worker. What became of each:
    its final Submission, an exception, or None when the batch was cancelled before it was submitted."""
    results: list[Any] = [None] * len(items)
    ids: list[tuple[int, int]] = []
    for i, (path, details, sha) in enumerate(items):
        if cancel.is_set():
            continue
        try:
            sid = runtime.submit(path, details, sha256=sha)
        except Exception as exc:  # noqa: BLE001 - this recording's failure, shown on its panel
            results[i] = exc
            continue
        submitted(i, sid)
        ids.append((i, sid))
    if ids:
        try:
            finals = {sub.id: sub for sub in runtime.run_many([sid for _i, sid in ids])}
        except Exception as exc:  # noqa: BLE001 - shown on each panel of the batch
            finals = {}
            for i, _sid in ids:
                results[i] = exc
        for i, sid in ids:
            if sid in finals:
                results[i] = finals[sid]
    return results


@dataclass
class Batch:
    panels: list[RecordingPanel]
    cancel: threading.Event = field(default_factory=threading.Event)
    ids: dict[int, RecordingPanel] = field(default_factory=dict)  # submission id -> its panel
    subs: dict[int, h.Submission] = field(default_factory=dict)  # the latest of each
    current: str = ""
    refused: int = 0  # Cancel came too late for these (they had reached HubSpot)


class UploadPage(QWidget):
    folderUsed = Signal(str)
    ownersLoaded = Signal(list)  # [(id, name)]
    panelAdded = Signal(object)
    batchFinished = Signal()
    draftsSaved = Signal()
    draftsRestored = Signal()

    def __init__(self, parent: QWidget | None = None, *, region: str = "US", last_folder: str = "",
                 keep_drafts: bool = True) -> None:
        super().__init__(parent)
        self.region = region
        self.last_folder = last_folder
        self.runtime: Runtime | None = None
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
        self.upload_all_button = QPushButton("Upload all ready")
        self.upload_all_button.setToolTip("Upload & Log every queued recording whose details are complete")
        self.upload_all_button.setEnabled(False)
        self.notice = QLabel("")  # the saved queue could not be read or written: one sentence
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet("color: #a04000;")
        self.notice.hide()
        self.batch: Batch | None = None
        self.batch_box = QWidget()
        self.batch_box.setAccessibleName("Batch progress")
        self.batch_progress = QProgressBar()
        self.batch_progress.setFormat("%v of %m")
        self.batch_label = QLabel("")
        self.batch_label.setWordWrap(True)
        self.batch_label.setMinimumWidth(1)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the recordings of this batch that have not reached HubSpot yet")
        bcol = QVBoxLayout(self.batch_box)
        bcol.setContentsMargins(0, 0, 0, 0)
        bcol.addWidget(self.batch_progress)
        bcol.addWidget(self.batch_label)
        bcol.addWidget(self.cancel_button)
        self.batch_box.hide()

        left = QWidget()
        lcol = QVBoxLayout(left)
        lcol.setContentsMargins(0, 0, 0, 0)
        lcol.addWidget(self.open_button)
        lcol.addWidget(self.notice)
        lcol.addWidget(self.queue, 1)
        row = QHBoxLayout()
        row.addWidget(self.remove_button)
        row.addStretch(1)
        row.addWidget(self.upload_all_button)
        lcol.addLayout(row)
        lcol.addWidget(self.batch_box)
        split = QSplitter()
        split.addWidget(left)
        split.addWidget(self.stack)
        split.setStretchFactor(1, 1)
        split.setSizes([260, 1000])
        QVBoxLayout(self).addWidget(split)

        self.open_button.clicked.connect(self.pick_files)
        self.remove_button.clicked.connect(self.remove_current)
        self.queue.currentRowChanged.connect(self._select)
        self.upload_all_button.clicked.connect(self.upload_all_ready)
        self.cancel_button.clicked.connect(self.cancel_batch)

        # the queue and its unsent details, kept in the data directory (desktop_app/sync/drafts.py)
        self.keep_drafts = keep_drafts
        self._restored = not keep_drafts  # nothing is saved before the saved queue was read back
        self._save_timer = QTimer(self, singleShot=True, interval=SAVE_DELAY_MS)
        self._save_timer.timeout.connect(self.save_drafts)
        self._save_pool = QThreadPool(self)
        self._save_pool.setMaxThreadCount(1)  # saves are written in the order they were made
        if keep_drafts:
            tasks.run_task(drafts.load, owner=self, name="load-drafts", on_result=self._restore,
                           on_error=lambda e: self._restore(([], f"The saved queue could not be read ({e})."
                                                                 f" The queue starts empty.")))

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
        """One panel now and the next on a later turn of the event loop: building a panel is tens of ms
        of widget work, and a folder of many built at once would hold the window for all of them."""
        if not files:
            return
        self.add_file(files[0])
        if len(files) > 1:
            rest = files[1:]
            QTimer.singleShot(0, self, lambda: self._add_files(rest))
            return
        self.last_folder = str(Path(files[-1]).parent)
        self.folderUsed.emit(self.last_folder)

    def add_file(self, path: str, draft: dict[str, Any] | None = None) -> RecordingPanel:
        panel = RecordingPanel(path, region=self.region)
        look.decorate_panel(panel)
        if draft:
            panel.restore_draft(draft)
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
        panel.changed.connect(self._update_upload_all)
        panel.edited.connect(self._drafts_changed)
        self._label(panel, item)
        self.queue.setCurrentItem(item)
        self.remove_button.setEnabled(True)
        self._drafts_changed()
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
        """Remove the shown recording from the queue; a form with details typed in asks first."""
        row = self.queue.currentRow()
        if not (0 <= row < len(self.panels)) or self.panels[row].running:
            return
        if self.panels[row].has_entries():
            name = Path(self.panels[row].path).name
            answer = QMessageBox.question(
                self, "Remove recording",
                f"Remove {name} from the queue? The call details typed for it are lost; it was not uploaded.",
                QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
                QMessageBox.StandardButton.Cancel)
            if answer != QMessageBox.StandardButton.Discard:
                return
        panel = self.panels.pop(row)
        panel.close_panel()
        self.queue.takeItem(row)
        self.stack.removeWidget(panel)
        panel.deleteLater()
        self.remove_button.setEnabled(bool(self.panels))
        self._update_upload_all()
        self._drafts_changed()

    # -- the queue across restarts ---------------------------------------------------------------
    def _restore(self, loaded: tuple[list[drafts.Draft], str]) -> None:
        saved, problem = loaded
        self._say_notice(problem)
        for d in saved:
            self.add_file(d.path, d.fields)
        self._restored = True
        if saved:
            self.queue.setCurrentRow(0)
        self.draftsRestored.emit()

    def _say_notice(self, text: str) -> None:
        self.notice.setText(text)
        self.notice.setVisible(bool(text))

    def _drafts_changed(self) -> None:
        if self.keep_drafts:
            self._save_timer.start()

    def save_drafts(self) -> tasks.Task | None:
        """Write the queue and its unsent details (in a worker, one save at a time, in order)."""
        if not self.keep_drafts:
            return None
        if not self._restored:
            self._save_timer.start()  # the saved queue is being read back: it must not be overwritten yet
            return None
        snapshot = [drafts.Draft(p.path, p.draft_fields()) for p in self.panels]
        return tasks.run_task(drafts.save, snapshot, owner=self, name="save-drafts", pool=self._save_pool,
                              on_result=lambda _r: self._saved(), on_error=lambda e: self._say_notice(str(e)))

    def _saved(self) -> None:
        if self.notice.text().startswith("The queue could not be saved"):
            self._say_notice("")
        self.draftsSaved.emit()

    # -- Upload all ready ------------------------------------------------------------------------
    def ready_panels(self) -> list[RecordingPanel]:
        return [p for p in self.panels if p.can_upload()]

    def _update_upload_all(self) -> None:
        n = len(self.ready_panels()) if self.batch is None else 0
        self.upload_all_button.setEnabled(n > 0)
        self.upload_all_button.setToolTip(f"Upload & Log the {n} queued recording(s) whose details are complete"
                                          if n else "No queued recording is complete and uploadable yet")

    def upload_all_ready(self) -> tasks.Task | None:
        """Upload & Log every ready recording, one after another, with one progress view and Cancel."""
        ready = self.ready_panels()
        if self.batch is not None or not ready or self.runtime is None:
            return None
        batch = self.batch = Batch(ready)
        items = [p.begin_batch() for p in ready]
        self.batch_progress.setRange(0, len(ready))
        self.batch_progress.setValue(0)
        self.cancel_button.setEnabled(True)
        self.batch_box.show()
        self._update_upload_all()
        self._show_batch()
        return tasks.run_task(run_batch, self.runtime, items, batch.cancel, tasks.to_gui(self._batch_submitted),
                              owner=self, name="upload-all", pool=tasks.long_pool(),
                              on_result=lambda results: self._batch_done(batch, results),
                              on_error=lambda exc: self._batch_done(batch, [exc] * len(batch.panels)))

    def _batch_submitted(self, index: int, submission_id: int) -> None:
        batch = self.batch
        if batch is None:
            return
        panel = batch.panels[index]
        batch.ids[submission_id] = panel
        panel.batch_submitted(submission_id)
        if batch.cancel.is_set():  # submitted while Cancel was being pressed
            self._cancel_one(batch, submission_id)
        self._show_batch()

    def cancel_batch(self) -> None:
        """Stop what has not reached HubSpot: recordings not yet submitted are not sent; submissions before
        their call was logged are cancelled (``runtime.cancel``); the rest go on."""
        batch = self.batch
        if batch is None or batch.cancel.is_set():
            return
        batch.cancel.set()
        self.cancel_button.setEnabled(False)
        for sid in batch.ids:
            sub = batch.subs.get(sid)
            if sub is None or sub.status in h.UNFINISHED:
                self._cancel_one(batch, sid)
        self._show_batch()

    def _cancel_one(self, batch: Batch, submission_id: int) -> None:
        runtime = self.runtime
        assert runtime is not None, "a batch runs only once the runtime is up"

        def done(stopped: bool) -> None:
            if not stopped:
                batch.refused += 1
                self._show_batch()

        tasks.run_task(runtime.cancel, submission_id, owner=self, name="cancel", on_result=done,
                       on_error=lambda _e: done(False))

    def _show_batch(self) -> None:
        batch = self.batch
        if batch is None:
            return
        total = len(batch.panels)
        finished = sum(1 for s in batch.subs.values() if s.status not in h.UNFINISHED)
        self.batch_progress.setValue(finished)
        if batch.cancel.is_set():
            text = "Cancelling: what has not reached HubSpot is stopped."
            if batch.refused:
                text += f" {batch.refused} had reached HubSpot already and go on."
        else:
            text = f"Uploading {min(finished + 1, total)} of {total}"
            text += f": {batch.current}" if batch.current else "…"
        self.batch_label.setText(breakable(text))  # a long file name wraps instead of widening the queue

    def _batch_done(self, batch: Batch, results: list[Any]) -> None:
        logged = cancelled = failed = unsent = 0
        for panel, result in zip(batch.panels, results, strict=True):
            if result is None:
                unsent += 1
                panel.batch_not_sent("Not sent: the batch was cancelled before this recording's turn.")
            elif isinstance(result, BaseException):
                failed += 1
                panel._run_failed(result)
            else:
                batch.subs[result.id] = result
                if result.status == h.FAILED and result.error == Pipeline.CANCELLED:
                    cancelled += 1
                elif result.status == h.FAILED:
                    failed += 1
                else:
                    logged += 1
                panel._ran(result)
        self.batch = None
        self.batch_progress.setValue(self.batch_progress.maximum())
        parts = [f"{logged} logged"]
        if cancelled + unsent:
            parts.append(f"{cancelled + unsent} cancelled (not sent to HubSpot)")
        if failed:
            parts.append(f"{failed} failed (see each recording)")
        self.batch_label.setText(f"Batch done: {', '.join(parts)}.")
        self.cancel_button.setEnabled(False)
        self._update_upload_all()
        self._drafts_changed()
        self.batchFinished.emit()

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

    def set_runtime(self, runtime: Runtime, region: str) -> None:
        self.runtime, self.region = runtime, region
        for panel in self.panels:
            panel.set_runtime(runtime, region)
        client = runtime.client
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
        batch = self.batch
        if batch is not None and sub.id in batch.ids:
            batch.subs[sub.id] = sub
            if sub.status in h.UNFINISHED and sub.state in STEP_NOW:
                batch.current = f"{STEP_NOW[sub.state]} ({Path(batch.ids[sub.id].path).name})"
            self._show_batch()
