"""A small player (QtMultimedia): play/pause, a seek bar, and solo buttons per channel.

Solo plays a copy holding only that channel (``preview.solo_copy``, made in a worker), so the agent
hears who is on which side; the position is kept when switching. QMediaPlayer decodes in its own
threads, so nothing here blocks the UI thread.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtMultimedia import QAudioOutput, QMediaPlayer
from PySide6.QtWidgets import QButtonGroup, QHBoxLayout, QLabel, QPushButton, QSlider, QWidget

from desktop_app.ui import preview, tasks
from desktop_app.ui.waveform import lane_name


def clock(ms: int) -> str:
    """Elapsed time as a player shows it: whole seconds passed (floored, unlike a call's duration)."""
    s = max(0, ms // 1000)
    return f"{s // 60}:{s % 60:02d}"


class Player(QWidget):
    positionFraction = Signal(float)  # 0..1, for the waveform's marker
    soloChanged = Signal(object)  # channel (0-based) or None
    sourceChanged = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # QMediaPlayer and its audio output are made on first use: the first one in a process loads the
        # multimedia backend and opens the sound server (tens of ms on the GUI thread), which an agent
        # only needs to pay for when listening, not for every recording dropped on the window.
        self._player: QMediaPlayer | None = None
        self.audio: QAudioOutput | None = None
        self._path: Path | None = None
        self._channels = 0
        self._solo: int | None = None
        self._pending_position = 0
        self._resume = False
        self._task: tasks.Task | None = None
        self.error = ""

        self.play_button = QPushButton("Play")
        self.play_button.setCheckable(False)
        self.play_button.setAccessibleName("Play or pause")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setAccessibleName("Position")
        self.slider.setRange(0, 0)
        self.time_label = QLabel("0:00 / 0:00")
        self.solo_group = QButtonGroup(self)
        self.solo_group.setExclusive(True)
        self.solo_buttons: list[QPushButton] = []
        both = QPushButton("Both")
        both.setCheckable(True)
        both.setChecked(True)
        self.solo_group.addButton(both, -1)
        self.solo_buttons.append(both)

        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.play_button)
        row.addWidget(self.slider, 1)
        row.addWidget(self.time_label)
        row.addWidget(both)
        self._row = row

        self.play_button.clicked.connect(self.toggle)
        self.slider.sliderMoved.connect(lambda ms: self.player.setPosition(ms))
        self.slider.sliderReleased.connect(lambda: self.player.setPosition(self.slider.value()))
        self._source: Path | None = None  # what the player plays (the file, or a solo copy)
        self.solo_group.idClicked.connect(lambda i: self.solo(None if i < 0 else i))

    @property
    def player(self) -> QMediaPlayer:
        if self._player is None:
            self._player = QMediaPlayer(self)
            self.audio = QAudioOutput(self)
            self._player.setAudioOutput(self.audio)
            self._player.positionChanged.connect(self._position)
            self._player.durationChanged.connect(self._duration)
            self._player.playbackStateChanged.connect(self._state)
            self._player.mediaStatusChanged.connect(self._status)
            self._player.errorOccurred.connect(self._error)
            if self._source is not None:
                self._player.setSource(QUrl.fromLocalFile(str(self._source)))
        return self._player

    @property
    def has_player(self) -> bool:
        return self._player is not None

    def _set_media(self, source: Path) -> None:
        self._source = source
        if self._player is not None:
            self._player.setSource(QUrl.fromLocalFile(str(source)))

    def set_source(self, path: str | Path, channels: int, duration_s: float | None = None) -> None:
        if self._player is not None:
            self._player.stop()
        if duration_s:
            self._duration(int(duration_s * 1000))
        self._path, self._channels, self._solo = Path(path), channels, None
        for b in self.solo_buttons[1:]:
            self.solo_group.removeButton(b)
            b.deleteLater()
        self.solo_buttons = self.solo_buttons[:1]
        self.solo_buttons[0].setChecked(True)
        if channels >= 2:
            for ch in range(channels):
                b = QPushButton(f"Solo {lane_name(ch)}")
                b.setCheckable(True)
                b.setToolTip(f"Hear only channel {ch + 1} ({lane_name(ch)})")
                self.solo_group.addButton(b, ch)
                self._row.addWidget(b)
                self.solo_buttons.append(b)
        self._set_media(self._path)
        self.sourceChanged.emit(str(self._path))

    @property
    def solo_channel(self) -> int | None:
        return self._solo

    def toggle(self) -> None:
        if self.player.playbackState() == QMediaPlayer.PlaybackState.PlayingState:
            self.player.pause()
        else:
            self.player.play()

    def seek_fraction(self, fraction: float) -> None:
        if self.player.duration() > 0:
            self.player.setPosition(int(fraction * self.player.duration()))

    def solo(self, channel: int | None) -> None:
        """Play only ``channel`` (0-based), or both with None."""
        if self._path is None or channel == self._solo:
            return
        self._solo = channel
        button = self.solo_group.button(-1 if channel is None else channel)
        if button is not None:
            button.setChecked(True)
        self.soloChanged.emit(channel)
        if self._task is not None:
            self._task.cancel()
        if channel is None:
            self._switch(self._path)
        else:
            path = self._path
            self._task = tasks.run_task(preview.solo_copy, path, channel, owner=self, name="solo-copy",
                                        on_result=lambda out: self._switch(out) if self._solo == channel else None,
                                        on_error=self._solo_failed)

    def _switch(self, source: Path) -> None:
        if self._player is not None:
            self._pending_position = self._player.position()
            self._resume = self._player.playbackState() == QMediaPlayer.PlaybackState.PlayingState
        self._set_media(source)
        self.sourceChanged.emit(str(source))

    def _solo_failed(self, exc: BaseException) -> None:
        self.error = f"Solo is not available: {exc}"
        self.setToolTip(self.error)

    def _status(self, status: QMediaPlayer.MediaStatus) -> None:
        if status == QMediaPlayer.MediaStatus.LoadedMedia and (self._pending_position or self._resume):
            self.player.setPosition(self._pending_position)
            self._pending_position = 0
            if self._resume:
                self._resume = False
                self.player.play()

    def _position(self, ms: int) -> None:
        if not self.slider.isSliderDown():
            self.slider.setValue(ms)
        duration = self.player.duration()
        self.time_label.setText(f"{clock(ms)} / {clock(duration)}")
        if duration > 0:
            self.positionFraction.emit(ms / duration)

    def _duration(self, ms: int) -> None:
        self.slider.setRange(0, ms)
        position = self._player.position() if self._player is not None else 0
        self.time_label.setText(f"{clock(position)} / {clock(ms)}")

    def _state(self, state: QMediaPlayer.PlaybackState) -> None:
        self.play_button.setText("Pause" if state == QMediaPlayer.PlaybackState.PlayingState else "Play")

    def _error(self, _err: QMediaPlayer.Error, text: str) -> None:
        self.error = text
        self.setToolTip(text)

    def stop(self) -> None:
        if self._player is not None:
            self._player.stop()

    @property
    def source(self) -> Path | None:
        return self._source
