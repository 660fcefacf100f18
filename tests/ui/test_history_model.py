"""The history table model: checked by qtmodeltester, lazy over 100,000 rows, filtered by the store."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, Qt
from ui_helpers import fill_history

from desktop_app.sync import history as h
from desktop_app.ui.formatting import format_duration
from desktop_app.ui.history_model import PAGE, ROW_ROLE, Column, HistoryModel


def _load(qtbot, model, query=None):
    with qtbot.waitSignal(model.loaded, timeout=10000):
        model.set_query(query or h.Query())


def test_model_passes_qtmodeltester(qtbot, qtmodeltester, history):
    fill_history(history, 40)
    model = HistoryModel(history, page=16)
    _load(qtbot, model)
    assert model.rowCount() == 16 and model.total == 40
    qtmodeltester.check(model, force_py=True)
    qtmodeltester.check(model)


def test_rows_show_the_store_newest_first(qtbot, history):
    fill_history(history, 5)
    model = HistoryModel(history)
    _load(qtbot, model)
    titles = [model.index(r, Column.TITLE).data() for r in range(model.rowCount())]
    assert titles == ["Call 0", "Call 1", "Call 2", "Call 3", "Call 4"]
    assert model.index(2, Column.STATUS).data() == "failed"
    assert model.index(0, Column.AGENT).data() == "ana"
    assert model.index(0, Column.DURATION).data() == format_duration(30_000) == "0:30"
    assert model.index(0, 0).data(ROW_ROLE).external_id == "ext-0"
    assert model.headerData(Column.STATUS, Qt.Orientation.Horizontal) == "Status"


def test_100k_rows_load_a_page_at_a_time(qtbot, history_100k):
    history = history_100k
    model = HistoryModel(history)
    _load(qtbot, model)
    assert model.total == 100_000
    assert model.rowCount() == PAGE
    assert model.canFetchMore(QModelIndex())
    model.fetchMore(QModelIndex())
    assert not model.canFetchMore(QModelIndex())  # one page in flight at a time
    qtbot.waitUntil(lambda: model.rowCount() == 2 * PAGE, timeout=10000)
    assert model.index(PAGE, Column.TITLE).data() == f"Call {PAGE}"


def test_filters_go_through_the_store(qtbot, history):
    fill_history(history, 60)
    model = HistoryModel(history)
    _load(qtbot, model, h.Query(statuses=("failed",), agent="ana"))
    statuses = {model.index(r, Column.STATUS).data() for r in range(model.rowCount())}
    agents = {model.index(r, Column.AGENT).data() for r in range(model.rowCount())}
    assert statuses == {"failed"} and agents == {"ana"}
    assert model.rowCount() == history.count(h.Query(statuses=("failed",), agent="ana")) == 10
    _load(qtbot, model, h.Query(text="Call 17"))
    assert [model.index(r, Column.TITLE).data() for r in range(model.rowCount())] == ["Call 17"]


def test_a_stale_page_is_dropped_when_the_query_changed(qtbot, history):
    fill_history(history, 700)
    model = HistoryModel(history)
    _load(qtbot, model)
    model.fetchMore(QModelIndex())  # page for the old query in flight
    _load(qtbot, model, h.Query(statuses=("failed",)))
    qtbot.wait(200)
    assert {model.index(r, Column.STATUS).data() for r in range(model.rowCount())} == {"failed"}
    assert model.rowCount() == min(PAGE, history.count(h.Query(statuses=("failed",))))


def test_a_changed_submission_updates_its_row(qtbot, history):
    fill_history(history, 3)
    model = HistoryModel(history)
    _load(qtbot, model)
    sub = model.submission(1)
    history.update(sub.id, status="failed", error="HubSpot said no")
    with qtbot.waitSignal(model.dataChanged, timeout=2000):
        model.update_submission(history.get(sub.id))
    assert model.index(1, Column.STATUS).data() == "failed"
    assert model.index(1, Column.STATUS).data(Qt.ItemDataRole.ToolTipRole) == "HubSpot said no"
