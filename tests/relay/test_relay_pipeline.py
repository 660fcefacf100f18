"""The pipeline on the relay: ``callrelay relay serve`` subprocesses with the sandbox's ``HUBSPOT_*`` credentials
claim the submissions desks made through the agents' API (`RelayClient.upload`) from PostgreSQL and carry each
through the desk's `Pipeline` against the real sandbox, which fetches every recording through the relay's
endpoint and the presigned S3 link with Range (206). Two relays share the work and one rate budget; relays
killed with SIGKILL at random moments and a PostgreSQL restart lose nothing and log no call twice."""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import socket
import socketserver
import subprocess
import sys
import threading
import time
import wave
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from services import Postgres, Seaweed
from test_relay_service import ENDPOINT, RelayProcess, _env, agent

from desktop_app.commands.relay import ProblemError, hubspot_config
from desktop_app.relay.client import RelayClient
from desktop_app.relay.db import TeamDB
from desktop_app.sandbox.limits import RateLimits
from desktop_app.sandbox.server import Sandbox

PAID, UNPAID = "71000001", "71000003"  # the sandbox's seeded owners: with and without a paid seat
FINAL = ("transcribed", "not-transcribed", "failed")


def call_wav(path: Path, seed: int, *, seconds: float = 1.5, rate: int = 8000) -> Path:
    """A two-speaker call, one speaker per channel; ``seed`` makes each file its own recording."""
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(seed)
    a = 0.4 * np.sin(2 * np.pi * (220 + seed) * t) * ((t % 0.9) < 0.5)
    b = 0.4 * np.sin(2 * np.pi * (340 + seed) * t) * ((t % 0.9) >= 0.5)
    data = np.stack([a, b]) + 0.01 * rng.standard_normal((2, t.size))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(data.T, -1, 1) * 32767).astype("<i2").tobytes())
    return path


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    sb = Sandbox(port=0, search_lag_s=0.5, fetch_chunk=16 * 1024).start()
    try:
        yield sb
    finally:
        sb.stop()


def start_relay(sandbox: Sandbox, database_url: str, seaweed: Seaweed, bucket: str, log: Path,
                *extra: str) -> RelayProcess:
    return RelayProcess(
        ["--storage", f"s3://{bucket}/team", "--s3-endpoint", seaweed.endpoint, "--s3-addressing", "path",
         "--lease-s", "6", "--transcript-check-s", "1", *extra],
        _env({**seaweed.env(), **sandbox.env(), "CALLRELAY_DATABASE_URL": database_url}), log)


def local_port(relay: RelayProcess) -> int:
    """The port a relay listens on (its template names its public URL)."""
    first = next(line for line in relay.stdout if line.startswith("Relay listening on http://127.0.0.1:"))
    return int(first.split("127.0.0.1:", 1)[1].split()[0])


class Balancer:
    """The one public address of several relays, as a deployment's load balancer gives them: each connection
    goes to the first relay in ``ports`` that accepts it (a killed relay's port refuses)."""

    def __init__(self) -> None:
        self.ports: list[int] = []
        balancer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                for port in list(balancer.ports):
                    try:
                        upstream = socket.create_connection(("127.0.0.1", port), timeout=2)
                    except OSError:
                        continue
                    upstream.settimeout(None)
                    self.request.settimeout(None)
                    pipe = threading.Thread(target=_pipe, args=(upstream, self.request), daemon=True)
                    pipe.start()
                    _pipe(self.request, upstream)
                    pipe.join(30)
                    return

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


def statuses(database_url: str, external_ids: list[str]) -> dict[str, tuple[str, str | None]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT external_id, status, error FROM submissions WHERE external_id = ANY(%s)",
                            (external_ids,)).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def wait_final(database_url: str, external_ids: list[str], timeout: float,
               final: tuple[str, ...] = FINAL) -> dict[str, tuple[str, str | None]]:
    deadline = time.monotonic() + timeout
    while True:
        now = statuses(database_url, external_ids)
        if all(now.get(e, ("",))[0] in final for e in external_ids) or time.monotonic() > deadline:
            return now
        time.sleep(0.5)


def calls_per_external_id(sandbox: Sandbox) -> Counter[str]:
    return Counter(str(c["properties"].get("hs_call_external_id")) for c in sandbox.calls())


