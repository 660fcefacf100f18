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
    s = max(0, ms // 1000)
    return f"{s // 60}:{s % 60:02d}"


class Player(QWidget):
    positionFraction = Signal(float)  # 0..1, for the waveform's marker
    soloChanged = Signal(object)  # channel (0-based) or None
    sourceChanged = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.player = QMediaPlayer(self)
        self.audio = QAudioOutput(self)
        self.player.setAudioOutput(self.audio)
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
        self.slider.sliderMoved.connect(self.player.setPosition)
        self.slider.sliderReleased.connect(lambda: self.player.setPosition(self.slider.value()))
        self.player.positionChanged.connect(self._position)
        self.player.durationChanged.connect(self._duration)
        self.player.playbackStateChanged.connect(self._state)
        self.player.mediaStatusChanged.connect(self._status)
        self.player.errorOccurred.connect(self._error)
        self.solo_group.idClicked.connect(lambda i: self.solo(None if i < 0 else i))

    def set_source(self, path: str | Path, channels: int) -> None:
        self.player.stop()
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
        self.player.setSource(QUrl.fromLocalFile(str(self._path)))
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
        self._pending_position = self.player.position()
        self._resume = self.player.playbackState() == QMediaPlayer.PlaybackState.PlayingState
        self.player.setSource(QUrl.fromLocalFile(str(source)))
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
        self.time_label.setText(f"{clock(ms)} / {clock(self.player.duration())}")
        if self.player.duration() > 0:
            self.positionFraction.emit(ms / self.player.duration())

    def _duration(self, ms: int) -> None:
        self.slider.setRange(0, ms)
        self.time_label.setText(f"{clock(self.player.position())} / {clock(ms)}")

    def _state(self, state: QMediaPlayer.PlaybackState) -> None:
        self.play_button.setText("Pause" if state == QMediaPlayer.PlaybackState.PlayingState else "Play")

    def _error(self, _err: QMediaPlayer.Error, text: str) -> None:
        self.error = text
        self.setToolTip(text)

    def stop(self) -> None:
        self.player.stop()
