"""The player against a real sound server (the run's PulseAudio with a null sink, ``conftest.sound_server``).

What reaches the server is recorded from the null sink's monitor (``parec``), so solo is checked on
the sound itself. The no-device case runs in a child process: Qt picks its audio service once per
process.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from ui_helpers import speech, write_wav

from desktop_app.ui.player import NO_DEVICE, Player

ROOT = Path(__file__).resolve().parents[2]


def tones(seconds: float, rate: int = 8000) -> list[list[float]]:
    """Caller: 220 Hz at 0.5 on channel 1; recipient: 340 Hz at 0.25 on channel 2, all along."""
    t = np.arange(int(seconds * rate)) / rate
    return [list(0.5 * np.sin(2 * np.pi * 220 * t)), list(0.25 * np.sin(2 * np.pi * 340 * t))]


def make_player(qtbot, src: Path, channels: int = 2, duration_s: float | None = None) -> Player:
    player = Player()
    qtbot.addWidget(player)
    player.set_source(src, channels, duration_s)
    return player


def playing_from(qtbot, player: Player, at_least_ms: int, timeout: int = 5000) -> None:
    qtbot.waitUntil(lambda: player.position_ms >= at_least_ms, timeout=timeout)


def test_nothing_is_opened_until_the_agent_plays(qtbot, tmp_path):
    src = write_wav(tmp_path / "call.wav", [speech(3, start=0, freq=220), speech(3, start=1, freq=340)])
    player = make_player(qtbot, src, 2, 3.0)
    assert [b.text() for b in player.solo_buttons] == ["Both", "Solo Caller", "Solo Recipient"]
    assert player.slider.maximum() == 3000 and player.time_label.text() == "0:00 / 0:03"
    assert not player.has_player and player.play_button.text() == "Play"
    player.toggle()
    assert player.playing and player.play_button.text() == "Pause" and not player.error
    qtbot.waitUntil(lambda: player.has_player, timeout=5000)
    player.stop()


def test_the_duration_is_read_when_not_given(qtbot, tmp_path):
    src = write_wav(tmp_path / "call.wav", [speech(2.5, start=0, freq=220), speech(2.5, start=1, freq=340)])
    player = make_player(qtbot, src)
    qtbot.waitUntil(lambda: player.duration_ms == 2500, timeout=5000)
    assert player.slider.maximum() == 2500 and player.time_label.text() == "0:00 / 0:02"


def test_play_advances_pause_holds_and_play_goes_on_from_there(qtbot, tmp_path):
    src = write_wav(tmp_path / "call.wav", tones(4))
    player = make_player(qtbot, src, 2, 4.0)
    fractions: list[float] = []
    player.positionFraction.connect(fractions.append)
    player.toggle()
    playing_from(qtbot, player, 600)
    assert abs(player.slider.value() - player.position_ms) <= 100  # the bar follows (it moves every tick)
    assert player.time_label.text() in ("0:00 / 0:04", "0:01 / 0:04")
    assert fractions and 0 < fractions[-1] < 1 and fractions == sorted(fractions)
    started = time.monotonic()
    player.toggle()  # pause
    paused_at = player.position_ms
    assert not player.playing and player.play_button.text() == "Play"
    assert 600 <= paused_at < 600 + (time.monotonic() - started) * 1000 + 400
    qtbot.wait(300)
    assert player.position_ms == paused_at and player.slider.value() == paused_at
    player.toggle()  # play again: on from where it paused, not from the start
    qtbot.waitUntil(lambda: player.position_ms > paused_at + 200, timeout=5000)
    assert player.position_ms < paused_at + 2000
    player.stop()
    assert player.position_ms == 0 and player.time_label.text() == "0:00 / 0:04"


def test_seek_moves_the_position_while_playing_and_while_paused(qtbot, tmp_path):
    src = write_wav(tmp_path / "call.wav", tones(6))
    player = make_player(qtbot, src, 2, 6.0)
    player.seek_fraction(0.5)  # paused: the position moves, nothing plays
    assert player.position_ms == 3000 and player.time_label.text() == "0:03 / 0:06" and not player.has_player
    player.toggle()
    qtbot.waitUntil(lambda: player.position_ms > 3100, timeout=5000)  # it played on from 3 s
    player.seek_fraction(0.25)
    assert 1500 <= player.position_ms < 1600
    qtbot.waitUntil(lambda: player.position_ms > 1700, timeout=5000)
    assert player.position_ms < 3000 and player.playing
    player.slider.setSliderDown(True)  # the agent drags the handle to 5 s and lets go
    player.slider.setValue(5000)
    player.slider.setSliderDown(False)
    qtbot.waitUntil(lambda: player.position_ms > 5100, timeout=5000)
    player.stop()


def test_a_solo_switch_keeps_the_position(qtbot, tmp_path):
    src = write_wav(tmp_path / "call.wav", tones(5))
    player = make_player(qtbot, src, 2, 5.0)
    player.toggle()
    playing_from(qtbot, player, 700)
    with qtbot.waitSignal(player.soloChanged, timeout=1000) as solo:
        before = player.position_ms
        player.solo_buttons[2].click()
        after = player.position_ms
    assert solo.args == [1] and player.solo_channel == 1 and player.playing
    assert abs(after - before) <= 100  # on from the same place, not from the start
    qtbot.waitUntil(lambda: player.position_ms > after + 200, timeout=5000)
    before = player.position_ms
    player.solo(None)
    assert abs(player.position_ms - before) <= 100 and player.solo_channel is None
    player.stop()


def _record(qtbot, ms: int, server: str) -> np.ndarray:
    """What the null sink plays over ``ms`` (the GUI thread keeps feeding meanwhile), (frames, 2) int16 at 8 kHz."""
    parec = shutil.which("parec")
    assert parec
    proc = subprocess.Popen([parec, "-d", "callrelay_test.monitor", "--rate=8000", "--channels=2",
                             "--format=s16le", "--latency-msec=20"], stdout=subprocess.PIPE,
                            env=dict(os.environ, PULSE_SERVER=server))
    qtbot.wait(ms)
    proc.terminate()
    data = proc.communicate(timeout=10)[0]
    return np.frombuffer(data[: len(data) // 4 * 4], "<i2").reshape(-1, 2)


def _level(x: np.ndarray, freq: float, rate: int = 8000) -> float:
    """The amplitude of ``freq`` in ``x`` (one channel), from a windowed spectrum."""
    x = x.astype(float)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)))) * 4 / len(x)
    bins = np.fft.rfftfreq(len(x), 1 / rate)
    near = np.abs(bins - freq) < 15
    return float(spectrum[near].max() / 32768)


def test_what_reaches_the_sound_server_is_each_channel_or_the_soloed_one_in_both(qtbot, tmp_path, sound_server):
    src = write_wav(tmp_path / "call.wav", tones(8))
    player = make_player(qtbot, src, 2, 8.0)
    player.toggle()
    playing_from(qtbot, player, 300)
    both = _record(qtbot, 900, sound_server)[-5000:-1000]
    player.solo(1)  # the recipient, in both ears
    playing_from(qtbot, player, player.position_ms + 300)
    solo = _record(qtbot, 900, sound_server)[-5000:-1000]
    player.stop()
    assert len(both) == len(solo) == 4000
    left, right = both[:, 0], both[:, 1]
    assert _level(left, 220) > 0.3 and _level(left, 340) < 0.02  # the caller on the left only
    assert _level(right, 340) > 0.15 and _level(right, 220) < 0.02  # the recipient on the right only
    for side in (solo[:, 0], solo[:, 1]):
        assert _level(side, 340) > 0.15 and _level(side, 220) < 0.02  # the recipient in both, nothing of the caller


def test_it_plays_to_the_end_and_plays_again_from_the_start(qtbot, tmp_path):
    src = write_wav(tmp_path / "short.wav", tones(1.2))
    player = make_player(qtbot, src, 2, 1.2)
    player.seek_fraction(0.5)
    player.toggle()
    qtbot.waitUntil(lambda: not player.playing, timeout=5000)
    assert player.position_ms == 1200 and player.play_button.text() == "Play" and not player.error
    assert player.time_label.text() == "0:01 / 0:01" and player.slider.value() == 1200
    player.toggle()
    assert player.position_ms < 100  # from the start again
    player.stop()


def test_an_unreadable_recording_says_why_instead_of_playing(qtbot, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF" + os.urandom(2000))
    player = make_player(qtbot, bad, 2, 3.0)
    player.toggle()
    qtbot.waitUntil(lambda: bool(player.error), timeout=5000)
    assert player.error.startswith("Cannot play this recording: ") and not player.playing
    assert player.message.isVisibleTo(player) and player.play_button.toolTip() == player.error


NO_SERVER_SCRIPT = """
import json, sys, time
from PySide6.QtWidgets import QApplication
app = QApplication([])
from desktop_app.ui.player import Player
player = Player()
player.set_source(sys.argv[1], 2, 3.0)
player.show()
started = time.monotonic()
player.toggle()
took = time.monotonic() - started
for _ in range(20):
    app.processEvents()
    time.sleep(0.01)
