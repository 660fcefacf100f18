"""``callrelay hubspot test`` against the sandbox: it fails whatever would make an upload fail."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from desktop_app import keystore, settings
from desktop_app.cli import main
from desktop_app.commands.hubspot import KEYRING_UNAVAILABLE, CheckFailed, _recording_server
from desktop_app.hubspot.config import HubSpotConfig
from desktop_app.sandbox import Sandbox
from desktop_app.server import RecordingServer
from desktop_app.server.recordings import RecordingStore

FULL_SCOPES = ["crm.objects.contacts.read", "crm.objects.contacts.write", "crm.objects.owners.read"]


def use(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, **override: str) -> None:
    for name, value in {**sandbox.env(), **override}.items():
        monkeypatch.setenv(name, value)


def save_account(sandbox: Sandbox, *, token: str | None = None, **values: object) -> None:
    """The account as Settings saves it: values in settings.json, secrets in the keyring; no HUBSPOT_*."""
    conf = settings.load()
    conf.update({"hubspot.api_url": sandbox.url, "hubspot.app_id": str(sandbox.credentials.app_id),
                 "hubspot.sandbox": False, **values})
    conf.save()
    keystore.set(keystore.HUBSPOT_ACCESS_TOKEN, token if token is not None else sandbox.credentials.access_token)
    keystore.set(keystore.HUBSPOT_DEVELOPER_API_KEY, sandbox.credentials.developer_api_key)
    keystore.set(keystore.HUBSPOT_CLIENT_SECRET, sandbox.credentials.client_secret)


@pytest.fixture
def server(callrelay_home: Path) -> Iterator[RecordingServer]:
    """This data directory's recording server, running (as `callrelay serve` or the app would)."""
    srv = RecordingServer(RecordingStore(), port=0, workers=1)
    srv.start()
    srv.set_public_url(srv.local_url)
    yield srv
    srv.stop()


def test_everything_works(sandbox: Sandbox, server: RecordingServer, monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str]) -> None:
    use(sandbox, monkeypatch)
    assert main(["hubspot", "test"]) == 0
    out = capsys.readouterr().out
    portal = sandbox.credentials.portal_id
    assert "(sandbox, private-app sign-in, from the HUBSPOT_* variables)" in out
    assert f"ok    account: portal {portal}" in out
    assert "ok    owners: 3 owner(s)" in out and "ok    recording URL: not registered yet" in out
    assert "ok    log calls: allowed" in out
    assert f"ok    external account id: calls are logged under {portal} (the portal id)" in out
    assert f"ok    recording server: {server.recording_endpoint_template()}\n" in out
    assert "all checks passed" in out
    assert sandbox.credentials.access_token not in out and sandbox.credentials.developer_api_key not in out
    assert {r.method for r in sandbox.requests} <= {"GET", "POST"} and sandbox.calls() == []  # writes nothing
    assert sandbox.recording_setting() is None


