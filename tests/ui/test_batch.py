"""Batch work on the Upload page (issue 18): "Upload all ready" with one progress view, Cancel for what
has not reached HubSpot, Remove that asks before losing typed details, and a queue that survives a
restart. Real sandbox, real recording server, real files, the real drafts file."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QMessageBox
from ui_helpers import speech, write_wav

from desktop_app import paths
from desktop_app import settings as settings_mod
from desktop_app.runtime import Runtime
from desktop_app.sync import drafts
from desktop_app.sync import history as h
from desktop_app.sync.pipeline import RetryPolicy
from desktop_app.ui import tasks
from desktop_app.ui.upload_page import UploadPage

OWNERS = [("71000001", "Alice Agent"), ("71000002", "Bob Caller")]
FAST = RetryPolicy(base_s=0.05, max_attempts=3, search_lag_s=0.0, ready_evidence_wait_s=0.5)


def call_file(tmp: Path, n: int) -> Path:
    """A stereo call whose PBX name carries Jane Doe's number (a sandbox contact): its form completes itself."""
    name = f"out-6175550142-6175550100-20261120-10{n:02d}00-17000000{n:02d}.42.wav"
    return write_wav(tmp / name, [speech(2, start=0.2, freq=200 + 40 * n), speech(2, start=1.1, freq=330 + 30 * n)])


def plain_file(tmp: Path, name: str = "plain.wav") -> Path:
    return write_wav(tmp / name, [speech(2, start=0.2, freq=250), speech(2, start=1.1, freq=350)])


@pytest.fixture
def online(qtbot):
    runtime = Runtime(settings_mod.Settings(), sandbox=True, policy=FAST).start()
    page = UploadPage()
    qtbot.addWidget(page)
    page.show()
    runtime.add_listener(tasks.to_gui(page.update_submission))
    page.set_runtime(runtime, "US")
    yield page, runtime
    runtime.stop()


def _queued(qtbot, page, files, *, ready):
    page.add_paths([str(f) for f in files])

    def inspected():
        assert len(page.panels) == len(files) and all(p.inspection for p in page.panels), \
            [(p.status_text, p.card.message_text() if hasattr(p.card, "message_text") else "") for p in page.panels]

    qtbot.waitUntil(inspected, timeout=60000)

    def all_ready():
        assert len(page.ready_panels()) == ready, [p.blockers() for p in page.panels]

    qtbot.waitUntil(all_ready, timeout=30000)
    return page.panels


def _calls(runtime, subs):
    ext = {s.external_id for s in subs}
    return [c for c in runtime.sandbox.calls() if c["properties"].get("hs_call_external_id") in ext]


def test_upload_all_ready_logs_each_complete_form_with_one_progress_view(qtbot, online, tmp_path):
    page, runtime = online
    incomplete = plain_file(tmp_path)  # no number in its name: no contact, so not ready
    panels = _queued(qtbot, page, [call_file(tmp_path, 1), incomplete, call_file(tmp_path, 2)], ready=2)
    first, other, second = panels
    assert not other.can_upload() and any("Contact" in b for b in other.blockers())
    assert page.upload_all_button.text() == "Upload all ready" and page.upload_all_button.isEnabled()
    first.form.title.setText("Batch call one")
    second.form.title.setText("Batch call two")
    assert not page.batch_box.isVisible()
    shown: list[str] = []
    label = page.batch_label
    label.setText = lambda text: (shown.append(text), QLabel.setText(label, text))  # every text it shows

    with qtbot.waitSignal(page.batchFinished, timeout=90000):
        qtbot.mouseClick(page.upload_all_button, Qt.MouseButton.LeftButton)
        assert page.batch_box.isVisible() and not page.upload_all_button.isEnabled()
        assert page.batch_label.text().startswith("Uploading 1 of 2"), page.batch_label.text()

    assert page.batch_progress.text() == "2 of 2"
    steps = [t for t in shown if t.startswith("Uploading")]
    assert any(": keeping the recording" in t for t in steps) and any(": logging the call" in t for t in steps), shown
    assert any(t.startswith("Uploading 2 of 2: ") for t in steps), shown  # n of N moves on as they finish
    assert page.batch_label.text() == "Batch done: 2 logged.", page.batch_label.text()
    subs = [runtime.history.get(p.submission_id) for p in (first, second)]
    assert [s.status for s in subs] == [h.READY, h.READY], [s.error for s in subs]
    titles = sorted(c["properties"]["hs_call_title"] for c in _calls(runtime, subs))
    assert titles == ["Batch call one", "Batch call two"]  # one call each, with the details typed
    assert other.submission_id is None and not other.running  # the incomplete one was left alone
    assert "ready for transcription" in first.message.text()
    assert not page.upload_all_button.isEnabled()  # nothing ready is left


