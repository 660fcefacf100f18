"""A small player: play/pause, a seek bar, and solo buttons per channel.

The core decodes (``desktop_app.audio.pcm.PcmSource``, PyAV) and Qt only plays PCM through a
``QAudioSink`` in push mode, so the app needs no media backend of Qt's: one FFmpeg in the bundle.

- A *feed* (one per play, seek or solo switch) decodes on a worker (``tasks.long_pool``) from the
  position, with the solo choice, into a bounded queue (~0.5 s ahead). The GUI thread never decodes
  and never waits: a timer (every ``TICK_MS``) moves ready bytes from the queue into the sink's
  device as far as the sink has room.
- The position is where the feed started plus what the sink has played (``processedUSecs``).
- Pause, seek and a solo switch end the feed and delete the sink (what it buffered is dropped at
  once, and a new sink counts ``processedUSecs`` from 0) and, when playing, start new ones at the
  position (a sink costs ~1 ms after the first). Solo plays channel *k* on every output channel
  (the agent hears that speaker in both ears).
- The audio output is looked up on the first Play (the first lookup loads Qt's audio support and
  connects to the sound server: tens of ms). Without any output device, Play says so ("No sound
  output device") instead of playing.
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Any

import shiboken6
from PySide6.QtCore import QCoreApplication, Qt, QTimer, Signal
from PySide6.QtMultimedia import QAudioFormat, QAudioSink, QMediaDevices, QtAudio
from PySide6.QtWidgets import QButtonGroup, QHBoxLayout, QLabel, QPushButton, QSlider, QWidget

from desktop_app.audio.pcm import PcmError, PcmSource
from desktop_app.audio.probe import probe
from desktop_app.ui import tasks
from desktop_app.ui.waveform import lane_name

NO_DEVICE = "No sound output device"
TICK_MS = 20
CHUNK_MS = 40
QUEUE_CHUNKS = 12  # decoded ahead of the sink: ~0.5 s
STALL_S = 3.0  # a feed nobody reads from for this long (the player is gone) gives up
_END = object()


def pcm_format(rate: int, channels: int) -> QAudioFormat:
    """The sink's format for ``PcmSource``'s chunks: interleaved 16-bit at the file's rate and channels."""
    fmt = QAudioFormat()
    fmt.setSampleRate(rate)
    fmt.setChannelCount(channels)
    fmt.setSampleFormat(QAudioFormat.SampleFormat.Int16)
    return fmt


def clock(ms: int) -> str:
    """Elapsed time as a player shows it: whole seconds passed (floored, unlike a call's duration)."""
    s = max(0, ms // 1000)
    return f"{s // 60}:{s % 60:02d}"


class _Feed:
    """One run of the decoder: ``path`` from ``start_ms`` (with ``solo``) into a bounded queue."""

    def __init__(self, path: Path, start_ms: int, solo: int | None) -> None:
        self.path, self.start_ms, self.solo = path, start_ms, solo
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=QUEUE_CHUNKS)
        self.stop = threading.Event()
        self.ended = False  # the end marker has been taken from the queue (GUI side)
        self.task: tasks.Task | None = None

    def run(self) -> None:  # on a worker
        with PcmSource(self.path, solo=self.solo, chunk_ms=CHUNK_MS) as src:
            if not self._put(("format", src.rate, src.channels)):
                return
            src.seek(self.start_ms)
            for chunk in src.chunks():
                if not self._put(chunk):
                    return
        self._put(_END)

    def _put(self, item: Any) -> bool:
        waited = 0.0
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                waited += 0.05
                if waited > STALL_S:
                    return False
        return False


