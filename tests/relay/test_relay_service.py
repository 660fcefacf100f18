"""``callrelay relay serve`` as a real subprocess on loopback, against the session's PostgreSQL and SeaweedFS:
HubSpot's endpoint (real v3 signatures, presigned links fetched with Range), the agents' API (join, a
resumable upload with the uploader killed mid-way, complete with the SHA-256 checked), tokens, agent
isolation, the ``file:`` store served by the relay, and no secret in the database or the relay's log."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
import requests
from services import Postgres, RelayProcess, Seaweed
from test_storage import fetch

from desktop_app.relay.client import RelayClient, RelayError
from desktop_app.relay.db import TeamDB
from desktop_app.relay.storage import MIN_PART_SIZE
from desktop_app.server.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign_v3

APP_ID, ACCOUNT = "4242", "777001"
ENDPOINT = "/retrieve/authenticated/recordings/"


@pytest.fixture
def secrets_env() -> dict[str, str]:
    return {"CALLRELAY_HUBSPOT_CLIENT_SECRET": "hs-client-" + secrets.token_urlsafe(16),
            "CALLRELAY_LINK_KEY": "link-key-" + secrets.token_urlsafe(16)}


def _env(extra: dict[str, str]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("CALLRELAY_DATABASE", "CALLRELAY_HUBSPOT", "CALLRELAY_LINK", "CREDENTIALS_DIR"))}
    return {**base, **extra}


@pytest.fixture
def s3_relay(database_url: str, seaweed: Seaweed, bucket: str, secrets_env: dict[str, str],
             tmp_path: Path) -> Iterator[RelayProcess]:
    relay = RelayProcess(
        ["--storage", f"s3://{bucket}/team", "--s3-endpoint", seaweed.endpoint, "--s3-addressing", "path",
         "--app-id", APP_ID, "--account-id", ACCOUNT],
        _env({**seaweed.env(), **secrets_env, "CALLRELAY_DATABASE_URL": database_url}), tmp_path / "relay.log")
    yield relay
    relay.stop()


@pytest.fixture
def file_relay(database_url: str, secrets_env: dict[str, str], tmp_path: Path) -> Iterator[RelayProcess]:
    relay = RelayProcess(
        ["--database", database_url, "--storage", f"file:{tmp_path / 'store'}", "--part-size", "65536",
         "--app-id", APP_ID, "--account-id", ACCOUNT],
        _env(secrets_env), tmp_path / "relay.log")
    yield relay
    relay.stop()


def agent(relay: RelayProcess, database_url: str, name: str, *, supervisor: bool = False) -> tuple[RelayClient, str]:
    """An invite made on the relay's host, redeemed through the relay's API: the desk's client and the code."""
    with TeamDB(database_url) as db:
        code = db.create_invite(name, "supervisor" if supervisor else "agent")
    answer = RelayClient(relay.url).join(code)
    assert (answer["name"], answer["role"]) == (name, "supervisor" if supervisor else "agent")
    return RelayClient(relay.url, answer["token"]), code


def recording(path: Path, size: int) -> Path:
    path.write_bytes(b"RIFF" + os.urandom(size - 4))
    return path


def signed_get(relay: RelayProcess, client_secret: str, external_id: str, *, app_id: str = APP_ID,
               account: str = ACCOUNT, secret: str | None = None) -> requests.Response:
    url = f"{relay.url}{ENDPOINT}{quote(external_id)}?externalAccountId={account}&appId={app_id}"
    ts = int(time.time() * 1000)
    sig = sign_v3(secret or client_secret, "GET", url, b"", ts)
    return requests.get(url, headers={SIGNATURE_HEADER: sig, TIMESTAMP_HEADER: str(ts)}, timeout=30)


