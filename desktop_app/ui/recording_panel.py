"""One recording on the Upload & Log page: inspection card, call details, Upload & Log, steps, result.

Everything slow runs through ``tasks.run_task``: inspection, fixes, the submission (the runtime's
``submit`` then its blocking ``run_submission``). The runtime's listener brings each change of the
submission back to the GUI thread (``update_submission``), so the steps fill in as they happen.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QDateTime, QEvent, QObject, Qt, QTime, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QResizeEvent
from PySide6.QtWidgets import (
    QBoxLayout,
    QFileDialog,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

# The audio modules are imported here, once, not lazily in workers: two workers importing them at
# the same moment can see a partly initialised module (inspection itself runs in the helper
# process, see inspector.py, but fixes and the in-thread fallback run here).
from desktop_app.audio import analysis as _analysis  # noqa: F401 - imported by inspect() on first use
from desktop_app.audio import fixes
from desktop_app.audio.prefill import prefill_from_filename
from desktop_app.sync import history as h
from desktop_app.sync.pipeline import Pipeline
from desktop_app.ui import inspector, tasks
from desktop_app.ui.details_form import FIELD_NAMES, NO_OWNER, CallDetailsForm
from desktop_app.ui.explain import agent_error, breakable
from desktop_app.ui.formatting import format_time
from desktop_app.ui.inspection_card import InspectionCard
from desktop_app.ui.steps_view import StepsView
from desktop_app.ui.transcript_pane import TranscriptPane

if TYPE_CHECKING:
    from desktop_app.runtime import Runtime

MESSAGE_LINES = 5  # the most lines a message takes on the panel (more scroll inside the message)


def _inspect(path: str, progress: Any, cancel: threading.Event) -> tuple[Any, list[Any]]:
    return inspector.inspect(path, progress, cancel)  # in the helper process


def _prefill(path: str) -> Any:
    return prefill_from_filename(path)  # PBX patterns and region from the settings


def _apply_fix(fix: Any, path: str, second: str | None) -> str:
    if fix.kind == "swap":
        return str(fixes.swap_channels(path))
    if fix.kind == "merge":
        assert second
        return str(fixes.merge_legs(path, second))
    return str(fixes.convert(path, fmt=fix.fmt))


class RecordingPanel(QWidget):
    changed = Signal()  # status text or readiness changed (the queue list shows it)
    inspected = Signal()
    finished = Signal(object)  # the final Submission of a run
    edited = Signal()  # a field of the call details changed (the page keeps the draft)

    def __init__(self, path: str, *, region: str = "US", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.original_path = path
        self.path = path
        self.runtime: Runtime | None = None
        self.inspection: Any = None
        self.fixes: list[Any] = []
        self.submission_id: int | None = None
        self.submission: h.Submission | None = None
        self.running = False
        self.status_text = "inspecting"
        self.error = ""
        self.offline_reason = ""  # why there is no runtime (it failed to start), shown as a blocker
        self.fetch_problem = ""  # HubSpot could not fetch the recording now (the tunnel): a blocker
        self.seen: Any = None  # what the account already has of this recording (Runtime.seen), once known
        self._seen_path: str | None = None  # the file the seen check ran for
        self.seen_error = ""  # why that check could not be made (the file cannot be read)
        self.log_again = False  # the agent chose to log an already logged recording a second time
        self._cancel = threading.Event()
        self._draft: dict[str, Any] | None = None  # details restored from the saved queue, until inspected

        self.card = InspectionCard()
        self.form = CallDetailsForm(region=region)
        self.steps = StepsView()
        self.upload_button = QPushButton("&Upload && Log")
        self.upload_button.setToolTip("Upload the recording and log the call in HubSpot (Ctrl+Enter)")
        self.upload_button.setEnabled(False)
        self.why_not = QLabel("")
        self.why_not.setWordWrap(True)
        self.retry_button = QPushButton("&Retry")
        self.retry_button.hide()
        self.open_button = QPushButton("Open in &HubSpot")
        self.open_button.hide()
        self.log_again_button = QPushButton("Log it &again…")
        self.log_again_button.setToolTip("This recording was logged already: log a second call with it")
        self.log_again_button.hide()
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_details = ""  # status, correlation id and HubSpot's whole message, for "Copy details"
        self.copy_button = QPushButton("Copy details")
        self.copy_button.setToolTip("Copy the HTTP status, HubSpot's correlation id and message (for support)")
        self.copy_button.hide()
        self.transcript_pane = TranscriptPane()  # under the waveform: the call's words, made here

        details_box = QGroupBox("Call details")
        QVBoxLayout(details_box).addWidget(self.form)
        steps_box = QGroupBox("Upload && Log")
        sb = QVBoxLayout(steps_box)
        actions = QHBoxLayout()
        actions.addWidget(self.upload_button)
        actions.addWidget(self.retry_button)
        actions.addWidget(self.open_button)
        actions.addWidget(self.log_again_button)
        actions.addWidget(self.transcript_pane.transcribe_button)
        actions.addWidget(self.transcript_pane.cancel_button)
        actions.addWidget(self.transcript_pane.post_button)
        actions.addStretch(1)
        sb.addLayout(actions)
        sb.addWidget(self.why_not)
        sb.addWidget(self.steps)
        # The message gets at most a few lines of its own (more scroll inside it): a long error never
        # pushes the panel into scrolling or moves what is above it.
        self.message_area = QScrollArea()
        self.message_area.setFrameShape(QFrame.Shape.NoFrame)
        self.message_area.setWidgetResizable(True)
        self.message_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.message_area.setWidget(self.message)
        self.message_area.setFixedHeight(0)
        self.message_area.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the text is read, not a Tab stop
        self.message_area.installEventFilter(self)  # its width changes with the layout: its height follows
        message_row = QHBoxLayout()  # "Copy details" beside the message: it adds no row of its own
        message_row.addWidget(self.message_area, 1)
        message_row.addWidget(self.copy_button, 0, Qt.AlignmentFlag.AlignTop)
        sb.addLayout(message_row)

        sb.addStretch(1)
        # The card with Upload & Log under it, the details beside them: the whole form fits 1280×720
        # without scrolling, and a long message grows below the buttons (nothing above it moves).
        inner = QWidget()
        self._row = row = QBoxLayout(QBoxLayout.Direction.LeftToRight, inner)  # one above the other if narrow
        self._left = QWidget()
        col = QVBoxLayout(self._left)
        col.setContentsMargins(0, 0, 0, 0)
        col.addWidget(self.card)
        col.addWidget(self.transcript_pane)
        col.addWidget(steps_box, 1)
        row.addWidget(self._left, 11)
        self.details_area = QWidget()  # the call's details
        below = QVBoxLayout(self.details_area)
        below.setContentsMargins(0, 0, 0, 0)
        below.addWidget(details_box)
        below.addStretch(1)
        row.addWidget(self.details_area, 9)
        for label in (self.why_not, self.message):  # their text never widens the column (it wraps)
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        # Laying out and painting the whole panel at once would hold the UI thread for tens of ms:
        # the card is drawn first, the details on a later turn of the event loop.
        self.details_area.hide()
        steps_box.hide()
        def show_details() -> None:
            self.details_area.show()
            steps_box.show()
        self.card.firstPainted.connect(lambda: QTimer.singleShot(0, show_details))
        self._scroll = scroll = QScrollArea()
        scroll.setAccessibleName(f"Recording {Path(path).name}")  # a Tab stop: a screen reader names it
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

        self.form.validityChanged.connect(lambda _v: self.refresh())
        self.form.errorsChanged.connect(self.refresh)  # the reasons follow the typing, not only validity
        self.upload_button.clicked.connect(self.upload)
        self.retry_button.clicked.connect(self.retry)
        self.open_button.clicked.connect(self.open_in_hubspot)
        self.copy_button.clicked.connect(self.copy_details)
        self.log_again_button.clicked.connect(self.choose_log_again)
        self.card.fixRequested.connect(self.request_fix)
        self.transcript_pane.seekRequested.connect(self.play_from)
        f = self.form
        for sig in (f.title.textChanged, f.notes.textChanged, f.owner.currentTextChanged, f.from_number.textChanged,
                    f.to_number.textChanged, f.direction.currentIndexChanged, f.status.currentIndexChanged,
                    f.outcome.currentIndexChanged, f.timestamp.dateTimeChanged, f.duration.timeChanged,
                    f.errorsChanged):
            sig.connect(lambda *_a: self.edited.emit())
        self.setTabOrder(self.form.notes, self.upload_button)
        self.setTabOrder(self.upload_button, self.transcript_pane.transcribe_button)
        self.inspect()
        tasks.run_task(_prefill, path, owner=self, name="prefill", on_result=self._prefilled, on_error=lambda _e: None)

    # -- inspection ------------------------------------------------------------------------------
    def inspect(self) -> None:
        self.inspection = None
        self.status_text = "inspecting"
        self.card.progress.show()
        progress = tasks.to_gui_progress(self.card.set_progress)  # one call per percent, no backlog
        path = self.path
        tasks.run_task(_inspect, path, progress, self._cancel, owner=self, name="inspect",
                       on_result=lambda r: self._inspected(path, *r),
                       on_error=lambda e: self._inspect_failed(path, e))
        self.refresh()

    def _inspected(self, path: str, inspection: Any, fixes: list[Any]) -> None:
        if path != self.path:
            return
        self.inspection, self.fixes = inspection, fixes
        self.card.show_inspection(path, inspection, fixes)
        self.transcript_pane.set_recording(path if inspection.probe.readable and inspection.probe.channels else None)
        self.status_text = "ready to fill in" if inspection.uploadable else "cannot be uploaded"
        if inspection.probe.duration_s:
            self.form.prefill(duration_s=inspection.probe.duration_s)
        if self._draft is not None:  # what the agent had typed wins over what the file tells
            self.restore_draft(self._draft)
            self._draft = None
        self.refresh()
        self._check_seen()
        self.inspected.emit()

    def _inspect_failed(self, path: str, exc: BaseException) -> None:
        if path == self.path:
            self.card.show_failure(path, f"The file could not be inspected: {exc}")
            self.status_text = "cannot be uploaded"
            self.refresh()
            self.inspected.emit()

    def _prefilled(self, prefill: Any) -> None:
        if prefill is None:
            return
        self.form.prefill(start=prefill.start, duration_s=prefill.duration_s, from_number=prefill.from_number,
                          to_number=prefill.to_number, direction=prefill.direction)
        if self._draft is not None:
            self.restore_draft(self._draft)

    # -- fixes -----------------------------------------------------------------------------------
    def request_fix(self, fix: Any) -> None:
        second = None
        if fix.needs_second_file:
            second, _f = QFileDialog.getOpenFileName(self, "The other leg of this call", str(Path(self.path).parent),
                                                     "Audio (*.wav *.flac *.mp3 *.m4a *.mp4 *.ogg *.opus)")
            if not second:
                return
        self.apply_fix(fix, second)

    def apply_fix(self, fix: Any, second: str | None = None) -> tasks.Task:
        """Write the fixed file (in a worker) and inspect it; it replaces this recording's file."""
        self.status_text = "fixing"
        for b in self.card.fix_buttons:
            b.setEnabled(False)
        self.refresh()
        return tasks.run_task(_apply_fix, fix, self.path, second, owner=self, name=f"fix-{fix.kind}",
                              on_result=self._fixed, on_error=self._fix_failed)

    def _fixed(self, new_path: str) -> None:
        self.path = new_path
        self.card.player.stop()
        self.inspect()

    def _fix_failed(self, exc: BaseException) -> None:
        for b in self.card.fix_buttons:
            b.setEnabled(True)
        self.status_text = "fix failed"
        self._say(f"✗ The fix could not be made: {exc}")
        self.refresh()

    # -- readiness -------------------------------------------------------------------------------
    def blockers(self) -> list[str]:
        """Why Upload & Log is not possible now (empty: it is)."""
        out = []
        if self.running:
            out.append("Uploading…")
        elif self.submission_id is not None:
            out.append("Already submitted." if self.submission is None or self.submission.status != h.FAILED
                       else "Failed: use Retry.")
        if self.inspection is None:
            out.append("The recording is being inspected.")
        elif not self.inspection.uploadable:
            out.append("The recording cannot be uploaded as it is (see the verdicts; a fix may help).")
        if self.runtime is None:
            out.append(self.offline_reason or "Connecting to HubSpot…")
        elif self.fetch_problem and self.submission_id is None:
            out.append(self.fetch_problem)
        elif self.submission_id is None and self.inspection is not None and self.inspection.uploadable:
            if self.seen_error:
                out.append(self.seen_error)
            elif self.seen is None:
                out.append("Checking whether this recording was logged already.")
            elif self.seen.logged is not None and not self.log_again:
                out.append(f"Already logged {self._when(self.seen.logged)}: choose “Log it again” to log a "
                           f"second call with it.")
        named = (f"{FIELD_NAMES.get(field, field)}: {reason}" for field, reason in self.form.errors().items())
        out += [reason for reason in dict.fromkeys(named) if reason not in out]  # each said once, in order
        return out

    def can_upload(self) -> bool:
        return not self.blockers()

    def refresh(self) -> None:
        self._arrange()  # the card may have grown (the inspection's facts and buttons)
        reasons = self.blockers()
        self.upload_button.setEnabled(not reasons)
        self.why_not.setText("" if not reasons or self.submission_id is not None else
                             "Not yet:\n" + "\n".join(f"• {r}" for r in reasons))
        self.changed.emit()

    def set_runtime(self, runtime: Runtime, region: str) -> None:
        self.runtime = self.transcript_pane.runtime = runtime
        self.form.set_client(runtime.client, region)
        self.refresh()
        self._check_seen()

    # -- a recording logged before ---------------------------------------------------------------
    def _check_seen(self) -> None:
        """Ask the runtime (in a worker: it reads the whole file) what the account has of this recording."""
        if (self.runtime is None or self.inspection is None or not self.inspection.uploadable
                or self.submission_id is not None or self._seen_path == self.path or self.running):
            return
        path = self._seen_path = self.path
        self.seen, self.seen_error = None, ""
        tasks.run_task(self.runtime.seen, Path(path), owner=self, name="seen",
                       on_result=lambda seen: self._seen(path, seen),
                       on_error=lambda exc: self._seen_failed(path, exc))

    def _seen_failed(self, path: str, exc: BaseException) -> None:
        if path == self.path:
            self._seen_path = None  # checked again when the panel is given the runtime or a fixed file
            self.status_text = "cannot be read"
            reason = str(exc).removeprefix("It cannot be read: ").rstrip(".")
            self.seen_error = f"The recording cannot be read ({reason}): put it back, or open it again."
            self.refresh()

    @staticmethod
    def _when(sub: h.Submission) -> str:
        return f"on {format_time(sub.created_at)}" if format_time(sub.created_at) else "before"

    def _seen(self, path: str, seen: Any) -> None:
        if path != self.path or self.submission_id is not None:
            return
        self.seen = seen
        if seen.unfinished is not None:  # an earlier run left it: follow that one, never a second call
            sub = seen.unfinished
            self.submission_id, self.submission = sub.id, sub
            self.transcript_pane.set_submission(sub)
            self.steps.show_submission(sub)
            self.status_text = sub.status
            self._say(f"This recording was submitted {self._when(sub)} and that upload is not finished: it goes "
                      f"on by itself (its steps are below), so it is not sent twice.")
        elif seen.logged is not None:
            sub = seen.logged
            self.transcript_pane.set_submission(sub)  # its transcript can be posted from here
            self.status_text = "already logged"
            self._say(f"Already logged {self._when(sub)} by {sub.agent}: call {sub.call_id} ({sub.status}). "
                      f"Logging it again makes a second call in HubSpot.")
            self.open_button.setVisible(bool(self.call_link(sub)))
            self.log_again_button.show()
        self.refresh()

    def choose_log_again(self) -> None:
        """The explicit choice to log an already logged recording once more."""
        self.log_again = True
        self.log_again_button.hide()
        self._say("It will be logged as a second call when you press Upload & Log.")
        self.status_text = "ready to fill in"
        self.refresh()

    # -- the draft kept across restarts (see UploadPage, desktop_app/sync/drafts.py) --------------
    def draft_fields(self) -> dict[str, Any]:
        """The call details as typed, as plain values (nothing for a submitted recording: it is in the history)."""
        if self.submission_id is not None:
            return {}
        f = self.form
        t = f.duration.time()
        contact = f.contact()
        return {
            "title": f.title.text(), "notes": f.notes.toPlainText(), "owner": f.owner.currentText(),
            "from_number": f.from_number.text(), "to_number": f.to_number.text(),
            "direction": str(f.direction.currentData()), "status": str(f.status.currentData()),
            "outcome": str(f.outcome.currentData() or ""), "timestamp": f.timestamp.dateTime().toSecsSinceEpoch(),
            "duration_s": t.hour() * 3600 + t.minute() * 60 + t.second(),
            "contact": dataclasses.asdict(contact) if contact is not None else None,
        }

    def restore_draft(self, fields: dict[str, Any]) -> None:
        """Put saved details back (values of the wrong type are skipped); kept until the file's own
        prefill and inspection are done, so they do not overwrite it."""
        from contextlib import suppress

        from desktop_app.ui.contacts import Found

        self._draft = dict(fields)
        f = self.form

        def text(key: str) -> str | None:
            value = fields.get(key)
            return value if isinstance(value, str) else None

        for key, edit in (("title", f.title), ("from_number", f.from_number), ("to_number", f.to_number)):
            if text(key) is not None:
                edit.setText(text(key))
        if text("notes") is not None and f.notes.toPlainText() != text("notes"):
            f.notes.setPlainText(text("notes") or "")
        if text("owner"):
            i = f.owner.findText(text("owner") or "", Qt.MatchFlag.MatchFixedString)
            if i >= 0:
                f.owner.setCurrentIndex(i)
            else:
                f.owner.setEditText(text("owner") or "")  # judged against the owners when they are loaded
        for key, combo in (("direction", f.direction), ("status", f.status), ("outcome", f.outcome)):
            i = combo.findData(text(key)) if text(key) is not None else -1
            if i >= 0:
                combo.setCurrentIndex(i)
        if isinstance(fields.get("timestamp"), int):
            f.timestamp.setDateTime(QDateTime.fromSecsSinceEpoch(fields["timestamp"]))
        if isinstance(fields.get("duration_s"), int):
            f.duration.setTime(QTime(0, 0).addSecs(fields["duration_s"]))
        contact = fields.get("contact")
        if isinstance(contact, dict):
            with suppress(TypeError):
                f.choose_contact(Found(**{k: str(contact.get(k) or "") for k in ("id", "name", "email", "phone",
                                                                                   "why")}))
        f.revalidate()

    def has_entries(self) -> bool:
        """Whether the agent typed details that removing this recording would lose (it was not submitted)."""
        if self.submission_id is not None:
            return False
        f = self.form
        return bool(f.title.text().strip() or f.notes.toPlainText().strip() or f.outcome.currentData()
                    or f.owner.currentText().strip() not in ("", NO_OWNER))

    # -- one of a batch (UploadPage.upload_all_ready) ---------------------------------------------
    def begin_batch(self) -> tuple[Path, Any, str | None]:
        """Hand this recording to a batch: what ``runtime.submit`` takes; the panel waits, as for Upload & Log."""
        details = self.form.details()
        self.running = True
        self.status_text = "waiting in the batch"
        self._say("")
        self.log_again_button.hide()
        self.open_button.hide()
        self.refresh()
        sha = self.seen.sha256 if self.seen is not None and self._seen_path == self.path else None
        return Path(self.path), details, sha

    def batch_submitted(self, submission_id: int) -> None:
        self.submission_id = submission_id
        self.status_text = "queued"
        self.refresh()

    def batch_not_sent(self, why: str) -> None:
        """The batch ended before this recording was submitted: it is as it was, ready to upload."""
        self.running = False
        self.status_text = "ready to fill in"
        self._say(why)
        self.refresh()

    # -- Upload & Log ----------------------------------------------------------------------------
    def upload(self) -> None:
        runtime = self.runtime
        if not self.can_upload() or runtime is None:
            return
        details = self.form.details()
        self.running = True
        self.status_text = "uploading"
        self._say("")
        self.refresh()
        self.log_again_button.hide()
        self.open_button.hide()
        if runtime.team is not None:  # a desk that joined a team: to the relay
            tasks.run_task(runtime.submit_to_team, Path(self.path), details, tasks.to_gui(self._team_progress),
                           owner=self, name="submit-to-relay", pool=tasks.long_pool(), on_result=self._team_sent,
                           on_error=self._run_failed)
            return
        sha = self.seen.sha256 if self.seen is not None and self._seen_path == self.path else None
        tasks.run_task(runtime.submit, Path(self.path), details, None, sha256=sha, owner=self, name="submit",
                       pool=tasks.long_pool(), on_result=self._submitted, on_error=self._run_failed)

    def _team_progress(self, _external_id: str, done: int, size: int) -> None:
        self.status_text = f"sending to the relay {100 * done // max(1, size)} %"
        self._say(f"Sending to the team relay: {done:,} of {size:,} bytes.")
        self.refresh()

    def _team_sent(self, sent: Any) -> None:
        """What became of a recording sent to the team's relay (`relay.desk.Sent`)."""
        self.running = False
        if sent.state == "sent":
            self.status_text = f"{sent.status} on the relay"
            self._say(f"✓ Sent to the team relay ({sent.status}, external id {sent.external_id}): the relay logs "
                      "the call in HubSpot; the History page follows it.")
        elif sent.state == "pending":
            self.status_text = "in the outbox"
            self._say(f"The relay could not take it now ({sent.error}); it waits in this desk's outbox and is sent "
                      "when the relay answers again.")
        else:
            self.status_text = "refused"
            self.show_error(sent.error or "The relay refused it.", None, None)
        self.refresh()
        self.finished.emit(self.submission)

    def _submitted(self, submission_id: int) -> None:
        self.submission_id = submission_id
        self._run()

    def _run(self) -> None:
        assert self.submission_id is not None and self.runtime is not None
        self.running = True
        self.refresh()
        tasks.run_task(self.runtime.run_submission, self.submission_id, owner=self, name="run-submission", pool=tasks.long_pool(),
                       on_result=self._ran, on_error=self._run_failed)

    def retry(self) -> None:
        runtime = self.runtime
        if self.submission_id is None or self.running or runtime is None:
            return
        self.retry_button.hide()
        self._say("")
        self.running = True
        self.status_text = "retrying"
        self.refresh()
        sid = self.submission_id

        def again() -> h.Submission:
            runtime.retry(sid)
            return runtime.run_submission(sid)

        tasks.run_task(again, owner=self, name="retry", pool=tasks.long_pool(), on_result=self._ran, on_error=self._run_failed)

    def update_submission(self, sub: h.Submission) -> None:
        """The runtime reported a change (already on the GUI thread)."""
        self.transcript_pane.follow(sub)
        if sub.id != self.submission_id:
            return
        self.submission = sub
        self.transcript_pane.set_submission(sub)
        self.steps.show_submission(sub)
        self.status_text = sub.status
        if not self.running:
            self._show_outcome(sub)
        self.changed.emit()

    def _show_outcome(self, sub: h.Submission) -> None:
        """What became of the call, where the agent looks: ready, transcribed, or not (and why)."""
        if sub.status == h.READY:
            self._say("✓ The call is in HubSpot and the recording is ready for transcription.")
        elif sub.status == h.TRANSCRIBED:
            self._say("✓ The call is in HubSpot and HubSpot transcribed it.")
        elif sub.status == h.NOT_TRANSCRIBED:
            self._say(f"⚠ The call is in HubSpot but was not transcribed. {sub.error or ''}".strip())
        else:
            return
        self.open_button.setVisible(bool(self.call_link(sub)))
        self.retry_button.hide()

    def _ran(self, sub: h.Submission) -> None:
        self.running = False
        self.update_submission(sub)
        if sub.status in (h.READY, h.TRANSCRIBED, h.NOT_TRANSCRIBED):
            self._show_outcome(sub)
        elif sub.status == h.FAILED and sub.error == Pipeline.CANCELLED:  # the agent's choice, not an error
            self._say(f"⏹ {sub.error}")
            self.retry_button.show()
        elif sub.status == h.FAILED:
            self.show_error(sub.error or "failed", sub.error_status, sub.error_correlation_id)
        else:
            self._say(f"Waiting to try again ({sub.error or 'HubSpot was busy'}).")
        self.refresh()
        self.finished.emit(sub)

    def _run_failed(self, exc: BaseException) -> None:
        self.running = False
        self.show_error(str(exc), getattr(exc, "status", None), getattr(exc, "correlation_id", None))
        self.status_text = "failed"
        self.refresh()
        self.finished.emit(self.submission)

    def _say(self, text: str) -> None:
        """A message that is not an error of HubSpot's (no details to copy)."""
        self._set_message(breakable(text))
        self.copy_button.hide()
        self.error_details = ""

    def _set_message(self, text: str) -> None:
        self.message.setText(text)
        self._fit_message()

    def _fit_message(self) -> None:
        """The message area as tall as its text, up to MESSAGE_LINES lines."""
        if not self.message.text():
            self.message_area.setFixedHeight(0)
            return
        # as wide as it is with its scroll bar shown: the height found never calls the scroll bar up itself
        width = max(1, self.message_area.width() - self.message_area.verticalScrollBar().sizeHint().width() - 2)
        cap = self.message.fontMetrics().lineSpacing() * MESSAGE_LINES
        self.message_area.setFixedHeight(min(self.message.heightForWidth(width) + 2, cap))

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._arrange()
        self._fit_message()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if watched is self.message_area and event.type() == QEvent.Type.Resize:
            assert isinstance(event, QResizeEvent)
            if event.size().width() != event.oldSize().width():
                self._fit_message()
        return False

    def _arrange(self) -> None:
        """The details beside the card and Upload & Log where they fit side by side, else below them."""
        margins = self._row.contentsMargins()
        need = (self._left.minimumSizeHint().width() + self.details_area.minimumSizeHint().width()
                + self._row.spacing() + margins.left() + margins.right())
        wanted = (QBoxLayout.Direction.LeftToRight if need <= self._scroll.viewport().width()
                  else QBoxLayout.Direction.TopToBottom)
        if self._row.direction() != wanted:
            self._row.setDirection(wanted)

    def show_error(self, message: str, status: int | None, correlation_id: str | None) -> None:
        self.error = message
        text, self.error_details = agent_error(message, status, correlation_id)
        self._set_message(breakable(text))  # wraps inside the panel, whatever HubSpot wrote
        self.copy_button.show()
        self.copy_button.setToolTip(self.error_details)
        self.retry_button.setVisible(self.submission_id is not None)

    def copy_details(self) -> None:
        from PySide6.QtWidgets import QApplication

        clipboard = QApplication.clipboard()
        if clipboard is not None and self.error_details:
            clipboard.setText(f"{Path(self.path).name}\n{self.error_details}")

    def call_link(self, sub: h.Submission | None) -> str | None:
        """The call's page: HubSpot's for an account; none for the sandbox (it has no pages, and its calls
        are not in app.hubspot.com)."""
        if sub is None or (self.runtime is not None and self.runtime.is_sandbox):
            return None
        return h.call_url(sub)

    def open_in_hubspot(self) -> None:
        sub = self.submission or (self.seen.logged if self.seen is not None else None)
        url = self.call_link(sub)
        if url:
            QDesktopServices.openUrl(QUrl(url))

    def play_from(self, ms: int) -> None:
        """Play the recording from ``ms`` (a transcript line was clicked)."""
        player = self.card.player
        if player.duration_ms > 0:
            player.seek_fraction(ms / player.duration_ms)
            player.play()

    def close_panel(self) -> None:
        self._cancel.set()
        self.transcript_pane.cancel()
        self.card.player.stop()
