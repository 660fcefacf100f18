"""A two-lane waveform (channel 1 "Caller", channel 2 "Recipient") painted from analysis peaks.

The peaks come from ``desktop_app.audio``'s analysis (per channel, values 0..1, already downsampled),
so painting is cheap: one vertical line per pixel column, the largest peak that column covers.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

LANE_NAMES = ("Caller", "Recipient")
LANE_COLOURS = (QColor("#2a7de1"), QColor("#e1702a"))
LABEL_WIDTH = 78


def lane_name(index: int) -> str:
    return LANE_NAMES[index] if index < len(LANE_NAMES) else f"Channel {index + 1}"


def columns(peaks: Sequence[float], width: int) -> list[float]:
    """The peaks resampled to ``width`` columns, each the maximum of the peaks it covers."""
    n = len(peaks)
    if width <= 0 or n == 0:
        return []
    out: list[float] = []
    for x in range(width):
        lo = x * n // width
        hi = max(lo + 1, (x + 1) * n // width)
        out.append(max(peaks[lo:hi]))
    return out


class WaveformView(QWidget):
    """Shows one lane per channel; a click seeks (``seekRequested`` carries 0..1 of the duration)."""

    seekRequested = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._peaks: list[list[float]] = []
        self._position = 0.0  # 0..1
        self._solo: int | None = None
        self.setMinimumHeight(90)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setAccessibleName("Waveform")

    # -- state -----------------------------------------------------------------------------------
    def set_peaks(self, peaks: Sequence[Sequence[float]]) -> None:
        self._peaks = [[min(1.0, max(0.0, float(v))) for v in lane] for lane in peaks]
        self.setToolTip(", ".join(f"lane {i + 1}: {lane_name(i)}" for i in range(len(self._peaks))))
        self.updateGeometry()
        self.update()

    def lane_names(self) -> list[str]:
        return [lane_name(i) for i in range(len(self._peaks))]

    def set_position(self, fraction: float) -> None:
        self._position = min(1.0, max(0.0, fraction))
        self.update()

    def set_solo(self, channel: int | None) -> None:
        """Dim every lane but ``channel`` (0-based); None shows all."""
        self._solo = channel
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(480, max(90, 56 * max(1, len(self._peaks))))

    def lane_rect(self, index: int) -> QRectF:
        count = max(1, len(self._peaks))
        h = self.height() / count
        return QRectF(LABEL_WIDTH, index * h, max(1, self.width() - LABEL_WIDTH), h)

    # -- painting --------------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt's name
        p = QPainter(self)
        pal = self.palette()
        p.fillRect(self.rect(), pal.color(QPalette.ColorRole.Base))
        if not self._peaks:
            p.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No waveform yet")
            return
        for i, lane in enumerate(self._peaks):
            rect = self.lane_rect(i)
            colour = QColor(LANE_COLOURS[i % len(LANE_COLOURS)])
            if self._solo is not None and self._solo != i:
                colour.setAlpha(70)
            p.setPen(pal.color(QPalette.ColorRole.Text))
            p.drawText(QRectF(4, rect.top(), LABEL_WIDTH - 8, rect.height()),
                       Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, lane_name(i))
            mid = rect.center().y()
            half = rect.height() / 2 - 3
            p.setPen(QPen(colour, 1))
            for x, value in enumerate(columns(lane, int(rect.width()))):
                extent = max(0.5, value * half)
                px = rect.left() + x + 0.5
                p.drawLine(QPointF(px, mid - extent), QPointF(px, mid + extent))
            if i:
                p.setPen(QPen(pal.color(QPalette.ColorRole.Mid), 1))
                p.drawLine(QPointF(0, rect.top()), QPointF(self.width(), rect.top()))
        left = LABEL_WIDTH + self._position * (self.width() - LABEL_WIDTH)
        p.setPen(QPen(pal.color(QPalette.ColorRole.Highlight), 2))
        p.drawLine(QPointF(left, 0), QPointF(left, self.height()))

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt's name
        x = event.position().x()
        if x >= LABEL_WIDTH and self.width() > LABEL_WIDTH:
            self.seekRequested.emit((x - LABEL_WIDTH) / (self.width() - LABEL_WIDTH))
        super().mousePressEvent(event)