# --- HubSpot's endpoint ---------------------------------------------------------------------------------
def test_the_endpoint_answers_a_presigned_link_that_serves_206(s3_relay: RelayProcess, database_url: str,
                                                                 secrets_env: dict[str, str], tmp_path: Path) -> None:
    assert s3_relay.template.startswith("http://127.0.0.1:") and s3_relay.template.endswith(ENDPOINT + "%s")
    desk, _ = agent(s3_relay, database_url, "ana")
    rec = recording(tmp_path / "call.wav", 300_000)
    done = desk.upload(rec, {"title": "Call with Bo", "from_number": "+15550100", "duration_ms": 61000})
    secret = secrets_env["CALLRELAY_HUBSPOT_CLIENT_SECRET"]

    answer = signed_get(s3_relay, secret, done["external_id"])
    assert answer.status_code == 200, answer.text
    link = answer.json()["authenticatedUrl"]
    assert "X-Amz-Signature=" in link and not link.startswith(s3_relay.url)  # the store answers, not the relay
    assert "X-Amz-Expires=3600&" in link  # relay.link_ttl_s, 1 h by default
    status, headers, body = fetch(link, {"Range": "bytes=1000-4999"})
    assert status == 206
    assert headers["content-type"] == "application/octet-stream"
    assert headers["content-range"] == "bytes 1000-4999/300000"
    assert body == rec.read_bytes()[1000:5000]

    assert signed_get(s3_relay, secret, done["external_id"], app_id="9999").status_code == 403
    assert signed_get(s3_relay, secret, done["external_id"], account="123").status_code == 403
    assert signed_get(s3_relay, secret, "callrelay-never-made").status_code == 404
    assert signed_get(s3_relay, secret, done["external_id"], secret="not-the-app-secret").status_code == 401
    unsigned = requests.get(f"{s3_relay.url}{ENDPOINT}{done['external_id']}?externalAccountId={ACCOUNT}"
                            f"&appId={APP_ID}", timeout=30)
    assert unsigned.status_code == 401


# --- join, a resumable upload, complete -------------------------------------------------------------------
UPLOADER = textwrap.dedent("""
    import json, sys, time
    from desktop_app.relay.client import RelayClient
    url, token, path, stop_after = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    sent = []
    def on_part(number, size):
        sent.append(size)
        print(f"part {number} {size}", flush=True)
        if len(sent) == stop_after:
            time.sleep(3600)  # the test kills this desk here
    done = RelayClient(url, token).upload(path, {"title": "long call", "to_number": "+4930123"}, on_part=on_part)
    print("result " + json.dumps({"sent": sum(sent), **done}), flush=True)
""")


def run_uploader(relay: RelayProcess, token: str, path: Path, stop_after: int) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", UPLOADER, relay.url, token, str(path), str(stop_after)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_join_upload_killed_mid_way_resumes_only_the_missing_parts(
    s3_relay: RelayProcess, database_url: str, seaweed: Seaweed, bucket: str, tmp_path: Path
) -> None:
    desk, _ = agent(s3_relay, database_url, "Ana Silva")
    rec = recording(tmp_path / "long call.wav", 3 * MIN_PART_SIZE + 54_321)
    size = rec.stat().st_size

    first = run_uploader(s3_relay, str(desk.token), rec, stop_after=2)
    assert first.stdout is not None
    seen = [first.stdout.readline().strip() for _ in range(2)]
    assert seen == [f"part 1 {MIN_PART_SIZE}", f"part 2 {MIN_PART_SIZE}"], first.stderr.read() if first.stderr else ""
    first.kill()  # the desk dies mid-upload (kill -9)
    first.wait(10)

    second = run_uploader(s3_relay, str(desk.token), rec, stop_after=0)
    out, err = second.communicate(timeout=180)
    assert second.returncode == 0, err
    result = next(line for line in out.splitlines() if line.startswith("result "))
    got = json.loads(result[len("result "):])
    assert got["sent"] == size - 2 * MIN_PART_SIZE  # only parts 3 and 4 went again
    assert "part 1 " not in out and "part 2 " not in out

    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT a.name, s.status, s.recording_sha256, s.recording_size, s.recording_name, s.to_number,"
            " s.object_key FROM submissions s JOIN agents a ON a.id = s.agent_id WHERE s.external_id = %s",
            (got["external_id"],)).fetchone()
        assert conn.execute("SELECT count(*) FROM submissions").fetchone() == (1,)
    assert row is not None
    name, status, sha, stored_size, filename, to_number, key = row
    assert (name, status, stored_size, filename, to_number) == ("Ana Silva", "queued", size, "long call.wav", "+4930123")
    assert sha == hashlib.sha256(rec.read_bytes()).hexdigest()
    body = seaweed.client().get_object(Bucket=bucket, Key=f"team/{key}")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == sha


