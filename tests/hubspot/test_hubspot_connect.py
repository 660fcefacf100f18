"""``callrelay hubspot connect``: an account saved into the settings and the keyring, from the lines
``callrelay sandbox`` prints (standard input) or asked for in a terminal (secrets without echo)."""

from __future__ import annotations

import fcntl
import io
import json
import os
import select
import shlex
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from desktop_app import keystore, settings
from desktop_app.cli import main
from desktop_app.commands.hubspot import BadInput, parse_env_lines
from desktop_app.sandbox import Sandbox


def lines(sandbox: Sandbox, *, export: bool = True, **override: str | None) -> str:
    values = {**sandbox.env(), **override}
    prefix = "export " if export else ""
    return "".join(f"{prefix}{k}={shlex.quote(v)}\n" for k, v in values.items() if v is not None)


def connect(monkeypatch: pytest.MonkeyPatch, text: str, *args: str) -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))  # not a terminal: the lines are read
    return main(["hubspot", "connect", *args])


def saved() -> tuple[dict[str, object], dict[str, str | None]]:
    conf = settings.load()
    file = json.loads(conf.path.read_text()) if conf.path.exists() else {}
    return file, {name: keystore.get(name) for name in (keystore.HUBSPOT_ACCESS_TOKEN,
                                                        keystore.HUBSPOT_DEVELOPER_API_KEY,
                                                        keystore.HUBSPOT_CLIENT_SECRET)}


def test_the_lines_of_callrelay_sandbox_with_or_without_export() -> None:
    text = ("# from callrelay sandbox\n\nexport HUBSPOT_URL=http://127.0.0.1:8900\r\n"
            "HUBSPOT_ACCESS_TOKEN='pat-na1-a b'\"'\"'c'\n  export   HUBSPOT_APP_ID=123  # the app\n")
    assert parse_env_lines(text) == {"HUBSPOT_URL": "http://127.0.0.1:8900", "HUBSPOT_ACCESS_TOKEN": "pat-na1-a b'c",
                                     "HUBSPOT_APP_ID": "123"}


@pytest.mark.parametrize("text, says", [
    ("HUBSPOT_ACCESS_TOKEN = sekrit\n", "line 1 is not a NAME=value line"),
    ("export HUBSPOT_URL=x\nHUBSPOT_TOKEN=sekrit\n", "line 2 sets 'HUBSPOT_TOKEN', which is not one of HUBSPOT_URL"),
    ("HUBSPOT_ACCESS_TOKEN='sekrit\n", "line 1 is not a NAME=value line (unbalanced quotes)"),
    ("echo sekrit\n", "line 1 is not a NAME=value line"),
])
def test_other_lines_are_refused_by_number_never_showing_the_value(text: str, says: str) -> None:
    with pytest.raises(BadInput) as caught:
        parse_env_lines(text)
    assert says in str(caught.value) and "sekrit" not in str(caught.value)


@pytest.mark.parametrize("export", [True, False])
def test_connect_saves_the_account_into_settings_and_the_keyring(
        sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], export: bool) -> None:
    c = sandbox.credentials
    assert connect(monkeypatch, lines(sandbox, export=export)) == 0
    out, err = capsys.readouterr()
    assert f"Saved the HubSpot account (portal {c.portal_id} at {sandbox.url})" in out
    assert "the token, the developer API key and the client secret in the system keyring" in out
    assert "callrelay hubspot test" in out and err == ""
    file, secrets = saved()
    assert file == {"hubspot.api_url": sandbox.url, "hubspot.app_id": str(c.app_id), "hubspot.auth": "private-app",
                    "hubspot.sandbox": False}
    assert secrets == {keystore.HUBSPOT_ACCESS_TOKEN: c.access_token,
                       keystore.HUBSPOT_DEVELOPER_API_KEY: c.developer_api_key,
                       keystore.HUBSPOT_CLIENT_SECRET: c.client_secret}
    text = settings.load().path.read_text()
    assert c.access_token not in text and c.developer_api_key not in text and c.client_secret not in text
    assert c.access_token not in out
    assert [r.path for r in sandbox.requests] == ["/account-info/v3/details"]  # the sign-in, checked once


def test_a_token_hubspot_refuses_saves_nothing(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert connect(monkeypatch, lines(sandbox, HUBSPOT_ACCESS_TOKEN="pat-na1-unknown")) == 1
    err = capsys.readouterr().err
    assert "HubSpot did not accept the sign-in" in err and "Nothing was saved" in err and "pat-na1-unknown" not in err
    file, secrets = saved()
    assert file == {} and set(secrets.values()) == {None}
    assert connect(monkeypatch, lines(sandbox, HUBSPOT_ACCESS_TOKEN="pat-na1-unknown"), "--no-check") == 0
    assert saved()[1][keystore.HUBSPOT_ACCESS_TOKEN] == "pat-na1-unknown"


@pytest.mark.parametrize("text, says", [
    ("", "no HUBSPOT_* lines on standard input"),
    ("export HUBSPOT_URL=http://127.0.0.1:9\n", "HUBSPOT_ACCESS_TOKEN is missing"),
    ("export HUBSPOT_URL=http://api.example.com\nexport HUBSPOT_ACCESS_TOKEN=x\n", "must be https://"),
    ("export HUBSPOT_ACCESS_TOKEN=x\nexport HUBSPOT_APP_ID=12ab\n", "The HubSpot app id must be a number"),
])
def test_bad_input_is_a_usage_error_and_saves_nothing(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str], text: str, says: str) -> None:
    assert connect(monkeypatch, text) == 2
    err = capsys.readouterr().err
    assert says in err and err.endswith("nothing was saved.\n")
    assert saved()[0] == {}


