"""The path real users take (issue 15), end to end with real processes: an account saved by
``callrelay hubspot connect`` into the settings and the keyring (``hubspot.external_account_id`` left
empty, as it is by default), no ``HUBSPOT_*`` variable in any process, ``callrelay serve`` running so
HubSpot can fetch, then ``callrelay upload`` as the README shows it, against ``callrelay sandbox`` acting
as the real account. And ``callrelay hubspot test`` fails exactly where such an upload fails."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from sync_helpers import history, write_call

from desktop_app.sandbox import Sandbox
from desktop_app.testing import CRASH_ENV


def user_env(home: Path) -> dict[str, str]:
    """A user's shell: their data directory, their session's keyring, and no HUBSPOT_* variable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUBSPOT_") and k != CRASH_ENV}
    env["CALLRELAY_HOME"] = str(home)
    return env


def callrelay(env: dict[str, str], *args: str, stdin: Path | None = None) -> subprocess.CompletedProcess[str]:
    assert not any(k.startswith("HUBSPOT_") for k in env)
    with open(stdin or os.devnull) as fh:
        return subprocess.run([sys.executable, "-m", "desktop_app", *args], env=env, stdin=fh, capture_output=True,
                              text=True, timeout=180)


class Running:
    """A ``callrelay`` command left running (``sandbox``, ``serve``), its output read as it comes."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "desktop_app", *args], env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self.errors: list[str] = []
        threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines.put), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stderr, self.errors.append), daemon=True).start()

    @staticmethod
    def _pump(stream: object, put: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            put(line.rstrip("\n"))  # type: ignore[operator]
        put(None)  # type: ignore[operator]

    def line(self, timeout: float = 60.0) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            line = None
        assert line is not None, f"no more output; so far {self.seen}; errors {self.errors}"
        self.seen.append(line)
        return line

    def until(self, prefix: str) -> str:
        while not (line := self.line()).startswith(prefix):
            pass
        return line

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise


@contextmanager
def running(env: dict[str, str], *args: str) -> Iterator[Running]:
    proc = Running(env, *args)
    try:
        yield proc
    finally:
        assert proc.stop() == 0, proc.errors


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(env: dict[str, str]) -> Iterator[str]:
    """``callrelay serve`` on a port of its own, reachable by the sandbox at its public URL."""
    port = free_port()
    with running(env, "serve", "--port", str(port), "--public-url", f"http://127.0.0.1:{port}") as serve:
        endpoint = serve.until("Recording endpoint for HubSpot: ").split(": ", 1)[1]
        yield endpoint


def checks(out: str) -> dict[str, str]:
    """`hubspot test`'s lines: check name → ok/FAIL."""
    found = {}
    for line in out.splitlines():
        word, _, rest = line.partition(" ")
        if word in ("ok", "FAIL"):
            found[rest.strip().split(":", 1)[0]] = word
    return found


def test_an_account_saved_as_settings_does_logs_calls_under_the_portal_id(
        world: tuple[Sandbox, object, dict[str, str]], tmp_path: Path, callrelay_home: Path) -> None:
    """The issue's words: with hubspot.external_account_id empty (the default) every upload failed with "The
    external account id is empty", since the call properties read the setting, not the portal id found."""
    from desktop_app import keystore, settings

    sb, _server, _env = world
    conf = settings.load()  # what Settings → HubSpot → Save writes: no HUBSPOT_* variable involved
    conf.update({"hubspot.sandbox": False, "hubspot.api_url": sb.url, "hubspot.app_id": str(sb.credentials.app_id)})
    conf.save()
    keystore.set(keystore.HUBSPOT_ACCESS_TOKEN, sb.credentials.access_token)
    keystore.set(keystore.HUBSPOT_DEVELOPER_API_KEY, sb.credentials.developer_api_key)
    env = user_env(callrelay_home)
    up = callrelay(env, "upload", str(write_call(tmp_path / "call.wav")), "--contact", "jane.doe@example.com")
    assert up.returncode == 0, (up.stdout, up.stderr)
    [call] = sb.calls()
    assert call["properties"]["hs_call_external_account_id"] == str(sb.credentials.portal_id)
    assert [s["status"] for s in history(env)] == ["ready"]


UPLOAD = ["--contact", "jane.doe@example.com", "--owner", "71000001", "--title", "Renewal",
          "--from", "+1 617 555 0101", "--to", "(617) 555-0199", "--direction", "OUTBOUND", "--notes", "Agreed terms"]


