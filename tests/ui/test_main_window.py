"""The real main window against the sandbox (the in-process HubSpot emulator), as an agent uses it.

Drop a good stereo file and a mono one, read the verdicts and lanes, fix the mono one by merging
the two legs, type a bad then a good number, Upload & Log and watch the steps complete, find the
submission in the history, retry a failure injected in the sandbox, export CSV and check its rows.
Runs under ``scripts/with-keyring`` (the recording server's signing key lives in the keyring).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from ui_helpers import speech, write_wav

from desktop_app import settings as settings_mod
from desktop_app.runtime import Runtime
from desktop_app.sync import history as h
from desktop_app.sync.pipeline import RetryPolicy
from desktop_app.ui.history_model import Column
from desktop_app.ui.main_window import HISTORY, MainWindow

# Jane Doe in the sandbox's seeded contacts has +16175550142.
GOOD_NAME = "out-6175550142-6175550100-20261120-100000-1700000000.42.wav"


@pytest.fixture
def window(qtbot):
    settings = settings_mod.Settings()
    assert settings.get("hubspot.sandbox") is True  # a first start with no account: sandbox mode
    runtime = Runtime(settings=settings, policy=RetryPolicy(base_s=0.05, max_attempts=3, search_lag_s=0.0,
                                                            ready_evidence_wait_s=0.5))
    win = MainWindow(settings, runtime)
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(win.runtimeStarted, timeout=30000):
        pass
    yield win
    win.quitting = True
    runtime.stop()


def _inspected(qtbot, page, n):
    def done():
        assert len(page.panels) == n
        for p in page.panels:
            assert p.inspection is not None, f"{p.path}: {p.status_text}"
    qtbot.waitUntil(done, timeout=30000)


def _finish(qtbot, panel, timeout=60000):
    with qtbot.waitSignal(panel.finished, timeout=timeout) as blocker:
        qtbot.mouseClick(panel.upload_button, Qt.MouseButton.LeftButton)
    return blocker.args[0]


def test_upload_and_log_end_to_end_in_the_sandbox(qtbot, window, tmp_path):
    win = window
    assert win.banner.isVisible() and "Sandbox mode" in win.banner_text.text()
    assert win.hubspot_state.text() == "HubSpot: sandbox"
    assert "127.0.0.1" in win.server_state.text()
    page = win.upload_page

    good = write_wav(tmp_path / GOOD_NAME, [speech(4, start=0.2, freq=220), speech(4, start=1.1, freq=340)])
    caller_leg = write_wav(tmp_path / "leg-caller.wav", [speech(4, start=0.2, freq=220)])
    recipient_leg = write_wav(tmp_path / "leg-recipient.wav", [speech(4, start=1.0, freq=340)])
    page.add_paths([str(good), str(caller_leg)])
    _inspected(qtbot, page, 2)
    good_panel, mono_panel = page.panels

    # verdicts and lanes
    assert good_panel.inspection.uploadable and good_panel.card.waveform.lane_names() == ["Caller", "Recipient"]
    assert "mono" in mono_panel.inspection.codes() and mono_panel.card.waveform.lane_names() == ["Caller"]

    # fix the mono one by merging the two legs
    merge = next(f for f in mono_panel.fixes if f.kind == "merge")
    mono_panel.apply_fix(merge, str(recipient_leg))
    qtbot.waitUntil(lambda: mono_panel.inspection is not None and mono_panel.inspection.probe.channels == 2,
                    timeout=30000)
    assert mono_panel.card.waveform.lane_names() == ["Caller", "Recipient"]

    # the good one: prefilled from its name, owners loaded, the contact with the number chosen
    page.queue.setCurrentRow(0)
    form = good_panel.form
    qtbot.waitUntil(good_panel.details_area.isVisible, timeout=5000)  # drawn after the card
    qtbot.waitUntil(lambda: form.contact() is not None, timeout=20000)
    assert form.contact().name == "Jane Doe" and form.contact().why == "phone"
    qtbot.waitUntil(lambda: form.owner.count() > 1, timeout=20000)
    form.owner.setCurrentIndex(form.owner.findText("Alice Agent"))

    # a bad number blocks Upload & Log and is marked where it is; a good one unblocks it
    form.from_number.setText("12")
    assert not good_panel.upload_button.isEnabled()
    assert form.errors_["from_number"].isVisible()
    form.from_number.setText("+1 617 555 0100")
    form.title.setText("Order follow-up")
    qtbot.waitUntil(good_panel.upload_button.isEnabled, timeout=5000)

    sub = _finish(qtbot, good_panel)
    assert sub.status == h.READY, sub.error
    assert all(text.startswith(("done", "not needed")) for text in good_panel.steps.outcomes().values()), \
        good_panel.steps.outcomes()
    assert not good_panel.open_button.isVisible()  # a sandbox call has no page in app.hubspot.com
    assert not good_panel.upload_button.isEnabled()
    sandbox_call = win.runtime.sandbox.call(sub.call_id)
    assert sandbox_call["properties"]["hs_call_title"] == "Order follow-up"
    assert sandbox_call["properties"]["hs_call_from_number"] == "+16175550100"
    assert sandbox_call["properties"]["hubspot_owner_id"] == "71000001"

    # a failure injected in the sandbox: HubSpot's message, a plain explanation, Retry
    win.runtime.sandbox.faults.fail("calls.create", status=400)
    page.queue.setCurrentRow(1)
    mf = mono_panel.form
    mf.from_number.setText("+16175550100")
    with qtbot.waitSignal(mf.contactsShown, timeout=20000):
        mf.to_number.setText("+16175550177")  # nobody has this number: create the contact
        mf.to_number.editingFinished.emit()
    assert mf.contact() is None and "No contact found" in mf.contact_results.item(0).text()
    assert not mono_panel.upload_button.isEnabled()
    mf.create_contact_now("Nina", "New", "nina@example.com")
    qtbot.waitUntil(lambda: mf.contact() is not None, timeout=20000)
    created = [c for c in win.runtime.sandbox.contacts() if c["properties"].get("email") == "nina@example.com"]
    assert len(created) == 1 and created[0]["properties"]["phone"] == "+16175550177"
    assert mf.details().contact_id == str(created[0]["id"])
    failed = _finish(qtbot, mono_panel)
    assert failed.status == h.FAILED and failed.error_status == 400
    assert "HubSpot rejected the request" in mono_panel.message.text()
    assert "Correct the field" in mono_panel.message.text() and mono_panel.message.text().count("HubSpot") == 2
    assert mono_panel.retry_button.isVisible()

    # the history shows both; retry the failed one from there
    win.tabs.setCurrentIndex(HISTORY)
    hp = win.history_page
    qtbot.waitUntil(lambda: hp.model.total == 2 and hp.model.rowCount() == 2, timeout=10000)
    statuses = {hp.model.index(r, Column.STATUS).data() for r in range(2)}
    assert statuses == {h.READY, h.FAILED}
    failed_row = next(r for r in range(2) if hp.model.index(r, Column.STATUS).data() == h.FAILED)
    hp.select_row(failed_row)
    qtbot.waitUntil(lambda: "HTTP 400" in hp.detail.toPlainText(), timeout=5000)
    assert hp.retry_button.isEnabled()
    assert hp.retry_selected() == [failed.id]
    qtbot.waitUntil(lambda: win.runtime.history.get(failed.id).status == h.READY, timeout=60000)
    qtbot.waitUntil(lambda: {hp.model.index(r, Column.STATUS).data() for r in range(hp.model.rowCount())}
                    == {h.READY}, timeout=10000)

    # Settings → Test connection shows the (sandbox) portal and what works
    with qtbot.waitSignal(win.settings_page.tested, timeout=20000) as tested:
        win.settings_page.test_connection()
    assert tested.args[0][0].startswith("✓ Connected to portal")
    assert all(line.startswith("✓") for line in tested.args[0]), tested.args[0]

    # export CSV of the current filter and read it back
    out = tmp_path / "history.csv"
    with qtbot.waitSignal(hp.exported, timeout=10000):
        hp.export_to(str(out))
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert sorted(int(r["id"]) for r in rows) == sorted([sub.id, failed.id])
    assert {r["status"] for r in rows} == {h.READY}
    by_id = {int(r["id"]): r for r in rows}
    assert by_id[sub.id]["title"] == "Order follow-up" and by_id[sub.id]["call_id"] == sub.call_id
    assert Path(by_id[failed.id]["recording"]).suffix in (".flac", ".wav")


def test_window_geometry_and_last_folder_are_remembered(qtbot, tmp_path):
    settings = settings_mod.Settings()
    win = MainWindow(settings, None)
    qtbot.addWidget(win)
    win.resize(777, 654)  # within the offscreen screen (800x800): restoring clamps to the screen
    win.upload_page.last_folder = str(tmp_path)
    win.save_state()
    again = MainWindow(settings_mod.Settings(), None)
    qtbot.addWidget(again)
    assert (again.width(), again.height()) == (777, 654)
    assert again.upload_page.last_folder == str(tmp_path)


def test_page_shortcuts_switch_pages(qtbot):
    win = MainWindow(settings_mod.Settings(), None)
    qtbot.addWidget(win)
    keys = {a.shortcut().toString() for a in win.page_actions}
    assert keys == {"Ctrl+1", "Ctrl+2", "Ctrl+3"}
    win.page_actions[2].trigger()
    assert win.tabs.currentIndex() == 2
    win.page_actions[1].trigger()
    assert win.tabs.currentIndex() == 1
    assert "Ctrl+Return" in {s.toString() for s in win.upload_action.shortcuts()}


def test_without_an_account_the_window_says_so_and_blocks_upload(qtbot, tmp_path):
    settings = settings_mod.Settings()
    settings.set("hubspot.sandbox", False)  # a real account is wanted, but none is configured
    runtime = Runtime(settings=settings)
    win = MainWindow(settings, runtime)
    qtbot.addWidget(win)
    with qtbot.waitSignal(win.runtimeFailed, timeout=30000) as failed:
        pass
    assert "No HubSpot account is configured" in failed.args[0]
    assert win.banner.isVisibleTo(win) and "Not connected" in win.banner_text.text()
    win.upload_page.add_paths([str(write_wav(tmp_path / "call.wav", [speech(2, start=0, freq=220),
                                                                      speech(2, start=1, freq=340)]))])
    _inspected(qtbot, win.upload_page, 1)
    panel = win.upload_page.panels[0]
    assert not panel.upload_button.isEnabled()
    assert any("Not connected to HubSpot" in b for b in panel.blockers())
    runtime.stop()