def test_cancel_stops_what_has_not_reached_hubspot(qtbot, online, tmp_path):
    page, runtime = online
    panels = _queued(qtbot, page, [call_file(tmp_path, 3), call_file(tmp_path, 4)], ready=2)
    runtime.sandbox.faults.slow("settings.get", 4.0)  # the link registration, before any call, is slow

    with qtbot.waitSignal(page.batchFinished, timeout=90000):
        qtbot.mouseClick(page.upload_all_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: page.batch is not None and len(page.batch.ids) == 2, timeout=20000)
        qtbot.mouseClick(page.cancel_button, Qt.MouseButton.LeftButton)
        assert page.batch_label.text().startswith("Cancelling")
        assert not page.cancel_button.isEnabled()

    subs = [runtime.history.get(p.submission_id) for p in panels]
    assert [s.status for s in subs] == [h.FAILED, h.FAILED]
    assert all("Cancelled" in s.error for s in subs)
    assert all("log_call" not in [st.step for st in s.steps] for s in subs)
    assert _calls(runtime, subs) == []  # nothing was logged in HubSpot
    assert "2 cancelled (not sent to HubSpot)" in page.batch_label.text(), page.batch_label.text()
    assert all("Cancelled" in p.message.text() and not p.retry_button.isHidden() for p in panels), \
        [p.message.text() for p in panels]

    with qtbot.waitSignal(panels[0].finished, timeout=60000) as blocker:  # Retry sends a cancelled one after all
        panels[0].retry()
    assert blocker.args[0].status == h.READY, blocker.args[0].error
    assert len(_calls(runtime, [blocker.args[0]])) == 1


def test_remove_asks_before_discarding_a_filled_form(qtbot, tmp_path, monkeypatch):
    page = UploadPage()
    qtbot.addWidget(page)
    page.show()
    page.add_paths([str(plain_file(tmp_path, "a.wav")), str(plain_file(tmp_path, "b.wav"))])
    qtbot.waitUntil(lambda: len(page.panels) == 2, timeout=20000)
    asked: list[str] = []
    answer = [QMessageBox.StandardButton.Cancel]

    def question(_parent, _title, text, *_args):
        asked.append(text)
        return answer[0]

    monkeypatch.setattr(QMessageBox, "question", question)
    filled = page.panels[1]
    page.queue.setCurrentRow(1)
    filled.form.notes.setPlainText("customer wants a call back on Friday")
    qtbot.mouseClick(page.remove_button, Qt.MouseButton.LeftButton)
    assert len(asked) == 1 and "b.wav" in asked[0]
    assert page.panels == [page.panels[0], filled]  # Cancel kept it, with its notes
    assert filled.form.notes.toPlainText() == "customer wants a call back on Friday"
    answer[0] = QMessageBox.StandardButton.Discard
    qtbot.mouseClick(page.remove_button, Qt.MouseButton.LeftButton)
    assert filled not in page.panels and len(asked) == 2
    page.queue.setCurrentRow(0)  # an untouched form goes without a question
    qtbot.mouseClick(page.remove_button, Qt.MouseButton.LeftButton)
    assert page.panels == [] and len(asked) == 2


def test_the_queue_and_unsent_details_survive_a_restart(qtbot, tmp_path):
    a, b = plain_file(tmp_path, "a.wav"), call_file(tmp_path, 5)
    page = UploadPage()
    qtbot.addWidget(page)
    page.owners = list(OWNERS)
    page.add_paths([str(a), str(b)])
    qtbot.waitUntil(lambda: len(page.panels) == 2 and all(p.inspection for p in page.panels), timeout=30000)
    form = page.panels[1].form
    form.title.setText("Renewal, second try")
    form.notes.setPlainText("asked for the\nannual price")
    form.owner.setCurrentIndex(form.owner.findText("Bob Caller"))
    form.to_number.setText("+1 617 555 0199")
    with qtbot.waitSignal(page.draftsSaved, timeout=10000):
        pass
    saved, problem = drafts.load()
    assert problem == "" and [d.path for d in saved] == [str(a), str(b)]
    page.keep_drafts = False  # the app quits: this page writes no more
    page.close()

    again = UploadPage()  # the next start
    qtbot.addWidget(again)
    again.owners = list(OWNERS)
    with qtbot.waitSignal(again.draftsRestored, timeout=10000):
        pass
    assert [p.path for p in again.panels] == [str(a), str(b)]
    qtbot.waitUntil(lambda: all(p.inspection for p in again.panels), timeout=30000)
    restored = again.panels[1].form
    assert restored.title.text() == "Renewal, second try"
    assert restored.notes.toPlainText() == "asked for the\nannual price"
    assert restored.owner_id() == "71000002"
    assert restored.to_number.text() == "+1 617 555 0199"  # what was typed, not the file name's number
    assert again.panels[0].form.title.text() == ""

    again.queue.setCurrentRow(0)  # removing one is kept too
    with qtbot.waitSignal(again.draftsSaved, timeout=10000):
        qtbot.mouseClick(again.remove_button, Qt.MouseButton.LeftButton)
    assert [d.path for d in drafts.load()[0]] == [str(b)]


def test_a_damaged_saved_queue_is_one_sentence_and_the_page_works(qtbot, tmp_path):
    paths.drafts_file().write_text('{"queue": [{"path": 42}', encoding="utf-8")
    page = UploadPage()
    qtbot.addWidget(page)
    page.show()
    with qtbot.waitSignal(page.draftsRestored, timeout=10000):
        pass
    assert page.panels == []
    assert page.notice.isVisible() and str(paths.drafts_file()) in page.notice.text()
    assert page.notice.text().count("\n") == 0 and "Traceback" not in page.notice.text()
    page.add_paths([str(plain_file(tmp_path))])  # the page goes on: a new queue replaces the damaged one
    qtbot.waitUntil(lambda: len(page.panels) == 1, timeout=20000)
    with qtbot.waitSignal(page.draftsSaved, timeout=10000):
        pass
    assert [d.path for d in drafts.load()[0]] == [str(tmp_path / "plain.wav")]
