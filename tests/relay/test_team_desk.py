"""A desk that joined a team (issue 17, item 2): ``callrelay upload`` sends to the relay (real ``relay serve``
subprocess, the session's PostgreSQL and SeaweedFS), ``--wait`` follows the relay's pipeline, the local
outbox keeps what an unreachable relay could not take and ``callrelay team flush`` sends it once, and a
desk killed (SIGKILL) mid-upload resumes with only the missing parts."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest
from services import Seaweed
from test_relay_service import ACCOUNT, APP_ID, RelayProcess, _env, callrelay

from desktop_app.relay.db import TeamDB
from desktop_app.relay.storage import MIN_PART_SIZE


def start_relay(database_url: str, seaweed: Seaweed, bucket: str, tmp_path: Path) -> RelayProcess:
    """``callrelay relay serve`` on the test's database and bucket (S3, path-style), without HubSpot yet."""
    return RelayProcess(
        ["--storage", f"s3://{bucket}/team", "--s3-endpoint", seaweed.endpoint, "--s3-addressing", "path",
         "--app-id", APP_ID, "--account-id", ACCOUNT],
        _env({**seaweed.env(), "CALLRELAY_DATABASE_URL": database_url, "CALLRELAY_LINK_KEY": "link-key-team-desk"}),
        tmp_path / "relay.log")


@pytest.fixture
def s3_relay(database_url: str, seaweed: Seaweed, bucket: str, tmp_path: Path) -> Iterator[RelayProcess]:
    relay = start_relay(database_url, seaweed, bucket, tmp_path)
    yield relay
    relay.stop()


def write_wav(path: Path, seconds: float = 2.0, rate: int = 8000) -> Path:
    """A 16-bit stereo PCM WAV, a different tone on each channel (what the desk's inspection passes)."""
    t = np.arange(int(seconds * rate)) / rate
    tones = np.stack([np.sin(2 * np.pi * 300 * t), np.sin(2 * np.pi * 470 * t)], axis=1)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((tones * 12000).astype("<i2").tobytes())
    return path


def join(relay: RelayProcess, database_url: str, name: str, home: Path, *, supervisor: bool = False) -> dict[str, str]:
    """A desk with its own data directory (and so its own keyring entries) joined as ``name``; its env."""
    home.mkdir(parents=True, exist_ok=True)
    env = {"CALLRELAY_HOME": str(home)}
    with TeamDB(database_url) as db:
        code = db.create_invite(name, "supervisor" if supervisor else "agent")
    out = callrelay("join", relay.url, code, env=env)
    assert out.returncode == 0, out.stderr
    return env