def test_an_account_saved_in_settings_and_the_keyring(sandbox: Sandbox, server: RecordingServer,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The path real users take: no HUBSPOT_* variable, hubspot.external_account_id empty (the default)."""
    save_account(sandbox)
    assert not any(k.startswith("HUBSPOT_") for k in os.environ)
    assert main(["hubspot", "test"]) == 0
    out = capsys.readouterr().out
    assert "from the settings and the keyring" in out
    assert f"calls are logged under {sandbox.credentials.portal_id} (the portal id)" in out
    save_account(sandbox, **{"hubspot.external_account_id": "desk-7"})
    assert main(["hubspot", "test"]) == 0
    assert "calls are logged under desk-7 (hubspot.external_account_id)" in capsys.readouterr().out


def test_missing_scopes_are_named(sandbox: Sandbox, server: RecordingServer, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    token = sandbox.issue_token(["crm.objects.contacts.read"], kind="private-app")
    assert isinstance(token, str)
    use(sandbox, monkeypatch, HUBSPOT_ACCESS_TOKEN=token)
    assert main(["hubspot", "test"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  owners: The token lacks a scope this needs (one of `automation`, `crm.objects.owners.read`)" in out
    assert "FAIL  log calls: The token has no `crm.objects.contacts.write` scope" in out
    assert "ok    contacts" in out and "ok    account" in out and "ok    recording server" in out
    assert "missing scopes: automation, crm.objects.owners.read, crm.objects.contacts.write\n" in out
    assert "2 check(s) failed" in out
    assert sandbox.calls() == []


def test_a_wrong_token_stops_early(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    use(sandbox, monkeypatch, HUBSPOT_ACCESS_TOKEN="pat-na1-unknown")
    assert main(["hubspot", "test"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  account: HubSpot did not accept the sign-in" in out and "owners" not in out
    assert "pat-na1-unknown" not in out


def test_a_developer_api_key_hubspot_refuses_is_named(sandbox: Sandbox, server: RecordingServer,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    use(sandbox, monkeypatch, HUBSPOT_DEVELOPER_API_KEY="not-the-key")
    assert main(["hubspot", "test"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  recording URL: HubSpot did not accept the developer API key" in out
    assert "1 check(s) failed" in out and "not-the-key" not in out


def test_no_recording_server_fails_as_the_upload_would(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    use(sandbox, monkeypatch)
    assert main(["hubspot", "test"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  recording server: No recording server is running for this data directory." in out
    assert "1 check(s) failed" in out


def test_a_recording_server_hubspot_cannot_reach_fails(server: RecordingServer) -> None:
    real = HubSpotConfig(api_url="https://api.hubapi.com", access_token="pat-na1-x", app_id="1")
    with pytest.raises(CheckFailed, match="on this computer only, where HubSpot cannot reach it"):
        _recording_server(real, [])
    server.set_public_url("http://calls.example.com")
    with pytest.raises(ValueError, match="only over https"):
        _recording_server(real, [])
    server.set_public_url("https://calls.example.com")
    template = "https://calls.example.com/retrieve/authenticated/recordings/%s"
    assert _recording_server(real, []) == template
    assert _recording_server(real, [template]) == f"{template} (registered)"
    with pytest.raises(CheckFailed, match=r"registered now as https://old.example.com/%s, which this desk did not "
                       "register.*--take-over"):  # another desk's or the relay's: an upload would refuse
        _recording_server(real, ["https://old.example.com/%s"])
    conf = settings.load()
    conf.set("hubspot.own_recording_url", "https://old.example.com/%s")  # this desk's earlier URL
    conf.save()
    assert "in place of https://old.example.com/%s" in _recording_server(real, ["https://old.example.com/%s"])
    server.set_public_url(None)
    with pytest.raises(CheckFailed, match="no public URL"):
        _recording_server(real, [])


def test_sandbox_mode_and_no_token_are_failures(sandbox: Sandbox, server: RecordingServer,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hubspot", "test"]) == 1  # a fresh data directory: sandbox mode, nothing saved
    out = capsys.readouterr().out
    assert "FAIL  mode: sandbox mode is on (hubspot.sandbox)" in out
    assert "FAIL  sign-in: no HubSpot token is saved: run `callrelay hubspot connect`" in out
    assert "2 check(s) failed" in out and sandbox.requests == []
    save_account(sandbox, **{"hubspot.sandbox": True})  # an account saved, but uploads go to the emulator
    assert main(["hubspot", "test"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  mode: sandbox mode is on" in out and "1 check(s) failed" in out


def _without_keyring(home: Path) -> dict[str, str]:
    """An environment whose session bus does not exist: no Secret Service, as on a bare X session."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUBSPOT_", "CALLRELAY_IN_KEYRING"))}
    env.update(CALLRELAY_HOME=str(home), DBUS_SESSION_BUS_ADDRESS=f"unix:path={home}/no-bus")
    return env


@pytest.mark.parametrize("command", [["hubspot", "test"], ["hubspot", "connect"]])
def test_no_keyring_is_one_sentence(command: list[str], callrelay_home: Path) -> None:
    (callrelay_home / "settings.json").write_text('{"hubspot.sandbox": false}\n')
    run = subprocess.run([sys.executable, "-m", "desktop_app", *command], env=_without_keyring(callrelay_home),
                         input="export HUBSPOT_URL=http://127.0.0.1:9\nexport HUBSPOT_ACCESS_TOKEN=pat-na1-x\n",
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run
    assert run.stderr == f"callrelay {' '.join(command)}: {KEYRING_UNAVAILABLE}\n"
    assert "Traceback" not in run.stderr + run.stdout and "pat-na1-x" not in run.stderr + run.stdout
    assert (callrelay_home / "settings.json").read_text() == '{"hubspot.sandbox": false}\n'  # nothing saved
