"""``callrelay serve --tunnel …`` while the tunnel opens on a stalled network: it serves locally at once,
says what it is waiting for every few seconds, and Ctrl-C or SIGTERM stops it within about 2 s,
whatever the tunnel is doing (the program never connecting, the check through the public URL
hanging, the program taking its time to exit), leaving no tunnel program behind."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import requests
from tunnel_helpers import BlackHole, Serve, alive, descendants, wait_for

FAKE_CLOUDFLARED = Path(__file__).with_name("fake_cloudflared.py")


def test_a_quick_tunnel_that_never_connects(callrelay_home: Path) -> None:
    env = {**os.environ, "FAKE_CLOUDFLARED_MODE": "stall"}
    serve = Serve(["--port", "0", "--tunnel", "cloudflared", "--cloudflared-path", str(FAKE_CLOUDFLARED)], env=env)
    try:
        base = serve.local_url()
        assert requests.get(base + "/healthz", timeout=5).status_code == 200  # serving while the tunnel opens
        serve.wait_line("err", lambda line: "opening the cloudflared tunnel" in line.lower(), timeout=5)
        still = serve.wait_line("err", "Still opening the cloudflared tunnel", timeout=8)
        assert "cloudflared" in still and " s" in still
        program = [p for p in descendants(serve.proc.pid) if "fake_cloudflared" in Path(f"/proc/{p}/cmdline")
                   .read_text(errors="replace")]
        assert program, serve.describe()
    finally:
        took = serve.stop(signal.SIGTERM)
    assert serve.proc.returncode == 0, serve.describe()
    assert took < 2.0, f"SIGTERM took {took:.1f} s"
    assert wait_for(lambda: not any(alive(p) for p in program), 2), "cloudflared outlived callrelay serve"
    assert "Traceback" not in serve.describe()


def test_a_check_that_hangs_on_the_public_url(callrelay_home: Path, black_hole: BlackHole) -> None:
    """The public URL takes the connection and never answers: the reachability check waits on it."""
    (callrelay_home / "settings.json").write_text(json.dumps({"hubspot.sandbox": True}))  # plain http allowed
    serve = Serve(["--port", "0", "--tunnel", "manual", "--tunnel-url", black_hole.url])
    try:
        serve.local_url()
        still = serve.wait_line("err", "Still opening the manual tunnel", timeout=8)
        assert f"checking {black_hole.url}" in still
    finally:
        took = serve.stop(signal.SIGINT)  # Ctrl-C
    assert serve.proc.returncode == 0, serve.describe()
    assert took < 2.0, f"Ctrl-C took {took:.1f} s"
    assert "Traceback" not in serve.describe()


def test_stopped_the_moment_it_started(callrelay_home: Path, black_hole: BlackHole) -> None:
    (callrelay_home / "settings.json").write_text(json.dumps({"hubspot.sandbox": True}))
    serve = Serve(["--port", "0", "--tunnel", "manual", "--tunnel-url", black_hole.url])
    try:
        serve.local_url()
    finally:
        took = serve.stop(signal.SIGTERM)
    assert serve.proc.returncode == 0, serve.describe()
    assert took < 2.0, f"SIGTERM took {took:.1f} s"


def test_a_tunnel_program_that_takes_its_time_to_exit(callrelay_home: Path) -> None:
    """cloudflared waits up to its grace period (30 s) for requests in flight after SIGTERM: serve does
    not wait that long for it."""
    env = {**os.environ, "FAKE_CLOUDFLARED_MODE": "quick", "FAKE_CLOUDFLARED_GRACE": "30"}
    serve = Serve(["--port", "0", "--tunnel", "cloudflared", "--cloudflared-path", str(FAKE_CLOUDFLARED)], env=env)
    try:
        serve.wait_line("out", "Public URL: https://")
        program = [p for p in descendants(serve.proc.pid) if "fake_cloudflared" in Path(f"/proc/{p}/cmdline")
                   .read_text(errors="replace")]
        assert program, serve.describe()
    finally:
        took = serve.stop(signal.SIGTERM)
    assert serve.proc.returncode == 0, serve.describe()
    assert took < 2.0, f"SIGTERM took {took:.1f} s"
    assert not any(alive(p) for p in program), "cloudflared outlived callrelay serve"
