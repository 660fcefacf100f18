"""The Sync history page: filters, the lazy table, a detail pane with the step timeline, actions.

Filters become a ``history.Query`` and go to the store (SQL), never to a proxy over loaded rows, so
they cover all 100,000 rows and not only the pages already fetched. Totals per day and the CSV
export use the same query; both run in workers.
"""

from __future__ import annotations

import datetime as dt
import html
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QDate, QItemSelectionModel, QStandardPaths, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDateEdit,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QSplitter,
    QTableView,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app.sync import history as h
from desktop_app.ui import tasks
from desktop_app.ui.formatting import call_time, format_duration, format_time
from desktop_app.ui.history_model import Column, HistoryModel, day_range
from desktop_app.ui.status_chip import CHIP_COLOURS, StatusChipDelegate
from desktop_app.ui.steps_view import MARKS, STEP_LABELS

if TYPE_CHECKING:
    from desktop_app.runtime import Runtime

RETRYABLE = (h.FAILED, h.NOT_TRANSCRIBED)  # a not-transcribed call is marked ready again once its cause is fixed


def export_csv(history: h.History, query: h.Query, path: str) -> int:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        history.export_csv(query, out=fh)
    return history.count(query)


def detail_html(sub: h.Submission, names: dict[str, str] | None = None) -> str:
    e = html.escape
    d = sub.details
    names = names or {}

    def named(kind: str, oid: str) -> str:
        name = names.get(f"{kind}:{oid}")
        return f"{name} ({oid})" if name and oid else oid
    rows = [
        ("Recording", sub.recording_name), ("Title", sub.title), ("Agent", sub.agent),
        ("From → to", f"{d.get('from_number', '')} → {d.get('to_number', '')} ({d.get('direction', '')})"),
        ("Call time", call_time(sub)), ("Duration", format_duration(sub.duration_ms)),
        ("Contact", named("contact", sub.contact_id)), ("Owner", named("owner", sub.owner_id)),
        ("Notes", str(d.get("notes", "") or "")), ("Call id", sub.call_id or ""), ("External id", sub.external_id),
    ]
    colour = CHIP_COLOURS.get(sub.status, "#7f8c8d")
    out = [f"<p><span style='background:{colour};color:white'>&nbsp;{e(sub.status)}&nbsp;</span> "
           f"submitted {e(format_time(sub.created_at))}</p><table>"]
    out += [f"<tr><td><b>{e(k)}</b>&nbsp;</td><td>{e(str(v))}</td></tr>" for k, v in rows if v]
    out.append("</table>")
    if sub.error:
        out.append(f"<p style='color:#c0392b'><b>HubSpot said:</b> {e(sub.error)}"
                   + (f"<br>HTTP {sub.error_status}" if sub.error_status else "")
                   + (f"<br>Correlation id: {e(sub.error_correlation_id)}" if sub.error_correlation_id else "")
                   + "</p>")
    if sub.status == h.NOT_TRANSCRIBED:
        out.append("<p>Once the cause is fixed (for example the owner now has a paid Sales Hub or Service Hub "
                   "seat), click <b>Retry selected</b>: the call is marked ready for transcription again.</p>")
    out.append("<h4>Steps</h4><table>")
    for s in sub.steps:
        extra = []
        if s.http_status:
            extra.append(f"HTTP {s.http_status}")
        if s.message:
            extra.append(e(s.message))
        if s.correlation_id:
            extra.append(f"correlation id {e(s.correlation_id)}")
        out.append(f"<tr><td>{MARKS.get(s.outcome, '?')}</td><td>{e(format_time(s.started_at))}</td>"
                   f"<td>{e(STEP_LABELS.get(s.step, s.step))} (attempt {s.attempt})</td>"
                   f"<td>{e(s.outcome)}</td><td>{' · '.join(extra)}</td></tr>")
    out.append("</table>")
    return "".join(out)


def _pydate(d: QDate) -> dt.date:
    return dt.date(d.year(), d.month(), d.day())


def documents_folder() -> str:
    """Where an export is offered first: the user's Documents folder, else the home folder."""
    docs = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    return docs if docs and os.path.isdir(docs) else str(Path.home())


