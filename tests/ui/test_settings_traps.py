"""The Settings traps (issue 18): the wheel, unsaved changes, "Use a real account…", changes that need a restart."""

from __future__ import annotations

import subprocess

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QScrollArea

from desktop_app import keystore
from desktop_app import settings as settings_mod
from desktop_app.ui import app as app_mod
from desktop_app.ui.settings_page import SettingsPage


def _wheel(widget, steps: int) -> None:
    """Turn the mouse wheel over ``widget`` (positive: away from the user) as the window system does."""
    centre = QPointF(widget.width() / 2, widget.height() / 2)
    event = QWheelEvent(centre, QPointF(widget.mapToGlobal(centre.toPoint())), QPoint(0, 0), QPoint(0, 120 * steps),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)


@pytest.fixture
def wheel_guard(qapp):
    guard = app_mod.install_wheel_guard(qapp)  # what the app's main() installs
    yield guard
    qapp.removeEventFilter(guard)


def test_the_wheel_scrolls_settings_without_changing_an_unfocused_field(qtbot, wheel_guard):
    page = SettingsPage(settings_mod.Settings())
    qtbot.addWidget(page)
    page.resize(900, 500)
    page.show()
    qtbot.waitExposed(page)
    page.advanced_button.click()  # the link TTL is an advanced setting
    scroll = page.findChild(QScrollArea)
    ttl, provider = page.widgets["server.link_ttl_s"], page.widgets["tunnel.provider"]
    scroll.ensureWidgetVisible(ttl)
    bar = scroll.verticalScrollBar()
    before = bar.value()
    for _ in range(3):
        _wheel(ttl, -1)
    assert ttl.value() == 3600  # not 3597 behind the user's back
    assert bar.value() > before  # the turn of the wheel scrolled the page instead
    scroll.ensureWidgetVisible(provider)
    _wheel(provider, -1)
    assert provider.currentText() == "manual"
    assert not ttl.hasFocus() and "Unsaved" not in page.status.text()

    page.activateWindow()
    ttl.setFocus()
    qtbot.waitUntil(ttl.hasFocus, timeout=3000)
    _wheel(ttl, 1)  # a field the user chose takes the wheel
    assert ttl.value() == 3601


def test_the_wheel_guard_covers_every_spin_combo_and_date_box_of_the_app(qtbot, wheel_guard):
    from PySide6.QtWidgets import QComboBox, QDateTimeEdit, QDoubleSpinBox, QWidget

    holder = QWidget()
    qtbot.addWidget(holder)
    boxes = [QDoubleSpinBox(holder), QDateTimeEdit(holder), QComboBox(holder)]
    boxes[2].addItems(["a", "b", "c"])
    holder.show()
    qtbot.waitExposed(holder)
    values = [b.value() if isinstance(b, QDoubleSpinBox) else b.text() if isinstance(b, QDateTimeEdit)
              else b.currentText() for b in boxes]
    for b in boxes:
        _wheel(b, -1)
        assert b.focusPolicy() != Qt.FocusPolicy.WheelFocus
    assert [boxes[0].value(), boxes[1].text(), boxes[2].currentText()] == values


def test_unsaved_changes_are_shown_until_saved_or_reverted(qtbot):
    page = SettingsPage(settings_mod.Settings())
    qtbot.addWidget(page)
    assert not page.unsaved()
    page.widgets["server.link_ttl_s"].setValue(3574)
    assert page.unsaved() == ["server.link_ttl_s"]
    assert "Unsaved" in page.status.text() and "Link TTL (s)" in page.status.text()
    page.revert_button.click()
    assert page.widgets["server.link_ttl_s"].value() == 3600
    assert not page.unsaved() and "Unsaved" not in page.status.text()
    page.widgets["calls.agent"].setText("Ana")
    assert "Agent" in page.status.text()
    with qtbot.waitSignal(page.saved, timeout=5000):
        assert page.save()
    assert not page.unsaved() and "Unsaved" not in page.status.text()


def test_use_a_real_account_lands_on_the_hubspot_account_settings(qtbot):
    from desktop_app.ui.main_window import SETTINGS, MainWindow

    win = MainWindow(settings_mod.Settings(), None)
    qtbot.addWidget(win)
    win.resize(1280, 720)
    win.show()
    qtbot.waitExposed(win)
    assert win.banner_button.isVisible()
    page = win.settings_page
    scroll = page.findChild(QScrollArea)
    win.tabs.setCurrentIndex(SETTINGS)  # the agent had looked at the defaults for calls, at the bottom
    scroll.verticalScrollBar().setValue(scroll.verticalScrollBar().maximum())
    win.tabs.setCurrentIndex(0)
    qtbot.mouseClick(win.banner_button, Qt.MouseButton.LeftButton)
    assert win.tabs.currentIndex() == SETTINGS
    viewport = scroll.viewport()
    sandbox, token = page.widgets["hubspot.sandbox"], page.secret_fields[keystore.HUBSPOT_ACCESS_TOKEN]
    for field in (sandbox, token):  # what an agent sets to leave the sandbox, both in sight
        top = field.mapTo(viewport, QPoint(0, 0)).y()
        assert 0 <= top and top + field.height() <= viewport.height(), field.accessibleName()
    qtbot.waitUntil(sandbox.hasFocus, timeout=3000)


def test_saving_a_server_or_tunnel_change_offers_restart_now(qtbot):
    page = SettingsPage(settings_mod.Settings())
    qtbot.addWidget(page)
    page.show()
    page.widgets["calls.agent"].setText("Ana")  # read when used: no restart
    with qtbot.waitSignal(page.saved, timeout=5000):
        page.save()
    assert not page.restart_button.isVisible()
    page.widgets["server.link_ttl_s"].setValue(1800)
    with qtbot.waitSignal(page.saved, timeout=5000):
        page.save()
    assert page.restart_button.isVisible() and "Restart now" in page.restart_button.text()
    assert "restart" in page.status.text().lower()
    with qtbot.waitSignal(page.restartRequested, timeout=1000):
        qtbot.mouseClick(page.restart_button, Qt.MouseButton.LeftButton)


def test_the_restart_command_starts_the_desktop_app():
    command = app_mod.restart_command()
    done = subprocess.run([*command, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Start the Call Relay window" in done.stdout
