"""The Upload & Log page on real files: inspection, verdicts, lanes, fixes, the form's validation."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from ui_helpers import speech, write_wav

from desktop_app.ui import tasks
from desktop_app.ui.upload_page import UploadPage


def stereo(tmp: Path, name="out-2025550199-2025550142-20261120-100000-1700000000.42.wav") -> Path:
    return write_wav(tmp / name, [speech(4, start=0.2, freq=220), speech(4, start=1.1, freq=340, level=0.4)])


def mono(tmp: Path, name: str, start: float, freq: float) -> Path:
    return write_wav(tmp / name, [speech(4, start=start, freq=freq)])


def _wait_inspected(qtbot, page, n):
    def done():
        assert len(page.panels) == n, "files not listed yet"
        for p in page.panels:
            assert p.inspection is not None, f"{p.path}: {p.status_text}: {p.card.facts.text()}"
    qtbot.waitUntil(done, timeout=20000)


def test_dropped_files_are_inspected_with_lanes_and_verdicts(qtbot, tmp_path):
    page = UploadPage()
    qtbot.addWidget(page)
    good, bad = stereo(tmp_path), mono(tmp_path, "caller-leg.wav", 0.2, 220)
    page.add_paths([str(good), str(bad)])
    _wait_inspected(qtbot, page, 2)
    good_panel, mono_panel = page.panels
    assert good_panel.inspection.uploadable
    assert good_panel.card.waveform.lane_names() == ["Caller", "Recipient"]
    assert "stereo" in good_panel.card.facts.text() and "8 kHz" in good_panel.card.facts.text()
    assert mono_panel.card.waveform.lane_names() == ["Caller"]
    assert "mono" in mono_panel.inspection.codes()
    assert any("⚠" in t for t in mono_panel.card.verdict_texts())
    labels = [b.text() for b in mono_panel.card.fix_buttons]
    assert any(label.startswith("Merge") for label in labels)
    assert len(good_panel.card.player.solo_buttons) == 3  # both, caller, recipient


def test_merging_two_legs_makes_a_stereo_recording(qtbot, tmp_path):
    page = UploadPage()
    qtbot.addWidget(page)
    caller = mono(tmp_path, "caller-leg.wav", 0.2, 220)
    recipient = mono(tmp_path, "recipient-leg.wav", 1.0, 340)
    page.add_paths([str(caller)])
    _wait_inspected(qtbot, page, 1)
    panel = page.panels[0]
    merge = next(f for f in panel.fixes if f.kind == "merge")
    panel.apply_fix(merge, str(recipient))
    qtbot.waitUntil(lambda: panel.path != str(caller) and panel.inspection is not None, timeout=20000)
    assert panel.inspection.probe.channels == 2
    assert "mono" not in panel.inspection.codes()
    assert panel.card.waveform.lane_names() == ["Caller", "Recipient"]
    assert Path(panel.path).exists() and caller.exists()  # the original is kept


def test_folder_drop_lists_its_audio_files(qtbot, tmp_path):
    folder = tmp_path / "calls"
    folder.mkdir()
    stereo(folder, "a.wav")
    stereo(folder, "b.wav")
    (folder / "notes.txt").write_text("not audio")
    page = UploadPage()
    qtbot.addWidget(page)
    page.add_paths([str(folder)])
    _wait_inspected(qtbot, page, 2)
    assert sorted(Path(p.path).name for p in page.panels) == ["a.wav", "b.wav"]
    assert page.last_folder == str(folder)


def test_bad_then_good_number_is_marked_where_it_is(qtbot, tmp_path):
    page = UploadPage()
    qtbot.addWidget(page)
    page.show()
    page.add_paths([str(stereo(tmp_path, "call.wav"))])
    _wait_inspected(qtbot, page, 1)
    form = page.panels[0].form
    qtbot.waitUntil(page.panels[0].details_area.isVisible, timeout=5000)  # drawn after the card
    form.from_number.setText("555 12")
    assert "from_number" in form.errors()
    assert form.errors_["from_number"].isVisible() and form.from_number.property("invalid") is True
    assert form.errors_["from_number"].text() == form.errors()["from_number"]
    form.from_number.setText("(202) 555-0142")
    form.from_number.editingFinished.emit()
    assert "from_number" not in form.errors()
    assert not form.errors_["from_number"].isVisible() and form.from_number.text() == "+12025550142"
    assert not page.panels[0].upload_button.isEnabled()  # no runtime, no contact yet
    assert tasks.pending() >= 0


def test_the_form_is_prefilled_from_an_asterisk_file_name(qtbot, tmp_path):
    import datetime as dt

    page = UploadPage()
    qtbot.addWidget(page)
    page.add_paths([str(stereo(tmp_path))])
    _wait_inspected(qtbot, page, 1)
    form = page.panels[0].form
    qtbot.waitUntil(lambda: form.from_number.text() != "", timeout=5000)
    details = form.details()
    assert (details.from_number, details.to_number, details.direction) == ("+12025550142", "+12025550199", "OUTBOUND")
    local = dt.datetime(2026, 11, 20, 10, 0).astimezone()
    assert details.timestamp == local.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert details.duration_ms == 4000
    assert form.party_number() == "+12025550199"  # outbound: the contact is the one called


def test_a_drop_event_queues_the_files(qtbot, tmp_path):
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDropEvent

    page = UploadPage()
    qtbot.addWidget(page)
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(stereo(tmp_path, "dropped.wav")))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, data, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    page.dropEvent(event)
    assert event.isAccepted()
    _wait_inspected(qtbot, page, 1)
    assert Path(page.panels[0].path).name == "dropped.wav"


def test_tab_order_follows_the_form(qtbot, tmp_path):
    page = UploadPage()
    qtbot.addWidget(page)
    page.show()
    page.add_paths([str(stereo(tmp_path, "call.wav"))])
    _wait_inspected(qtbot, page, 1)
    panel = page.panels[0]
    qtbot.waitUntil(panel.details_area.isVisible, timeout=5000)  # drawn after the card
    f = panel.form
    expected = [f.title, f.owner, f.timestamp, f.duration, f.from_number, f.to_number, f.direction, f.status,
                f.outcome, f.contact_search]
    chain, w = [], f.title
    for _ in range(60):
        chain.append(w)
        w = w.nextInFocusChain()
        while w is not None and not (w.focusPolicy() & Qt.FocusPolicy.TabFocus and w.isVisibleTo(panel)):
            w = w.nextInFocusChain()
    order = [chain.index(x) if x in chain else -1 for x in expected]
    assert -1 not in order and order == sorted(order), order
    assert chain.index(panel.upload_button) > chain.index(f.notes)


def test_open_recordings_lists_audio_files_and_queues_the_picked_ones(qtbot, tmp_path):
    """"Open recordings…": a file dialog in the last folder, filtered to audio;
    the files picked there are queued and inspected. Driven as a user would: the dialog is found as
    the active modal window, its list read, two files typed into its name field, and accepted."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QFileDialog, QLineEdit, QListView

    stereo(tmp_path, "a.wav")
    mono(tmp_path, "b.wav", 0.2, 220)
    (tmp_path / "notes.txt").write_text("not a recording")
    page = UploadPage()
    qtbot.addWidget(page)
    page.last_folder = str(tmp_path)
    page.show()
    seen: dict[str, object] = {}

    def answer() -> None:
        dialog = QApplication.activeModalWidget()
        view = dialog.findChild(QListView, "listView") if isinstance(dialog, QFileDialog) else None
        if view is None:
            QTimer.singleShot(20, answer)
            return
        model, root = view.model(), view.rootIndex()
        rows = [model.index(r, 0, root) for r in range(model.rowCount(root))]
        if "a.wav" not in {i.data() for i in rows}:  # the folder is read in the background
            QTimer.singleShot(20, answer)
            return
        seen["offered"] = {i.data() for i in rows if model.flags(i) & Qt.ItemFlag.ItemIsEnabled}
        seen["filter"] = dialog.selectedNameFilter()
        seen["folder"] = dialog.directory().absolutePath()
        dialog.findChild(QLineEdit, "fileNameEdit").setText('"a.wav" "b.wav"')
        dialog.accept()

    QTimer.singleShot(0, answer)
    qtbot.mouseClick(page.open_button, Qt.MouseButton.LeftButton)
    assert seen["folder"] == str(tmp_path)
    assert str(seen["filter"]).startswith("Audio recordings (") and "*.wav" in str(seen["filter"])
    assert seen["offered"] == {"a.wav", "b.wav"}  # notes.txt is not offered
    _wait_inspected(qtbot, page, 2)
    assert sorted(Path(p.path).name for p in page.panels) == ["a.wav", "b.wav"]


def test_a_dropped_folder_gets_one_panel_per_turn_of_the_event_loop(qtbot, tmp_path):
    """Building a recording's panel is tens of ms of widget work on the GUI thread; a folder of many
    recordings gets one panel per turn of the event loop, so the window is never held for all of them
    at once (and the folder is remembered once, when the last one is in)."""
    page = UploadPage()
    qtbot.addWidget(page)
    page.show()
    files = [str(write_wav(tmp_path / f"call-{i}.wav", [speech(1, start=0.1, freq=220 + 20 * i),
                                                        speech(1, start=0.5, freq=340)])) for i in range(4)]
    folders: list[str] = []
    page.folderUsed.connect(folders.append)
    page._add_files(files)  # what the listing of a dropped folder delivers, in one GUI event
    assert [p.path for p in page.panels] == files[:1] and folders == []
    qtbot.waitUntil(lambda: len(page.panels) == 4, timeout=10000)
    assert [p.path for p in page.panels] == files and page.queue.count() == 4
    qtbot.waitUntil(lambda: folders == [str(tmp_path)], timeout=5000)
    tasks.shutdown(10)
