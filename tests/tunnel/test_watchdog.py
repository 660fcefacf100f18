"""The reachability check through a public URL, against a real HTTP server on loopback."""

from __future__ import annotations

from tunnel_helpers import BROWSER_HINT, Origin, free_port

from desktop_app.tunnel.watchdog import ReachabilityCheck, looks_like_html


def test_a_good_server_passes_all_three_steps(origin: Origin) -> None:
    result = ReachabilityCheck(origin.probe_url).run(origin.local_url)
    assert result.ok and result.reachable and result.step == "all"
    paths = [(p, h.get("Range"), BROWSER_HINT in h.get("User-Agent", "")) for p, h in origin.requests]
    assert paths == [("/healthz", None, False), ("/r/probe", "bytes=0-0", False), ("/r/probe", "bytes=0-", True)]


def test_no_range_support_is_degraded(origin: Origin) -> None:
    origin.ranges = False
    result = ReachabilityCheck(origin.probe_url).run(origin.local_url)
    assert result.reachable and not result.ok and result.step == "range"
    assert "206" in result.message and "HTTP 200" in result.message


def test_a_warning_page_for_browsers_is_degraded_with_advice(origin: Origin) -> None:
    origin.browser_warning = True
    result = ReachabilityCheck(origin.probe_url).run(origin.local_url)
    assert result.reachable and not result.ok and result.step == "browser"
    assert "paid ngrok domain or cloudflared" in result.message


def test_nothing_listening_is_unreachable() -> None:
    result = ReachabilityCheck(lambda base: base + "/r/probe", timeout=2).run(f"http://127.0.0.1:{free_port()}")
    assert not result.reachable and not result.ok and result.step == "healthz"
    assert "cannot be reached" in result.message


def test_a_server_that_is_not_ours_is_not_reachable(origin: Origin) -> None:
    result = ReachabilityCheck(origin.probe_url).run(origin.local_url + "/elsewhere")
    assert not result.reachable and "HTTP 404" in result.message


def test_html_is_recognised_by_type_or_content() -> None:
    assert looks_like_html("text/html; charset=utf-8", b"")
    assert looks_like_html("application/octet-stream", b"  <!DOCTYPE html><html>")
    assert not looks_like_html("audio/wav", b"RIFF\x00\x00WAVEfmt ")
