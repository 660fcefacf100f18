"""``callrelay serve --tunnel``, headless, keeps HubSpot's recording setting pointed at the tunnel's URL
when a HubSpot account is configured (here the sandbox, through the HUBSPOT_* variables)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from tunnel_helpers import Serve, free_port, wait_for

from desktop_app.sandbox import Sandbox
from desktop_app.sync.history import History
from desktop_app.tunnel import endpoint_template
from desktop_app.tunnel.probe import write_probe_wav

FAKE_CLOUDFLARED = Path(__file__).with_name("fake_cloudflared.py")


def test_serve_registers_the_quick_tunnels_url_with_hubspot(callrelay_home: Path) -> None:
    (callrelay_home / "settings.json").write_text(json.dumps({
        "tunnel.cloudflared_path": str(FAKE_CLOUDFLARED), "server.port": 0}))
    with Sandbox(port=0) as sb:
        env = {**os.environ, **sb.env(), "CALLRELAY_HOME": str(callrelay_home), "FAKE_CLOUDFLARED_MODE": "quick"}
        serve = Serve(["--tunnel", "cloudflared"], env=env)
        try:
            wait_for(lambda: sb.recording_setting() is not None or serve.proc.poll() is not None, 30)
            setting = sb.recording_setting()
            assert setting is not None, serve.describe()
            url = setting["urlToRetrieveAuthedRecording"]
            assert url.startswith("https://") and ".trycloudflare.com/retrieve/authenticated/recordings/" in url
            assert url.endswith("/%s")
        finally:
            serve.stop()
        assert serve.proc.returncode == 0, serve.describe()
        assert url.rsplit("/retrieve/", 1)[0] in "\n".join(serve.stdout)  # the public URL it printed
    events = History().events("recording-url")
    assert events and events[-1]["data"]["action"] == "created" and events[-1]["data"]["new"] == url


def test_serve_checks_a_manual_tunnel_and_registers_it_in_sandbox_mode(callrelay_home: Path) -> None:
    """``--tunnel manual``: the URL is checked from the outside and followed into HubSpot; in sandbox
    mode a plain-http URL is registered (and nothing is written down as failed)."""
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    (callrelay_home / "settings.json").write_text(json.dumps({"hubspot.sandbox": True}))
    with Sandbox(port=0) as sb:
        serve = Serve(["--port", str(port), "--tunnel", "manual", "--tunnel-url", public],
                      env={**os.environ, **sb.env()})
        try:
            up = serve.wait_line("err", "tunnel up:")
            assert "serves recordings" in up  # the whole check passed: health, a 206 range, a browser's fetch
            assert wait_for(lambda: sb.recording_setting() is not None, 10), serve.describe()
            assert sb.recording_setting() == {"urlToRetrieveAuthedRecording": endpoint_template(public)}
            assert serve.wait_line("out", "Public URL: ") == f"Public URL: {public}"
        finally:
            serve.stop()
    assert serve.proc.returncode == 0, serve.describe()
    assert [e["data"]["action"] for e in History().events("recording-url")] == ["created"]


def test_a_quick_tunnel_that_keeps_dropping(callrelay_home: Path, tmp_path: Path) -> None:
    """Each quick tunnel drops 0.3 s after it opened: the reopening backs off (a handful of tunnels and
    HubSpot updates, not one every 2 s), and each new URL is printed with its endpoint and a fresh
    link to the shared file, which stays the last line."""
    args = tmp_path / "args.txt"
    (callrelay_home / "settings.json").write_text(json.dumps({
        "tunnel.cloudflared_path": str(FAKE_CLOUDFLARED), "server.port": 0}))
    audio = write_probe_wav(tmp_path / "call.wav")
    with Sandbox(port=0) as sb:
        env = {**os.environ, **sb.env(), "FAKE_CLOUDFLARED_MODE": "die", "FAKE_CLOUDFLARED_UPTIME": "0.3",
               "FAKE_CLOUDFLARED_ARGS": str(args)}
        serve = Serve(["--tunnel", "cloudflared", "--share", str(audio)], env=env)
        try:
            serve.wait_line("err", "Serving until interrupted")
            time.sleep(12)
        finally:
            serve.stop()
        setting = sb.recording_setting()
        hubspot_calls = [r for r in sb.requests if r.alias.startswith("settings.")]
    assert serve.proc.returncode == 0, serve.describe()
    tunnels = len(args.read_text().splitlines())
    assert 2 <= tunnels <= 5, f"{tunnels} quick tunnels in 12 s"
    assert len(hubspot_calls) <= 2 * tunnels
    out = serve.stdout
    printed = [line.removeprefix("Public URL: ") for line in out if line.startswith("Public URL: ")]
    assert len(set(printed)) >= 2, out
    for url in printed:  # each with its endpoint
        assert f"Recording endpoint for HubSpot: {endpoint_template(url)}" in out
    assert setting is not None and setting["urlToRetrieveAuthedRecording"] == endpoint_template(printed[-1])
    assert out[-1].startswith(printed[-1] + "/recordings/"), out  # the shared file's link, under the newest URL
    assert [line for line in serve.stderr if "Traceback" in line] == []
