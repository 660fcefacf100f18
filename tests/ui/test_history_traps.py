"""The History page's traps (issue 18), each over a real history file and, for Retry, the real sandbox."""

from __future__ import annotations

import csv
import datetime as dt
import os

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog
from ui_helpers import fill_history, speech, write_wav

from desktop_app import paths
from desktop_app import settings as settings_mod
from desktop_app.sync import history as h
from desktop_app.ui.formatting import format_time
from desktop_app.ui.history_model import Column
from desktop_app.ui.history_page import HistoryPage


def _page(qtbot, history):
    page = HistoryPage(history)
    qtbot.addWidget(page)
    qtbot.waitUntil(lambda: not page.model.loading and page.model.total > 0, timeout=10000)
    return page


def _column(page, col):
    return [page.model.index(r, col).data() for r in range(page.model.rowCount())]


def test_per_day_totals_follow_a_new_submission_without_refresh(qtbot, history):
    fill_history(history, 3)
    page = _page(qtbot, history)
    qtbot.waitUntil(lambda: getattr(page, "totals_rows", None) is not None, timeout=5000)
    today = h.iso(h.now())[:10]
    assert today not in page.totals.text()
    sid = history.add_submission(recording_path="/r/new.wav", recording_name="new.wav", external_id="ext-new",
                                 details={"title": "New"}, agent="ana", state="checked")
    with qtbot.waitSignal(page.totalsShown, timeout=5000):
        page.update_submission(history.get(sid))  # what the runtime's listener does
    assert today in page.totals.text()
    assert [r["total"] for r in page.totals_rows if r["day"] == today] == [1]


def test_a_contact_keeps_its_name_after_a_restart(qtbot, history):
    fill_history(history, 7)
    page = _page(qtbot, history)
    page.set_names("contact", [("500", "Ada Lovelace")])
    page.set_names("owner", [("100", "Alice Agent")])
    assert "Ada Lovelace" in _column(page, Column.CONTACT)
    qtbot.waitUntil(lambda: "contact:500" in history.labels(), timeout=5000)
    page.close()

    with h.History(paths.history_db()) as reopened:  # the next start of the app
        again = HistoryPage(reopened)
        qtbot.addWidget(again)
        with qtbot.waitSignal(again.labelsLoaded, timeout=5000):
            pass
        qtbot.waitUntil(lambda: again.model.rowCount() == 7, timeout=5000)
        contacts, owners = _column(again, Column.CONTACT), _column(again, Column.OWNER)
        assert contacts.count("Ada Lovelace") == 1 and "500" not in contacts
        assert "Alice Agent" in owners and "100" not in owners
        assert again.owner.findText("Alice Agent") >= 0  # the owner filter offers the name too
        again.close()


def test_the_status_filter_takes_several_statuses(qtbot, history):
    fill_history(history, 30)
    page = _page(qtbot, history)
    with qtbot.waitSignal(page.model.loaded, timeout=5000):
        page.status_actions["failed"].setChecked(True)
    assert page.model.total == 5
    with qtbot.waitSignal(page.model.loaded, timeout=5000):
        page.status_actions["not-transcribed"].setChecked(True)
    assert page.model.total == 10
    assert set(_column(page, Column.STATUS)) == {"failed", "not-transcribed"}
    assert "failed" in page.status.text() and "not-transcribed" in page.status.text()
    with qtbot.waitSignal(page.model.loaded, timeout=5000):
        page.set_statuses(())
    assert page.model.total == 30 and page.status.text() == "Status: all"


def test_the_owner_filter_takes_a_name_from_the_owners_list(qtbot, history):
    fill_history(history, 30)  # owners 100, 101, 102 in turn
    page = _page(qtbot, history)
    page.set_names("owner", [("100", "Alice Agent"), ("101", "Bob Boss"), ("102", "Carol Clerk")])
    with qtbot.waitSignal(page.model.loaded, timeout=5000):
        page.owner.setCurrentIndex(page.owner.findText("Bob Boss"))
    assert page.model.total == history.count(h.Query(owner_id="101")) == 10
    assert set(_column(page, Column.OWNER)) == {"Bob Boss"}
    with qtbot.waitSignal(page.model.loaded, timeout=5000):
        page.owner.setEditText("carol")  # typed: part of a name, any case
    assert page.model.total == 10 and set(_column(page, Column.OWNER)) == {"Carol Clerk"}
    with qtbot.waitSignal(page.model.loaded, timeout=5000):
        page.owner.setEditText("100")  # an id still works
    assert set(_column(page, Column.OWNER)) == {"Alice Agent"}