def set_relay_url(env: dict[str, str], url: str) -> None:
    out = subprocess.run([sys.executable, "-c", "import sys; from desktop_app import settings; c = settings.load(); "
                          "c.set('team.relay_url', sys.argv[1]); c.save()", url],
                         env=_env(env), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def rows(database_url: str) -> list[tuple[str, str, str, str, str]]:
    with psycopg.connect(database_url) as conn:
        return [tuple(r) for r in conn.execute(  # type: ignore[misc]
            "SELECT s.external_id, a.name, s.title, s.to_number, s.status FROM submissions s"
            " JOIN agents a ON a.id = s.agent_id ORDER BY s.id").fetchall()]


def outbox(home: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(home / "team-outbox.sqlite3") as db:
        return list(db.execute("SELECT external_id, state FROM outbox ORDER BY id"))


def test_upload_on_a_joined_desk_goes_to_the_relay_and_wait_follows_it(
    s3_relay: RelayProcess, database_url: str, tmp_path: Path
) -> None:
    env = join(s3_relay, database_url, "Ana Silva", tmp_path / "desk")
    rec = write_wav(tmp_path / "call one.wav")
    out = callrelay("upload", str(rec), "--title", "Renewal", "--to", "+49 30 1234567", "--wait",
                    "--wait-timeout", "3", env=env)
    print(out.stdout, out.stderr)
    # the relay's pipeline is not there yet: the submission stays queued, and --wait says so after 3 s
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    got = rows(database_url)
    assert len(got) == 1
    external_id, agent, title, to_number, status = got[0]
    assert (agent, title, to_number, status) == ("Ana Silva", "Renewal", "+49301234567", "queued")
    assert f"[1/1] call one.wav: queued on the relay, external id {external_id}" in out.stdout
    assert "[1/1] call one.wav: still queued on the relay after 3 s" in out.stdout
    assert outbox(tmp_path / "desk") == [(external_id, "sent")]

    # the relay's pipeline moves it on (written here as the relay's pipeline will): --wait prints the end
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE submissions SET status = 'ready', state = 'done', call_id = '9001',"
                     " portal_id = '777001'")
    again = callrelay("upload", str(rec), env=env)
    assert again.returncode == 0, again.stderr
    assert f"skipped, already sent to the team relay as {external_id}" in again.stdout
    assert "Sending" not in again.stdout  # nothing to send: no "Sending 0 recording(s)" line
    assert len(rows(database_url)) == 1  # not sent twice

    # --wait follows each submission to the end of the relay's pipeline (moved on here as the relay's
    # pipeline will write it) and prints how each ended; exit 0 when none failed
    two, three = write_wav(tmp_path / "call two.wav", seconds=3), write_wav(tmp_path / "call three.wav", seconds=4)
    waiting = subprocess.Popen([sys.executable, "-m", "desktop_app", "upload", str(two), str(three), "--wait",
                                "--wait-timeout", "60"], env=_env(env), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert waiting.stdout is not None
    lines = []
    for line in waiting.stdout:
        lines.append(line)
        if line.startswith("[2/2]"):
            break
    assert all("queued on the relay" in x for x in lines if x.startswith("[")), lines
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE submissions SET status = 'ready', call_id = '9002', portal_id = '777001'"
                     " WHERE recording_name = 'call two.wav'")
        conn.execute("UPDATE submissions SET status = 'not-transcribed', call_id = '9003', portal_id = '777001',"
                     " error = 'HubSpot never fetched the recording.' WHERE recording_name = 'call three.wav'")
    rest, err = waiting.communicate(timeout=60)
    print(rest, err)
    assert waiting.returncode == 0, err
    assert "[1/2] call two.wav: ready, call 9002  https://app.hubspot.com/contacts/777001/record/0-48/9002" in rest
    assert "[2/2] call three.wav: not-transcribed, call 9003: HubSpot never fetched the recording." in rest

    four = write_wav(tmp_path / "call four.wav", seconds=5)
    failing = subprocess.Popen([sys.executable, "-m", "desktop_app", "upload", str(four), "--wait"], env=_env(env),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert failing.stdout is not None
    for line in failing.stdout:
        if line.startswith("[1/1]"):
            break
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE submissions SET status = 'failed', error = 'HubSpot refused the call.',"
                     " error_correlation_id = 'c-1' WHERE recording_name = 'call four.wav'")
    rest, err = failing.communicate(timeout=60)
    assert failing.returncode == 1, rest + err
    assert "[1/1] call four.wav: failed: HubSpot refused the call. (correlation id c-1)" in rest
    for command in ("flush", "resume"):  # `team resume` is the same command
        flush = callrelay("team", command, env=env)
        assert flush.returncode == 0 and "Nothing is waiting" in flush.stdout, flush.stderr


def test_a_relay_out_of_reach_keeps_the_submission_in_the_outbox_and_flush_sends_it_once(
    s3_relay: RelayProcess, database_url: str, tmp_path: Path
) -> None:
    home = tmp_path / "desk"
    env = join(s3_relay, database_url, "bo", home)
    set_relay_url(env, "http://127.0.0.1:9")  # the relay's host is down
    rec = write_wav(tmp_path / "a.wav")
    out = callrelay("upload", str(rec), "--title", "offline", env=env)
    assert out.returncode == 1
    assert "[1/1] a.wav: kept in this desk's outbox" in out.stdout and "cannot be reached" in out.stdout
    assert "Traceback" not in out.stderr
    [(external_id, state)] = outbox(home)
    assert state == "pending" and rows(database_url) == []

    set_relay_url(env, s3_relay.url)  # the relay answers again
    flushed = callrelay("team", "flush", env=env)
    assert flushed.returncode == 0, flushed.stdout + flushed.stderr
    assert f"a.wav: queued on the relay, external id {external_id}" in flushed.stdout
    assert [r[0] for r in rows(database_url)] == [external_id]  # the id made on the desk, once
    assert outbox(home) == [(external_id, "sent")]

    # the desk died after the relay accepted it but before it wrote that down: sending again is harmless
    with sqlite3.connect(home / "team-outbox.sqlite3") as db:
        db.execute("UPDATE outbox SET state = 'pending'")
    resent = callrelay("upload", str(write_wav(tmp_path / "b.wav", seconds=3)), env=env)
    assert resent.returncode == 0, resent.stdout + resent.stderr
    assert "[1/2] a.wav: queued on the relay" in resent.stdout and "(0 bytes sent)" in resent.stdout
    assert [r[0] for r in rows(database_url)].count(external_id) == 1
    assert len(rows(database_url)) == 2


def test_a_desk_killed_mid_upload_resumes_with_only_the_missing_parts(
    s3_relay: RelayProcess, database_url: str, tmp_path: Path
) -> None:
    home = tmp_path / "desk"
    env = join(s3_relay, database_url, "cy", home)
    rec = write_wav(tmp_path / "long call.wav", seconds=200, rate=48000)  # 8 parts of 5 MiB and a bit
    size = rec.stat().st_size
    assert size > 7 * MIN_PART_SIZE
    first = subprocess.Popen([sys.executable, "-m", "desktop_app", "upload", str(rec), "--title", "long"],
                             env=_env(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert first.stdout is not None
    seen = []
    for line in first.stdout:
        if ": " in line and " bytes on the relay" in line:
            seen.append(int(line.split(": ", 1)[1].split(" of ")[0]))
            if seen[-1] >= 2 * MIN_PART_SIZE:
                break
    first.kill()  # kill -9 mid-upload
    first.wait(10)
    assert seen and seen[-1] >= 2 * MIN_PART_SIZE and seen[-1] < size, seen
    [(external_id, state)] = outbox(home)
    assert state == "pending" and rows(database_url) == []

    again = callrelay("upload", str(rec), "--title", "long", env=env)  # started again, same command
    print(again.stdout)
    assert again.returncode == 0, again.stdout + again.stderr
    line = next(x for x in again.stdout.splitlines() if "resumed:" in x)
    on_relay = int(line.split("resumed: ")[1].split(" bytes")[0])
    resent = int(line.split(", ")[1].split(" sent again")[0])
    print(f"killed after {seen[-1]} bytes; on the relay at restart {on_relay}; sent again {resent} of {size}")
    assert on_relay >= 2 * MIN_PART_SIZE and on_relay + resent == size and resent < size
    assert f"queued on the relay, external id {external_id} ({resent} bytes sent)" in again.stdout
    assert [r[0] for r in rows(database_url)] == [external_id]


def test_a_desk_whose_token_is_gone_says_so_in_one_sentence(s3_relay: RelayProcess, tmp_path: Path) -> None:
    env = {"CALLRELAY_HOME": str(tmp_path / "desk")}
    set_relay_url(env, s3_relay.url)  # the setting without the keyring's token (another computer's copy)
    out = callrelay("upload", str(write_wav(tmp_path / "a.wav")), env=env)
    assert out.returncode == 1 and "run callrelay join again" in out.stderr
    assert out.stderr.strip().count("\n") == 0 and "Traceback" not in out.stderr