class Player(QWidget):
    positionFraction = Signal(float)  # 0..1, for the waveform's marker
    soloChanged = Signal(object)  # channel (0-based) or None
    sourceChanged = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._path: Path | None = None
        self._channels = 0
        self._solo: int | None = None
        self._duration_ms = 0
        self._position_ms = 0  # where playback is (or would start)
        self._playing = False
        self._feed: _Feed | None = None
        self._sink: QAudioSink | None = None
        self._io: Any = None
        self._frame_bytes = 4
        self._bytes_per_ms = 0.0
        self._pending = bytearray()  # taken from the feed, not yet accepted by the sink
        self._written = 0  # bytes the current sink accepted
        self._made_sink = False
        self._shown: tuple[int, int, int] | None = None  # what the slider/label show (fewer repaints)
        self._probe_task: tasks.Task | None = None
        self.error = ""

        self.play_button = QPushButton("Play")
        self.play_button.setCheckable(False)
        self.play_button.setAccessibleName("Play or pause")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setAccessibleName("Position")
        self.slider.setRange(0, 0)
        self.time_label = QLabel("0:00 / 0:00")
        self.message = QLabel()  # why Play did nothing (no output device, an unreadable file)
        self.message.setStyleSheet("color: #c0392b;")
        self.message.hide()
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
        row.addWidget(self.message)
        row.addWidget(both)
        self._row = row

        self._timer = QTimer(self)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._tick)
        self.play_button.clicked.connect(self.toggle)
        self.slider.sliderMoved.connect(self._dragging)
        self.slider.sliderReleased.connect(lambda: self._seek_ms(self.slider.value()))
        self.solo_group.idClicked.connect(lambda i: self.solo(None if i < 0 else i))
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self._end_feed)

    # --- what the rest of the window uses -----------------------------------------------------
    @property
    def has_player(self) -> bool:
        """Whether an audio output was opened (only once the agent pressed Play)."""
        return self._made_sink

    @property
    def source(self) -> Path | None:
        return self._path

    @property
    def solo_channel(self) -> int | None:
        return self._solo

    @property
    def playing(self) -> bool:
        return self._playing

    @property
    def position_ms(self) -> int:
        if self._feed is not None and self._sink is not None:
            played = self._sink.processedUSecs() // 1000
            written = int(self._written / self._bytes_per_ms) if self._bytes_per_ms else 0
            return min(self._feed.start_ms + min(played, written), self._duration_ms or 1 << 62)
        return self._position_ms

    @property
    def duration_ms(self) -> int:
        return self._duration_ms

    def set_source(self, path: str | Path, channels: int, duration_s: float | None = None) -> None:
        self._end_feed()
        self._playing = False
        self.play_button.setText("Play")
        self._path, self._channels, self._solo = Path(path), channels, None
        self._position_ms = 0
        self._clear_message()
        for b in self.solo_buttons[1:]:
            self.solo_group.removeButton(b)
            b.deleteLater()
        self.solo_buttons = self.solo_buttons[:1]
        self.solo_buttons[0].setChecked(True)
        if channels >= 2:
            for ch in range(channels):
                b = QPushButton(f"Solo {lane_name(ch)}")
                b.setCheckable(True)
                b.setToolTip(f"Hear only channel {ch + 1} ({lane_name(ch)}), in both ears")
                self.solo_group.addButton(b, ch)
                self._row.addWidget(b)
                self.solo_buttons.append(b)
        chain = [self.play_button, self.slider, *self.solo_buttons]  # Tab in the order they are seen
        for first, second in zip(chain, chain[1:], strict=False):
            QWidget.setTabOrder(first, second)
        if self._probe_task is not None:
            self._probe_task.cancel()
            self._probe_task = None
        if duration_s:
            self._set_duration(int(round(duration_s * 1000)))
        else:
            self._set_duration(0)
            wanted = self._path
            self._probe_task = tasks.run_task(probe, wanted, owner=self, name="player-probe",
                                              on_result=lambda p: self._probed(wanted, p))
        self.sourceChanged.emit(str(self._path))

    def toggle(self) -> None:
        if self._playing:
            self.pause()
        else:
            self.play()

    def play(self) -> None:
        if self._path is None or self._playing:
            return
        device = QMediaDevices.defaultAudioOutput()
        if device.isNull():
            self._fail(NO_DEVICE)
            return
        self._clear_message()
        if self._duration_ms and self._position_ms >= self._duration_ms:
            self._position_ms = 0
        self._playing = True
        self.play_button.setText("Pause")
        self._start_feed(self._position_ms)

    def pause(self) -> None:
        if not self._playing:
            return
        self._position_ms = self.position_ms
        self._playing = False
        self._end_feed()
        self.play_button.setText("Play")
        self._show_position()

    def stop(self) -> None:
        self._end_feed()
        self._playing = False
        self.play_button.setText("Play")
        self._position_ms = 0
        self._show_position()

    def seek_fraction(self, fraction: float) -> None:
        if self._duration_ms > 0:
            self._seek_ms(int(max(0.0, min(1.0, fraction)) * self._duration_ms))

    def solo(self, channel: int | None) -> None:
        """Play only ``channel`` (0-based) on every output channel, or all channels with None."""
        if self._path is None or channel == self._solo:
            return
        self._solo = channel
        button = self.solo_group.button(-1 if channel is None else channel)
        if button is not None:
            button.setChecked(True)
        self.soloChanged.emit(channel)
        if self._playing:
            self._start_feed(self.position_ms)

    # --- feeding the sink ---------------------------------------------------------------------
    def _seek_ms(self, ms: int) -> None:
        ms = max(0, min(ms, self._duration_ms)) if self._duration_ms else max(0, ms)
        if self._playing:
            self._start_feed(ms)
        else:
            self._position_ms = ms
        self._show_position(ms)

    def _start_feed(self, start_ms: int) -> None:
        assert self._path is not None
        self._end_feed()
        self._position_ms = start_ms
        feed = _Feed(self._path, start_ms, self._solo)
        self._feed = feed
        feed.task = tasks.run_task(feed.run, pool=tasks.long_pool(), owner=self, name="player-decode",
                                   on_error=lambda exc: self._feed_failed(feed, exc))
        self._timer.start()

    def _end_feed(self) -> None:
        """Stop the decoder and drop the sink (played audio stops at once; the position is kept)."""
        self._timer.stop()
        if self._feed is not None:
            self._feed.stop.set()
            self._feed = None
        self._pending.clear()
        self._written = 0
        sink, self._sink, self._io = self._sink, None, None
        if sink is not None:
            # deleting (not QAudioSink.stop) ends the stream and discards what is buffered
            shiboken6.delete(sink)

    def _open_sink(self, rate: int, channels: int) -> bool:
        fmt = pcm_format(rate, channels)
        device = QMediaDevices.defaultAudioOutput()
        if device.isNull():
            self._fail(NO_DEVICE)
            return False
        sink = QAudioSink(device, fmt, self)
        self._made_sink = True
        io = sink.start()
        if io is None or sink.error() != QtAudio.Error.NoError:
            shiboken6.delete(sink)
            self._fail(f"The sound output ({device.description()}) could not be opened.")
            return False
        self._sink, self._io = sink, io
        self._frame_bytes = 2 * channels
        self._bytes_per_ms = rate * self._frame_bytes / 1000
        return True

    def _tick(self) -> None:
        feed = self._feed
        if feed is None:
            self._timer.stop()
            return
        room = self._sink.bytesFree() if self._sink is not None else 0
        while not feed.ended and (self._sink is None or len(self._pending) < room):
            try:
                item = feed.queue.get_nowait()
            except queue.Empty:
                break
            if item is _END:
                feed.ended = True
            elif isinstance(item, tuple):
                if not self._open_sink(item[1], item[2]):
                    return
                room = self._sink.bytesFree() if self._sink is not None else 0
            else:
                self._pending += item
        sink = self._sink
        if sink is None:
            return
        n = min(room, len(self._pending))
        n -= n % self._frame_bytes
        if n > 0:
            written = self._io.write(bytes(self._pending[:n]))
            if written > 0:
                del self._pending[:written]
                self._written += written
        if sink.error() in (QtAudio.Error.OpenError, QtAudio.Error.IOError, QtAudio.Error.FatalError):
            self._fail("The sound output stopped working.")
            return
        played_all = sink.processedUSecs() // 1000 >= int(self._written / self._bytes_per_ms)
        if feed.ended and not self._pending and played_all:
            end = feed.start_ms + int(self._written / self._bytes_per_ms)
            self._end_feed()
            self._playing = False
            self.play_button.setText("Play")
            self._position_ms = max(end, self._duration_ms)
        self._show_position()

    def _feed_failed(self, feed: _Feed, exc: BaseException) -> None:
        if feed is not self._feed:
            return
        reason = str(exc) if isinstance(exc, PcmError) else f"{type(exc).__name__}: {exc}"
        self._fail(f"Cannot play this recording: {reason}")

    # --- showing ------------------------------------------------------------------------------
    def _fail(self, text: str) -> None:
        self._end_feed()
        self._playing = False
        self.play_button.setText("Play")
        self.error = text
        self.setToolTip(text)
        self.play_button.setToolTip(text)
        self.message.setText(text)
        self.message.show()

    def _clear_message(self) -> None:
        if self.error:
            self.error = ""
            self.setToolTip("")
            self.play_button.setToolTip("")
            self.message.hide()

    def _probed(self, path: Path, result: Any) -> None:
        if path == self._path and result.duration_s and not self._duration_ms:
            self._set_duration(int(round(result.duration_s * 1000)))

    def _set_duration(self, ms: int) -> None:
        self._duration_ms = ms
        self.slider.setRange(0, ms)
        self._shown = None
        self._show_position()

    def _dragging(self, ms: int) -> None:
        self.time_label.setText(f"{clock(ms)} / {clock(self._duration_ms)}")

    def _show_position(self, ms: int | None = None) -> None:
        ms = self.position_ms if ms is None else ms
        shown = (ms, self._duration_ms, self.slider.isSliderDown())
        if shown == self._shown:
            return
        self._shown = shown
        if not self.slider.isSliderDown():
            self.slider.setValue(ms)
        text = f"{clock(ms)} / {clock(self._duration_ms)}"
        if self.time_label.text() != text:
            self.time_label.setText(text)
        if self._duration_ms > 0:
            self.positionFraction.emit(min(1.0, ms / self._duration_ms))