def test_an_account_connected_from_the_sandbox_lines_uploads_to_ready(tmp_path: Path, callrelay_home: Path) -> None:
    env = user_env(callrelay_home)
    with running(user_env(tmp_path / "sandbox-home"), "sandbox", "--port", "0") as sandbox:
        printed = [sandbox.line() for _ in range(6)]
        assert all(line.startswith("export HUBSPOT_") for line in printed), printed
        sandbox_env = tmp_path / "sandbox.env"
        sandbox_env.write_text("\n".join(printed) + "\n")
        account = dict(line.removeprefix("export ").split("=", 1) for line in printed)

        connected = callrelay(env, "hubspot", "connect", stdin=sandbox_env)  # callrelay hubspot connect < sandbox.env
        assert connected.returncode == 0, connected.stderr
        assert f"Saved the HubSpot account (portal {account['HUBSPOT_PORTAL_ID']}" in connected.stdout
        saved = json.loads((callrelay_home / "settings.json").read_text())
        assert saved["hubspot.sandbox"] is False and "hubspot.external_account_id" not in saved
        assert account["HUBSPOT_ACCESS_TOKEN"] not in json.dumps(saved)

        before = callrelay(env, "hubspot", "test")  # no recording server yet: an upload would be refused
        assert before.returncode == 1 and checks(before.stdout)["recording server"] == "FAIL", before.stdout
        assert [c for c, state in checks(before.stdout).items() if state == "FAIL"] == ["recording server"]
        refused = callrelay(env, "upload", str(write_call(tmp_path / "early.wav")), *UPLOAD)
        assert refused.returncode == 1 and "No recording server is running" in refused.stderr

        with serving(env) as endpoint:
            tested = callrelay(env, "hubspot", "test")
            assert tested.returncode == 0, tested.stdout
            assert "from the settings and the keyring" in tested.stdout
            assert f"calls are logged under {account['HUBSPOT_PORTAL_ID']} (the portal id)" in tested.stdout

            recording = write_call(tmp_path / "call.wav", seconds=3.0)
            up = callrelay(env, "upload", str(recording), *UPLOAD)
            assert up.returncode == 0, (up.stdout, up.stderr)
            [sub] = history(env)
            assert sub["status"] == "ready" and sub["call_id"], sub
            assert sub["portal_id"] == account["HUBSPOT_PORTAL_ID"]

            # the sandbox, as HubSpot, has the call under the portal id and fetches the recording from serve
            api = account["HUBSPOT_URL"]
            auth = {"Authorization": f"Bearer {account['HUBSPOT_ACCESS_TOKEN']}"}
            props = "hs_call_external_account_id,hs_call_external_id,hs_call_app_id,sandbox_transcript_status"
            deadline = time.monotonic() + 60
            while True:
                call = requests.get(f"{api}/crm/v3/objects/calls/{sub['call_id']}", params={"properties": props},
                                    headers=auth, timeout=10).json()["properties"]
                if call.get("sandbox_transcript_status") or time.monotonic() > deadline:
                    break
                time.sleep(0.3)
            assert call["hs_call_external_account_id"] == account["HUBSPOT_PORTAL_ID"]
            assert call["hs_call_external_id"] == sub["external_id"]
            assert call["hs_call_app_id"] == account["HUBSPOT_APP_ID"]
            assert call["sandbox_transcript_status"] == "TRANSCRIBED", call
            registered = requests.get(
                f"{api}/crm/v3/extensions/calling/{account['HUBSPOT_APP_ID']}/settings/recording",
                params={"hapikey": account["HUBSPOT_DEVELOPER_API_KEY"]}, timeout=10).json()
            assert registered["urlToRetrieveAuthedRecording"] == endpoint

            resumed = callrelay(env, "resume")
            assert resumed.returncode == 0, resumed.stderr
            assert [s["status"] for s in history(env)] == ["transcribed"]


# What `hubspot test` must fail on because an upload fails on it: (the lines changed, the check that fails
# and what it says, the pipeline step the upload fails at and what it says).
BROKEN = {
    "a token that may not log calls": (
        {"HUBSPOT_ACCESS_TOKEN": ["crm.objects.contacts.read", "crm.objects.owners.read"]},
        "log calls", "The token has no `crm.objects.contacts.write` scope",
        "log_call", "The token has no `crm.objects.contacts.write` scope"),
    "no developer API key": (
        {"HUBSPOT_DEVELOPER_API_KEY": None},
        "recording URL", "Registering the recording URL with HubSpot needs the developer API key",
        "register_endpoint", "Registering the recording URL with HubSpot needs the developer API key"),
    "a developer API key HubSpot refuses": (
        {"HUBSPOT_DEVELOPER_API_KEY": "0b5c7d3e-0000-4000-8000-000000000000"},
        "recording URL", "HubSpot did not accept the developer API key",
        "register_endpoint", "HubSpot did not accept the sign-in"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_hubspot_test_fails_where_the_upload_fails(case: str, tmp_path: Path, callrelay_home: Path) -> None:
    change, check, says, step, upload_says = BROKEN[case]
    env = user_env(callrelay_home)
    with Sandbox(port=0) as sb:
        lines = dict(sb.env())
        for name, value in change.items():
            if isinstance(value, list):
                value = str(sb.issue_token(value, kind="private-app"))
            if value is None:
                lines.pop(name)
            else:
                lines[name] = value
        broken = tmp_path / "broken.env"
        broken.write_text("".join(f"export {k}={v}\n" for k, v in lines.items()))
        assert callrelay(env, "hubspot", "connect", stdin=broken).returncode == 0  # the sign-in itself works
        with serving(env):
            tested = callrelay(env, "hubspot", "test")
            assert tested.returncode == 1, tested.stdout
            assert [c for c, state in checks(tested.stdout).items() if state == "FAIL"] == [check], tested.stdout
            assert f"FAIL  {check}: {says}" in tested.stdout

            up = callrelay(env, "upload", str(write_call(tmp_path / "call.wav")), *UPLOAD)
            assert up.returncode == 1 and upload_says in up.stdout, (up.stdout, up.stderr)
            [sub] = history(env)
            failed = [s["step"] for s in sub["steps"] if s["outcome"] == "failed"]  # type: ignore[union-attr]
            assert sub["status"] == "failed" and failed == [step], sub
            assert sb.calls() == []

            # the account as the sandbox gave it: both pass
            good = tmp_path / "sandbox.env"
            good.write_text("".join(f"export {k}={v}\n" for k, v in sb.env().items()))
            assert callrelay(env, "hubspot", "connect", stdin=good).returncode == 0
            assert callrelay(env, "hubspot", "test").returncode == 0
            again = callrelay(env, "upload", str(write_call(tmp_path / "again.wav", seed=1)), *UPLOAD)
            assert again.returncode == 0, (again.stdout, again.stderr)
            assert len(sb.calls()) == 1