def test_complete_with_the_same_external_id_twice_makes_one_submission(s3_relay: RelayProcess, database_url: str,
                                                                       tmp_path: Path) -> None:
    desk, _ = agent(s3_relay, database_url, "bo")
    rec = recording(tmp_path / "a.wav", 50_000)
    call = {"title": "t", "external_id": "callrelay-11111111-2222-3333-4444-555555555555"}
    first = desk.upload(rec, call)
    parts: list[int] = []
    second = desk.upload(rec, call, on_part=lambda n, size: parts.append(n))  # a desk that missed the answer
    assert first == second == {"external_id": call["external_id"], "status": "queued"}
    assert parts == []  # nothing was sent again
    # the same externalId from another agent is refused, not taken over
    other, _ = agent(s3_relay, database_url, "cat")
    with pytest.raises(RelayError) as refused:
        other.upload(rec, call)
    assert refused.value.status == 409
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM submissions").fetchone() == (1,)


def test_a_recording_whose_sha256_does_not_match_is_refused(s3_relay: RelayProcess, database_url: str,
                                                            tmp_path: Path) -> None:
    desk, _ = agent(s3_relay, database_url, "cy")
    rec = recording(tmp_path / "a.wav", 70_000)
    plan = desk.begin(rec, sha256=hashlib.sha256(b"another recording").hexdigest())
    (part,) = plan["parts"]
    assert requests.put(part["url"], data=rec.read_bytes(), timeout=30).status_code == 200
    answer = requests.post(f"{s3_relay.url}/api/uploads/{plan['upload_id']}/complete", json={"call": {}},
                           headers={"Authorization": f"Bearer {desk.token}"}, timeout=60)
    assert answer.status_code == 422 and "does not match its SHA-256" in answer.json()["message"]
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM submissions").fetchone() == (0,)


# --- tokens and isolation -----------------------------------------------------------------------------------
def test_a_revoked_or_made_up_token_gets_401(s3_relay: RelayProcess, database_url: str) -> None:
    desk, code = agent(s3_relay, database_url, "dee")
    assert desk.submissions() == []
    with pytest.raises(RelayError) as used:
        RelayClient(s3_relay.url).join(code)  # an invite works once
    assert used.value.status == 403
    with TeamDB(database_url) as db:
        assert db.revoke("dee")
    for token in (desk.token, "crt_" + secrets.token_urlsafe(32), "", "Basic x"):
        for method, path in (("GET", "/api/submissions"), ("POST", "/api/uploads"),
                             ("GET", "/api/uploads/" + "0" * 32)):
            answer = requests.request(method, s3_relay.url + path, json={},
                                      headers={"Authorization": f"Bearer {token}"}, timeout=30)
            assert answer.status_code == 401, (token, path)
            assert "unknown or revoked" in answer.json()["message"]


