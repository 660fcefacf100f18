"""The waveform lanes are painted from the peaks: loud columns are tall, silent ones flat."""

from __future__ import annotations

from PySide6.QtGui import QColor

from desktop_app.ui.waveform import LABEL_WIDTH, LANE_COLOURS, WaveformView, columns


def test_columns_keep_the_maximum_of_what_they_cover():
    assert columns([0.1, 0.9, 0.2, 0.3], 2) == [0.9, 0.3]
    assert columns([0.5], 3) == [0.5, 0.5, 0.5]
    assert columns([], 10) == []


def _lane_extent(image, lane_top, lane_height, x, colour):
    """Rows in column x of one lane painted in ``colour`` (approximately)."""
    hits = 0
    for y in range(int(lane_top), int(lane_top + lane_height)):
        c = QColor(image.pixel(x, y))
        if abs(c.red() - colour.red()) < 40 and abs(c.green() - colour.green()) < 40 \
                and abs(c.blue() - colour.blue()) < 40:
            hits += 1
    return hits


def test_two_lanes_named_and_painted_from_their_peaks(qtbot):
    view = WaveformView()
    qtbot.addWidget(view)
    view.resize(LABEL_WIDTH + 200, 120)
    # caller loud in the first half, recipient loud in the second half
    caller = [1.0] * 50 + [0.0] * 50
    recipient = [0.0] * 50 + [0.8] * 50
    view.set_peaks([caller, recipient])
    assert view.lane_names() == ["Caller", "Recipient"]
    image = view.grab().toImage()
    top0, top1, lane_h = view.lane_rect(0).top(), view.lane_rect(1).top(), view.lane_rect(0).height()
    early, late = LABEL_WIDTH + 40, LABEL_WIDTH + 160
    assert _lane_extent(image, top0, lane_h, early, LANE_COLOURS[0]) > lane_h * 0.7
    assert _lane_extent(image, top0, lane_h, late, LANE_COLOURS[0]) <= 2
    assert _lane_extent(image, top1, lane_h, early, LANE_COLOURS[1]) <= 2
    assert _lane_extent(image, top1, lane_h, late, LANE_COLOURS[1]) > lane_h * 0.5


def test_a_click_asks_to_seek_to_that_fraction(qtbot):
    from PySide6.QtCore import QPoint, Qt

    view = WaveformView()
    qtbot.addWidget(view)
    view.resize(LABEL_WIDTH + 100, 100)
    view.set_peaks([[0.5] * 10, [0.5] * 10])
    with qtbot.waitSignal(view.seekRequested) as blocker:
        qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=QPoint(LABEL_WIDTH + 25, 50))
    assert abs(blocker.args[0] - 0.25) < 0.02
