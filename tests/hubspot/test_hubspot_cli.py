"""``callrelay hubspot test`` against the sandbox."""

from __future__ import annotations

import pytest

from desktop_app.cli import main
from desktop_app.sandbox import Sandbox


def use(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, **override: str) -> None:
    for name, value in {**sandbox.env(), **override}.items():
        monkeypatch.setenv(name, value)


def test_everything_works(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    use(sandbox, monkeypatch)
    assert main(["hubspot", "test"]) == 0
    out = capsys.readouterr().out
    assert f"ok    account: portal {sandbox.credentials.portal_id}" in out
    assert "ok    owners: 3 owner(s)" in out and "ok    recording URL: not registered yet" in out
    assert "all checks passed" in out
    assert sandbox.credentials.access_token not in out and sandbox.credentials.developer_api_key not in out
    assert {r.method for r in sandbox.requests} <= {"GET", "POST"} and sandbox.calls() == []  # read-only


def test_missing_scopes_are_named(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    token = sandbox.issue_token(["crm.objects.contacts.read"], kind="private-app")
    assert isinstance(token, str)
    use(sandbox, monkeypatch, HUBSPOT_ACCESS_TOKEN=token)
    assert main(["hubspot", "test"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  owners: The token lacks a scope this needs (one of `automation`, `crm.objects.owners.read`)" in out
    assert "ok    contacts" in out and "ok    account" in out
    assert "missing scopes: automation, crm.objects.owners.read\n" in out and "1 check(s) failed" in out


def test_a_wrong_token_stops_early(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    use(sandbox, monkeypatch, HUBSPOT_ACCESS_TOKEN="pat-na1-unknown")
    assert main(["hubspot", "test"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  account: HubSpot did not accept the sign-in" in out and "owners" not in out
    assert "pat-na1-unknown" not in out