def test_an_agent_sees_only_their_own_submissions_and_recordings(s3_relay: RelayProcess, database_url: str,
                                                                 tmp_path: Path) -> None:
    ana, _ = agent(s3_relay, database_url, "ana")
    bo, _ = agent(s3_relay, database_url, "bo")
    lead, _ = agent(s3_relay, database_url, "lead", supervisor=True)
    mine = ana.upload(recording(tmp_path / "ana.wav", 20_000), {"title": "ana's"})
    theirs = bo.upload(recording(tmp_path / "bo.wav", 20_000), {"title": "bo's"})

    assert [s["external_id"] for s in ana.submissions()] == [mine["external_id"]]
    assert [s["agent"] for s in bo.submissions()] == ["bo"]
    assert {s["agent"] for s in lead.submissions()} == {"ana", "bo"}
    for path in (f"/api/submissions/{theirs['external_id']}", f"/api/submissions/{theirs['external_id']}/recording"):
        answer = requests.get(s3_relay.url + path, headers={"Authorization": f"Bearer {ana.token}"}, timeout=30)
        assert answer.status_code == 404, path
    assert ana.submission(mine["external_id"])["title"] == "ana's"
    status, _, body = fetch(lead.recording_link(theirs["external_id"]))  # a supervisor hears everyone's
    assert status == 200 and body == (tmp_path / "bo.wav").read_bytes()
    # another agent's upload is unknown to ana, even by its id
    plan = bo.begin(recording(tmp_path / "bo2.wav", 10_000))
    answer = requests.get(f"{s3_relay.url}/api/uploads/{plan['upload_id']}",
                          headers={"Authorization": f"Bearer {ana.token}"}, timeout=30)
    assert answer.status_code == 404


# --- a file: store ----------------------------------------------------------------------------------------
def test_a_file_store_relay_takes_parts_and_serves_signed_links_with_range(
    file_relay: RelayProcess, database_url: str, secrets_env: dict[str, str], tmp_path: Path
) -> None:
    desk, _ = agent(file_relay, database_url, "eve")
    rec = recording(tmp_path / "call.wav", 200_000)  # 4 parts of 64 KiB
    parts: list[int] = []
    done = desk.upload(rec, {"title": "t"}, on_part=lambda n, size: parts.append(n))
    assert parts == [1, 2, 3, 4]
    answer = signed_get(file_relay, secrets_env["CALLRELAY_HUBSPOT_CLIENT_SECRET"], done["external_id"])
    assert answer.status_code == 200, answer.text
    link = answer.json()["authenticatedUrl"]
    assert link.startswith(file_relay.url + "/recordings/")
    got = requests.get(link, headers={"Range": "bytes=70000-70099"}, timeout=30)
    assert got.status_code == 206 and got.headers["Content-Type"] == "application/octet-stream"
    assert got.headers["Content-Range"] == "bytes 70000-70099/200000"
    assert got.content == rec.read_bytes()[70000:70100]
    token = link.rsplit("/", 1)[1]
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    assert requests.get(f"{file_relay.url}/recordings/{tampered}", timeout=30).status_code == 403
    # a part of the wrong size, or another agent's, is refused
    other, _ = agent(file_relay, database_url, "fay")
    plan = desk.begin(recording(tmp_path / "b.wav", 100_000))
    url = plan["parts"][0]["url"]
    assert requests.put(url, data=b"x" * 10, headers={"Authorization": f"Bearer {desk.token}"},
                        timeout=30).status_code == 400
    assert requests.put(url, data=b"x" * 65536, headers={"Authorization": f"Bearer {other.token}"},
                        timeout=30).status_code == 404
    # resumable as with S3: a part the relay holds is not asked for again
    body = (tmp_path / "b.wav").read_bytes()
    assert requests.put(url, data=body[:65536], headers={"Authorization": f"Bearer {desk.token}"},
                        timeout=30).status_code == 200
    assert [p["number"] for p in desk.begin(tmp_path / "b.wav")["parts"]] == [2]
    resent: list[int] = []
    finished = desk.upload(tmp_path / "b.wav", on_part=lambda n, size: resent.append(size))
    assert resent == [100_000 - 65536]
    link = desk.recording_link(finished["external_id"])
    assert requests.get(link, timeout=30).content == body


# --- secrets -------------------------------------------------------------------------------------------------
def _everything_in(database_url: str) -> str:
    with psycopg.connect(database_url) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()]
        return "\n".join(str(r[0]) for t in tables
                         for r in conn.execute(f'SELECT row_to_json(x)::text FROM "{t}" x').fetchall())