def upload_many(desk: RelayClient, tmp_path: Path, count: int, call: dict[str, Any], seed: int = 0) -> list[str]:
    ids = []
    for n in range(count):
        rec = call_wav(tmp_path / f"call-{seed + n}.wav", seed + n)
        ids.append(desk.upload(rec, {**call, "title": f"call {seed + n}"})["external_id"])
    return ids


def test_submissions_reach_ready_and_then_a_transcript_or_its_cause(
        sandbox: Sandbox, database_url: str, seaweed: Seaweed, bucket: str, tmp_path: Path) -> None:
    relay = start_relay(sandbox, database_url, seaweed, bucket, tmp_path / "relay.log")
    try:
        assert sandbox.recording_setting()["urlToRetrieveAuthedRecording"] == relay.template  # registered itself
        desk, _ = agent(relay, database_url, "ana")
        contact = sandbox.contacts()[0]["id"]
        paid = desk.upload(call_wav(tmp_path / "a.wav", 1), {"title": "paid", "owner_id": PAID,
                                                             "contact_id": contact, "direction": "INBOUND",
                                                             "timestamp": "2026-12-01T10:00:00+00:00",
                                                             "duration_ms": 1500})["external_id"]
        unpaid = desk.upload(call_wav(tmp_path / "b.wav", 2), {"title": "unpaid", "owner_id": UNPAID,
                                                               "contact_id": contact})["external_id"]
        done = wait_final(database_url, [paid, unpaid], 120)
        assert done[paid] == ("transcribed", None), (done, relay.log[-3000:])
        assert done[unpaid][0] == "not-transcribed" and "paid Sales Hub or Service Hub seat" in str(done[unpaid][1])
        assert calls_per_external_id(sandbox) == Counter({paid: 1, unpaid: 1})
        call = next(c for c in sandbox.calls() if c["properties"]["hs_call_external_id"] == paid)
        assert call["properties"]["hubspot_owner_id"] == PAID and call["properties"]["hs_call_title"] == "paid"
        assert {("calls", call["id"], "contacts", contact)} <= {
            (a["fromType"], a["fromId"], a["toType"], a["toId"]) for a in sandbox.associations()}
        assert len(sandbox.fetch_log) == 2
        for record in sandbox.fetch_log:  # through the relay's endpoint, then the store's link with Range
            assert record.retrieve_url.startswith(relay.url + ENDPOINT), record
            ranged = [r for r in record.requests if r.get("range")]
            assert ranged and all(r["status"] == 206 for r in ranged), record.requests
            assert not record.authenticated_url.startswith(relay.url) and seaweed.endpoint in record.authenticated_url
        with psycopg.connect(database_url) as conn:
            steps = [r[0] for r in conn.execute(
                "SELECT step FROM steps JOIN submissions s ON s.id = steps.submission_id WHERE s.external_id = %s"
                " ORDER BY steps.id", (paid,))]
            fetched = conn.execute("SELECT count(*) FROM fetches WHERE external_id = %s", (paid,)).fetchone()
        assert steps[:5] == ["store", "register_endpoint", "log_call", "associate", "mark_ready"]
        assert steps[5:] and set(steps[5:]) == {"transcript"}
        assert fetched is not None and fetched[0] >= 1
        assert "Traceback" not in relay.log
        with psycopg.connect(database_url) as conn:  # the HubSpot credentials are in neither
            everything = "\n".join(str(r) for t in ("submissions", "steps", "events", "fetches", "rate_slots")
                                    for r in conn.execute(f"SELECT * FROM {t}").fetchall())
        env = sandbox.env()
        for name in ("HUBSPOT_ACCESS_TOKEN", "HUBSPOT_DEVELOPER_API_KEY", "HUBSPOT_CLIENT_SECRET"):
            assert env[name] not in everything and env[name] not in relay.log, name
    finally:
        relay.stop()


