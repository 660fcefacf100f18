"""Headless Chromium (Debian's, driven by Playwright) plays recordings from the server in an <audio>
element and seeks to the middle: WAV, FLAC and MP4. The page comes from another origin on loopback, as
HubSpot's player does, and asks for CORS (crossorigin="anonymous") so the server's CORS headers count."""

from __future__ import annotations

import http.server
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_helpers import write_encoded, write_wav

from desktop_app.server import RecordingServer
from desktop_app.server.accesslog import read_entries
from desktop_app.server.recordings import RecordingStore

pytestmark = pytest.mark.needs_tool("chromium")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required"]
PAGE = """<!doctype html><html><body>
<audio id="a" crossorigin="anonymous" preload="metadata" muted src="{src}"></audio>
<script>
  const a = document.getElementById('a');
  window.events = [];
  for (const e of ['loadedmetadata', 'seeked', 'playing', 'error']) a.addEventListener(e, () => window.events.push(e));
</script></body></html>"""


class PageServer:
    """A test-only HTTP server on loopback (another origin than the recording server) serving one page."""

    def __init__(self) -> None:
        self.html = b""
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(outer.html)))
                self.end_headers()
                self.wfile.write(outer.html)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/player.html"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page_server() -> Iterator[PageServer]:
    ps = PageServer()
    yield ps
    ps.close()


def make(kind: str, tmp_path: Path) -> tuple[Path, float]:
    if kind == "wav":  # 21 MB: more than Chromium buffers ahead, so the seek is a new Range request
        return write_wav(tmp_path / "call.wav", seconds=120.0, rate=44100), 120.0
    if kind == "flac":
        return write_encoded(tmp_path / "call.flac", "flac", seconds=20.0), 20.0
    return write_encoded(tmp_path / "call.mp4", "aac", seconds=20.0), 20.0


@pytest.mark.parametrize("kind", ["wav", "flac", "mp4"])
def test_chromium_plays_and_seeks_to_the_middle(browser: object, page_server: PageServer, store: RecordingStore,
                                                server: RecordingServer, tmp_path: Path, kind: str) -> None:
    path, seconds = make(kind, tmp_path)
    rec = store.add(path)
    page_server.html = PAGE.format(src=server.make_link(rec.sha256)).encode()
    page = browser.new_page()  # type: ignore[attr-defined]
    try:
        page.goto(page_server.url)
        page.wait_for_function("window.events.includes('loadedmetadata') || window.events.includes('error')",
                               timeout=20_000)
        assert page.evaluate("window.events") == ["loadedmetadata"]
        duration = page.evaluate("document.getElementById('a').duration")
        assert abs(duration - seconds) < 0.2
        middle = seconds / 2
        page.evaluate(f"document.getElementById('a').currentTime = {middle}")
        page.wait_for_function("window.events.includes('seeked')", timeout=20_000)
        page.evaluate("document.getElementById('a').play()")
        page.wait_for_function(f"document.getElementById('a').currentTime > {middle + 0.3}", timeout=20_000)
        assert "error" not in page.evaluate("window.events")
        assert page.evaluate("document.getElementById('a').error") is None
    finally:
        page.close()
    # A request is logged when its answer ends: the one Chromium reads while playing ends when the
    # server sees the closed page hang up, a moment after page.close() returns.
    deadline = time.monotonic() + 10
    while True:
        server.access_log.flush()
        mine = [e for e in read_entries() if e.get("sha256") == rec.sha256]
        starts = [int(e["range"].split("=")[1].split("-")[0]) for e in mine if e.get("range")]
        seeked = any(s > rec.size * 0.4 for s in starts)
        if (mine and (kind != "wav" or seeked)) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert mine and all(e["status"] in (200, 206) for e in mine), mine
    if kind == "wav":  # the seek to the middle was a Range request that started there
        assert seeked, [(e.get("range"), e["bytes"]) for e in mine]
