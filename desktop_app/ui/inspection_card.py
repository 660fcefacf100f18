"""The inspection card of one recording: facts, two-lane waveform, verdicts, fix buttons, player."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QPaintEvent
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from desktop_app.ui.formatting import format_duration
from desktop_app.ui.player import Player
from desktop_app.ui.waveform import WaveformView

SEVERITY_MARK = {"error": "✗", "warning": "⚠", "info": "ℹ"}
SEVERITY_COLOUR = {"error": "#c0392b", "warning": "#b9770e", "info": "#2471a3"}


def facts_line(probe: Any) -> str:
    parts = []
    if probe.container:
        parts.append(probe.container.upper() + (f" ({probe.codec})" if probe.codec else ""))
    if probe.duration_s is not None:
        parts.append(format_duration(int(probe.duration_s * 1000)))
    if probe.sample_rate:
        parts.append(f"{probe.sample_rate / 1000:g} kHz")
    if probe.bit_depth:
        parts.append(f"{probe.bit_depth}-bit")
    if probe.channels:
        parts.append({1: "mono", 2: "stereo"}.get(probe.channels, f"{probe.channels} channels"))
    if probe.size_bytes is not None:
        parts.append(f"{probe.size_bytes / 1e6:.1f} MB")
    return " · ".join(parts)


class InspectionCard(QFrame):
    fixRequested = Signal(object)  # a desktop_app.audio Fix
    firstPainted = Signal()  # once, after the card was first drawn

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.name = QLabel()
        self.name.setStyleSheet("font-weight: bold;")
        self.facts = QLabel("Inspecting…")
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setTextVisible(False)
        self.progress.setFixedHeight(6)
        self.waveform = WaveformView()
        self.verdicts = QVBoxLayout()
        self.verdict_labels: list[QLabel] = []
        self.fix_row = QHBoxLayout()
        self.fix_buttons: list[QPushButton] = []
        self.player = Player()
        self._painted = False

        box = QVBoxLayout(self)
        box.addWidget(self.name)
        box.addWidget(self.facts)
        box.addWidget(self.progress)
        box.addWidget(self.waveform)
        box.addWidget(self.player)
        box.addLayout(self.verdicts)
        box.addLayout(self.fix_row)
        self.player.positionFraction.connect(self.waveform.set_position)
        self.player.soloChanged.connect(self.waveform.set_solo)
        self.waveform.seekRequested.connect(self.player.seek_fraction)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt's name
        super().paintEvent(event)
        if not self._painted:
            self._painted = True
            self.firstPainted.emit()

    def set_progress(self, fraction: float) -> None:
        self.progress.setValue(int(fraction * 100))

    def show_inspection(self, path: str, inspection: Any, fixes: list[Any]) -> None:
        from pathlib import Path

        self.name.setText(Path(path).name)
        self.facts.setText(facts_line(inspection.probe) or "Unknown format")
        self.progress.hide()
        peaks = inspection.analysis.peaks if inspection.analysis is not None else []
        self.waveform.set_peaks(peaks)
        for label in self.verdict_labels:
            label.deleteLater()
        self.verdict_labels = []
        problems = list(inspection.problems)
        if not problems:
            problems_view = [("info", "Good: two channels, a speaker on each. Ready to upload.")]
        else:
            problems_view = [(p.severity, p.message) for p in problems]
        for severity, message in problems_view:
            label = QLabel(f"{SEVERITY_MARK.get(severity, '•')} {message}")
            label.setWordWrap(True)
            label.setStyleSheet(f"color: {SEVERITY_COLOUR.get(severity, 'palette(text)')};")
            label.setProperty("severity", severity)
            self.verdicts.addWidget(label)
            self.verdict_labels.append(label)
        for b in self.fix_buttons:
            b.deleteLater()
        self.fix_buttons = []
        for fix in fixes:
            b = QPushButton(fix.label)
            b.setToolTip(fix.reason)
            b.clicked.connect(lambda _c=False, f=fix: self.fixRequested.emit(f))
            self.fix_row.addWidget(b)
            self.fix_buttons.append(b)
        self.fix_row.addStretch(0)
        if inspection.probe.readable and inspection.probe.channels:
            self.player.set_source(path, inspection.probe.channels, inspection.probe.duration_s)
        last: QWidget = self.player.solo_buttons[-1]  # Tab: the fixes right after the player, not at the end
        for b in self.fix_buttons:
            QWidget.setTabOrder(last, b)
            last = b

    def show_failure(self, path: str, message: str) -> None:
        from pathlib import Path

        self.name.setText(Path(path).name)
        self.progress.hide()
        self.facts.setText(f"✗ {message}")

    def verdict_texts(self) -> list[str]:
        return [label.text() for label in self.verdict_labels]
