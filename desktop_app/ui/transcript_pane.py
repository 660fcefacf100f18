"""The transcript of one recording, made here (issue 20): Transcribe runs the engine on a worker (progress,
Cancel); the lines show time, speaker and text; clicking a line plays the call from there; the text of a
line can be corrected before posting (``transcript()`` gives the corrected one). Post transcript sends the
corrected transcript for the recording's logged call (``sync.transcripts.post_for_submission``, on a worker);
once one is posted it reads "Replace posted transcript" and asks first (HubSpot's copy is deleted).

The pane takes no room until there is something to show (progress, a message, lines): its two buttons sit
in a row of the page that is there anyway (``transcribe_button``, ``cancel_button``, ``post_button``, the
last shown only with a transcript), so the Upload form
still fits 1280×720."""

from __future__ import annotations

import importlib.util
import threading
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop_app.sync import history as h
from desktop_app.transcribe import Transcript, Utterance
from desktop_app.ui import tasks

if TYPE_CHECKING:
    from desktop_app.runtime import Runtime

SIDES = {1: "Caller", 2: "Recipient"}
POST, REPLACE = "&Post transcript", "Re&place posted transcript"
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
    postDone = Signal(object, str)  # (transcript id or None, the sentence shown): a post ended

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
        self.post_button = QPushButton(POST)
        self.post_button.setToolTip("Post this transcript, with your corrections, to the call in HubSpot")
        self.post_button.hide()
        self.runtime: Runtime | None = None  # the panel's: its history and HubSpot client
        self.submission: h.Submission | None = None  # the recording's (logged) submission
        self._post_task: tasks.Task | None = None
        for b in (self.transcribe_button, self.cancel_button, self.post_button):  # they join a row of the page: never widen it
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
        self.post_button.clicked.connect(self.post)
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
        self.update_post()  # the lines shown are about to be replaced: not posted meanwhile

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
        self.update_post()

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
        self.update_post()

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

    # --- posting ----------------------------------------------------------------------------------
    def set_submission(self, sub: h.Submission | None) -> None:
        self.submission = sub
        self.update_post()

    def follow(self, sub: h.Submission) -> None:
        """A change the runtime reported: taken when it is this recording's submission."""
        if self.submission is not None and sub.id == self.submission.id:
            self.set_submission(sub)

    def update_post(self) -> None:
        """Post transcript: shown with a transcript, enabled once the recording's call is logged; Replace
        when Call Relay posted one already."""
        sub = self.submission
        replace = sub is not None and bool(sub.transcript_id) and sub.transcribed_by == h.SOURCE_CALLRELAY
        self.post_button.setText(REPLACE if replace else POST)
        self.post_button.setVisible(bool(self._utterances))
        self.post_button.setEnabled(bool(self._utterances) and sub is not None and bool(sub.call_id)
                                    and self._post_task is None and not self.running)

    def post(self) -> tasks.Task | None:
        """Post the corrected transcript for the submission's call (a worker); a posted one is replaced after
        the agent agrees. The outcome is said in the pane and told as other outcomes are (``postDone``)."""
        runtime, sub = self.runtime, self.submission
        if runtime is None or sub is None or not sub.call_id or self._post_task is not None or self.running:
            return None
        transcript = self.transcript()
        replace = bool(sub.transcript_id) and sub.transcribed_by == h.SOURCE_CALLRELAY
        if replace and QMessageBox.question(
                self, "Replace the posted transcript?",
                f"HubSpot's copy of the transcript ({sub.transcript_id}) will be deleted and this corrected one "
                "posted in its place.") != QMessageBox.StandardButton.Yes:
            return None
        from desktop_app.sync.transcripts import post_for_submission

        self.post_button.setEnabled(False)
        self._say("Replacing the posted transcript…" if replace else "Posting the transcript…")
        sid = sub.id
        self._post_task = tasks.run_task(post_for_submission, runtime, sid, transcript, replace, owner=self,
                                         name="post-transcript", pool=tasks.long_pool(),
                                         on_result=lambda r: self._posted(sid, r),
                                         on_error=lambda e: self._post_failed(sid, e))
        return self._post_task

    def _posted(self, sid: int, result: Any) -> None:
        self._post_task = None
        self.follow(result.submission)
        if result.transcript_id:
            how = "found already posted as" if result.adopted else "posted to HubSpot as"
            said = f"✓ The transcript was {how} {result.transcript_id}."
        else:
            said = f"⚠ The transcript was not posted: {result.error or 'HubSpot did not take it'}"
        self._post_said(sid, result.transcript_id, said)

    def _post_failed(self, sid: int, exc: BaseException) -> None:
        from desktop_app.errors import UserError
        from desktop_app.hubspot.errors import HubSpotError
        from desktop_app.sync.transcripts import PostRefused

        self._post_task = None
        if isinstance(exc, PostRefused):
            said = f"⚠ {exc}"
        elif isinstance(exc, HubSpotError):
            said = f"⚠ The transcript was not posted: {exc.agent_message}"
        elif isinstance(exc, UserError):  # PostRefused among them: its one sentence
            said = f"⚠ {exc}"
        else:
            said = f"⚠ The transcript was not posted: {exc}."
        self._post_said(sid, None, said)

    def _post_said(self, sid: int, transcript_id: str | None, said: str) -> None:
        if self.submission is not None and self.submission.id == sid:  # still this recording's submission
            self._say(said)
        self.update_post()
        self.postDone.emit(transcript_id, said)
        self._tell(transcript_id, said)

    def _tell(self, transcript_id: str | None, said: str) -> None:
        """As the window tells other outcomes: the status bar; a refused post also as a notification."""
        window = self.window()
        name = self.submission.recording_name if self.submission is not None else "the call"
        text = f"{name}: {said.lstrip('✓⚠ ')}"
        bar = getattr(window, "statusBar", None)
        if callable(bar):
            bar().showMessage(text, 30000)
        notify = getattr(window, "notify", None)
        if transcript_id is None and callable(notify):
            notify("Call Relay: a transcript was not posted", text)