def test_no_token_or_secret_lands_in_the_database_or_the_relays_log(
    s3_relay: RelayProcess, database_url: str, seaweed: Seaweed, postgres: Postgres, secrets_env: dict[str, str],
    tmp_path: Path
) -> None:
    desk, code = agent(s3_relay, database_url, "gus")
    done = desk.upload(recording(tmp_path / "a.wav", 30_000), {"title": "t"})
    link = signed_get(s3_relay, secrets_env["CALLRELAY_HUBSPOT_CLIENT_SECRET"], done["external_id"]).json()
    presigned = link["authenticatedUrl"].rsplit("X-Amz-Signature=", 1)[1][:64]
    requests.get(s3_relay.url + "/api/submissions", headers={"Authorization": "Bearer crt_madeup"}, timeout=30)
    stored = _everything_in(database_url)
    assert "gus" in stored and done["external_id"] in stored  # the dump holds the data
    assert s3_relay.stop() == 0
    log = s3_relay.log + "\n".join(s3_relay.stdout)
    assert "/api/join" in log and "/api/uploads" in log  # the log holds the requests
    for secret in (str(desk.token), code, *secrets_env.values(), seaweed.secret_key, postgres.password, presigned):
        assert secret not in stored
        assert secret not in log
    assert "Traceback" not in log


# --- the command line ------------------------------------------------------------------------------------------
def callrelay(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "desktop_app", *args], env=_env(env or {}), capture_output=True,
                          text=True, timeout=120)


def test_callrelay_join_keeps_the_token_in_the_keyring_and_the_url_in_the_settings(
    file_relay: RelayProcess, database_url: str
) -> None:
    from desktop_app import keystore, settings

    with TeamDB(database_url) as db:
        code = db.create_invite("hal")
    out = callrelay("join", file_relay.url, code)
    assert out.returncode == 0, out.stderr
    assert "as hal (agent)" in out.stdout
    token = keystore.get(keystore.TEAM_RELAY_TOKEN)
    assert token and token not in out.stdout + out.stderr
    assert settings.load().get("team.relay_url") == file_relay.url
    assert RelayClient(file_relay.url, token).submissions() == []
    again = callrelay("join", file_relay.url, code)
    assert again.returncode == 1 and "already used" in again.stderr
    assert again.stderr.strip().count("\n") == 0 and "Traceback" not in again.stderr
    assert keystore.get(keystore.TEAM_RELAY_TOKEN) == token  # the refused join changed nothing
    bad = callrelay("join", "ftp://relay", code)
    assert bad.returncode == 2 and "is not a relay URL" in bad.stderr
    down = callrelay("join", "http://127.0.0.1:9", code)
    assert down.returncode == 1 and "cannot be reached" in down.stderr


def test_serve_usage_and_credentials(database_url: str, tmp_path: Path, postgres: Postgres) -> None:
    base = ["relay", "serve", "--port", "0", "--database", database_url]
    no_store = callrelay(*base, "--app-id", "1", "--account-id", "2")
    assert no_store.returncode == 2 and "No recordings store is named" in no_store.stderr
    no_app = callrelay(*base, "--storage", f"file:{tmp_path}")
    assert no_app.returncode == 2 and "--app-id" in no_app.stderr
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "hubspot-client-secret").write_text("hs-secret-value")
    (creds / "hubspot-client-secret").chmod(0o644)
    readable = callrelay(*base, "--storage", f"file:{tmp_path / 's'}", "--app-id", "1", "--account-id", "2",
                         env={"CREDENTIALS_DIRECTORY": str(creds)})
    assert readable.returncode == 1 and "can be read by other users" in readable.stderr
    assert "hs-secret-value" not in readable.stderr + readable.stdout
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = callrelay("relay", "serve", "--port", str(taken.getsockname()[1]), "--database", database_url,
                         "--storage", f"file:{tmp_path / 's'}", "--app-id", "1", "--account-id", "2")
    assert busy.returncode == 1 and "Cannot listen on 127.0.0.1:" in busy.stderr
    for out in (no_store, no_app, readable, busy):
        assert "Traceback" not in out.stderr and postgres.password not in out.stderr + out.stdout