def test_two_relays_share_the_work_and_one_rate_budget_without_a_429(
        database_url: str, seaweed: Seaweed, bucket: str, tmp_path: Path) -> None:
    limits = RateLimits(per_interval=12, interval_ms=2000, search_per_second=50)
    with Sandbox(port=0, search_lag_s=0.5, fetch_chunk=16 * 1024, limits=limits) as sandbox:
        first = start_relay(sandbox, database_url, seaweed, bucket, tmp_path / "one.log", "--workers", "3")
        second = start_relay(sandbox, database_url, seaweed, bucket, tmp_path / "two.log", "--workers", "3")
        try:
            desk, _ = agent(first, database_url, "bo")
            ids = upload_many(desk, tmp_path, 30, {"owner_id": PAID})
            done = wait_final(database_url, ids, 180, final=("ready", *FINAL))
            assert sorted(done) == sorted(ids) and all(s in ("ready", "transcribed") for s, _ in done.values()), done
            assert calls_per_external_id(sandbox) == Counter({e: 1 for e in ids})
            assert [r for r in sandbox.requests if r.status == 429] == []
            with psycopg.connect(database_url) as conn:
                holders = conn.execute(
                    "SELECT s.external_id, array_agg(DISTINCT split_part(st.relay, '/', 1)) FROM steps st"
                    " JOIN submissions s ON s.id = st.submission_id WHERE st.step = 'log_call'"
                    " GROUP BY s.external_id").fetchall()
            assert len(holders) == 30 and all(len(relays) == 1 for _, relays in holders)  # each claimed once
            assert len({relays[0] for _, relays in holders}) == 2, holders  # and both relays worked
        finally:
            first.stop()
            second.stop()


def test_relays_killed_at_random_and_a_postgresql_restart_lose_nothing_and_double_nothing(
        sandbox: Sandbox, database_url: str, seaweed: Seaweed, bucket: str, postgres: Postgres,
        tmp_path: Path) -> None:
    balancer = Balancer()  # HubSpot calls the team's one public URL; either relay answers it
    relays = [start_relay(sandbox, database_url, seaweed, bucket, tmp_path / f"r{n}.log", "--workers", "3",
                          "--public-url", balancer.url) for n in range(2)]
    balancer.ports[:] = [local_port(r) for r in relays]
    try:
        desk, _ = agent(relays[0], database_url, "cy")
        ids = upload_many(desk, tmp_path, 40, {"owner_id": PAID})
        rng = random.Random()
        kills = 0
        for round_ in range(4):
            time.sleep(rng.uniform(0.5, 3.0))
            victim = rng.randrange(2)
            relays[victim].proc.kill()  # SIGKILL: no cleanup, its leases run out
            relays[victim].proc.wait(10)
            relays[victim].stop()
            kills += 1
            if round_ == 1:
                postgres._run(postgres.bindir / "pg_ctl", "-D", postgres.data, "-m", "fast", "-w", "-t", "60",
                              "restart", "-l", postgres.log)
            relays[victim] = start_relay(sandbox, database_url, seaweed, bucket, tmp_path / f"r{victim}-{round_}.log",
                                         "--workers", "3", "--public-url", balancer.url)
            balancer.ports[:] = [local_port(r) for r in relays]
        done = wait_final(database_url, ids, 300, final=("ready", *FINAL))
        assert kills == 4
        assert sorted(done) == sorted(ids)  # none lost
        # HubSpot fetches a recording once, right after "ready": a fetch that met a relay as it was killed
        # ends not-transcribed with that cause, which is an end, not a loss; nothing else may
        cut = "the recording endpoint did not answer with a link"
        assert {e: s for e, s in done.items() if s[0] not in ("ready", "transcribed")
                and not (s[0] == "not-transcribed" and cut in str(s[1]))} == {}
        assert calls_per_external_id(sandbox) == Counter({e: 1 for e in ids})  # exactly one call each
        with psycopg.connect(database_url) as conn:
            outcomes = dict(conn.execute("SELECT outcome, count(*) FROM steps GROUP BY outcome").fetchall())
        print(f"steps by outcome after {kills} kills and a PostgreSQL restart: {outcomes}")
        marked = Counter(sandbox.ready_marked())
        assert set(marked) == {c["id"] for c in sandbox.calls()}
    finally:
        for r in relays:
            r.stop()
        balancer.close()


