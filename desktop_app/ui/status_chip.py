"""Status chips: the history's status column painted as a coloured, rounded label."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from desktop_app.ui.history_model import STATUS_ROLE

CHIP_COLOURS = {
    "queued": "#7f8c8d",
    "running": "#2980b9",
    "ready": "#16a085",
    "transcribed": "#27ae60",
    "not-transcribed": "#d35400",
    "failed": "#c0392b",
}


def chip_colour(status: str) -> QColor:
    return QColor(CHIP_COLOURS.get(status, "#7f8c8d"))


class StatusChipDelegate(QStyledItemDelegate):
    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        status = index.data(STATUS_ROLE)
        if not status:
            super().paint(painter, option, index)
            return
        painter.save()
        if option.state & QStyle.StateFlag.State_Selected:
            painter.fillRect(option.rect, option.palette.highlight())
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        fm = option.fontMetrics
        text = str(index.data(Qt.ItemDataRole.DisplayRole) or status)  # "transcribed · Call Relay": whose
        width = fm.horizontalAdvance(text) + 16
        rect = QRectF(option.rect.left() + 4, option.rect.center().y() - fm.height() / 2 - 1,
                      min(width, option.rect.width() - 8), fm.height() + 2)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(chip_colour(status))
        painter.drawRoundedRect(rect, rect.height() / 2, rect.height() / 2)
        painter.setPen(QColor("white"))
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter,
                         fm.elidedText(text, Qt.TextElideMode.ElideRight, int(rect.width()) - 8))
        painter.restore()

    def sizeHint(self, option: QStyleOptionViewItem,  # noqa: N802 - Qt's name
                 index: QModelIndex | QPersistentModelIndex) -> QSize:
        base = super().sizeHint(option, index)
        return QSize(base.width() + 20, base.height() + 4)
