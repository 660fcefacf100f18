"""The player: loads the file, seeks, and solos a channel by playing a one-channel copy."""

from __future__ import annotations

import wave

import numpy as np
from ui_helpers import speech, write_wav

from desktop_app.ui.player import Player


def _samples(path):
    with wave.open(str(path), "rb") as w:
        return w.getnchannels(), w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), "<i2")


def test_solo_plays_a_copy_of_that_channel_only(qtbot, tmp_path):
    caller, recipient = speech(2, start=0.1, freq=220), speech(2, start=0.9, freq=340, level=0.3)
    src = write_wav(tmp_path / "call.wav", [caller, recipient])
    player = Player()
    qtbot.addWidget(player)
    player.set_source(src, 2, 2.0)
    assert [b.text() for b in player.solo_buttons] == ["Both", "Solo Caller", "Solo Recipient"]
    assert player.slider.maximum() == 2000  # known from the inspection before the media loads
    with qtbot.waitSignal(player.sourceChanged, timeout=10000) as blocker:
        player.solo_buttons[2].click()
    copy = blocker.args[0]
    assert copy != str(src) and player.solo_channel == 1
    channels, rate, data = _samples(copy)
    expected = (np.clip(np.array(recipient), -1, 1) * 32767).astype("<i2")
    assert (channels, rate, len(data)) == (1, 8000, len(recipient))
    assert np.abs(data.astype(int) - expected.astype(int)).max() <= 2  # the recipient, and nothing of the caller
    with qtbot.waitSignal(player.sourceChanged, timeout=5000) as back:
        player.solo_buttons[0].click()
    assert back.args[0] == str(src) and player.solo_channel is None


def test_the_player_loads_and_seeks(qtbot, tmp_path):
    src = write_wav(tmp_path / "call.wav", [speech(3, start=0, freq=220), speech(3, start=1, freq=340)])
    player = Player()
    qtbot.addWidget(player)
    player.set_source(src, 2)
    assert not player.has_player  # nothing opened until the agent listens
    qtbot.waitUntil(lambda: player.player.duration() > 0, timeout=10000)
    assert abs(player.player.duration() - 3000) < 50
    positions = []
    player.positionFraction.connect(positions.append)
    player.seek_fraction(0.5)
    qtbot.waitUntil(lambda: abs(player.player.position() - 1500) < 50, timeout=5000)
    assert "0:01 / 0:03" in player.time_label.text()