def test_hubspot_credentials_come_from_the_environment_or_a_private_credentials_file(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    for name, value in (("hubspot-access-token", "pat-from-file\n"), ("hubspot-developer-api-key", "dev-from-file")):
        (creds / name).write_text(value)
        (creds / name).chmod(0o600)
    env = {"CREDENTIALS_DIRECTORY": str(creds), "HUBSPOT_URL": "http://127.0.0.1:9"}
    config = hubspot_config("42", "777", "the-client-secret", env)
    assert (config.access_token, config.developer_api_key, config.client_secret, config.app_id, config.portal_id,
            config.api_url) == ("pat-from-file", "dev-from-file", "the-client-secret", "42", "777", "http://127.0.0.1:9")
    assert "pat-from-file" not in repr(config) and "dev-from-file" not in repr(config)
    assert hubspot_config("42", "777", None, {"HUBSPOT_ACCESS_TOKEN": "pat-env"}).access_token == "pat-env"
    assert hubspot_config("42", "777", None, {}) is None  # no token: the relay logs nothing, says so
    (creds / "hubspot-access-token").chmod(0o644)
    with pytest.raises(ProblemError, match="chmod 600"):
        hubspot_config("42", "777", None, env)
    out = subprocess.run(
        [sys.executable, "-m", "desktop_app", "relay", "serve", "--database", "postgresql://u@127.0.0.1:9/x",
         "--storage", f"file:{tmp_path / 'store'}", "--app-id", "42", "--account-id", "777"],
        env=_env({"CREDENTIALS_DIRECTORY": str(creds)}), capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and out.stderr.count("\n") == 1 and "can be read by other users" in out.stderr, out
    assert "Traceback" not in out.stderr


def test_a_relay_killed_right_after_creating_a_call_leaves_one_call_that_the_next_relay_adopts(
        sandbox: Sandbox, database_url: str, seaweed: Seaweed, bucket: str, tmp_path: Path) -> None:
    """CALLRELAY_CRASH_AT (the pipeline's test hook) ends the relay with os._exit right after HubSpot created the
    call and before its answer was written down: the relay that takes the submission over searches first."""
    crashing = RelayProcess(
        ["--storage", f"s3://{bucket}/team", "--s3-endpoint", seaweed.endpoint, "--s3-addressing", "path",
         "--lease-s", "4", "--workers", "1"],
        _env({**seaweed.env(), **sandbox.env(), "CALLRELAY_DATABASE_URL": database_url,
              "CALLRELAY_CRASH_AT": "log_call:after"}), tmp_path / "crashing.log")
    try:
        desk, _ = agent(crashing, database_url, "dee")
        external_id = desk.upload(call_wav(tmp_path / "a.wav", 7), {"owner_id": PAID})["external_id"]
        assert crashing.proc.wait(60) == 137
    finally:
        crashing.stop()
    assert calls_per_external_id(sandbox) == Counter({external_id: 1})  # made, its answer never written
    assert statuses(database_url, [external_id])[external_id][0] == "running"
    relay = start_relay(sandbox, database_url, seaweed, bucket, tmp_path / "relay.log")
    try:
        done = wait_final(database_url, [external_id], 150, final=("ready", *FINAL))
        assert done[external_id][0] in ("ready", "transcribed"), (done, relay.log[-2000:])
        with psycopg.connect(database_url) as conn:
            attempts = conn.execute("SELECT outcome FROM steps WHERE step = 'log_call' ORDER BY id").fetchall()
        assert [a[0] for a in attempts] == ["started", "adopted"]
        assert calls_per_external_id(sandbox) == Counter({external_id: 1})
    finally:
        relay.stop()


def test_a_worker_whose_lease_ran_out_starts_no_step(database_url: str) -> None:
    """A relay paused past its lease (another may have taken the submission over) sends nothing more for it."""
    from desktop_app.relay.teamhistory import LeaseLost, TeamHistory

    with TeamDB(database_url) as db:
        code = db.create_invite("eve")
        db.redeem_invite(code)
        eve = db.list_agents()[0]
        sid = db.add_submission(eve, external_id="callrelay-lease", recording_name="a.wav")
        history = TeamHistory(db, "relay-a")
        history.bind("relay-a/1")
        assert db.claim("relay-a/1", dt.timedelta(seconds=30)) is not None
        first = history.step_started(sid, "store")
        history.step_ended(first, "ok", submission={"state": "stored"})
        with db.connection() as conn:
            conn.execute("UPDATE submissions SET claimed_until = clock_timestamp() - interval '1 second'")
        with pytest.raises(LeaseLost):
            history.step_started(sid, "register_endpoint")
        assert db.claim("relay-b/1", dt.timedelta(seconds=30)) is not None  # taken over
        with pytest.raises(LeaseLost):
            history.step_started(sid, "register_endpoint")
        sub = history.get(sid)
        assert sub is not None and [s.step for s in sub.steps] == ["store"] and sub.state == "stored"
