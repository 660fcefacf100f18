"""The Upload page's traps (issue 18), each driven as an agent meets it, on real files."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from ui_helpers import speech, write_wav

from desktop_app.ui.upload_page import UploadPage

OWNERS = [("71000001", "Alice Agent"), ("71000002", "Bob Caller"), ("71000003", "Carol Viewer")]


def stereo(tmp: Path, name: str = "call.wav") -> Path:
    return write_wav(tmp / name, [speech(3, start=0.2, freq=220), speech(3, start=1.1, freq=340, level=0.4)])


def _panel(qtbot, tmp_path, owners=OWNERS):
    page = UploadPage()
    qtbot.addWidget(page)
    page.show()
    page.owners = list(owners)
    page.add_paths([str(stereo(tmp_path))])
    qtbot.waitUntil(lambda: len(page.panels) == 1 and page.panels[0].inspection is not None, timeout=20000)
    panel = page.panels[0]
    qtbot.waitUntil(panel.details_area.isVisible, timeout=5000)
    return page, panel


def test_partial_owner_text_is_refused_and_names_the_field(qtbot, tmp_path):
    _page, panel = _panel(qtbot, tmp_path)
    form = panel.form
    form.owner.setCurrentIndex(form.owner.findText("Alice Agent"))
    assert form.owner_id() == "71000001" and "owner" not in form.errors()
    form.owner.setFocus()
    form.owner.lineEdit().selectAll()
    qtbot.keyClicks(form.owner.lineEdit(), "Car")
    qtbot.keyClick(form.owner.lineEdit(), Qt.Key.Key_Return)
    form.owner.lineEdit().setText("Car")  # whatever the completer did, the field now shows the partial text
    assert form.owner_id() == "", "a partial name must not pass for an owner"
    assert "owner" in form.errors() and "Car" in form.errors()["owner"]
    assert form.errors_["owner"].isVisible()
    assert any(b.startswith("Owner:") for b in panel.blockers())
    assert not panel.upload_button.isEnabled()
    form.owner.lineEdit().setText("carol viewer")  # the full name, in any case, is an owner
    assert form.owner_id() == "71000003" and "owner" not in form.errors()


def test_no_owner_is_said_before_upload(qtbot, tmp_path):
    _page, panel = _panel(qtbot, tmp_path)
    form = panel.form
    form.owner.setCurrentIndex(0)  # "(no owner)": allowed, but the agent is told what it costs
    assert "owner" not in form.errors()
    assert form.owner_note.isVisible() and "transcribes only calls that have an owner" in form.owner_note.text()


def test_an_owner_without_a_paid_seat_is_flagged_before_upload(qtbot, tmp_path):
    _page, panel = _panel(qtbot, tmp_path)
    form = panel.form
    form.set_seats({"71000001": True, "71000002": True, "71000003": False})
    form.owner.setCurrentIndex(form.owner.findText("Carol Viewer"))
    note = form.owner_note.text()
    assert form.owner_note.isVisible() and "seat" in note and "Carol Viewer" in note
    form.owner.setCurrentIndex(form.owner.findText("Alice Agent"))
    assert not form.owner_note.isVisible()


def test_not_yet_reasons_follow_the_typing_and_name_their_field(qtbot, tmp_path):
    _page, panel = _panel(qtbot, tmp_path)
    form = panel.form
    form.from_number.setText("12")
    form.to_number.setText("34")
    text = panel.why_not.text()
    assert "From:" in text and "To:" in text, text
    assert text.count("Too short for a phone number.") <= 2
    form.from_number.setText("+1 617 555 0100")  # still not valid as a whole: only To is wrong now
    text = panel.why_not.text()
    assert "From:" not in text and "To:" in text, text
    reasons = panel.blockers()
    assert len(reasons) == len(set(reasons)), reasons
