"""``callrelay serve --tunnel …``: the flags and the start, through a real argparse parser."""

from __future__ import annotations

import argparse
import io
from collections.abc import Iterator

import pytest
from tunnel_helpers import Origin, Sshd, alive, free_port

from desktop_app import settings as settings_mod
from desktop_app.server import RecordingServer
from desktop_app.server.accesslog import read_entries
from desktop_app.server.recordings import RecordingStore
from desktop_app.settings import Settings, SettingsError
from desktop_app.tunnel import TunnelState
from desktop_app.tunnel.cli_support import add_tunnel_arguments, overrides_from_args, start_for_serve


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    srv = RecordingServer(RecordingStore())
    srv.start()
    yield srv
    srv.stop()


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


def serve_like_parser() -> argparse.ArgumentParser:
    """A parser that already has ``serve``'s own ``--tunnel`` and ``--public-url``."""
    p = argparse.ArgumentParser(prog="callrelay serve")
    p.add_argument("--public-url", metavar="URL")
    p.add_argument("--tunnel", choices=("ssh", "ngrok", "cloudflared", "manual"))
    add_tunnel_arguments(p)
    return p


def test_flags_beside_serves_own(origin: Origin) -> None:
    args = serve_like_parser().parse_args(["--tunnel", "ssh", "--public-url", "https://calls.example.com",
                                           "--ssh-host", "relay.example.com"])
    assert overrides_from_args(args) == {"tunnel.ssh_public_url": "https://calls.example.com",
                                         "tunnel.ssh_host": "relay.example.com"}


def test_real_server_manual_tunnel_with_the_probe_recording(server: RecordingServer) -> None:
    """The default probe: a tiny recording added to the server's store, fetched through its signed link."""
    args = parser().parse_args(["--tunnel", "manual", "--tunnel-url", server.local_url])
    before = {r.sha256 for r in server.store.all()}
    tunnel = start_for_serve(args, server, Settings(), out=io.StringIO(), err=io.StringIO())
    assert tunnel is not None
    try:
        assert tunnel.state is TunnelState.UP, tunnel.last_error
        assert tunnel.last_check is not None and tunnel.last_check.step == "all"
        assert server.public_url == server.local_url
        added = {r.sha256 for r in server.store.all()} - before
        assert len(added) == 1
        server.access_log.flush()
        probes = [e for e in read_entries() if e.get("kind") == "recording" and e.get("sha256") in added]
        assert [e.get("status") for e in probes][:2] == [206, 206]  # the Range probe, then the browser's
    finally:
        tunnel.close()
    assert tunnel.state is TunnelState.STOPPED


def test_the_settings_alone_describe_the_tunnel(sshd: Sshd, server: RecordingServer) -> None:
    """As the app starts it: no flags, the settings file says everything."""
    remote = free_port()
    settings = Settings()
    settings.update({"tunnel.ssh_host": "127.0.0.1", "tunnel.ssh_port": sshd.port, "tunnel.ssh_user": sshd.user,
                     "tunnel.ssh_key": str(sshd.client_key), "tunnel.ssh_remote_port": remote,
                     "tunnel.ssh_public_url": f"http://127.0.0.1:{remote}"})
    settings.save()
    tunnel = start_for_serve(argparse.Namespace(tunnel="ssh"), server, settings_mod.load(), out=io.StringIO(),
                             err=io.StringIO())
    assert tunnel is not None
    try:
        assert tunnel.state is TunnelState.UP, tunnel.last_error
        assert server.public_url == f"http://127.0.0.1:{remote}"
        assert server.recording_endpoint_template().startswith(f"http://127.0.0.1:{remote}/")
        ssh_pid = getattr(tunnel, "child_pid", None)
        assert ssh_pid is not None
    finally:
        tunnel.close()
    assert not alive(ssh_pid)


def test_a_configuration_it_cannot_use_is_said_in_one_sentence(server: RecordingServer,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert start_for_serve(argparse.Namespace(tunnel="ssh"), server, settings_mod.load()) is None  # nothing set
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "cannot start" in err and "tunnel.ssh_" in err and "keeps serving on this computer" in err
    assert server.public_url is None


def test_a_flag_is_held_to_its_settings_bounds() -> None:
    """A flag stands for a setting and is checked like it: a check every 0 s would never rest."""
    args = parser().parse_args(["--tunnel", "ssh", "--tunnel-check-interval", "0"])
    with pytest.raises(SettingsError, match="--tunnel-check-interval: .*at least 10"):
        overrides_from_args(args)
    args = parser().parse_args(["--tunnel", "ssh", "--ssh-port", "70000"])
    with pytest.raises(SettingsError, match="--ssh-port: .*at most 65535"):
        overrides_from_args(args)
