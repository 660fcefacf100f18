"""Keyboard and screen reader (issue 18): shortcuts from one table, Space, tab order, accessible names.

Driven on the real main window (no runtime: nothing here needs HubSpot) with real recordings, keys sent
through Qt's shortcut machinery as a keyboard would (``qtbot.keyClick``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAccessible, QKeySequence
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSlider,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QHeaderView,
    QLineEdit,
    QPlainTextEdit,
    QScrollBar,
    QTabBar,
    QTableWidget,
    QTabWidget,
    QTextEdit,
    QWidget,
)
from ui_helpers import fill_history, speech, write_wav

from desktop_app import settings as settings_mod
from desktop_app.ui import shortcuts
from desktop_app.ui.main_window import HISTORY, SETTINGS, UPLOAD, MainWindow


def stereo(tmp: Path, name: str) -> Path:
    return write_wav(tmp / name, [speech(2, start=0.2, freq=220), speech(2, start=1.1, freq=340, level=0.4)])


@pytest.fixture
def window(qtbot):
    win = MainWindow(settings_mod.Settings(), None)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.quitting = True
    for panel in win.upload_page.panels:
        panel.card.player.stop()


def _loaded(qtbot, win, tmp_path, names=("a.wav",)):
    page = win.upload_page
    page.add_paths([str(stereo(tmp_path, n)) for n in names])

    def done():
        assert len(page.panels) == len(names)
        for p in page.panels:
            assert p.inspection is not None, p.status_text
            assert p.details_area.isVisible() or p is not page.current()
    qtbot.waitUntil(done, timeout=30000)
    return page


def _press(qtbot, win, seq: str) -> None:
    """A key combination as the keyboard sends it, to whatever has the focus."""
    combo = QKeySequence(seq)[0]
    target = QApplication.focusWidget() or win
    qtbot.keyClick(target, combo.key(), combo.keyboardModifiers())


def test_every_shortcut_comes_from_the_one_table_and_is_listed_in_help(qtbot, window):
    win = window
    made = {name: action.shortcuts() for name, action in win.shortcut_actions.items()}
    assert set(made) == {s.name for s in shortcuts.SHORTCUTS}
    for s in shortcuts.SHORTCUTS:
        assert [k.toString() for k in made[s.name]] == [QKeySequence(k).toString() for k in s.keys], s.name
    # the standard keys the issue asks for
    keys = {s.name: s.keys for s in shortcuts.SHORTCUTS}
    assert "Ctrl+O" in keys["open"] and "Ctrl+Return" in keys["upload"] and keys["play"] == ("Space",)
    assert keys["next"] == ("Alt+Down",) and keys["previous"] == ("Alt+Up",)

    help_menu = next(a.menu() for a in win.menuBar().actions() if a.text().replace("&", "") == "Help")
    entry = next(a for a in help_menu.actions() if a.text().replace("&", "").startswith("Keyboard shortcuts"))
    entry.trigger()
    dialog = win.shortcuts_dialog
    qtbot.waitUntil(dialog.isVisible, timeout=5000)
    table = dialog.findChild(QTableWidget)
    rows = {table.item(r, 0).text(): table.item(r, 1).text() for r in range(table.rowCount())}
    assert len(rows) == len(shortcuts.SHORTCUTS)
    for s in shortcuts.SHORTCUTS:
        assert s.label in rows
        for k in s.keys:
            assert QKeySequence(k).toString(QKeySequence.SequenceFormat.NativeText) in rows[s.label]
    dialog.close()


def test_next_and_previous_recording_and_page_keys(qtbot, window, tmp_path):
    win = window
    page = _loaded(qtbot, win, tmp_path, ("a.wav", "b.wav", "c.wav"))
    page.queue.setCurrentRow(0)
    page.queue.setFocus()
    _press(qtbot, win, "Alt+Down")
    assert page.queue.currentRow() == 1 and page.stack.currentWidget() is page.panels[1]
    page.panels[1].form.notes.setFocus()  # from inside the form as well
    _press(qtbot, win, "Alt+Down")
    assert page.queue.currentRow() == 2
    _press(qtbot, win, "Alt+Down")  # the last one stays
    assert page.queue.currentRow() == 2
    _press(qtbot, win, "Alt+Up")
    _press(qtbot, win, "Alt+Up")
    assert page.queue.currentRow() == 0
    # in a combo box Alt+Down opens its list, as everywhere else: the shortcut yields
    combo = page.panels[0].form.direction
    combo.setFocus()
    qtbot.waitUntil(combo.hasFocus, timeout=2000)
    _press(qtbot, win, "Alt+Down")
    assert page.queue.currentRow() == 0
    combo.hidePopup()
    _press(qtbot, win, "Ctrl+2")
    assert win.tabs.currentIndex() == HISTORY
    _press(qtbot, win, "Ctrl+1")
    assert win.tabs.currentIndex() == UPLOAD


def test_space_plays_and_pauses_but_types_a_space_in_a_text_field(qtbot, window, tmp_path):
    win = window
    page = _loaded(qtbot, win, tmp_path)
    player = page.panels[0].card.player
    page.queue.setFocus()
    qtbot.waitUntil(page.queue.hasFocus, timeout=2000)
    _press(qtbot, win, "Space")
    assert player.playing, player.error
    _press(qtbot, win, "Space")
    assert not player.playing
    notes = page.panels[0].form.notes
    notes.setFocus()
    qtbot.waitUntil(notes.hasFocus, timeout=2000)
    qtbot.keyClicks(notes, "a b")
    assert notes.toPlainText() == "a b" and not player.playing
    title = page.panels[0].form.title
    title.setFocus()
    qtbot.keyClick(title, Qt.Key.Key_Space)
    assert title.text() == " " and not player.playing


def test_tab_walks_the_form_in_reading_order_with_one_stop_per_time_editor(qtbot, window, tmp_path):
    win = window
    page = _loaded(qtbot, win, tmp_path)
    panel = page.panels[0]
    f = panel.form
    f.create_contact.setEnabled(True)
    expected = [f.title, f.owner, f.timestamp, f.duration, f.from_number, f.to_number, f.direction, f.status,
                f.outcome, f.contact_search, f.contact_results, f.create_contact, f.notes, panel.upload_button]
    panel.upload_button.setEnabled(True)
    f.title.setFocus()
    qtbot.waitUntil(f.title.hasFocus, timeout=2000)
    seen = [QApplication.focusWidget()]
    for _ in expected[1:]:
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
        seen.append(QApplication.focusWidget())
    names = [w.accessibleName() or type(w).__name__ for w in seen]
    owner_edit = f.owner.lineEdit()
    assert [w if w is not owner_edit else f.owner for w in seen] == expected, names


def _interactive(w: QWidget, win: QWidget) -> bool:
    """A control of the window itself (not a popup's) that the mouse or the keyboard operates."""
    kinds = (QAbstractButton, QLineEdit, QComboBox, QAbstractSpinBox, QAbstractItemView, QAbstractSlider,
             QPlainTextEdit, QTextEdit, QTabBar)
    parts = (QScrollBar, QHeaderView, QTabWidget)  # parts and frames a reader names by role
    takes_focus = bool(w.focusPolicy().value & Qt.FocusPolicy.TabFocus.value)
    return ((isinstance(w, kinds) or takes_focus) and w.window() is win and not isinstance(w, parts)
            and not w.objectName().startswith("qt_")  # Qt's own parts (a table's corner button)
            and not isinstance(w.parentWidget(), (QComboBox, QAbstractSpinBox, QLineEdit)))  # a field's own parts


def _spoken_name(w: QWidget) -> str:
    iface = QAccessible.queryAccessibleInterface(w)
    return iface.text(QAccessible.Text.Name).strip() if iface is not None else ""


def test_every_control_has_a_name_a_screen_reader_reads(qtbot, window, tmp_path):
    win = window
    _loaded(qtbot, win, tmp_path)
    nameless = []
    for index in (UPLOAD, HISTORY, SETTINGS):
        win.tabs.setCurrentIndex(index)
        for w in win.findChildren(QWidget):
            if _interactive(w, win) and not _spoken_name(w):
                nameless.append(f"{type(w).__name__} {w.objectName()!r} in {type(w.parentWidget()).__name__}"
                                f" ({w.toolTip()!r})")
    assert not nameless, "controls a screen reader cannot name:\n" + "\n".join(sorted(set(nameless)))


def test_tab_walks_the_recording_in_reading_order_player_then_fixes_then_form(qtbot, window, tmp_path):
    """Buttons made once the inspection is in (solo, fixes) sit where they are seen, not after the notes."""
    win = window
    page = _loaded(qtbot, win, tmp_path)
    panel = page.panels[0]
    card, f = panel.card, panel.form
    qtbot.waitUntil(lambda: len(card.player.solo_buttons) == 3, timeout=5000)
    assert card.fix_buttons, "the test's recording should offer a fix"
    qtbot.waitUntil(lambda: all(b.isVisible() for b in card.fix_buttons), timeout=5000)  # shown on the next turn
    # Both / Solo caller / Solo recipient are one choice: one Tab stop (the chosen one), arrows move within
    expected = [card.player.play_button, card.player.slider, card.player.solo_buttons[0], *card.fix_buttons,
                f.title]
    card.player.play_button.setFocus()
    qtbot.waitUntil(card.player.play_button.hasFocus, timeout=2000)
    seen = [QApplication.focusWidget()]
    for _ in expected[1:]:
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
        seen.append(QApplication.focusWidget())
    assert seen == expected, [w.accessibleName() or getattr(w, "text", lambda: "")() for w in seen]


def test_every_form_field_has_its_own_accessible_name(qtbot, window, tmp_path):
    """Set on the field itself (not only found through a label), so it holds wherever the field is laid out."""
    f = _loaded(qtbot, window, tmp_path).panels[0].form
    fields = {"Title": f.title, "Owner": f.owner, "Time": f.timestamp, "Duration": f.duration,
              "From": f.from_number, "To": f.to_number, "Direction": f.direction, "Status": f.status,
              "Outcome": f.outcome, "Contact search": f.contact_search, "Notes": f.notes}
    assert {name: w.accessibleName() for name, w in fields.items()} == {name: name for name in fields}


def test_f5_refreshes_the_history_wherever_the_focus_is_on_that_page(qtbot, window):
    win = window
    win.tabs.setCurrentIndex(HISTORY)
    page = win.history_page
    qtbot.waitUntil(lambda: page.model.total == 0 and "0 submissions" in page.count_label.text(), timeout=10000)
    fill_history(win.history, 3)  # written elsewhere (another window, the CLI): F5 shows it
    win.tabs.tabBar().setFocus()  # the focus on the page's tab, not inside the page
    qtbot.waitUntil(win.tabs.tabBar().hasFocus, timeout=2000)
    _press(qtbot, win, "F5")
    qtbot.waitUntil(lambda: page.model.total == 3, timeout=10000)
    win.tabs.setCurrentIndex(UPLOAD)  # on another page F5 is not the history's
    fill_history(win.history, 2, prefix="more")
    _press(qtbot, win, "F5")
    qtbot.wait(300)
    assert page.model.total == 3