def test_the_client_secret_from_the_credentials_directory_checks_signatures(
    database_url: str, tmp_path: Path
) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    for name, value in (("hubspot-client-secret", "from-the-creds-dir"), ("link-key", "k" * 40),
                        ("database-url", database_url)):
        (creds / name).write_text(value)
        (creds / name).chmod(0o600)
    relay = RelayProcess(["--storage", f"file:{tmp_path / 'store'}", "--app-id", APP_ID, "--account-id", ACCOUNT],
                         _env({"CREDENTIALS_DIRECTORY": str(creds)}), tmp_path / "relay.log")
    try:
        desk, _ = agent(relay, database_url, "ivy")
        done = desk.upload(recording(tmp_path / "a.wav", 5000))
        assert signed_get(relay, "from-the-creds-dir", done["external_id"]).status_code == 200
        assert signed_get(relay, "another-secret", done["external_id"]).status_code == 401
    finally:
        relay.stop()
    assert "from-the-creds-dir" not in relay.log


def _raw(port: int, data: bytes) -> bytes:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_crafted_requests_get_one_sentence_and_change_nothing(s3_relay: RelayProcess, database_url: str) -> None:
    desk, _ = agent(s3_relay, database_url, "jo")
    auth = {"Authorization": f"Bearer {desk.token}"}
    cases = [
        ("POST", "/api/uploads", b"{not json", 400),
        ("POST", "/api/uploads", b"[1, 2]", 400),
        ("POST", "/api/uploads", json.dumps({"sha256": "ab" * 32, "size": -1, "filename": "a"}).encode(), 400),
        ("POST", "/api/uploads", json.dumps({"sha256": "XYZ", "size": 10, "filename": "a"}).encode(), 400),
        ("POST", "/api/uploads", json.dumps({"sha256": "ab" * 32, "size": 10, "filename": "a",
                                             "external_id": "../../etc"}).encode(), 400),
        ("GET", "/api/uploads/../../etc/passwd", b"", 404),
        ("GET", "/api/uploads/" + "z" * 32, b"", 404),
        ("POST", "/api/uploads/" + "0" * 32 + "/complete", b"{}", 404),
        ("PUT", "/api/uploads/" + "0" * 32 + "/parts/1", b"x", 404),  # an S3 relay takes no parts itself
        ("POST", "/api/join", json.dumps({"code": 12}).encode(), 400),
        ("POST", "/api/join", json.dumps({"code": "made-up"}).encode(), 403),
        ("GET", "/recordings/AAAA.BBBB", b"", 403),
        ("GET", "/nothing-here", b"", 404),
        ("GET", ENDPOINT + "x?appId=" + APP_ID, b"", 401),  # the relay has a client secret: signatures required
    ]
    for method, path, body, status in cases:
        answer = requests.request(method, s3_relay.url + path, data=body, headers=auth, timeout=30)
        assert answer.status_code == status, (method, path, answer.status_code, answer.text)
        message = answer.json()["message"]
        assert message.count(". ") == 0 and "Traceback" not in message, message
    big = _raw(s3_relay.port, b"POST /api/join HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n{}")
    assert big.startswith(b"HTTP/1.1 413") and b"at most" in big
    # an error answered before the body was read closes the connection, so the unread body is never taken
    # for the next request
    smuggled = b'{"a": 1}GET /api/submissions HTTP/1.1\r\nHost: x\r\n\r\n'
    raw = _raw(s3_relay.port, b"POST /api/uploads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer crt_bad\r\n"
               b"Content-Length: %d\r\n\r\n" % len(smuggled) + smuggled)
    assert raw.startswith(b"HTTP/1.1 401") and raw.count(b"HTTP/1.1 ") == 1
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM uploads").fetchone() == (0,)
    assert desk.submissions() == []  # still serving
    assert "Traceback" not in s3_relay.log


