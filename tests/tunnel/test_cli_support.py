"""``callrelay serve --tunnel …``: the flags and the start, through a real argparse parser."""

from __future__ import annotations

import argparse
import io

from tunnel_helpers import Origin, Sshd, free_port

from desktop_app.settings import Settings
from desktop_app.tunnel import TunnelState
from desktop_app.tunnel.cli_support import add_tunnel_arguments, overrides_from_args, start_for_serve


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="callrelay serve")
    p.add_argument("--port", type=int, default=0)  # serve's own flags live beside ours
    add_tunnel_arguments(p)
    return p


def test_no_tunnel_flag_starts_nothing(origin: Origin) -> None:
    args = parser().parse_args([])
    assert start_for_serve(args, origin, Settings()) is None and origin.public_url is None


def test_flags_override_settings() -> None:
    args = parser().parse_args(["--tunnel", "ssh", "--ssh-host", "relay.example.com", "--ssh-port", "2222",
                                "--tunnel-url", "https://calls.example.com", "--tunnel-check-interval", "30"])
    assert overrides_from_args(args) == {"tunnel.ssh_host": "relay.example.com", "tunnel.ssh_port": 2222,
                                         "tunnel.ssh_public_url": "https://calls.example.com",
                                         "tunnel.check_interval_s": 30}
    manual = parser().parse_args(["--tunnel", "manual", "--tunnel-url", "https://calls.example.com"])
    assert overrides_from_args(manual) == {"server.public_url": "https://calls.example.com"}


def test_manual_tunnel_prints_the_public_url_and_points_the_server_at_it(origin: Origin) -> None:
    args = parser().parse_args(["--tunnel", "manual", "--tunnel-url", origin.local_url + "/"])
    out, err = io.StringIO(), io.StringIO()
    settings = Settings()
    settings.set("hubspot.sandbox", True)
    tunnel = start_for_serve(args, origin, settings, out=out, err=err, probe_url=origin.probe_url)
    assert tunnel is not None
    try:
        assert tunnel.state is TunnelState.UP
        assert out.getvalue() == f"Public URL: {origin.local_url}\n"
        assert origin.public_url == origin.local_url
        assert "tunnel up:" in err.getvalue()
    finally:
        tunnel.stop()


def test_plain_http_outside_the_sandbox_is_refused_and_serving_goes_on(origin: Origin) -> None:
    args = parser().parse_args(["--tunnel", "manual", "--tunnel-url", origin.local_url])
    settings = Settings()
    settings.set("hubspot.sandbox", False)
    err = io.StringIO()
    assert start_for_serve(args, origin, settings, out=io.StringIO(), err=err, probe_url=origin.probe_url) is None
    assert "only fetches recordings over https" in err.getvalue()
    assert "keeps serving on this computer" in err.getvalue()
    assert origin.public_url is None


def test_ssh_through_the_command_line(sshd: Sshd, origin: Origin) -> None:
    remote = free_port()
    args = parser().parse_args([
        "--tunnel", "ssh", "--ssh-host", "127.0.0.1", "--ssh-port", str(sshd.port), "--ssh-user", sshd.user,
        "--ssh-key", str(sshd.client_key), "--ssh-remote-port", str(remote),
        "--tunnel-url", f"http://127.0.0.1:{remote}"])
    out = io.StringIO()
    tunnel = start_for_serve(args, origin, Settings(), out=out, err=io.StringIO(), probe_url=origin.probe_url)
    assert tunnel is not None
    try:
        assert tunnel.state is TunnelState.UP, tunnel.last_error
        assert out.getvalue() == f"Public URL: http://127.0.0.1:{remote}\n"
        assert ("/r/probe", "bytes=0-0") in [(p, h.get("Range")) for p, h in origin.requests]
    finally:
        tunnel.stop()
