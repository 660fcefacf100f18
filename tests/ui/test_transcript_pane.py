"""The transcript pane (issue 20) in the real main window: Transcribe runs the real engine on the real model
off the UI thread (progress, Cancel), the lines show time and speaker, clicking a line plays the call from
there (the run's PulseAudio null sink), and a corrected line is what ``transcript()`` gives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from desktop_app import settings as settings_mod
from desktop_app.transcribe import Transcript, Utterance
from desktop_app.ui.main_window import MainWindow
from tests.transcribe.conftest import two_speaker_call, whisper_model, word_error_rate, write_call  # noqa: F401

LINES = [(1, "Hello, I would like to change my address please."), (2, "Of course, what is the new street name?")]


@pytest.fixture
def window(qtbot, callrelay_home: Path, whisper_model: Path):  # noqa: F811
    (callrelay_home / "settings.json").write_text(json.dumps({"transcribe.model_dir": str(whisper_model)}))
    win = MainWindow(settings_mod.Settings(), None)
    qtbot.addWidget(win)
    win.resize(1280, 720)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.quitting = True
    for panel in win.upload_page.panels:
        panel.transcript_pane.cancel()
        panel.card.player.stop()


@pytest.fixture
def panel(qtbot, window, tmp_path: Path):
    x, turns = two_speaker_call(tmp_path, LINES)
    call = write_call(tmp_path, x, turns, "pcm16k")
    page = window.upload_page
    page.add_paths([str(call.path)])
    qtbot.waitUntil(lambda: len(page.panels) == 1 and page.panels[0].inspection is not None, timeout=30000)
    p = page.panels[0]
    p.turns = turns
    return p


def test_transcribe_shows_time_speaker_and_text_and_a_click_plays_from_there(qtbot, panel) -> None:
    pane = panel.transcript_pane
    assert pane.transcribe_button.isVisible() and pane.transcribe_button.isEnabled()
    assert not pane.isVisible(), "no room taken before there is something to show"
    qtbot.mouseClick(pane.transcribe_button, Qt.MouseButton.LeftButton)
    assert pane.running and pane.progress.isVisible() and pane.cancel_button.isVisible()
    seen: list[int] = []
    pane.progress.valueChanged.connect(seen.append)
    with qtbot.waitSignal(pane.transcribed, timeout=180000) as blocker:
        pass
    made: Transcript = blocker.args[0]
    assert not pane.running and not pane.progress.isVisible() and not pane.cancel_button.isVisible()
    assert seen and seen == sorted(seen)
    table = pane.table
    assert table.isVisible() and table.rowCount() == 2 == len(made.utterances)
    rows = [[table.item(r, c).text() for c in range(3)] for r in range(2)]
    assert [r[1] for r in rows] == ["Caller", "Recipient"]
    for row, turn in zip(rows, panel.turns, strict=True):
        minutes, seconds = row[0].split(":")
        assert abs(int(minutes) * 60 + int(seconds) - turn.start_s) <= 1.5
        assert word_error_rate(turn.text, row[2]) <= 0.2

    player = panel.card.player
    second = made.utterances[1]
    rect = table.visualItemRect(table.item(1, 0))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: player.playing, timeout=5000)
    assert abs(player.position_ms - second.start_ms) < 400  # plays from the line's start
    player.stop()


def test_a_corrected_line_is_what_is_posted_and_an_emptied_one_is_left_out(qtbot, panel) -> None:
    pane = panel.transcript_pane
    pane.show_transcript(Transcript("en", (Utterance(1, 500, 2500, "Helo, I wood like"),
                                           Utterance(2, 2600, 4000, "Of course."))))
    assert pane.isVisible() and pane.table.rowCount() == 2
    assert not pane.table.item(0, 0).flags() & Qt.ItemFlag.ItemIsEditable  # the time and speaker stay
    pane.table.item(0, 2).setText("Hello, I would like")  # as the agent's edit leaves it
    pane.table.item(1, 2).setText("  ")
    assert pane.transcript() == Transcript("en", (Utterance(1, 500, 2500, "Hello, I would like"),))


def test_cancel_stops_the_run_and_keeps_the_page_usable(qtbot, panel) -> None:
    pane = panel.transcript_pane
    qtbot.mouseClick(pane.transcribe_button, Qt.MouseButton.LeftButton)
    assert pane.running
    qtbot.mouseClick(pane.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not pane.running, timeout=120000)
    assert pane.status.text() == "Cancelled." and pane.table.rowCount() == 0
    assert pane.transcribe_button.isEnabled() and not pane.cancel_button.isVisible()


def test_a_missing_model_is_one_sentence_in_the_pane(qtbot, panel, callrelay_home: Path) -> None:
    (callrelay_home / "settings.json").write_text(json.dumps({"transcribe.model_dir": str(callrelay_home / "no")}))
    pane = panel.transcript_pane
    qtbot.mouseClick(pane.transcribe_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not pane.running, timeout=30000)
    assert pane.status.isVisible() and "does not exist" in pane.status.text()
    assert pane.status.text().count(". ") == 0 and pane.transcribe_button.isEnabled()
