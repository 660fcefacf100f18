#!/usr/bin/env python3
"""Take the README's screenshots from a real window under Xvfb.

    ./scripts/with-keyring .venv/bin/python scripts/screenshots.py [--out docs/screenshots]

Re-runs itself under ``xvfb-run`` when there is no display, with its own ``CALLRELAY_HOME`` (a
temporary folder) in sandbox mode. It drops a generated call recording on the Upload & Log page and
fills the form (upload.png), submits a few calls and adds history rows in several states
(history.png), shows a call HubSpot refused (error.png), the settings (settings.png), the Upload page in
the dark scheme (dark.png) and the first-run choice (first-run.png), in a 1280×720 window. Each picture
is grabbed from the X server (``QScreen.grabWindow``), i.e. what a user would see. Run it again when the
UI changes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SIZE = (1280, 720)  # the smallest screen the form must fit without scrolling


def reexec_under_xvfb() -> None:
    if os.environ.get("DISPLAY") or os.environ.get("CALLRELAY_SCREENSHOTS_XVFB"):
        return
    xvfb = shutil.which("xvfb-run")
    if not xvfb:
        raise SystemExit("screenshots: xvfb-run is needed (Debian: xvfb xauth)")
    env = {**os.environ, "CALLRELAY_SCREENSHOTS_XVFB": "1"}
    cmd = [xvfb, "-a", "-s", f"-screen 0 {SIZE[0] + 40}x{SIZE[1] + 40}x24", sys.executable, *sys.argv]
    raise SystemExit(subprocess.call(cmd, env=env))


def write_call(path: Path, seconds: float = 95.0, rate: int = 8000) -> Path:
    """A two-speaker call: the caller speaks first, then they take turns (tone bursts, 16-bit WAV)."""
    frames = bytearray()
    for i in range(int(seconds * rate)):
        t = i / rate
        turn = int(t // 6) % 2  # 6-second turns
        env = 0.55 + 0.45 * math.sin(2 * math.pi * 3.1 * t) ** 2
        syll = (t * 2.7) % 1.0 < 0.7
        a = 0.45 * env * math.sin(2 * math.pi * 220 * t) if (turn == 0 and syll and t > 0.4) else 0.0
        b = 0.35 * env * math.sin(2 * math.pi * 330 * t) if (turn == 1 and syll) else 0.0
        a += 0.01 * b
        frames += struct.pack("<hh", int(a * 32767), int(b * 32767))
    header = b"RIFF" + struct.pack("<I", 36 + len(frames)) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 2, rate, rate * 4, 4, 16)
    header += b"data" + struct.pack("<I", len(frames))
    path.write_bytes(header + bytes(frames))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description="Take the screenshots of the desktop app under Xvfb.")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    reexec_under_xvfb()
    home = Path(tempfile.mkdtemp(prefix="callrelay-shots-"))
    os.environ["CALLRELAY_HOME"] = str(home)
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    for name in [n for n in os.environ if n.startswith("HUBSPOT_")]:
        del os.environ[name]

    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from desktop_app import settings as settings_mod
    from desktop_app.runtime import Runtime
    from desktop_app.sync import history as h
    from desktop_app.testing import fill
    from desktop_app.ui import app as app_mod
    from desktop_app.ui import look
    from desktop_app.ui.main_window import HISTORY, SETTINGS, UPLOAD, MainWindow

    app = QApplication([sys.argv[0]])
    app.setStyle("Fusion")
    look.apply_scheme(app, Qt.ColorScheme.Light)  # whatever the machine's scheme: dark.png shows the dark one

    def pump(seconds: float = 0.3, until=None, timeout: float = 60.0) -> None:
        end = time.monotonic() + (timeout if until else seconds)
        while time.monotonic() < end:
            app.processEvents()
            if until is not None and until():
                break
            time.sleep(0.01)
        else:
            if until is not None:
                raise SystemExit("screenshots: timed out waiting for the window")
        for _ in range(10):
            app.processEvents()
            time.sleep(0.01)

    settings = settings_mod.Settings()
    settings.set("calls.agent", "Alice")
    runtime = Runtime(settings=settings)
    win = MainWindow(settings, runtime)
    app_mod.decorate(win)
    win.resize(*SIZE)
    win.move(10, 10)
    win.show()
    started: list[bool] = []
    win.runtimeStarted.connect(lambda: started.append(True))
    pump(until=lambda: bool(started))

    recordings = home / "calls"
    recordings.mkdir()
    names = ["out-6175550142-6175550100-20261120-101500-1732097700.42.wav",
             "in-6175550100-6175550199-20261120-093000-1732095000.17.wav",
             "out-4155550100-6175550100-20261119-161200-1732032720.3.wav"]
    for i, n in enumerate(names):
        write_call(recordings / n, seconds=70 + i)  # three different recordings (the same one reads "already logged")
    page = win.upload_page

    # a few real submissions through the sandbox, then more history rows in other states
    page.add_paths([str(recordings / n) for n in names[1:]])
    pump(until=lambda: len(page.panels) == 2 and all(p.inspection and p.form.contact() for p in page.panels))
    runtime.sandbox.faults.fail("calls.create", status=400)
    pump(until=lambda: all(p.form.owner.count() > 1 for p in page.panels))
    for panel, title in zip(page.panels, ("Support: invoice question", "Renewal call"), strict=True):
        page.queue.setCurrentItem(page.queue.item(page.panels.index(panel)))
        panel.form.title.setText(title)
        panel.form.owner.setCurrentIndex(panel.form.owner.findText("Bob Caller"))
        panel.upload()
        pump(until=lambda p=panel: p.submission is not None and not p.running)
    start = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    rows = []
    contacts = runtime.sandbox.contacts()
    contact_names = [(str(c["id"]), " ".join(filter(None, (c["properties"].get("firstname"),
                                                            c["properties"].get("lastname"))))) for c in contacts]
    win.history_page.set_names("contact", contact_names)
    demo = [("transcribed", "Jane Doe follow-up"), ("ready", "Quote for Acme"), ("queued", "Callback"),
            ("not-transcribed", "Voicemail"), ("transcribed", "Onboarding"), ("transcribed", "Order 1042"),
            ("failed", "Escalation"), ("transcribed", "Billing"), ("ready", "Intro call")]
    for i, (status, title) in enumerate(demo):
        details = {"title": title, "from_number": "+16175550100", "to_number": f"+1617555{142 + i:04d}",
                   "duration_ms": 60_000 + 37_000 * i, "direction": "OUTBOUND", "owner_id": "71000001",
                   "timestamp": h.iso(start - dt.timedelta(hours=3 + 5 * i, minutes=25))}
        rows.append({"created_at": h.iso(start - dt.timedelta(hours=3 + 5 * i)), "agent": ("Alice", "Bob")[i % 2],
                     "recording_path": f"/calls/{i}.wav", "recording_name": f"{i}.wav", "external_id": f"demo-{i}",
                     "details": json.dumps(details), "title": title, "owner_id": "71000001",
                     "contact_id": contact_names[i % len(contact_names)][0], "from_number": details["from_number"],
                     "to_number": details["to_number"], "duration_ms": details["duration_ms"],
                     "state": "ready_marked", "status": status, "call_id": str(5000 + i)})
    fill.insert_submissions(runtime.history.path, rows)

    # the upload page with a recording loaded and its form filled
    page.add_paths([str(recordings / names[0])])
    pump(until=lambda: len(page.panels) == 3 and page.panels[2].inspection is not None
         and page.panels[2].form.contact() is not None and page.panels[2].form.owner.count() > 1)
    panel = page.panels[2]
    panel.form.title.setText("Follow-up on order 1042")
    panel.form.owner.setCurrentIndex(panel.form.owner.findText("Alice Agent"))
    panel.form.notes.setPlainText("Customer confirmed the delivery date.")
    panel.card.player.seek_fraction(0.0)
    win.tabs.setCurrentIndex(UPLOAD)
    page.queue.setCurrentRow(2)
    pump(1.0)

    args.out.mkdir(parents=True, exist_ok=True)

    def shot(name: str) -> None:
        pump(0.5)
        pix = win.screen().grabWindow(win.winId())
        path = args.out / name
        pix.save(str(path), "PNG")
        print(f"screenshots: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} "
              f"({pix.width()}x{pix.height()})")

    shot("upload.png")
    page.queue.setCurrentRow(0)  # a call HubSpot refused (the sandbox answered 400): the error, wrapped
    shot("error.png")
    page.queue.setCurrentRow(2)
    win.tabs.setCurrentIndex(HISTORY)
    hp = win.history_page
    hp.apply_filters()
    pump(until=lambda: hp.model.total >= 11 and not hp.model.loading)
    failed = next(r for r in range(hp.model.rowCount()) if hp.model.submission(r).status == h.FAILED
                  and hp.model.submission(r).external_id.startswith("callrelay"))  # a real one, with steps
    hp.select_row(failed)
    pump(until=lambda: "HTTP" in hp.detail.toPlainText())
    shot("history.png")
    win.tabs.setCurrentIndex(SETTINGS)
    win.settings_page.test_tunnel()  # "Test tunnel": each step of the outside check
    pump(until=lambda: win.settings_page.test_tunnel_button.isEnabled())
    shot("settings.png")
    look.apply_scheme(app, Qt.ColorScheme.Dark)  # what the app does when the system switches to dark
    win.tabs.setCurrentIndex(UPLOAD)
    shot("dark.png")
    look.apply_scheme(app, Qt.ColorScheme.Light)
    from PySide6.QtGui import QCursor

    dialog = win.show_first_run()  # the first-run choice (Call Relay → Set up…)
    QCursor.setPos(0, 0)  # no button lit up by the pointer resting over it
    pump(0.5)
    pix = dialog.screen().grabWindow(dialog.winId())
    pix.save(str(args.out / "first-run.png"), "PNG")
    print(f"screenshots: first-run.png ({pix.width()}x{pix.height()})")
    if os.environ.get("CALLRELAY_SCREENSHOTS_SETUP"):  # the guided set-up too, for a look (not in the README)
        dialog.stack.setCurrentIndex(1)
        dialog.token_edit.setText("pat-na1-wrong")
        dialog.token.test.click()
        dialog.public_url.setText("http://127.0.0.1:8765")
        dialog.tunnel.test.click()
        pump(3.0)
        dialog.screen().grabWindow(dialog.winId()).save(os.environ["CALLRELAY_SCREENSHOTS_SETUP"], "PNG")
    dialog.close()
    win.quitting = True
    win.close()
    runtime.stop()
    shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
