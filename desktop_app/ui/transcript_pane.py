"""The transcript of one recording, made here (issue 20): Transcribe runs the engine on a worker (progress,
Cancel); the lines show time, speaker and text; clicking a line plays the call from there; the text of a
line can be corrected before posting (``transcript()`` gives the corrected one).

The pane takes no room until there is something to show (progress, a message, lines): its two buttons sit
in a row of the page that is there anyway (``transcribe_button``, ``cancel_button``), so the Upload form
still fits 1280×720."""

from __future__ import annotations

import importlib.util
import threading
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop_app.transcribe import Transcript, Utterance
from desktop_app.ui import tasks

SIDES = {1: "Caller", 2: "Recipient"}
TIME, SPEAKER, TEXT = range(3)


def clock(ms: int) -> str:
    m, s = divmod(max(0, ms) // 1000, 60)
    return f"{m:02d}:{s:02d}"


def engine_available() -> bool:
    """Whether the transcribe extra (faster-whisper) is installed; found without importing it."""
    return importlib.util.find_spec("faster_whisper") is not None


def _transcribe(path: str, progress: Any, cancel: threading.Event) -> Transcript:
    """On a worker: the settings' model and language, then the engine."""
    from desktop_app import settings as settings_mod
    from desktop_app.transcribe import engine

    conf = settings_mod.load()
    return engine.transcribe_recording(path, model_dir=str(conf.get("transcribe.model_dir")),
                                       language=str(conf.get("transcribe.language")) or None,
                                       progress=progress, cancel=cancel)


class TranscriptPane(QWidget):
    seekRequested = Signal(int)  # ms: play the call from there
    transcribed = Signal(object)  # the Transcript the engine made

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Transcript")
        self.path: str | None = None
        self.language = ""
        self._utterances: list[Utterance] = []
        self._task: tasks.Task | None = None
        self._cancel = threading.Event()
        self.transcribe_button = QPushButton("&Transcribe")
        self.transcribe_button.setToolTip("Write the call's words here, one speaker per channel (nothing is sent)")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.hide()
        for b in (self.transcribe_button, self.cancel_button):  # they join a row of the page: never widen it
            b.setMinimumWidth(1)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setFixedHeight(6)
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # never widens the column
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Time", "Speaker", "Text"])
        self.table.setAccessibleName("Transcript lines")
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(TIME, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(SPEAKER, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(TEXT, QHeaderView.ResizeMode.Stretch)
        self.table.setWordWrap(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                   | QAbstractItemView.EditTrigger.EditKeyPressed
                                   | QAbstractItemView.EditTrigger.AnyKeyPressed)
        self.table.hide()

        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.status)
        box.addWidget(self.progress)
        box.addWidget(self.table, 1)

        self.transcribe_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.table.cellClicked.connect(self._clicked)
        self.set_recording(None)

    # --- the recording --------------------------------------------------------------------------
    def set_recording(self, path: str | None) -> None:
        """Show ``path``'s (empty) transcript; a transcription running for another file is cancelled."""
        if path == self.path and path is not None:
            return
        self.cancel()
        self.path = path
        self.show_transcript(Transcript("", ()))
        available = engine_available()
        self.transcribe_button.setEnabled(path is not None and available)
        self.transcribe_button.setToolTip(
            "Write the call's words here, one speaker per channel (nothing is sent)" if available else
            "Transcription needs the transcribe extra: pip install 'callrelay[transcribe]'.")
        self._say("")

    # --- running ----------------------------------------------------------------------------------
    def start(self) -> None:
        if self.path is None or self.running:
            return
        self._cancel = threading.Event()
        path = self.path
        self.transcribe_button.setEnabled(False)
        self.cancel_button.show()
        self.cancel_button.setEnabled(True)
        self.progress.setValue(0)
        self.progress.show()
        self._fit()
        self._say("Transcribing…")
        self._task = tasks.run_task(_transcribe, path, tasks.to_gui(self._progress), self._cancel, owner=self,
                                    pool=tasks.long_pool(), name="transcribe",
                                    on_result=lambda t: self._done(path, t),
                                    on_error=lambda e: self._failed(path, e))

    @property
    def running(self) -> bool:
        return self._task is not None

    def cancel(self) -> None:
        if self._task is None:
            return
        self._cancel.set()
        self.cancel_button.setEnabled(False)
        self._say("Cancelling…")

    def _progress(self, fraction: float) -> None:
        if self._task is not None:
            self.progress.setValue(int(fraction * 100))

    def _finish(self) -> None:
        self._task = None
        self.cancel_button.hide()
        self.progress.hide()
        self._fit()
        self.transcribe_button.setEnabled(self.path is not None and engine_available())

    def _done(self, path: str, transcript: Transcript) -> None:
        if path != self.path:
            return
        self._finish()
        self.show_transcript(transcript)
        words = len(transcript.utterances)
        self._say(f"{words} line(s); click one to play from there, double-click to correct it."
                            if words else "No speech was found.")
        self.transcribed.emit(transcript)

    def _failed(self, path: str, exc: BaseException) -> None:
        from desktop_app.errors import UserError
        from desktop_app.transcribe.engine import Cancelled

        if path != self.path:
            return
        self._finish()
        if isinstance(exc, Cancelled):
            self._say("Cancelled.")
        elif isinstance(exc, UserError):
            self._say(str(exc))
        else:
            self._say(f"The transcription failed: {exc}.")

    # --- the lines --------------------------------------------------------------------------------
    def show_transcript(self, transcript: Transcript) -> None:
        self.language = transcript.language
        self._utterances = list(transcript.utterances)
        self.table.setRowCount(len(self._utterances))
        for i, u in enumerate(self._utterances):
            for col, text in ((TIME, clock(u.start_ms)), (SPEAKER, SIDES.get(u.channel, f"Channel {u.channel}")),
                              (TEXT, u.text)):
                item = QTableWidgetItem(text)
                if col != TEXT:
                    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                self.table.setItem(i, col, item)
        self.table.resizeRowsToContents()
        self.table.setVisible(bool(self._utterances))
        self._fit()

    def _say(self, text: str) -> None:
        self.status.setText(text)
        self.status.setVisible(bool(text))
        self._fit()

    def _fit(self) -> None:
        """Shown only while it has something to show."""
        self.setVisible(any(not w.isHidden() for w in (self.status, self.progress, self.table)))

    def _clicked(self, row: int, _col: int) -> None:
        if 0 <= row < len(self._utterances):
            self.seekRequested.emit(self._utterances[row].start_ms)

    def transcript(self) -> Transcript:
        """The transcript with the agent's corrections (a line emptied is left out)."""
        out = []
        for i, u in enumerate(self._utterances):
            item = self.table.item(i, TEXT)
            text = (item.text() if item is not None else u.text).strip()
            if text:
                out.append(Utterance(u.channel, u.start_ms, u.end_ms, text))
        return Transcript(self.language, tuple(out))
