"""The cloudflared provider against a stand-in program on PATH that prints cloudflared's real lines.

A real cloudflared tunnel needs the program and the internet; neither is here."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import pytest
from tunnel_helpers import alive, collect_events, foreign_program, wait_for

from desktop_app.tunnel import Backoff, TunnelConfigError, TunnelState
from desktop_app.tunnel.providers.cloudflared import (
    CloudflaredConfig,
    CloudflaredOutput,
    CloudflaredTunnel,
    build_cloudflared_command,
)

FAKE = Path(__file__).with_name("fake_cloudflared.py")


@pytest.fixture
def on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``cloudflared`` on PATH is the stand-in; it writes its arguments to the returned file."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shutil.copy(FAKE, bin_dir / "cloudflared")
    (bin_dir / "cloudflared").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    args = tmp_path / "args.txt"
    monkeypatch.setenv("FAKE_CLOUDFLARED_ARGS", str(args))
    return args


def test_quick_tunnel_url_is_read_from_the_output(on_path: Path) -> None:
    tunnel = CloudflaredTunnel(CloudflaredConfig(local_url="http://127.0.0.1:8765"))
    assert tunnel.start() is TunnelState.UP
    try:
        url = tunnel.public_url or ""
        assert url.startswith("https://") and url.endswith(".trycloudflare.com")
        assert url in " ".join(tunnel._child.output if tunnel._child else [])
        assert on_path.read_text().split() == ["tunnel", "--no-autoupdate", "--url", "http://127.0.0.1:8765"]
        pid = tunnel.child_pid
        assert pid is not None
    finally:
        tunnel.stop()
    assert not alive(pid)


def test_named_tunnel_uses_the_hostname(on_path: Path) -> None:
    cfg = CloudflaredConfig(local_url="http://127.0.0.1:8765", tunnel="calls", hostname="calls.example.com")
    tunnel = CloudflaredTunnel(cfg)
    assert tunnel.start() is TunnelState.UP
    tunnel.stop()
    assert tunnel.public_url == "https://calls.example.com"
    assert on_path.read_text().split() == ["tunnel", "--no-autoupdate", "run", "--url", "http://127.0.0.1:8765",
                                           "calls"]


def test_named_tunnel_without_hostname_is_refused() -> None:
    with pytest.raises(TunnelConfigError, match="tunnel.cloudflared_hostname"):
        build_cloudflared_command(CloudflaredConfig(local_url="http://x", tunnel="calls"), "cloudflared")


def test_missing_program_is_a_clear_error(tmp_path: Path) -> None:
    tunnel = CloudflaredTunnel(CloudflaredConfig(local_url="http://127.0.0.1:1", program=str(tmp_path / "nope")))
    with pytest.raises(TunnelConfigError, match="cloudflared was not found.*tunnel.cloudflared_path"):
        tunnel.start()
    assert tunnel.state is TunnelState.STOPPED


def test_offline_is_reported_and_retried(on_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_CLOUDFLARED_MODE", "offline")
    tunnel = CloudflaredTunnel(CloudflaredConfig(local_url="http://127.0.0.1:8765"), backoff=Backoff(0.05, 0.1))
    assert tunnel.start() is TunnelState.DOWN
    try:
        assert "needs the internet" in (tunnel.last_error or "")
        assert "no such host" in (tunnel.last_error or "")
        assert wait_for(lambda: len(on_path.read_text().splitlines()) >= 3, 10)  # retried with back-off
    finally:
        tunnel.stop()


def test_a_dropped_quick_tunnel_comes_back_under_a_new_url(on_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_CLOUDFLARED_MODE", "die")
    tunnel = CloudflaredTunnel(CloudflaredConfig(local_url="http://127.0.0.1:8765"), backoff=Backoff(0.05, 0.1))
    seen = collect_events(tunnel)
    tunnel.start()
    try:
        assert wait_for(lambda: len([e for e in seen if e.kind == "url"]) >= 2, 10)
    finally:
        tunnel.stop()
    urls = [e.public_url for e in seen if e.kind == "url"]
    assert urls[0] != urls[1]
    down = [e for e in seen if e.kind == "state" and e.state is TunnelState.DOWN]
    assert down and "connection with edge closed" in down[0].message


def test_output_parser_on_real_lines() -> None:
    out = CloudflaredOutput()
    for line in [
        "2023-04-18T14:06:49Z INF +--------------------------------------------------------+",
        "2023-04-18T14:06:49Z INF |  https://buffalo-marco-cardiff-motel.trycloudflare.com   |",
    ]:
        out.feed(line)
    assert out.url == "https://buffalo-marco-cardiff-motel.trycloudflare.com" and not out.registered
    out.feed("2022-06-01T16:23:12Z INF Connection c206cf44-945f-4c3c-a85c-af60c6338dc2 registered connIndex=0 "
             "location=ORD")
    assert out.registered and out.error is None
    bad = CloudflaredOutput()
    bad.feed("failed to unmarshal quick Tunnel: invalid character 'e' looking for beginning of value")
    assert bad.error is not None and bad.error.startswith("failed to unmarshal quick Tunnel")


def retry_delays(caplog: pytest.LogCaptureFixture) -> list[float]:
    """The delays the tunnel said, in its log, it waits before each reopening."""
    found = [re.search(r"reopening in ([0-9.]+) s", r.getMessage()) for r in caplog.records]
    return [float(m.group(1)) for m in found if m]


def delays_of_a_dropping_tunnel(uptime_s: float, stable_after_s: float, count: int, monkeypatch: pytest.MonkeyPatch,
                                caplog: pytest.LogCaptureFixture) -> list[float]:
    """The first ``count`` reopening delays of a quick tunnel that drops ``uptime_s`` after each open
    (back-off 0.1 s doubling to 10 s)."""
    monkeypatch.setenv("FAKE_CLOUDFLARED_MODE", "die")
    monkeypatch.setenv("FAKE_CLOUDFLARED_UPTIME", str(uptime_s))
    caplog.set_level(logging.INFO, logger="desktop_app.tunnel")
    tunnel = CloudflaredTunnel(CloudflaredConfig(local_url="http://127.0.0.1:8765"), backoff=Backoff(0.1, 10),
                               stable_after_s=stable_after_s)
    tunnel.start()
    try:
        assert wait_for(lambda: len(retry_delays(caplog)) >= count, 15), caplog.text
    finally:
        tunnel.stop()
    return retry_delays(caplog)[:count]


def test_a_tunnel_that_keeps_dropping_at_once_backs_off(on_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    """Each open succeeds and drops within a second: the back-off doubles (it is not reset by an open
    that did not last), and each retry is in the log."""
    assert delays_of_a_dropping_tunnel(0.05, 5, 4, monkeypatch, caplog) == [0.1, 0.2, 0.4, 0.8]
    retries = [r for r in caplog.records if "reopening in" in r.getMessage()]
    assert all(r.levelno == logging.WARNING and "connection with edge closed" in r.getMessage() for r in retries)
    assert len(on_path.read_text().splitlines()) <= 5


def test_the_back_off_starts_again_after_a_connection_that_lasted(on_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    assert delays_of_a_dropping_tunnel(0.6, 0.3, 3, monkeypatch, caplog) == [0.1, 0.1, 0.1]


def test_a_program_that_is_not_executable(tmp_path: Path) -> None:
    program = tmp_path / "cloudflared"
    program.write_bytes(FAKE.read_bytes())
    program.chmod(0o644)
    tunnel = CloudflaredTunnel(CloudflaredConfig(local_url="http://127.0.0.1:1", program=str(program)))
    with pytest.raises(TunnelConfigError, match="not executable.*tunnel.cloudflared_path"):
        tunnel.start()
    assert tunnel.state is TunnelState.STOPPED


def test_a_program_for_another_processor(tmp_path: Path) -> None:
    program = foreign_program(tmp_path / "cloudflared")
    tunnel = CloudflaredTunnel(CloudflaredConfig(local_url="http://127.0.0.1:1", program=str(program)))
    with pytest.raises(TunnelConfigError, match="not a program for this computer.*tunnel.cloudflared_path"):
        tunnel.start()
    assert tunnel.state is TunnelState.STOPPED and tunnel.child_pid is None