def test_an_upload_the_store_forgot_is_started_again(s3_relay: RelayProcess, database_url: str, seaweed: Seaweed,
                                                     bucket: str, tmp_path: Path) -> None:
    desk, _ = agent(s3_relay, database_url, "kim")
    rec = recording(tmp_path / "a.wav", 40_000)
    plan = desk.begin(rec)
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT object_key, store_upload_id FROM uploads WHERE id = %s",
                           (plan["upload_id"],)).fetchone()
    assert row is not None
    # the bucket's lifecycle rule (or an admin) aborts the unfinished upload
    seaweed.client().abort_multipart_upload(Bucket=bucket, Key=f"team/{row[0]}", UploadId=row[1])
    done = desk.upload(rec, {"title": "t"})
    assert done["status"] == "queued"
    assert desk.submission(done["external_id"])["recording_size"] == 40_000


def test_two_relays_on_one_database_and_bucket_answer_for_each_other(
    s3_relay: RelayProcess, database_url: str, seaweed: Seaweed, bucket: str, secrets_env: dict[str, str],
    tmp_path: Path
) -> None:
    other = RelayProcess(
        ["--storage", f"s3://{bucket}/team", "--s3-endpoint", seaweed.endpoint, "--s3-addressing", "path",
         "--app-id", APP_ID, "--account-id", ACCOUNT],
        _env({**seaweed.env(), **secrets_env, "CALLRELAY_DATABASE_URL": database_url}), tmp_path / "other.log")
    try:
        desk, _ = agent(s3_relay, database_url, "lia")
        rec = recording(tmp_path / "a.wav", 2 * MIN_PART_SIZE + 10)
        plan = desk.begin(rec)
        first = requests.put(plan["parts"][0]["url"], data=rec.read_bytes()[:MIN_PART_SIZE], timeout=60)
        assert first.status_code == 200
        via_other = RelayClient(other.url, desk.token)  # the desk's first relay is gone: it resumes on the other
        resumed = via_other.begin(rec)
        assert resumed["upload_id"] == plan["upload_id"] and [p["number"] for p in resumed["parts"]] == [2, 3]
        done = via_other.upload(rec, {"title": "t"})
        answer = signed_get(s3_relay, secrets_env["CALLRELAY_HUBSPOT_CLIENT_SECRET"], done["external_id"])
        assert answer.status_code == 200
        status, _, body = fetch(answer.json()["authenticatedUrl"], {"Range": "bytes=0-9"})
        assert (status, body) == (206, rec.read_bytes()[:10])
    finally:
        other.stop()


def test_the_relay_carries_on_after_postgresql_restarts(s3_relay: RelayProcess, database_url: str,
                                                       postgres: Postgres) -> None:
    desk, _ = agent(s3_relay, database_url, "max")
    assert desk.submissions() == []
    postgres._run(postgres.bindir / "pg_ctl", "-D", postgres.data, "-m", "fast", "-w", "-t", "60", "restart",
                  "-l", postgres.log)
    answers = []
    for _ in range(3):  # a connection the restart closed is replaced as it is handed out
        answer = requests.get(s3_relay.url + "/api/submissions",
                              headers={"Authorization": f"Bearer {desk.token}"}, timeout=60)
        answers.append(answer.status_code)
    assert answers == [200, 200, 200], answers
    assert "Traceback" not in s3_relay.log


def test_invite_codes_never_start_with_a_dash(database_url: str) -> None:
    """`callrelay join RELAY_URL CODE` takes the code as argv: one starting with '-' would read as an option
    (base64url codes did so one time in 64)."""
    with TeamDB(database_url) as db:
        codes = [db.create_invite(f"a{n}") for n in range(300)]
    assert len(set(codes)) == 300
    assert [c for c in codes if c.startswith("-")] == []
