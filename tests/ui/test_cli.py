"""``callrelay gui``: registered, starts the real window, and other commands never load Qt."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_building_the_command_line_does_not_import_qt():
    code = ("import sys; from desktop_app.cli import build_parser; p = build_parser(); "
            "print('gui' in p._subparsers._group_actions[0].choices, "
            "any(m.startswith('PySide6') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["True", "False"], out.stderr


def test_callrelay_gui_starts_the_window_in_sandbox_mode(callrelay_home):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "CALLRELAY_HOME": str(callrelay_home)}
    proc = subprocess.Popen([sys.executable, "-m", "desktop_app", "-v", "gui"], cwd=ROOT, env=env,
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    seen: list[str] = []
    ready = threading.Event()

    def read() -> None:  # a reader thread, so a window that never gets ready cannot hang the test
        assert proc.stderr is not None
        for line in proc.stderr:
            seen.append(line)
            if "window ready" in line:
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        ready.wait(timeout=60)
        assert any("window ready: sandbox" in line for line in seen), "".join(seen)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
