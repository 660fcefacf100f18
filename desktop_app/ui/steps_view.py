"""The pipeline's steps for one submission, each with its state and HubSpot's answer."""

from __future__ import annotations

from PySide6.QtWidgets import QGridLayout, QLabel, QWidget

from desktop_app.sync import history as h
from desktop_app.sync.pipeline import STEPS
from desktop_app.ui.explain import breakable

STEP_LABELS = {
    "store": "Keep the recording",
    "register_endpoint": "Register the recording endpoint",
    "log_call": "Log the call in HubSpot",
    "associate": "Put it on the contact",
    "mark_ready": "Mark it ready for transcription",
    "transcript": "Transcript",
    "transcript_posted": "Post the transcript (Call Relay's)",
    "transcript_deleted": "Delete the posted transcript",
}
MARKS = {"pending": "○", h.STARTED: "◐", h.OK: "✓", h.ADOPTED: "✓", h.SKIPPED: "–", h.RETRY: "↻",
         h.FAILED_OUTCOME: "✗"}
WORDS = {"pending": "waiting", h.STARTED: "running…", h.OK: "done", h.ADOPTED: "done (found from an earlier try)",
         h.SKIPPED: "not needed", h.RETRY: "will retry", h.FAILED_OUTCOME: "failed"}


def step_states(sub: h.Submission | None) -> dict[str, h.Step | None]:
    """The latest attempt at each pipeline step (None: not tried yet)."""
    out: dict[str, h.Step | None] = {name: None for name, _a, _b in STEPS}
    for s in (sub.steps if sub else []):
        if s.step in out:
            out[s.step] = s
    return out


class StepsView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        self.rows: dict[str, tuple[QLabel, QLabel, QLabel]] = {}
        for i, (name, _a, _b) in enumerate(STEPS):
            mark, label, state = QLabel(MARKS["pending"]), QLabel(STEP_LABELS.get(name, name)), QLabel("")
            state.setWordWrap(True)
            grid.addWidget(mark, i, 0)
            grid.addWidget(label, i, 1)
            grid.addWidget(state, i, 2)
            self.rows[name] = (mark, label, state)
        grid.setColumnStretch(2, 1)

    def show_submission(self, sub: h.Submission | None) -> None:
        for name, step in step_states(sub).items():
            mark, _label, state = self.rows[name]
            outcome = step.outcome if step else "pending"
            mark.setText(MARKS.get(outcome, "?"))
            text = WORDS.get(outcome, outcome)
            if step and step.attempt > 1:
                text += f" (attempt {step.attempt})"
            if step and step.outcome == h.FAILED_OUTCOME and step.http_status:
                text += f" (HTTP {step.http_status})"  # the message itself is shown once, below the steps
            elif step and step.outcome in (h.RETRY, h.FAILED_OUTCOME) and step.message:
                text += f": {step.message}"
            state.setText(breakable(text))
            state.setToolTip(step.message or "" if step else "")

    def outcomes(self) -> dict[str, str]:
        """Each step's shown state (tests read it the way a user reads the marks)."""
        return {name: state.text() for name, (_m, _l, state) in self.rows.items()}
