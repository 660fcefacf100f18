"""The app with a tunnel: its public URL is registered with HubSpot as soon as it is known, and a change
is kept in the history. The tunnel is a quick cloudflared tunnel played by the stand-in program of the
tunnel tests (no internet here), HubSpot is the sandbox."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from desktop_app import settings as settings_mod
from desktop_app.runtime import Runtime
from desktop_app.sandbox import Sandbox

FAKE_CLOUDFLARED = Path(__file__).resolve().parent.parent / "tunnel" / "fake_cloudflared.py"


def test_the_tunnels_url_is_registered_with_hubspot_and_written_down(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_mod.Settings()
    settings.update({"hubspot.sandbox": False, "tunnel.provider": "cloudflared",
                     "tunnel.cloudflared_path": str(FAKE_CLOUDFLARED), "server.port": 0})
    with Sandbox(port=0) as sb:
        monkeypatch.setenv("FAKE_CLOUDFLARED_MODE", "quick")  # the stand-in starts a quick tunnel
        rt = Runtime(settings, env={**os.environ, **sb.env()})
        try:
            rt.start()
            assert rt.tunnel is not None
            deadline = time.monotonic() + 20
            while sb.recording_setting() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            setting = sb.recording_setting()
            assert setting is not None, "the tunnel's URL never reached HubSpot"
            url = setting["urlToRetrieveAuthedRecording"]
            assert url.startswith("https://") and ".trycloudflare.com/" in url and url.endswith("/%s")
            assert rt.tunnel.public_url and url.startswith(rt.tunnel.public_url.rstrip("/"))
            assert rt.server.public_url == rt.tunnel.public_url
            events = rt.history.events("recording-url")
            assert events and events[-1]["data"]["action"] == "created"
        finally:
            rt.stop()
