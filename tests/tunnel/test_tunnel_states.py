"""The tunnel's states and events, with the manual provider in front of a real loopback server."""

from __future__ import annotations

import time

import pytest
from tunnel_helpers import BlackHole, Origin, collect_events, wait_for

from desktop_app.tunnel import (
    Backoff,
    ReachabilityCheck,
    TunnelConfigError,
    TunnelEvent,
    TunnelState,
)
from desktop_app.tunnel.providers.manual import ManualTunnel


def test_manual_tunnel_goes_up_after_a_passing_check(origin: Origin) -> None:
    tunnel = ManualTunnel(origin.local_url, check=ReachabilityCheck(origin.probe_url), allow_http=True)
    seen = collect_events(tunnel)
    assert tunnel.start() is TunnelState.UP
    tunnel.stop()
    assert [(e.kind, str(e.state)) for e in seen] == [
        ("state", "starting"), ("url", "starting"), ("state", "up"), ("state", "stopped")]
    assert seen[1].public_url == origin.local_url


def test_plain_http_is_refused_outside_the_sandbox(origin: Origin) -> None:
    tunnel = ManualTunnel(origin.local_url)
    with pytest.raises(TunnelConfigError, match="https"):
        tunnel.start()
    assert tunnel.state is TunnelState.STOPPED and "https" in (tunnel.last_error or "")


def test_no_url_is_a_clear_error() -> None:
    with pytest.raises(TunnelConfigError, match="server.public_url"):
        ManualTunnel("").start()


def test_degraded_then_up_again_as_checks_change(origin: Origin) -> None:
    tunnel = ManualTunnel(origin.local_url, check=ReachabilityCheck(origin.probe_url), allow_http=True,
                          check_interval_s=0.1)
    seen = collect_events(tunnel)
    tunnel.start()
    try:
        origin.browser_warning = True
        assert wait_for(lambda: tunnel.state is TunnelState.DEGRADED, 5)
        assert "paid ngrok domain or cloudflared" in (tunnel.last_error or "")
        origin.browser_warning = False
        assert wait_for(lambda: tunnel.state is TunnelState.UP, 5)
    finally:
        tunnel.stop()
    states = [str(e.state) for e in seen if e.kind == "state"]
    assert states == ["starting", "up", "degraded", "up", "stopped"]


def test_unreachable_is_down_and_recovers(origin: Origin) -> None:
    """The public URL stops answering (the check fails), the tunnel is reopened with back-off and
    comes back when the URL answers again."""
    tunnel = ManualTunnel(origin.local_url + "/gone", check=ReachabilityCheck(origin.probe_url, timeout=2),
                          allow_http=True, check_interval_s=0.1, backoff=Backoff(0.05, 0.2))
    seen = collect_events(tunnel)
    tunnel.start()
    try:
        assert tunnel.state is TunnelState.DOWN and "404" in (tunnel.last_error or "")
        tunnel.url = origin.local_url  # the user's forward is fixed: the next reopen finds it
        assert wait_for(lambda: tunnel.state is TunnelState.UP, 10)
    finally:
        tunnel.stop()
    urls = [e.public_url for e in seen if e.kind == "url"]
    assert urls == [origin.local_url + "/gone", origin.local_url]


def test_a_failing_listener_does_not_break_the_tunnel(origin: Origin) -> None:
    tunnel = ManualTunnel(origin.local_url, allow_http=True)

    def broken(event: TunnelEvent) -> None:
        raise RuntimeError("listener bug")

    tunnel.add_listener(broken)
    seen = collect_events(tunnel)
    assert tunnel.start() is TunnelState.UP
    tunnel.stop()
    assert [str(e.state) for e in seen if e.kind == "state"] == ["starting", "up", "stopped"]


def test_backoff_doubles_to_its_maximum_and_resets() -> None:
    b = Backoff(0.5, 3.0)
    assert [b.next() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    b.reset()
    assert b.next() == 0.5


def test_a_stopped_tunnel_can_be_started_again(origin: Origin) -> None:
    tunnel = ManualTunnel(origin.local_url, check=ReachabilityCheck(origin.probe_url), allow_http=True)
    assert tunnel.start() is TunnelState.UP
    tunnel.stop()
    assert tunnel.state is TunnelState.STOPPED
    assert tunnel.start() is TunnelState.UP
    tunnel.stop()


def test_started_in_the_background_it_opens_and_says_what_it_is_doing(origin: Origin) -> None:
    tunnel = ManualTunnel(origin.local_url, check=ReachabilityCheck(origin.probe_url), allow_http=True)
    seen = collect_events(tunnel)
    assert tunnel.start(wait=False) is TunnelState.STARTING
    try:
        assert wait_for(lambda: tunnel.state is TunnelState.UP, 10)
        assert tunnel.activity == "up"
    finally:
        tunnel.stop()
    assert [str(e.state) for e in seen if e.kind == "state"] == ["starting", "up", "stopped"]


def test_a_configuration_error_in_the_background_stops_the_tunnel() -> None:
    tunnel = ManualTunnel("")
    seen = collect_events(tunnel)
    tunnel.start(wait=False)
    assert wait_for(lambda: tunnel.state is TunnelState.STOPPED, 5)
    assert "server.public_url" in (tunnel.last_error or "")
    assert seen[-1].state is TunnelState.STOPPED and "server.public_url" in seen[-1].message
    tunnel.stop()


def test_stop_is_prompt_while_a_check_hangs(black_hole: BlackHole) -> None:
    """The public URL never answers: the check waits for its timeout, but stop() does not."""
    tunnel = ManualTunnel(black_hole.url, check=ReachabilityCheck(lambda base: base + "/r/probe", timeout=20),
                          allow_http=True)
    seen = collect_events(tunnel)
    tunnel.start(wait=False)
    assert wait_for(lambda: tunnel.activity.startswith("checking"), 5), tunnel.activity
    time.sleep(0.3)  # inside the request now
    t0 = time.monotonic()
    tunnel.stop()
    assert time.monotonic() - t0 < 1.5
    assert tunnel.state is TunnelState.STOPPED
    time.sleep(0.2)
    assert seen[-1].state is TunnelState.STOPPED  # nothing said after "stopped"