def test_time_is_the_calls_time_and_the_submission_time_stays_available(qtbot, history):
    call_at = "2026-10-01T09:30:00+00:00"
    sid = history.add_submission(recording_path="/r/a.wav", recording_name="a.wav", external_id="ext-a",
                                 details={"title": "Call", "timestamp": call_at}, agent="ana", state="checked")
    sub = history.get(sid)
    page = _page(qtbot, history)
    assert page.model.headerData(Column.TIME, Qt.Orientation.Horizontal) == "Call time"
    assert page.model.index(0, Column.TIME).data() == format_time(call_at)
    assert format_time(call_at) != format_time(sub.created_at)
    assert page.model.index(0, Column.SUBMITTED).data() == format_time(sub.created_at)
    assert format_time(sub.created_at) in page.model.index(0, Column.TIME).data(Qt.ItemDataRole.ToolTipRole)


def test_export_opens_in_documents_then_the_last_folder_and_has_the_calls_fields(qtbot, history, tmp_path,
                                                                                    monkeypatch):
    call_at = "2026-10-01T09:30:00+00:00"
    history.add_submission(recording_path="/r/a.wav", recording_name="a.wav", external_id="ext-a", agent="ana",
                           state="checked", details={"title": "Call", "timestamp": call_at, "contact_id": "501",
                                                     "owner_id": "77", "notes": "Wants a call back on Monday"})
    page = _page(qtbot, history)
    page.set_names("contact", [("501", "Ada Lovelace")])
    page.set_names("owner", [("77", "Alice Agent")])
    qtbot.waitUntil(lambda: len(history.labels()) == 2, timeout=5000)
    offered: list[str] = []
    target = tmp_path / "exports" / "history.csv"
    target.parent.mkdir()

    def save_dialog(_parent, _caption, start, _filter):
        offered.append(start)
        return str(target), "CSV (*.csv)"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", save_dialog)

    with qtbot.waitSignal(page.exported, timeout=10000):
        page.export_dialog()
    first = os.path.dirname(offered[0])
    assert os.path.isabs(offered[0]) and first != os.getcwd()
    assert first in (os.path.expanduser("~"), os.path.join(os.path.expanduser("~"), "Documents")) \
        or os.path.basename(first) == "Documents"
    with target.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["call_time"] == call_at
    assert rows[0]["contact"] == "Ada Lovelace" and rows[0]["owner"] == "Alice Agent"
    assert rows[0]["notes"] == "Wants a call back on Monday"
    assert rows[0]["created_at"]  # the submission time is still there

    with qtbot.waitSignal(page.exported, timeout=10000):
        page.export_dialog()
    assert os.path.dirname(offered[1]) == str(target.parent)  # the folder used last


@pytest.fixture
def sandbox_runtime():
    from desktop_app.runtime import Runtime
    from desktop_app.sync.pipeline import RetryPolicy

    runtime = Runtime(settings=settings_mod.Settings(),
                      policy=RetryPolicy(base_s=0.05, max_attempts=3, search_lag_s=0.0, ready_evidence_wait_s=0.2))
    runtime.start()
    yield runtime
    runtime.stop()


def test_retry_is_offered_for_a_not_transcribed_call_and_marks_it_ready_again(qtbot, sandbox_runtime, tmp_path):
    from desktop_app.sync.pipeline import CallDetails

    rt = sandbox_runtime
    wav = write_wav(tmp_path / "call.wav", [speech(3, start=0.2, freq=220), speech(3, start=1.0, freq=340)])
    sid = rt.submit(wav, CallDetails(title="Seatless owner", timestamp=h.iso(h.now()), duration_ms=3000))
    assert rt.run_submission(sid).status == h.READY
    cause = "HubSpot did not transcribe the call: the call's owner has no paid Sales Hub or Service Hub seat"
    rt.history.update(sid, status=h.NOT_TRANSCRIBED, state="not_transcribed", error=cause)  # the outcome seen

    page = HistoryPage(rt.history)
    qtbot.addWidget(page)
    page.set_runtime(rt)
    qtbot.waitUntil(lambda: page.model.rowCount() == 1, timeout=10000)
    page.select_row(0)
    qtbot.waitUntil(lambda: "Retry selected" in page.detail.toPlainText(), timeout=5000)  # says what to do
    assert page.retry_button.isEnabled()  # the owner got a seat: the agent can ask again
    with qtbot.waitSignal(page.retried, timeout=5000):
        qtbot.mouseClick(page.retry_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: rt.history.get(sid).status == h.READY, timeout=30000)
    sub = rt.history.get(sid)
    assert sub.error is None and sub.ready_at
    assert [s.outcome for s in sub.steps if s.step == "mark_ready"] == [h.OK, h.OK]  # ready sent again
    assert len([s for s in sub.steps if s.step == "log_call"]) == 1  # the call was not logged twice
    assert dt.datetime.fromisoformat(sub.ready_at) <= h.now()
