"""A damaged data directory meets one sentence naming the file and what to do, never a traceback
(issue 15): settings files of every kind of damage, a data directory that is a file, settings that are
not finite numbers, a reader that closes the pipe, no keyring. The kinds of damage are the attack
class's (``tests/attacks/corrupted_datadirs.py``); the history's and the catalogue's are checked in
``tests/sync/test_history_files.py``.

As root, permission bits stop nothing: the unreadable settings file is read by a ``callrelay`` without
root's file-access capabilities (``setpriv``), as ``corrupted_datadirs.restricted_prefix`` makes it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from desktop_app import cli, keystore, paths, settings
from desktop_app.commands import sync as sync_cli
from desktop_app.sync import history as h
from desktop_app.testing import fill
from tests.attacks import corrupted_datadirs as cd

SETTINGS_KINDS = [k for k in cd.KINDS if k.name.startswith("settings:")]
ACCEPTED = "settings: a byte-order mark (accepted)"


@pytest.fixture
def home(callrelay_home: Path) -> Path:
    """The attack's valid data directory (settings, a history, a catalogue) in this test's CALLRELAY_HOME."""
    shutil.rmtree(callrelay_home)
    return cd.make_template(callrelay_home)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("variant", [0, 1, 2, 3])
@pytest.mark.parametrize("kind", [k for k in SETTINGS_KINDS if not k.restricted], ids=lambda k: k.name[10:])
def test_damaged_settings_are_refused_in_one_sentence_naming_the_file(home: Path, kind: cd.Kind,
                                                                      variant: int) -> None:
    damaged = kind.make(home, variant)
    assert damaged is not None
    before = digest(damaged) if damaged.is_file() else None
    if kind.name == ACCEPTED:
        loaded = settings.Settings()
        assert {name: loaded.get(name) for name in cd.BASE_SETTINGS} == cd.BASE_SETTINGS
        return
    with pytest.raises(settings.SettingsError) as err:
        settings.Settings()
    message = str(err.value)
    assert message.startswith(f"The settings file {damaged} cannot be used: ") and "\n" not in message
    assert message.endswith("move it aside to start from the defaults (Call Relay leaves it as it is).")
    if before is not None:
        assert digest(damaged) == before


def test_settings_name_what_is_wrong(home: Path) -> None:
    cases = {
        b"": "it is empty",
        b"[]": "it must hold one JSON object ({...}), not a list",
        b'{"server.port": 1, "server.port": 2}': "'server.port' is written twice",
        b'{"server.idle_timeout_s": NaN}': "it holds NaN, which is not a number JSON allows",
        b'{"server.idle_timeout_s": 1e400}': "it holds the number 1e400",
        b"[" * 100_000: "nested too deeply",
        b'{"calls.agent": "\xff"}': "it is not UTF-8 text (byte 18)",
        b'{"server.prot": 1}': "unknown setting 'server.prot'",
        b'{"server.port": null}': "setting 'server.port' must be a whole number, not null",
        b'{"server.idle_timeout_s": "30"}': "setting 'server.idle_timeout_s' must be a number, not text",
        b'"settings"': "it must hold one JSON object ({...}), not text",
        b'{"server.port": 1,}': "not valid JSON (Expecting property name enclosed in double quotes at line 1, column 19)",
    }
    for content, expected in cases.items():
        (home / "settings.json").write_bytes(content)
        with pytest.raises(settings.SettingsError) as err:
            settings.Settings()
        assert expected in str(err.value), (content[:40], str(err.value))


def test_a_byte_order_mark_is_read_as_the_settings(home: Path) -> None:
    (home / "settings.json").write_bytes(b"\xef\xbb\xbf" + json.dumps({"server.port": 9999}).encode())
    assert settings.Settings().get("server.port") == 9999


@pytest.mark.parametrize("name", [s.name for s in settings.DECLARED if s.type is float])
def test_every_float_setting_refuses_nan_and_infinities(name: str) -> None:
    conf = settings.Settings()
    for value in (math.nan, math.inf, -math.inf):
        with pytest.raises(settings.SettingsError, match="finite"):
            settings.validate(name, value)
        with pytest.raises(settings.SettingsError):
            conf.set(name, value)
    with pytest.raises(settings.SettingsError, match="too large"):
        settings.validate(name, 10**400)  # an int too large for a float: not an OverflowError


def test_the_idle_timeout_of_the_issue_is_refused(home: Path) -> None:
    (home / "settings.json").write_text('{"server.idle_timeout_s": NaN}')
    with pytest.raises(settings.SettingsError, match="server.idle_timeout_s|NaN"):
        settings.Settings()


def test_unreadable_settings_are_refused_for_a_user_without_root_access(home: Path) -> None:
    damaged = home / "settings.json"
    damaged.chmod(0)
    wav = cd.write_wav(home.parent / "unreadable.wav")
    for command in ("resume", "hubspot"):
        run = cd.run(home, command, wav, restricted=True)
        assert run.returncode == 1, run.stderr
        assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
        assert f"The settings file {damaged} cannot be used: it cannot be read (Permission denied)" in run.stderr


def test_a_data_directory_that_is_a_file_is_one_sentence(callrelay_home: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    home = callrelay_home / "not-a-folder"
    home.write_text("x")
    monkeypatch.setenv(paths.ENV_HOME, str(home))
    assert cli.main(["history"]) == 1
    err = capsys.readouterr().err
    assert err == (f"callrelay history: The data directory {home} is a file, not a folder: set CALLRELAY_HOME to a "
                   "folder you can write.\n")
    monkeypatch.setenv(paths.ENV_HOME, str(home / "below"))
    assert cli.main(["resume"]) == 1
    assert "cannot be created (Not a directory)" in capsys.readouterr().err


def test_a_keyring_unavailable_reaching_main_is_one_sentence(monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    unavailable = keystore.KeyringUnavailable(keystore.MISSING, "keyring.backends.fail.Keyring: no backend")
    sentence = str(unavailable)
    assert "install gnome-keyring" in sentence and "fail.Keyring" not in sentence  # the library's words: log only

    def no_keyring(args: object) -> int:
        raise unavailable

    monkeypatch.setattr(sync_cli, "cmd_history", no_keyring)
    assert cli.main(["history"]) == 1
    assert capsys.readouterr().err == f"callrelay history: {sentence}\n"


def test_a_bug_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    def bug(args: object) -> int:
        raise KeyError("a bug")

    monkeypatch.setattr(sync_cli, "cmd_history", bug)
    with pytest.raises(KeyError):
        cli.main(["history"])


@pytest.mark.parametrize("command", ["history --json", "history", "history --csv"])
def test_output_cut_short_by_its_reader_ends_quietly(home: Path, command: str) -> None:
    with h.History() as hist:
        fill.insert_submissions(hist.path, [
            {"created_at": h.iso(h.now()), "agent": "ann", "recording_path": f"/calls/{n}.wav",
             "recording_name": f"{n}.wav", "external_id": f"bulk-{n}", "details": json.dumps({"title": "x" * 200}),
             "title": "x", "owner_id": "", "contact_id": "", "from_number": "", "to_number": "",
             "duration_ms": 0, "state": "done", "status": h.READY, "call_id": str(n)} for n in range(3000)])
    line = f"{sys.executable} -m desktop_app {command} | head -2"
    proc = subprocess.run(["bash", "-c", f"set -o pipefail; {line}"], capture_output=True, text=True, timeout=120,
                          cwd=cd.ROOT, env={**os.environ, paths.ENV_HOME: str(home)})
    assert proc.stdout.count("\n") == 2
    assert proc.stderr == ""
    assert proc.returncode in (0, 1)
