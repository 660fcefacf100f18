"""Issue 18's "Look": the drop zone lights up, statuses are coloured, dark mode follows the system,
the icons are there, and the Upload form fits 1280×720 without jumping when a message shows."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDragLeaveEvent, QDropEvent, QGuiApplication, QPalette
from PySide6.QtWidgets import QAbstractScrollArea, QApplication, QWidget
from ui_helpers import speech, write_wav

from desktop_app import settings as settings_mod
from desktop_app.ui import app as app_mod
from desktop_app.ui import look
from desktop_app.ui.main_window import UPLOAD, MainWindow
from desktop_app.ui.upload_page import UploadPage


def stereo(tmp: Path, name: str = "call.wav") -> Path:
    return write_wav(tmp / name, [speech(3, start=0.2, freq=220), speech(3, start=1.1, freq=340, level=0.4)])


def _drag(page: UploadPage, paths: list[str]) -> QDragEnterEvent:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(p) for p in paths])
    event = QDragEnterEvent(QPoint(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(page, event)
    event.mime = mime  # type: ignore[attr-defined] - kept alive with the event
    return event


def test_the_drop_zone_lights_up_while_audio_is_dragged_over_it(qtbot, tmp_path):
    page = UploadPage()
    qtbot.addWidget(page)
    page.resize(900, 600)
    page.show()
    qtbot.waitExposed(page)
    before = page.empty.grab().toImage()
    assert not page.property("dropActive")
    enter = _drag(page, [str(stereo(tmp_path))])
    assert enter.isAccepted()
    assert page.property("dropActive") is True
    assert page.queue.property("dropActive") is True and page.empty.property("dropActive") is True
    assert page.empty.grab().toImage() != before, "the drop zone must look different while a drag is over it"
    QApplication.sendEvent(page, QDragLeaveEvent())
    assert not page.property("dropActive") and not page.empty.property("dropActive")
    assert page.empty.grab().toImage() == before

    # a text file is no recording: the zone stays dark and the drag is refused
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    refused = _drag(page, [str(text)])
    assert not refused.isAccepted() and not page.property("dropActive")

    # dropping ends the highlight (and queues the file)
    _drag(page, [str(stereo(tmp_path, "b.wav"))])
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "b.wav"))])
    drop = QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(page, drop)
    assert not page.property("dropActive")
    qtbot.waitUntil(lambda: len(page.panels) == 1 and page.panels[0].inspection is not None, timeout=20000)
    for panel in page.panels:
        panel.card.player.stop()


@pytest.mark.parametrize("dark", [False, True])
def test_statuses_in_the_list_are_coloured_and_readable_in_both_schemes(qtbot, tmp_path, dark):
    app = QApplication.instance()
    old = app.palette()
    look.apply_scheme(app, Qt.ColorScheme.Dark if dark else Qt.ColorScheme.Light)
    try:
        page = UploadPage()
        qtbot.addWidget(page)
        page.show()
        page.add_paths([str(stereo(tmp_path))])
        qtbot.waitUntil(lambda: len(page.panels) == 1 and page.panels[0].inspection is not None, timeout=20000)
        panel, item = page.panels[0], page.queue.item(0)
        base = page.queue.palette().color(QPalette.ColorRole.Base)
        seen = {}
        for status in ("transcribed", "failed", "not-transcribed", "uploading"):
            panel.status_text = status
            panel.changed.emit()
            colour = item.foreground().color()
            seen[status] = colour.name()
            assert _contrast(colour, base) >= 4.5, (status, colour.name(), base.name())
            assert not item.icon().isNull(), status
        assert len(set(seen.values())) == 4, seen  # each kind of status its own colour
        panel.card.player.stop()
    finally:
        app.setPalette(old)


def _contrast(a, b) -> float:
    def lum(c):
        def ch(v):
            v /= 255
            return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4
        return 0.2126 * ch(c.red()) + 0.7152 * ch(c.green()) + 0.0722 * ch(c.blue())
    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_dark_mode_follows_the_system_scheme(qtbot):
    app = QApplication.instance()
    hints = QGuiApplication.styleHints()
    old_palette, old_scheme = app.palette(), hints.colorScheme()
    follower = app_mod.install_look(app)
    follower.changed(Qt.ColorScheme.Light)
    page = UploadPage()  # made before the switch, with a style sheet of its own (the drop zone)
    qtbot.addWidget(page)
    page.show()
    try:
        follower.changed(Qt.ColorScheme.Dark)  # what colorSchemeChanged calls
        assert look.is_dark(app.palette())
        widget = QWidget()
        qtbot.addWidget(widget)
        assert widget.palette().color(QPalette.ColorRole.Window).lightness() < 128
        qtbot.waitUntil(lambda: look.is_dark(page.palette()), timeout=2000)
        assert page.queue.palette().color(QPalette.ColorRole.Base).lightness() < 128
        follower.changed(Qt.ColorScheme.Light)
        assert not look.is_dark(app.palette())
        hints.setColorScheme(Qt.ColorScheme.Dark)  # the system's signal, where the platform passes it on
        if hints.colorScheme() == Qt.ColorScheme.Dark:
            qtbot.waitUntil(lambda: look.is_dark(app.palette()), timeout=2000)
    finally:
        hints.colorSchemeChanged.disconnect(follower.changed)
        hints.unsetColorScheme()
        app.setPalette(old_palette)
        assert old_scheme is not None


@pytest.fixture
def window(qtbot):
    win = MainWindow(settings_mod.Settings(), None)
    qtbot.addWidget(win)
    win.resize(1280, 720)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.quitting = True
    for panel in win.upload_page.panels:
        panel.card.player.stop()


def test_pages_and_main_actions_have_icons(qtbot, window, tmp_path):
    app_mod.decorate(window)
    for i in range(window.tabs.count()):
        assert not window.tabs.tabIcon(i).isNull(), window.tabs.tabText(i)
    page = window.upload_page
    assert not page.open_button.icon().isNull() and not page.remove_button.icon().isNull()
    page.add_paths([str(stereo(tmp_path))])
    qtbot.waitUntil(lambda: len(page.panels) == 1 and page.panels[0].inspection is not None, timeout=20000)
    panel = page.panels[0]
    for button in (panel.upload_button, panel.retry_button, panel.open_button, panel.copy_button):
        assert not button.icon().isNull(), button.text()


def _inside(widget: QWidget, area: QWidget) -> bool:
    top_left = widget.mapTo(area, QPoint(0, 0))
    rect = widget.rect().translated(top_left)
    return area.rect().contains(rect)


def test_the_upload_form_fits_1280x720_and_does_not_jump_for_a_long_message(qtbot, window, tmp_path):
    page = window.upload_page
    window.tabs.setCurrentIndex(UPLOAD)
    assert window.width() == 1280 and window.height() == 720
    page.add_paths([str(stereo(tmp_path))])
    qtbot.waitUntil(lambda: len(page.panels) == 1 and page.panels[0].inspection is not None, timeout=20000)
    panel = page.panels[0]
    qtbot.waitUntil(panel.details_area.isVisible, timeout=5000)
    qtbot.wait(200)
    scroll = panel.findChild(QAbstractScrollArea)
    assert scroll is not None
    viewport = scroll.viewport()
    form = panel.form
    fields = [w for w in form.findChildren(QWidget) if w.isVisible() and w.focusPolicy() != Qt.FocusPolicy.NoFocus]
    assert len(fields) >= 10, "the form's fields are shown"
    assert not scroll.verticalScrollBar().isVisible(), "the Upload form scrolls at 1280×720"
    for w in [*fields, panel.upload_button, panel.card.waveform, panel.card.player]:
        assert _inside(w, viewport), f"{w.accessibleName() or w.objectName() or type(w).__name__} is clipped"

    def where(w):
        return w.mapTo(window, QPoint(0, 0)), w.size()

    waveform = panel.card.waveform
    before = (where(waveform), where(panel.upload_button))
    panel.show_error("HubSpot refused the call: the token lacks a scope. " * 6 + "X" * 300, 403,
                     "0b1c2d3e-4f5a-6b7c-8d9e-0f1a2b3c4d5e")
    qtbot.wait(200)
    assert panel.message.isVisible()
    assert (where(waveform), where(panel.upload_button)) == before, "the waveform or the buttons moved"
    assert not scroll.verticalScrollBar().isVisible(), "the long message made the form scroll"
    assert _inside(panel.message_area, viewport) and _inside(panel.upload_button, viewport)
    assert _inside(panel.copy_button, viewport) and panel.copy_button.isVisible()


@pytest.mark.parametrize("MESSAGE", [
    "HubSpot rejected the request: Injected fault: HTTP 400 (HTTP 400, VALIDATION_ERROR, correlationId a7df8383)",
    "HubSpot rejected a value in the call details. Correct the field it names, then retry. " * 3])
def test_a_message_keeps_its_lines_when_its_column_narrows(qtbot, window, tmp_path, MESSAGE):  # noqa: N803
    page = window.upload_page
    page.add_paths([str(stereo(tmp_path))])
    qtbot.waitUntil(lambda: len(page.panels) == 1 and page.panels[0].inspection is not None, timeout=20000)
    panel = page.panels[0]
    qtbot.waitUntil(panel.details_area.isVisible, timeout=5000)
    panel._row.setDirection(panel._row.Direction.TopToBottom)  # laid out one above the other, as when narrow
    qtbot.wait(100)
    panel.show_error(MESSAGE, 400, "a7df8383-5a85-4ac0-8b8a-7891aae8d5b0")
    panel.refresh()  # side by side again: the message's column is narrower now
    line = panel.message.fontMetrics().lineSpacing()
    qtbot.waitUntil(lambda: panel.message_area.height() >= line, timeout=2000)
    qtbot.wait(100)
    shown = panel.message_area.viewport().height()
    needed = min(panel.message.heightForWidth(panel.message_area.viewport().width()), 5 * line)
    assert shown >= needed - 2, "the message is cut although it has room for its lines"


def test_a_message_that_fits_its_lines_shows_whole_without_a_scroll_bar(qtbot, window, tmp_path):
    page = window.upload_page
    page.add_paths([str(stereo(tmp_path))])
    qtbot.waitUntil(lambda: len(page.panels) == 1 and page.panels[0].inspection is not None, timeout=20000)
    panel = page.panels[0]
    qtbot.waitUntil(panel.details_area.isVisible, timeout=5000)
    words = "HubSpot rejected a value in the call details so correct the field it names then retry".split()
    line = panel.message.fontMetrics().lineSpacing()
    for n in range(0, 120):  # messages of every width around a line's end (a narrow letter at a time)
        panel._say(" ".join(words) + " " + "l" * n)
        qtbot.wait(10)
        full = panel.message.heightForWidth(panel.message_area.viewport().width())
        if full <= 4 * line:  # room for it all: no scroll bar, nothing cut
            assert not panel.message_area.verticalScrollBar().isVisible(), n
            assert panel.message_area.viewport().height() >= full - 1, n