def test_a_missing_developer_key_is_said_and_old_secrets_do_not_stay(
        sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert connect(monkeypatch, lines(sandbox)) == 0
    capsys.readouterr()
    monkeypatch.setenv("HUBSPOT_PORTAL_ID", "1")  # a variable in this shell: it would override the account
    assert connect(monkeypatch, lines(sandbox, HUBSPOT_DEVELOPER_API_KEY=None, HUBSPOT_CLIENT_SECRET=None)) == 0
    out, err = capsys.readouterr()
    assert "the token in the system keyring" in out
    assert "without the app id and its developer API key the recording URL cannot be registered" in err
    assert "HUBSPOT_* variables are set in this shell, and they override the saved account" in err
    secrets = saved()[1]
    assert secrets[keystore.HUBSPOT_DEVELOPER_API_KEY] is None and secrets[keystore.HUBSPOT_CLIENT_SECRET] is None


# -- in a terminal ---------------------------------------------------------------------------------
class Terminal:
    """``callrelay hubspot connect`` on a pseudo-terminal of its own (its controlling terminal, so getpass
    turns echo off on it as it would for a person), and everything that terminal showed."""

    def __init__(self, env: dict[str, str]) -> None:
        self.master, slave = os.openpty()

        def own_terminal() -> None:
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen([sys.executable, "-m", "desktop_app", "hubspot", "connect"], env=env,
                                     stdin=slave, stdout=slave, stderr=slave, preexec_fn=own_terminal)
        os.close(slave)
        self.screen = ""

    def expect(self, text: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.screen:
            left = deadline - time.monotonic()
            assert left > 0, f"{text!r} never shown; the terminal showed:\n{self.screen}"
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    self.screen += os.read(self.master, 4096).decode(errors="replace")
                except OSError:  # the program ended and closed the terminal
                    assert text in self.screen, f"{text!r} never shown; the terminal showed:\n{self.screen}"

    def type(self, line: str) -> None:
        time.sleep(0.2)  # getpass turns echo off after printing its prompt: let it
        os.write(self.master, (line + "\n").encode())

    def close(self) -> int:
        try:
            return self.proc.wait(timeout=60)
        finally:
            os.close(self.master)


def test_in_a_terminal_it_asks_for_each_value_and_never_shows_a_secret(sandbox: Sandbox,
                                                                       callrelay_home: Path) -> None:
    c = sandbox.credentials
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUBSPOT_")}
    term = Terminal(env)
    try:
        term.expect("HubSpot API URL [https://api.hubapi.com]: ")
        term.type(sandbox.url)
        term.expect("Private-app access token: ")
        term.type(c.access_token)
        term.expect("Your HubSpot app's id (registers the recording URL): ")
        term.type("not-a-number")
        term.expect("The HubSpot app id must be a number")
        term.type(str(c.app_id))
        term.expect("The app's developer API key (Enter: none): ")
        term.type(c.developer_api_key)
        term.expect("The app's client secret, to check HubSpot's request signatures (Enter: none): ")
        term.type(c.client_secret)
        term.expect("callrelay hubspot test")
    finally:
        assert term.close() == 0, term.screen
    assert f"Saved the HubSpot account (portal {c.portal_id} at {sandbox.url})" in term.screen
    assert sandbox.url in term.screen  # a plain value is echoed as typed; no secret is
    for secret in (c.access_token, c.developer_api_key, c.client_secret):
        assert secret not in term.screen
    assert saved()[1][keystore.HUBSPOT_ACCESS_TOKEN] == c.access_token

    again = Terminal(env)  # Enter keeps every saved value; "-" removes an optional secret
    try:
        again.expect(f"HubSpot API URL [{sandbox.url}]: ")
        again.type("")
        again.expect("Private-app access token (Enter keeps the saved one, - removes it): ")
        again.type("")
        again.expect(f"[{c.app_id}]: ")
        again.type("")
        again.expect("The app's developer API key (Enter keeps the saved one, - removes it): ")
        again.type("")
        again.expect("(Enter keeps the saved one, - removes it): ")
        again.type("-")
        again.expect("callrelay hubspot test")
    finally:
        assert again.close() == 0, again.screen
    file, secrets = saved()
    assert file["hubspot.api_url"] == sandbox.url and file["hubspot.app_id"] == str(c.app_id)
    assert secrets == {keystore.HUBSPOT_ACCESS_TOKEN: c.access_token,
                       keystore.HUBSPOT_DEVELOPER_API_KEY: c.developer_api_key, keystore.HUBSPOT_CLIENT_SECRET: None}
