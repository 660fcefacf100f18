"""The sync history as a Qt table model: lazy, paged, loaded off the UI thread.

The model holds the rows fetched so far. ``set_query`` counts the matches and loads the first page
in a worker; the view asks ``canFetchMore``/``fetchMore`` as the user scrolls, and each further page
(``PAGE`` rows) is read in a worker too, then appended with ``beginInsertRows``. A page that comes
back after the query changed is dropped (each load carries the generation it was made for). So a
history of 100,000 rows costs what the user has scrolled through, and the UI thread never waits on
SQLite.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal

from desktop_app.sync import history as h
from desktop_app.ui import tasks
from desktop_app.ui.formatting import call_time, format_duration, format_time

PAGE = 300
TRANSCRIBED_BY = {h.SOURCE_HUBSPOT: "HubSpot", h.SOURCE_CALLRELAY: "Call Relay"}
ROW_ROLE = Qt.ItemDataRole.UserRole + 1  # the row's Submission
STATUS_ROLE = Qt.ItemDataRole.UserRole + 2  # the status text, for the chip delegate

_Index = QModelIndex | QPersistentModelIndex


class Column(enum.IntEnum):
    TIME = 0
    AGENT = 1
    CONTACT = 2
    OWNER = 3
    DURATION = 4
    STATUS = 5
    TITLE = 6
    SUBMITTED = 7


HEADERS = ("Call time", "Agent", "Contact", "Owner", "Duration", "Status", "Title", "Submitted")
assert len(HEADERS) == len(Column)


class HistoryModel(QAbstractTableModel):
    """Rows of ``History.search(query)``, newest first."""

    loaded = Signal()  # after a reset or a page arrived (tests and the totals label wait on it)
    failed = Signal(str)

    def __init__(self, history: h.History, parent: Any = None, *, page: int = PAGE) -> None:
        super().__init__(parent)
        self.history = history
        self.page = page
        self.query = h.Query()
        self.total = 0
        self._rows: list[h.Submission] = []
        self._generation = 0
        self._loading = False
        self.names: dict[str, str] = {}  # contact/owner ids → names, when known

    # -- loading ---------------------------------------------------------------------------------
    def set_query(self, query: h.Query) -> None:
        """Show the submissions matching ``query`` (reloads from the first page)."""
        self.query = query
        self.reload()

    def reload(self) -> None:
        self._generation += 1
        generation, query, page = self._generation, self.query, self.page
        self._loading = True

        def load() -> tuple[int, list[h.Submission]]:
            return self.history.count(query), self.history.search(query, limit=page, offset=0)

        tasks.run_task(load, owner=self, name="history-load", on_result=lambda r: self._reset(generation, *r),
                       on_error=lambda e: self._failed(generation, e))

    def _reset(self, generation: int, total: int, rows: list[h.Submission]) -> None:
        if generation != self._generation:
            return
        self.beginResetModel()
        self.total, self._rows, self._loading = total, rows, False
        self.endResetModel()
        self.loaded.emit()

    def _failed(self, generation: int, exc: BaseException) -> None:
        if generation == self._generation:
            self._loading = False
            self.failed.emit(f"The history could not be read: {exc}")

    def canFetchMore(self, parent: _Index = QModelIndex()) -> bool:  # noqa: N802, B008 - Qt's API
        return not parent.isValid() and not self._loading and len(self._rows) < self.total

    def fetchMore(self, parent: _Index = QModelIndex()) -> None:  # noqa: N802, B008 - Qt's API
        if not self.canFetchMore(parent):
            return
        self._loading = True
        generation, query, offset, page = self._generation, self.query, len(self._rows), self.page
        tasks.run_task(self.history.search, query, limit=page, offset=offset, owner=self, name="history-page",
                       on_result=lambda rows: self._append(generation, offset, rows),
                       on_error=lambda e: self._failed(generation, e))

    def _append(self, generation: int, offset: int, rows: list[h.Submission]) -> None:
        if generation != self._generation or offset != len(self._rows):
            return
        self._loading = False
        if not rows:
            self.total = len(self._rows)  # the history shrank under us
            return
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(rows) - 1)
        self._rows.extend(rows)
        self.endInsertRows()
        self.loaded.emit()

    @property
    def loading(self) -> bool:
        return self._loading

    def update_submission(self, sub: h.Submission) -> None:
        """A submission changed (the runtime's listener): refresh its row when shown, or reload for a new one."""
        for row, old in enumerate(self._rows):
            if old.id == sub.id:
                if old.status != sub.status and self.query.statuses and sub.status not in self.query.statuses:
                    self.reload()
                    return
                self._rows[row] = sub
                self.dataChanged.emit(self.index(row, 0), self.index(row, len(Column) - 1))
                return
        if not self._rows or sub.id > max(r.id for r in self._rows[:50]):
            self.reload()  # a new submission: it belongs at the top

    # -- Qt's model API --------------------------------------------------------------------------
    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(Column)

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole \
                and 0 <= section < len(HEADERS):
            return HEADERS[section]
        return None

    def submission(self, row: int) -> h.Submission:
        return self._rows[row]

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not (0 <= index.row() < len(self._rows)):
            return None
        sub = self._rows[index.row()]
        col = Column(index.column())
        if role == ROW_ROLE:
            return sub
        if role == STATUS_ROLE:
            return sub.status
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            if role == Qt.ItemDataRole.ToolTipRole and col == Column.STATUS and sub.error:
                return sub.error
            if role == Qt.ItemDataRole.ToolTipRole and col == Column.TIME:
                return f"Call: {call_time(sub)} · submitted {format_time(sub.created_at)}"
            return self._text(sub, col)
        if role == Qt.ItemDataRole.TextAlignmentRole and col == Column.DURATION:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _text(self, sub: h.Submission, col: Column) -> str:
        if col == Column.TIME:
            return call_time(sub)
        if col == Column.SUBMITTED:
            return format_time(sub.created_at)
        if col == Column.AGENT:
            return sub.agent
        if col == Column.CONTACT:
            return self.names.get(f"contact:{sub.contact_id}", sub.contact_id) if sub.contact_id else ""
        if col == Column.OWNER:
            return self.names.get(f"owner:{sub.owner_id}", sub.owner_id) if sub.owner_id else ""
        if col == Column.DURATION:
            return format_duration(sub.duration_ms)
        if col == Column.STATUS:  # a transcribed call says whose transcript it has
            return f"{sub.status} · {TRANSCRIBED_BY.get(sub.transcribed_by or '', '')}".rstrip(" ·")
        return sub.title or sub.recording_name


def day_range(start: dt.date | None, end: dt.date | None) -> tuple[dt.datetime | None, dt.datetime | None]:
    """Local calendar days [start, end] as the UTC instants the store's query takes."""
    tz = dt.datetime.now().astimezone().tzinfo
    since = dt.datetime.combine(start, dt.time(), tz) if start else None
    until = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tz) if end else None
    return since, until
