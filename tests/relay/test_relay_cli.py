"""``callrelay relay invite|agents|revoke`` run as real subprocesses against the test PostgreSQL cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from services import Postgres

from desktop_app.relay.db import TeamDB


def callrelay(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("CALLRELAY_DATABASE_URL", "CREDENTIALS_DIRECTORY")}
    return subprocess.run([sys.executable, "-m", "desktop_app", *args], env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=120)


def test_invite_agents_revoke(database_url: str, postgres: Postgres) -> None:
    outputs: list[str] = []

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        out = callrelay(*args, env=env)
        outputs.append(out.stdout + out.stderr)
        return out

    out = run("relay", "invite", "Ana Silva", "--database", database_url)
    assert out.returncode == 0, out.stderr
    code = out.stdout.strip().splitlines()[-1]  # the code is the last line
    sup = run("relay", "invite", "lead", "--supervisor", env={"CALLRELAY_DATABASE_URL": database_url})
    assert sup.returncode == 0, sup.stderr
    with TeamDB(database_url) as db:  # a desk redeems the codes (what `callrelay join` will do through the relay)
        token = db.redeem_invite(code)
        db.redeem_invite(sup.stdout.strip().splitlines()[-1])
        assert db.authenticate(token) is not None

    listed = run("relay", "agents", "--json", "--database", database_url)
    assert listed.returncode == 0, listed.stderr
    assert [(a["name"], a["role"], a["revoked_at"]) for a in json.loads(listed.stdout)] == [
        ("Ana Silva", "agent", None), ("lead", "supervisor", None)]
    table = run("relay", "agents", "--database", database_url)
    assert table.returncode == 0 and "Ana Silva" in table.stdout and "active" in table.stdout

    out = run("relay", "revoke", "Ana Silva", "--database", database_url)
    assert out.returncode == 0, out.stderr
    with TeamDB(database_url) as db:
        assert db.authenticate(token) is None
    again = run("relay", "revoke", "Ana Silva", "--database", database_url)
    assert again.returncode == 1 and "no active agent named 'Ana Silva'" in again.stderr
    assert "revoked" in run("relay", "agents", "--database", database_url).stdout
    for text in outputs:
        assert postgres.password not in text and "Traceback" not in text


def test_usage_errors_exit_2(database_url: str) -> None:
    for args in (["relay", "invite", "x"], ["relay", "invite", "bad;name", "--database", database_url],
                 ["relay", "agents", "--database", "mysql://h/db"],
                 ["relay", "agents", "--database", "postgresql://u:Pw-S3cret@[::1/db"]):
        out = callrelay(*args)
        assert out.returncode == 2, (args, out.stderr)
        assert "Pw-S3cret" not in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_an_unreachable_database_is_one_sentence_and_exit_1(postgres: Postgres) -> None:
    url = postgres.url("postgres", password="Very-S3cret").replace(f":{postgres.port}/", ":9/")
    out = callrelay("relay", "agents", "--database", url)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [out.stderr.strip()]
    assert "cannot be reached" in out.stderr and "Very-S3cret" not in out.stderr + out.stdout
    wrong = callrelay("relay", "invite", "x", "--database", postgres.url("postgres", password="Very-S3cret"))
    assert wrong.returncode == 1 and "password authentication failed" in wrong.stderr
    assert "Very-S3cret" not in wrong.stderr + wrong.stdout


def test_the_credentials_directory_is_used_and_a_readable_file_refused(database_url: str, tmp_path: Path,
                                                                         postgres: Postgres) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    secret = creds / "database-url"
    secret.write_text(database_url + "\n")
    secret.chmod(0o644)
    env = {"CREDENTIALS_DIRECTORY": str(creds)}
    refused = callrelay("relay", "agents", env=env)
    assert refused.returncode == 1
    assert "can be read by other users" in refused.stderr and "chmod 600" in refused.stderr
    assert postgres.password not in refused.stderr
    secret.chmod(0o600)
    ok = callrelay("relay", "invite", "from-creds", env=env)
    assert ok.returncode == 0, ok.stderr
    with TeamDB(database_url) as db:
        db.redeem_invite(ok.stdout.strip().splitlines()[-1])
        assert [a.name for a in db.list_agents()] == ["from-creds"]
    # --database wins over the variable, which wins over the file
    other = postgres.create_database()
    env_first = callrelay("relay", "invite", "via-env", env={**env, "CALLRELAY_DATABASE_URL": other})
    assert env_first.returncode == 0
    with TeamDB(other) as db:
        db.redeem_invite(env_first.stdout.strip().splitlines()[-1])
        assert [a.name for a in db.list_agents()] == ["via-env"]


@pytest.mark.parametrize("mode", [0o640, 0o604])
def test_group_or_world_readable_credentials_are_refused(tmp_path: Path, mode: int) -> None:
    secret = tmp_path / "database-url"
    secret.write_text("postgresql://u:pw@127.0.0.1:9/db")
    secret.chmod(mode)
    out = callrelay("relay", "agents", env={"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert out.returncode == 1 and "can be read by other users" in out.stderr and "pw@" not in out.stderr
