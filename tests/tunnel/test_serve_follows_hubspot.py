"""``callrelay serve --tunnel``, headless, keeps HubSpot's recording setting pointed at the tunnel's URL
when a HubSpot account is configured (here the sandbox, through the HUBSPOT_* variables)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from desktop_app.sandbox import Sandbox
from desktop_app.sync.history import History

FAKE_CLOUDFLARED = Path(__file__).with_name("fake_cloudflared.py")


def test_serve_registers_the_quick_tunnels_url_with_hubspot(callrelay_home: Path) -> None:
    (callrelay_home / "settings.json").write_text(json.dumps({
        "tunnel.cloudflared_path": str(FAKE_CLOUDFLARED), "server.port": 0}))
    with Sandbox(port=0) as sb:
        env = {**os.environ, **sb.env(), "CALLRELAY_HOME": str(callrelay_home), "FAKE_CLOUDFLARED_MODE": "quick"}
        proc = subprocess.Popen([sys.executable, "-m", "desktop_app", "serve", "--tunnel", "cloudflared"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 30
            while sb.recording_setting() is None and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.05)
            setting = sb.recording_setting()
            assert setting is not None, proc.stderr.read() if proc.poll() is not None else "no setting yet"
            url = setting["urlToRetrieveAuthedRecording"]
            assert url.startswith("https://") and ".trycloudflare.com/retrieve/authenticated/recordings/" in url
            assert url.endswith("/%s")
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert url.rsplit("/retrieve/", 1)[0] in out  # the public URL it printed
    events = History().events("recording-url")
    assert events and events[-1]["data"]["action"] == "created" and events[-1]["data"]["new"] == url
