"""State that survives a restart (SQLite file), and ``callrelay sandbox`` run as a program."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import requests
from sandbox_helpers import bearer
from test_validation import CALL

from desktop_app.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[2]
NAMES = ["HUBSPOT_URL", "HUBSPOT_ACCESS_TOKEN", "HUBSPOT_APP_ID", "HUBSPOT_DEVELOPER_API_KEY",
         "HUBSPOT_CLIENT_SECRET", "HUBSPOT_PORTAL_ID"]


def test_state_file_keeps_objects_credentials_and_ids_across_a_restart(tmp_path: Path,
                                                                       http: requests.Session) -> None:
    state = tmp_path / "sandbox.sqlite3"
    with Sandbox(state_file=state) as sb:
        creds = sb.credentials
        h = bearer(creds.access_token)
        call_id = http.post(f"{sb.url}/crm/v3/objects/calls", headers=h, json={"properties": CALL, "associations": [
            {"to": {"id": "101"}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 194}]}]}
                            ).json()["id"]
        http.post(f"{sb.url}/crm/v3/extensions/calling/{creds.app_id}/settings/recording",
                  params={"hapikey": creds.developer_api_key},
                  json={"urlToRetrieveAuthedRecording": "https://x.example.com/%s"})
        contacts_before = len(sb.contacts())
        oauth = sb.issue_token(["crm.objects.owners.read"])
    with Sandbox(state_file=state) as again:
        assert again.credentials == creds
        h = bearer(creds.access_token)
        got = http.get(f"{again.url}/crm/v3/objects/calls/{call_id}?properties=hs_call_title", headers=h)
        assert got.status_code == 200 and got.json()["properties"]["hs_call_title"] == "Demo"
        assert again.recording_setting() == {"urlToRetrieveAuthedRecording": "https://x.example.com/%s"}
        assert len(again.contacts()) == contacts_before  # seeded once, not again
        assert any(a["fromId"] == call_id for a in again.associations())
        assert http.get(f"{again.url}/crm/v3/owners", headers=bearer(str(oauth))).status_code == 200
        new_id = http.post(f"{again.url}/crm/v3/objects/calls", headers=h,
                           json={"properties": CALL, "associations": []}).json()["id"]
        assert int(new_id) > int(call_id)
    with Sandbox() as memory:
        assert memory.credentials != creds and memory.calls() == []


def _start_cli(*args: str, home: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUBSPOT_")}
    env["CALLRELAY_HOME"] = str(home)
    return subprocess.Popen([sys.executable, "-m", "desktop_app", "sandbox", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _read_lines(proc: subprocess.Popen[str]) -> list[str]:
    assert proc.stdout is not None
    return [proc.stdout.readline().rstrip("\n") for _ in NAMES]


def _name(line: str) -> str:
    assert line.startswith("export "), line  # exported, so the commands run after eval see them
    return line.removeprefix("export ").split("=", 1)[0]


def test_cli_prints_evalable_variables_serves_and_exits_0_on_ctrl_c(tmp_path: Path,
                                                                    http: requests.Session) -> None:
    state = tmp_path / "state.sqlite3"
    proc = _start_cli("--host", "127.0.0.1", "--port", "0", "--state", str(state),
                      "--faults", "owners.list:503x1", home=tmp_path)
    try:
        lines = _read_lines(proc)
        assert [_name(line) for line in lines] == NAMES
        printed = tmp_path / "printed.txt"
        printed.write_text("\n".join(lines) + "\n")
        # the README's `eval "$(cat file)"`: a program started afterwards (not the shell itself) sees them
        show = f"import os; print(*(os.environ.get(n, '<unset>') for n in {NAMES!r}), sep=chr(10))"
        clean = {k: v for k, v in os.environ.items() if not k.startswith("HUBSPOT_")}
        evaluated = subprocess.run(["bash", "-c", 'eval "$(cat "$1")"; "$2" -c "$3"', "-", str(printed),
                                    sys.executable, show], env=clean, capture_output=True, text=True,
                                   check=True).stdout.splitlines()
        env = dict(zip(NAMES, evaluated, strict=True))
        assert "<unset>" not in evaluated
        assert env["HUBSPOT_URL"].startswith("http://127.0.0.1:") and env["HUBSPOT_APP_ID"].isdigit()
        owners = f"{env['HUBSPOT_URL']}/crm/v3/owners"
        h = bearer(env["HUBSPOT_ACCESS_TOKEN"])
        assert [http.get(owners, headers=h).status_code for _ in range(2)] == [503, 200]  # --faults applied
        account = http.get(f"{env['HUBSPOT_URL']}/account-info/v3/details", headers=h).json()
        assert str(account["portalId"]) == env["HUBSPOT_PORTAL_ID"]
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
    again = _start_cli("--state", str(state), home=tmp_path)
    try:
        relines = _read_lines(again)
        keep = {_name(line): line for line in relines}
        first = {_name(line): line for line in lines}
        for name in NAMES[1:]:
            assert keep[name] == first[name], name  # credentials stable with --state
    finally:
        again.send_signal(signal.SIGTERM)
        assert again.wait(timeout=15) == 0


def test_cli_refuses_a_bad_fault_spec(tmp_path: Path) -> None:
    proc = _start_cli("--faults", "calls.create:explode", home=tmp_path)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and out == "" and "unknown action" in err


def test_stop_ends_kept_alive_connections_and_the_log_can_be_capped(http: requests.Session) -> None:
    sb = Sandbox(max_logged_requests=3)
    sb.start()
    h = bearer(sb.credentials.access_token)
    for _ in range(5):
        assert http.get(f"{sb.url}/crm/v3/owners/71000001", headers=h).status_code == 200  # one pooled connection
    assert len(sb.requests) == 3
    url = sb.url
    sb.stop()
    try:
        http.get(f"{url}/crm/v3/owners/71000001", headers=h, timeout=5)
    except requests.ConnectionError:
        pass
    else:
        raise AssertionError("a pooled connection was still served after stop()")


def test_cli_says_when_the_port_is_taken(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = _start_cli("--port", str(port), home=tmp_path)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and out == "" and f"cannot listen on 127.0.0.1:{port}" in err