class HistoryPage(QWidget):
    retried = Signal(list)
    exported = Signal(str, int)
    totalsShown = Signal()
    labelsLoaded = Signal()

    def __init__(self, history: h.History, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.history = history
        self.runtime: Runtime | None = None
        self.model = HistoryModel(history, self)

        self.export_folder = ""  # the last folder exported to (this session)
        self.status = QToolButton()
        self.status.setAccessibleName("Status filter")
        self.status.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        status_menu = QMenu(self.status)
        self.status_actions: dict[str, QAction] = {}
        for s in h.STATUSES:
            action = status_menu.addAction(s)
            action.setCheckable(True)
            action.toggled.connect(lambda _c: self._statuses_changed())
            self.status_actions[s] = action
        status_menu.addSeparator()
        status_menu.addAction("Show all statuses", lambda: self.set_statuses(()))
        self.status.setMenu(status_menu)
        self.status.setText("Status: all")
        self.use_since = QCheckBox("From")
        self.since = QDateEdit()
        self.since.setDate(QDate.currentDate().addDays(-7))
        self.use_until = QCheckBox("to")
        self.until = QDateEdit()
        for de in (self.since, self.until):
            de.setCalendarPopup(True)
            de.setDisplayFormat("yyyy-MM-dd")
        self.until.setDate(QDate.currentDate())
        self.agent = QLineEdit(placeholderText="Agent")
        self.owner = QComboBox()
        self.owner.setEditable(True)
        self.owner.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.owner.setMinimumContentsLength(18)
        owner_edit = self.owner.lineEdit()
        assert owner_edit is not None
        owner_edit.setPlaceholderText("Owner (name or id)")
        owner_edit.setClearButtonEnabled(True)
        self.text = QLineEdit(placeholderText="Search titles, numbers, ids, errors")
        self.text.setClearButtonEnabled(True)
        for w, name in ((self.agent, "Agent filter"), (self.owner, "Owner filter"), (self.text, "Text filter"),
                        (self.since, "From date"), (self.until, "To date")):
            w.setAccessibleName(name)

        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setItemDelegateForColumn(Column.STATUS, StatusChipDelegate(self.table))
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(24)
        self.table.horizontalHeader().setSectionResizeMode(Column.TITLE, QHeaderView.ResizeMode.Stretch)
        for column, width in ((Column.TIME, 125), (Column.AGENT, 64), (Column.CONTACT, 110), (Column.OWNER, 104),
                              (Column.DURATION, 66), (Column.STATUS, 160), (Column.SUBMITTED, 125)):
            self.table.setColumnWidth(column, width)
        self.table.setAccessibleName("Submissions")
        self.detail = QTextBrowser()
        self.detail.setOpenExternalLinks(False)
        self.detail.setAccessibleName("Submission details")
        self.retry_button = QPushButton("&Retry selected")
        self.open_button = QPushButton("Open in &HubSpot")
        self.export_button = QPushButton("&Export CSV…")
        self.refresh_button = QPushButton("Re&fresh")
        self.count_label = QLabel("")
        self.totals = QLabel("")
        self.totals.setWordWrap(True)
        self.totals.setTextFormat(Qt.TextFormat.RichText)

        filters = QHBoxLayout()
        for fw in (self.status, self.use_since, self.since, self.use_until, self.until, self.agent, self.owner):
            filters.addWidget(fw)
        filters.addWidget(self.text, 1)
        actions = QHBoxLayout()
        for button in (self.retry_button, self.open_button, self.export_button, self.refresh_button):
            actions.addWidget(button)
        actions.addStretch(1)
        actions.addWidget(self.count_label)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.table)
        right = QWidget()
        rcol = QVBoxLayout(right)
        rcol.setContentsMargins(0, 0, 0, 0)
        rcol.addWidget(self.detail, 1)
        rcol.addWidget(QLabel("<b>Per day</b>"))
        rcol.addWidget(self.totals)
        split.addWidget(right)
        split.setSizes([700, 340])
        col = QVBoxLayout(self)
        col.addLayout(filters)
        col.addWidget(split, 1)
        col.addLayout(actions)

        self._debounce = QTimer(self, singleShot=True, interval=250)
        self._debounce.timeout.connect(self.apply_filters)
        self._totals_later = QTimer(self, singleShot=True, interval=300)
        self._totals_later.timeout.connect(self.refresh_totals)
        for cb in (self.use_since, self.use_until):
            cb.toggled.connect(lambda _c: self.apply_filters())
        for de in (self.since, self.until):
            de.dateChanged.connect(lambda _d: self._debounce.start())
        for le in (self.agent, self.text):
            le.textChanged.connect(lambda _t: self._debounce.start())
        self.owner.currentTextChanged.connect(lambda _t: self._debounce.start())
        self.table.selectionModel().selectionChanged.connect(lambda *_a: self._selection_changed())
        self.model.loaded.connect(self._loaded)
        self.model.failed.connect(self.count_label.setText)
        self.retry_button.clicked.connect(self.retry_selected)
        self.open_button.clicked.connect(self.open_selected)
        self.export_button.clicked.connect(self.export_dialog)
        self.refresh_button.clicked.connect(self.apply_filters)
        self._selection_changed()
        self.apply_filters()
        tasks.run_task(history.labels, owner=self, name="labels", on_result=self._labels_read)

    # -- filters ---------------------------------------------------------------------------------
    def query(self) -> h.Query:
        start = _pydate(self.since.date()) if self.use_since.isChecked() else None
        end = _pydate(self.until.date()) if self.use_until.isChecked() else None
        since, until = day_range(start, end)
        return h.Query(statuses=self.statuses(), agent=self.agent.text().strip() or None,
                       owner_id=self.owner_id(), since=since, until=until, text=self.text.text().strip() or None)

    def statuses(self) -> tuple[str, ...]:
        """The statuses ticked in the filter (none ticked: every status)."""
        return tuple(s for s, action in self.status_actions.items() if action.isChecked())

    def set_statuses(self, statuses: Any) -> None:
        """Tick exactly ``statuses`` in the status filter (one reload)."""
        self._setting_statuses = True
        try:
            for s, action in self.status_actions.items():
                action.setChecked(s in statuses)
        finally:
            self._setting_statuses = False
        self._statuses_changed()

    def _statuses_changed(self) -> None:
        if getattr(self, "_setting_statuses", False):
            return
        chosen = self.statuses()
        self.status.setText("Status: " + (", ".join(chosen) if chosen else "all"))
        self.apply_filters()

    def owner_names(self) -> dict[str, str]:
        """Owner id → name, as far as known (from HubSpot's owners list, remembered in the history)."""
        return {key.split(":", 1)[1]: name for key, name in self.model.names.items() if key.startswith("owner:")}

    def owner_id(self) -> str | None:
        """The owner filter as an owner id: a name from the owners list (or part of one name), or an id."""
        text = self.owner.currentText().strip()
        if not text:
            return None
        index = self.owner.findText(text, Qt.MatchFlag.MatchFixedString)
        if index >= 0 and self.owner.itemData(index):
            return str(self.owner.itemData(index))
        names = self.owner_names()
        if text in names:
            return text
        exact = [oid for oid, name in names.items() if name.casefold() == text.casefold()]
        partial = [oid for oid, name in names.items() if text.casefold() in name.casefold()]
        found = exact or partial
        if len(found) == 1:
            return found[0]
        return text  # an id typed by hand (or a name nobody has: nothing matches)

    def _refresh_owner_choices(self) -> None:
        text = self.owner.currentText()
        self.owner.blockSignals(True)
        try:
            self.owner.clear()
            self.owner.addItem("", "")
            for oid, name in sorted(self.owner_names().items(), key=lambda item: item[1].casefold()):
                self.owner.addItem(name, oid)
            self.owner.setEditText(text)
        finally:
            self.owner.blockSignals(False)

    def apply_filters(self) -> None:
        query = self.query()
        self.model.set_query(query)
        self.refresh_totals()

    def refresh_totals(self) -> None:
        """Totals per day for the current filter (in a worker)."""
        tasks.run_task(self.history.totals_per_day, self.query(), owner=self, name="totals",
                       on_result=self._show_totals)

    def _loaded(self) -> None:
        self.count_label.setText(f"{self.model.total:,} submissions ({self.model.rowCount():,} loaded)")
        self._selection_changed()

    def _show_totals(self, rows: list[dict[str, Any]]) -> None:
        lines = []
        for r in rows[-14:][::-1]:
            parts = [f"{r['total']} total"] + [f"{r[s]} {s}" for s in h.STATUSES if r.get(s)]
            lines.append(f"<b>{html.escape(r['day'])}</b>: {', '.join(parts)}")
        self.totals.setText("<br>".join(lines) or "No submissions.")
        self.totals_rows = rows
        self.totalsShown.emit()

    # -- selection -------------------------------------------------------------------------------
    def selected(self) -> list[h.Submission]:
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        return [self.model.submission(r) for r in rows]

    def select_row(self, row: int) -> None:
        self.table.selectionModel().select(
            self.model.index(row, 0),
            QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)

    def _selection_changed(self) -> None:
        subs = self.selected()
        self.retry_button.setEnabled(self.runtime is not None and any(s.status in RETRYABLE for s in subs))
        self.open_button.setEnabled(len(subs) == 1 and h.call_url(subs[0]) is not None)
        if len(subs) == 1:
            sid = subs[0].id
            tasks.run_task(self.history.get, sid, owner=self, name="detail",
                           on_result=lambda sub: self._show_detail(sid, sub))
        else:
            self.detail.setHtml(f"<p>{len(subs)} submissions selected.</p>" if subs else
                                "<p>Select a submission to see its steps.</p>")

    def _show_detail(self, sid: int, sub: h.Submission | None) -> None:
        current = self.selected()
        if sub is not None and len(current) == 1 and current[0].id == sid:
            self.detail.setHtml(detail_html(sub, self.model.names))
            self.shown_detail = sub

    # -- actions ---------------------------------------------------------------------------------
    def set_runtime(self, runtime: Runtime) -> None:
        self.runtime = runtime
        team = runtime.team_history()
        if team is not None:  # a desk that joined a team shows the team's history, from the relay
            # TeamHistory reads through the same calls as h.History (duck-typed, see relay.desk.TeamHistory)
            self.history = self.model.history = team  # type: ignore[assignment]
            self.model.reload()
        self._selection_changed()

    def retry_selected(self) -> list[int]:
        """Put the selected failed (or not transcribed) submissions back in the queue and run them (in workers)."""
        ids = [s.id for s in self.selected() if s.status in RETRYABLE]
        if not ids or self.runtime is None:
            return []
        runtime = self.runtime
        for sid in ids:
            def again(sid: int = sid) -> Any:
                runtime.retry(sid)
                return runtime.run_submission(sid)
            tasks.run_task(again, owner=self, name="retry", pool=tasks.long_pool(), on_result=self.model.update_submission,
                           on_error=lambda e: self.count_label.setText(f"Retry failed: {e}"))
        self.retried.emit(ids)
        return ids

    def open_selected(self) -> None:
        subs = self.selected()
        url = h.call_url(subs[0]) if len(subs) == 1 else None
        if url:
            QDesktopServices.openUrl(QUrl(url))

    def export_dialog(self) -> None:
        name = f"callrelay-history-{dt.date.today().isoformat()}.csv"
        folder = self.export_folder if self.export_folder and os.path.isdir(self.export_folder) else documents_folder()
        path, _f = QFileDialog.getSaveFileName(self, "Export the history (current filter)",
                                               os.path.join(folder, name), "CSV (*.csv)")
        if path:
            self.export_folder = os.path.dirname(os.path.abspath(path))
            self.export_to(path)

    def export_to(self, path: str) -> tasks.Task:
        return tasks.run_task(export_csv, self.history, self.query(), path, owner=self, name="export",
                              on_result=lambda n: self._exported(path, n),
                              on_error=lambda e: self.count_label.setText(f"Export failed: {e}"))

    def _exported(self, path: str, n: int) -> None:
        self.count_label.setText(f"Exported {n:,} submissions to {path}")
        self.exported.emit(path, n)

    def set_names(self, kind: str, names: list[tuple[str, str]]) -> None:
        """Names to show instead of ids (``kind`` is owner or contact); remembered in the history for later runs."""
        pairs = [(str(i), str(n)) for i, n in names if i and n]
        if pairs:
            tasks.run_task(self.history.set_labels, kind, pairs, owner=self, name="labels-write")
        self._add_names({f"{kind}:{i}": n for i, n in pairs})

    def _labels_read(self, names: dict[str, str]) -> None:
        self._add_names({k: v for k, v in names.items() if k not in self.model.names})
        self.labelsLoaded.emit()

    def _add_names(self, names: dict[str, str]) -> None:
        self.model.names.update(names)
        if any(k.startswith("owner:") for k in names):
            self._refresh_owner_choices()
        if self.model.rowCount():
            self.model.dataChanged.emit(self.model.index(0, 0),
                                        self.model.index(self.model.rowCount() - 1, len(Column) - 1))

    def update_submission(self, sub: h.Submission) -> None:
        self.model.update_submission(sub)
        self._totals_later.start()  # a new submission or a changed status moves the totals per day
        current = self.selected()
        if len(current) == 1 and current[0].id == sub.id:
            self._selection_changed()
