"""A recording removed from the queue while it is still being inspected: the inspection's late progress
and result reach a panel that is gone, and must be dropped quietly (pytest-qt fails the test on any
exception raised in a Qt callback, as the app would print a traceback)."""

from __future__ import annotations

from PySide6.QtWidgets import QApplication
from ui_helpers import speech, write_wav

from desktop_app.ui import tasks
from desktop_app.ui.upload_page import UploadPage


def test_removing_a_recording_mid_inspection_raises_nothing(qtbot, tmp_path):
    page = UploadPage(keep_drafts=False)
    qtbot.addWidget(page)
    long_call = write_wav(tmp_path / "long.wav", [speech(600, start=0.5, freq=220),
                                                  speech(600, start=1.0, freq=330)])
    page.add_paths([str(long_call)])
    qtbot.waitUntil(lambda: len(page.panels) == 1, timeout=10000)
    panel = page.panels[0]
    card = panel.card
    qtbot.waitUntil(lambda: card.progress.value() > 0 or panel.inspection is not None, timeout=20000)
    page.queue.setCurrentRow(0)
    page.remove_current()
    for _ in range(50):  # let the deleteLater and every progress event still queued run
        QApplication.processEvents()
        qtbot.wait(20)
    late = tasks.to_gui(card.set_progress)  # as the inspection thread reports progress
    late(0.5)  # a progress report that arrives after the removal
    for _ in range(5):
        QApplication.processEvents()
        qtbot.wait(20)
    assert page.panels == []