print(json.dumps({"error": player.error, "playing": player.playing, "shown": player.message.isVisible(),
                  "label": player.message.text(), "tooltip": player.play_button.toolTip(), "took": took,
                  "button": player.play_button.text()}))
"""


def test_without_a_sound_server_play_says_there_is_no_output_device(tmp_path):
    src = write_wav(tmp_path / "call.wav", tones(3))
    env = dict(os.environ, PULSE_SERVER=f"unix:{tmp_path / 'no-server'}", QT_AUDIO_BACKEND="pulseaudio",
               QT_QPA_PLATFORM="offscreen", XDG_RUNTIME_DIR=str(tmp_path), PULSE_RUNTIME_PATH=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", NO_SERVER_SCRIPT, str(src)], cwd=ROOT, env=env, text=True,
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["error"] == NO_DEVICE and seen["label"] == NO_DEVICE and seen["tooltip"] == NO_DEVICE
    assert seen["shown"] and not seen["playing"] and seen["button"] == "Play"
    assert seen["took"] < 5


def test_a_mono_recording_plays_without_solo_buttons(qtbot, tmp_path):
    src = write_wav(tmp_path / "mono.wav", tones(3)[:1])
    player = make_player(qtbot, src, 1, 3.0)
    assert [b.text() for b in player.solo_buttons] == ["Both"]
    player.toggle()
    playing_from(qtbot, player, 300)
    assert not player.error
    player.stop()
