"""The Sync history page over a real history file: filters, detail pane, totals, CSV export."""

from __future__ import annotations

import csv
import datetime as dt

from PySide6.QtCore import QDate
from ui_helpers import fill_history

from desktop_app.sync import history as h
from desktop_app.testing import fill
from desktop_app.ui.history_model import Column
from desktop_app.ui.history_page import HistoryPage


def _page(qtbot, history):
    page = HistoryPage(history)
    qtbot.addWidget(page)
    qtbot.waitUntil(lambda: not page.model.loading and page.model.total > 0, timeout=10000)
    return page


def test_status_and_text_filters_reach_the_store(qtbot, history):
    fill_history(history, 30)
    page = _page(qtbot, history)
    assert page.model.total == 30
    with qtbot.waitSignal(page.model.loaded, timeout=5000):
        page.set_statuses(("failed",))
    assert page.model.total == 5
    assert {page.model.index(r, Column.STATUS).data() for r in range(page.model.rowCount())} == {"failed"}
    with qtbot.waitSignal(page.model.loaded, timeout=5000):
        page.agent.setText("ben")
    assert page.model.total == history.count(h.Query(statuses=("failed",), agent="ben"))
    assert "submissions" in page.count_label.text()


def test_date_range_uses_local_days(qtbot, history):
    start = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    fill_history(history, 3, start=start)  # today, minutes apart
    fill_history_old = [{"created_at": h.iso(start - dt.timedelta(days=10)), "agent": "old",
                         "recording_path": "/r/old.wav", "recording_name": "old.wav", "external_id": "ext-old",
                         "details": "{}", "title": "Old", "owner_id": "", "contact_id": "", "from_number": "",
                         "to_number": "", "duration_ms": 0, "state": "checked", "status": "failed",
                         "call_id": None}]
    fill.insert_submissions(history.path, fill_history_old)
    page = _page(qtbot, history)
    assert page.model.total == 4
    page.since.setDate(QDate.currentDate().addDays(-2))
    with qtbot.waitSignal(page.model.loaded, timeout=5000):
        page.use_since.setChecked(True)
    titles = {page.model.index(r, Column.TITLE).data() for r in range(page.model.rowCount())}
    assert "Old" not in titles and page.model.total == 3


def test_detail_pane_shows_the_step_timeline_with_hubspot_message(qtbot, history):
    sid = history.add_submission(recording_path="/r/a.wav", recording_name="a.wav", external_id="ext-a",
                                 details={"title": "Demo call"}, agent="ana", state="checked")
    ok = history.step_started(sid, "store")
    history.step_ended(ok, "ok", submission={"state": "stored"})
    bad = history.step_started(sid, "log_call")
    history.step_ended(bad, "failed", http_status=400, message="Property hs_call_direction is invalid",
                       correlation_id="abc-123", submission={"status": "failed", "error": "Property invalid",
                                                             "error_status": 400, "error_correlation_id": "abc-123"})
    page = _page(qtbot, history)
    page.select_row(0)
    qtbot.waitUntil(lambda: "abc-123" in page.detail.toPlainText(), timeout=5000)
    text = page.detail.toPlainText()
    assert "Keep the recording" in text and "Log the call in HubSpot" in text
    assert "HTTP 400" in text and "Property hs_call_direction is invalid" in text
    assert not page.open_button.isEnabled()  # no call id: nothing to open
    assert not page.retry_button.isEnabled()  # no runtime to retry with


def test_export_csv_of_the_current_filter(qtbot, history, tmp_path):
    fill_history(history, 24)
    page = _page(qtbot, history)
    with qtbot.waitSignal(page.model.loaded, timeout=5000):
        page.set_statuses(("transcribed",))
    out = tmp_path / "export.csv"
    with qtbot.waitSignal(page.exported, timeout=5000) as blocker:
        page.export_to(str(out))
    assert blocker.args == [str(out), 4]
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == 4 and {r["status"] for r in rows} == {"transcribed"}
    assert {r["title"] for r in rows} == {"Call 0", "Call 6", "Call 12", "Call 18"}


def test_daily_totals(qtbot, history):
    fill_history(history, 5, start=dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.timezone.utc))
    fill_history(history, 2, start=dt.datetime(2026, 11, 19, 12, 0, tzinfo=dt.timezone.utc), prefix="y")
    page = HistoryPage(history)
    qtbot.addWidget(page)
    qtbot.waitUntil(lambda: hasattr(page, "totals_rows"), timeout=5000)
    text = page.totals.text()
    assert "2026-11-20</b>: 5 total" in text and "2026-11-19</b>: 2 total" in text


def test_scrolling_the_table_fetches_further_pages(qtbot, history_100k):
    from desktop_app.ui.history_model import PAGE

    history = history_100k
    page = _page(qtbot, history)
    page.resize(1000, 600)
    page.show()
    assert page.model.total == 100_000 and page.model.rowCount() == PAGE
    for pages in (2, 3):
        page.table.scrollToBottom()  # the view asks canFetchMore/fetchMore as a user scrolling would
        qtbot.waitUntil(lambda n=pages: page.model.rowCount() == n * PAGE, timeout=10000)
    assert page.model.index(3 * PAGE - 1, Column.TITLE).data() == f"Call {3 * PAGE - 1}"
    assert "100,000 submissions" in page.count_label.text()
