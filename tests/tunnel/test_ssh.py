"""The SSH provider end to end: a real sshd on loopback, ssh -R, curl through the tunnel, sshd killed
and brought back."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from tunnel_helpers import Origin, Sshd, alive, collect_events, curl_range, free_port, wait_for

from desktop_app.tunnel import Backoff, ReachabilityCheck, TunnelConfigError, TunnelState
from desktop_app.tunnel.providers.ssh import SshConfig, SshTunnel, build_ssh_command, known_hosts_file

pytestmark = pytest.mark.needs_tool("sshd")


def make_config(sshd: Sshd, origin: Origin, remote_port: int) -> SshConfig:
    return SshConfig(host="127.0.0.1", port=sshd.port, user=sshd.user, key=str(sshd.client_key),
                     local_port=origin.port, remote_port=remote_port,
                     public_url=f"http://127.0.0.1:{remote_port}", keepalive_s=1, keepalive_count=2,
                     connect_timeout_s=5)


def test_command_line_is_key_only_pinned_and_kept_alive(tmp_path: Path) -> None:
    cfg = SshConfig(host="relay.example.com", user="calls", key="/k/id", local_port=8765, remote_port=9001,
                    public_url="https://calls.example.com")
    argv = build_ssh_command(cfg, "/usr/bin/ssh", tmp_path / "kh")
    text = " ".join(argv)
    for option in ("BatchMode=yes", "StrictHostKeyChecking=accept-new", f"UserKnownHostsFile={tmp_path / 'kh'}",
                   "ExitOnForwardFailure=yes", "ServerAliveInterval=15", "PasswordAuthentication=no"):
        assert f"-o {option}" in text
    assert argv[argv.index("-R") + 1] == "127.0.0.1:9001:127.0.0.1:8765"
    assert argv[-2:] == ["--", "calls@relay.example.com"]
    assert argv[argv.index("-i") + 1] == "/k/id"


def test_missing_settings_are_named() -> None:
    cfg = SshConfig(host="", user="u", key="/k", local_port=1, remote_port=2, public_url="https://x.example")
    with pytest.raises(TunnelConfigError, match="tunnel.ssh_host"):
        build_ssh_command(cfg, "ssh", Path("/kh"))


def test_ssh_tunnel_end_to_end_with_sshd_killed_and_back(sshd: Sshd, origin: Origin) -> None:
    remote_port = free_port()
    tunnel = SshTunnel(make_config(sshd, origin, remote_port), check=ReachabilityCheck(origin.probe_url, timeout=3),
                       check_interval_s=0.5, backoff=Backoff(0.2, 0.5), allow_http=True)
    seen = collect_events(tunnel)
    assert tunnel.start() is TunnelState.UP, tunnel.last_error
    try:
        public = f"http://127.0.0.1:{remote_port}"
        assert tunnel.public_url == public
        # the host key was pinned on first use in the app's own known_hosts
        assert f"[127.0.0.1]:{sshd.port}" in known_hosts_file().read_text()
        # curl, an independent client, gets 206 through the tunnel
        code, body = curl_range(public + "/r/abc")
        assert (code, body) == ("206", origin.payload[:1])
        assert any(p == "/r/abc" for p, _ in origin.requests)

        first_ssh = tunnel.child_pid
        assert first_ssh is not None
        sshd.kill()
        assert wait_for(lambda: tunnel.state is TunnelState.DOWN, 10), tunnel.state
        assert not alive(first_ssh)
        assert tunnel.last_error
        sshd.start()
        assert wait_for(lambda: tunnel.state is TunnelState.UP, 20), tunnel.last_error
        assert curl_range(public + "/r/abc") == ("206", origin.payload[:1])
        second_ssh = tunnel.child_pid
        assert second_ssh is not None and second_ssh != first_ssh
    finally:
        tunnel.stop()
    assert tunnel.state is TunnelState.STOPPED
    assert not alive(second_ssh), "the ssh process was left behind"
    states = [str(e.state) for e in seen if e.kind == "state"]
    assert states[:2] == ["starting", "up"] and "down" in states and states[-2:] == ["up", "stopped"]
    down = next(e for e in seen if e.kind == "state" and e.state is TunnelState.DOWN)
    assert "ssh" in down.message


def test_a_refused_key_is_a_configuration_error(sshd: Sshd, origin: Origin, tmp_path: Path) -> None:
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    cfg = make_config(sshd, origin, free_port())
    cfg = SshConfig(**{**cfg.__dict__, "key": str(other)})
    tunnel = SshTunnel(cfg, allow_http=True)
    with pytest.raises(TunnelConfigError, match="authorized_keys"):
        tunnel.start()
    assert tunnel.child_pid is None


def test_a_changed_host_key_is_refused(sshd: Sshd, origin: Origin) -> None:
    known_hosts_file().write_text(
        f"[127.0.0.1]:{sshd.port} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n")
    tunnel = SshTunnel(make_config(sshd, origin, free_port()), allow_http=True)
    with pytest.raises(TunnelConfigError, match="pinned on first use"):
        tunnel.start()


def test_host_down_is_reported_and_retried(origin: Origin, tmp_path: Path) -> None:
    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    port = free_port()
    cfg = SshConfig(host="127.0.0.1", port=port, user="nobody", key=str(key), local_port=origin.port,
                    remote_port=free_port(), public_url="https://calls.example.com", connect_timeout_s=3)
    tunnel = SshTunnel(cfg, backoff=Backoff(0.1, 0.2))
    assert tunnel.start() is TunnelState.DOWN
    try:
        assert "Connection refused" in (tunnel.last_error or "")
        first = tunnel.last_error
        assert wait_for(lambda: tunnel.child_pid is not None or tunnel.last_error is not first, 5)
    finally:
        tunnel.stop()
