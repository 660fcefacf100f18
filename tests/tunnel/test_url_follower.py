"""RecordingUrlFollower against the sandbox (a local HubSpot) through the real HubSpot client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tunnel_helpers import Origin

from desktop_app.hubspot.client import HubSpotClient
from desktop_app.hubspot.config import config_from_env
from desktop_app.sandbox import Sandbox
from desktop_app.tunnel import RecordingUrlFollower, TunnelEvent, TunnelState, endpoint_template
from desktop_app.tunnel.providers.manual import ManualTunnel
from desktop_app.tunnel.url_change import keep_hubspot_pointed


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        yield sb


def setting_calls(sb: Sandbox) -> list[str]:
    return [r.method for r in sb.requests if r.alias.startswith("settings.")]


def url_event(url: str) -> TunnelEvent:
    return TunnelEvent("url", TunnelState.STARTING, url, f"public URL is now {url}")


def test_created_then_updated_then_left_alone(sandbox: Sandbox) -> None:
    records: list[dict[str, Any]] = []
    follower = RecordingUrlFollower(HubSpotClient(config_from_env(sandbox.env())), record=records.append)
    follower(url_event("https://one.example.com"))
    assert sandbox.recording_setting() == {"urlToRetrieveAuthedRecording": endpoint_template("https://one.example.com")}
    follower(url_event("https://one.example.com"))  # the same URL again: nothing to do, no request
    follower(TunnelEvent("state", TunnelState.UP, "https://one.example.com", "up"))
    follower(url_event("https://two.example.com/"))
    assert setting_calls(sandbox) == ["GET", "POST", "GET", "PATCH"]
    assert [r["action"] for r in records] == ["created", "updated"]
    assert records[1]["old"] == "https://one.example.com/retrieve/authenticated/recordings/%s"
    assert records[1]["new"] == "https://two.example.com/retrieve/authenticated/recordings/%s"


def test_a_setting_already_right_is_not_patched(sandbox: Sandbox) -> None:
    client = HubSpotClient(config_from_env(sandbox.env()))
    client.create_recording_settings(endpoint_template("https://calls.example.com"))
    records: list[dict[str, Any]] = []
    RecordingUrlFollower(client, record=records.append).follow("https://calls.example.com")
    assert setting_calls(sandbox) == ["POST", "GET"]
    assert [r["action"] for r in records] == ["unchanged"]


def test_plain_http_is_refused_before_hubspot_is_asked(sandbox: Sandbox) -> None:
    records: list[dict[str, Any]] = []
    follower = RecordingUrlFollower(HubSpotClient(config_from_env(sandbox.env())), record=records.append)
    follower(url_event("http://calls.example.com"))
    assert setting_calls(sandbox) == []
    assert records[0]["action"] == "failed" and "https" in records[0]["message"]


def test_a_failed_update_is_tried_again_when_the_tunnel_comes_up(sandbox: Sandbox) -> None:
    sandbox.faults.fail("settings.create", times=1, status=403)
    records: list[dict[str, Any]] = []
    follower = RecordingUrlFollower(HubSpotClient(config_from_env(sandbox.env())), record=records.append)
    follower(url_event("https://calls.example.com"))
    assert sandbox.recording_setting() is None
    assert records[-1]["action"] == "failed" and "could not be updated" in records[-1]["message"]
    follower(TunnelEvent("state", TunnelState.UP, "https://calls.example.com", "up"))
    assert [r["action"] for r in records] == ["failed", "created"]
    assert sandbox.recording_setting() is not None


def test_a_refused_url_is_written_down_once_however_often_the_tunnel_reconnects(sandbox: Sandbox) -> None:
    records: list[dict[str, Any]] = []
    follower = RecordingUrlFollower(HubSpotClient(config_from_env(sandbox.env())), record=records.append)
    follower(url_event("http://calls.example.com"))
    for _ in range(3):  # the tunnel drops and comes back under the same URL
        follower(TunnelEvent("state", TunnelState.UP, "http://calls.example.com", "up"))
    assert [r["action"] for r in records] == ["failed"]
    assert setting_calls(sandbox) == []


def test_a_failing_update_is_written_down_once_and_still_retried(sandbox: Sandbox) -> None:
    sandbox.faults.fail("settings.create", times=3, status=403)
    records: list[dict[str, Any]] = []
    follower = RecordingUrlFollower(HubSpotClient(config_from_env(sandbox.env())), record=records.append)
    follower(url_event("https://calls.example.com"))
    for _ in range(3):
        follower(TunnelEvent("state", TunnelState.UP, "https://calls.example.com", "up"))
    assert [r["action"] for r in records] == ["failed", "created"]
    assert sandbox.recording_setting() is not None


def test_plain_http_is_followed_when_the_tunnel_allows_it(sandbox: Sandbox, origin: Origin) -> None:
    """In sandbox mode the tunnel takes plain http; the follower attached to it does too."""
    tunnel = ManualTunnel(origin.local_url, allow_http=True)
    keep_hubspot_pointed(tunnel, HubSpotClient(config_from_env(sandbox.env())), None)
    tunnel.start()
    tunnel.stop()
    assert sandbox.recording_setting() == {"urlToRetrieveAuthedRecording": endpoint_template(origin.local_url)}
