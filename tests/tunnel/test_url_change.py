"""Keeping HubSpot pointed at the tunnel, end to end: the real recording server, the sandbox (a local
HubSpot that fetches recordings after "recording ready" with Range requests), the HubSpot client,
the history, and the SSH tunnel through a real sshd. A tunnel restart under a new URL makes exactly
one PATCH, and an older call still plays."""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tunnel_helpers import Sshd, free_port, wait_for

from desktop_app.hubspot.client import HubSpotClient
from desktop_app.hubspot.config import config_from_env
from desktop_app.hubspot.endpoints import CallDetails
from desktop_app.sandbox import FetchRecord, Sandbox
from desktop_app.server import RecordingServer
from desktop_app.server.recordings import RecordingStore
from desktop_app.sync.history import History
from desktop_app.tunnel import (
    ReachabilityCheck,
    RecordingUrlFollower,
    TunnelEvent,
    TunnelState,
    endpoint_template,
)
from desktop_app.tunnel.probe import probe_link_factory, write_probe_wav
from desktop_app.tunnel.providers.ssh import SshConfig, SshTunnel
from desktop_app.tunnel.url_change import history_recorder

OWNER_WITH_SEAT = "71000001"
pytestmark = pytest.mark.needs_tool("sshd")


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        yield sb


@pytest.fixture
def server(sandbox: Sandbox) -> Iterator[RecordingServer]:
    srv = RecordingServer(RecordingStore(), client_secret=sandbox.credentials.client_secret,
                          signature_mode="required")
    srv.start()
    yield srv
    srv.stop()


def ssh_tunnel(sshd: Sshd, server: RecordingServer, remote_port: int, probe: ReachabilityCheck) -> SshTunnel:
    cfg = SshConfig(host="127.0.0.1", port=sshd.port, user=sshd.user, key=str(sshd.client_key),
                    local_port=server.port, remote_port=remote_port, public_url=f"http://127.0.0.1:{remote_port}")
    tunnel = SshTunnel(cfg, check=probe, check_interval_s=60, allow_http=True)

    def follow(event: TunnelEvent) -> None:
        if event.kind == "url" and event.public_url:
            server.set_public_url(event.public_url)

    tunnel.add_listener(follow)
    return tunnel


def fetches_of(sandbox: Sandbox, call_id: str) -> list[FetchRecord]:
    return [r for r in list(sandbox.fetch_log) if r.call_id == call_id and r.done]


def test_new_url_patches_once_and_an_older_call_still_plays(
        sandbox: Sandbox, server: RecordingServer, sshd: Sshd, tmp_path: Path) -> None:
    client = HubSpotClient(config_from_env(sandbox.env()))
    history = History()
    follower = RecordingUrlFollower(client, record=history_recorder(history), allow_http=True,
                                    template_for=lambda base: endpoint_template(base, server.endpoint_prefix))
    check = ReachabilityCheck(probe_link_factory(server.store, server), timeout=5)

    port_a, port_b = free_port(), free_port()
    tunnel_a = ssh_tunnel(sshd, server, port_a, check)
    tunnel_a.add_listener(follower)
    assert tunnel_a.start() is TunnelState.UP, tunnel_a.last_error
    url_a = f"http://127.0.0.1:{port_a}"
    assert sandbox.recording_setting() == {"urlToRetrieveAuthedRecording": url_a + server.endpoint_prefix + "/%s"}
    assert [r.method for r in sandbox.requests if r.alias.startswith("settings.")] == ["GET", "POST"]

    # an "older" call, logged and fetched through the first URL
    audio = write_probe_wav(tmp_path / "call.wav", seconds=1.0)
    stored = server.store.add(audio)
    external_id = "callrelay-tunnel-test-1"
    server.store.share(external_id, stored.sha256, app_id=str(sandbox.credentials.app_id),
                       external_account_id=client.config.effective_external_account_id)
    call = client.create_call(CallDetails(external_id=external_id, timestamp=dt.datetime.now(dt.timezone.utc),
                                          duration_ms=1000, owner_id=OWNER_WITH_SEAT, title="tunnel test"))
    client.mark_recording_ready(call.id)
    first = sandbox.wait_for_fetch(str(call.id), timeout=30)
    assert first.status == "transcribed", (first.reason, first.detail)
    assert first.retrieve_url.startswith(url_a) and first.authenticated_url.startswith(url_a)
    assert [r["status"] for r in first.requests[1:]] and all(r["status"] == 206 for r in first.requests[1:])
    # curl, an independent client, gets 206 through the tunnel too
    out = subprocess.run(["curl", "-sS", "--noproxy", "*", "-r", "0-3", "-o", "/dev/null", "-w", "%{http_code}",
                          first.authenticated_url], capture_output=True, text=True, timeout=20, check=True)
    assert out.stdout == "206"

    # the tunnel restarts under a new URL: exactly one PATCH
    tunnel_a.stop()
    tunnel_b = ssh_tunnel(sshd, server, port_b, check)
    tunnel_b.add_listener(follower)
    assert tunnel_b.start() is TunnelState.UP, tunnel_b.last_error
    url_b = f"http://127.0.0.1:{port_b}"
    try:
        assert sandbox.recording_setting() == {"urlToRetrieveAuthedRecording": url_b + server.endpoint_prefix + "/%s"}
        patches = [r for r in sandbox.requests if r.method == "PATCH"]
        assert len(patches) == 1 and patches[0].alias == "settings.update"
        # a further check of the same URL changes nothing
        tunnel_b.check_now()
        assert len([r for r in sandbox.requests if r.method == "PATCH"]) == 1

        # HubSpot fetches the older call again (an agent plays it): through the new URL, 206s
        client.mark_recording_ready(call.id)
        assert wait_for(lambda: len(fetches_of(sandbox, str(call.id))) == 2, 30)
        again = fetches_of(sandbox, str(call.id))[-1]
        assert again.status == "transcribed", (again.reason, again.detail)
        assert again.retrieve_url.startswith(url_b)
        assert all(r["status"] == 206 for r in again.requests[1:])
    finally:
        tunnel_b.stop()

    events = history.events("recording-url")
    assert sorted(e["data"]["action"] for e in events) == ["created", "updated"]
    updated = next(e for e in events if e["data"]["action"] == "updated")
    assert updated["data"]["old"].startswith(url_a) and updated["data"]["new"].startswith(url_b)
