"""Issue 17's end-to-end proof, with crashes: the sandbox, PostgreSQL, SeaweedFS, two ``relay serve`` subprocesses
behind one public URL and three desk processes (each joined with a real ``callrelay relay invite`` and
``callrelay join``, its token in the keyring) submit 300 recordings. During the batch one relay is killed with
SIGKILL at random moments and started again, PostgreSQL restarts once, and a desk is killed mid-upload of a larger
recording and started again (it resumes: the bytes it sends again are printed). At the end every submission has
finished, the sandbox holds exactly one call per recording and fetched each through the relay's endpoint and the
presigned link with Range (206), the team history shows all 300 with the right agent, and no secret is in any table,
relay log or desk output.

What a relay killed mid-fetch means: HubSpot asks for a recording once, right after "ready" (the sandbox's fetcher
does not retry, and HubSpot documents no retry: ``hubspot-facts.md``), so a fetch that was inside a relay at the
moment it was killed, or that met PostgreSQL restarting, ends that call ``not-transcribed`` with the cause "the
recording endpoint did not answer with a link". Nothing is lost: the recording stays in the store and HubSpot asks
again each time someone plays it. The test accepts that end only for a fetch the sandbox saw fail at the endpoint
while a kill or the restart happened, and then plays the recording (the sandbox fetches it again), which must
succeed through the endpoint and the presigned link with Range.

Also here: ``callrelay upload --wait`` on a joined desk (the relaydesk work) reaching ready through the relay.

Run them alone with ``pytest -m team_e2e tests/relay``; they are part of ``make test``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from services import Postgres, RelayProcess, Seaweed
from test_relay_pipeline import PAID, Balancer, call_wav, calls_per_external_id, local_port, statuses
from test_relay_pipeline import start_relay as start_pipeline_relay
from test_relay_service import ENDPOINT, _env, _everything_in, callrelay
from test_team_desk import join

from desktop_app import keystore
from desktop_app.relay.client import RelayClient
from desktop_app.relay.storage import MIN_PART_SIZE
from desktop_app.sandbox.limits import RateLimits
from desktop_app.sandbox.server import Sandbox

pytestmark = [pytest.mark.team_e2e, pytest.mark.slow]

PER_DESK = 100
DESKS = (("Ana Agent", "71000001"), ("Bo Caller", "71000002"), ("Cy Viewer", "71000003"))  # 71000003: no paid seat
BIG_AT = 30  # the first desk's recording number 30 is the larger one it is killed in the middle of
CUT = "the recording endpoint did not answer with a link"
NO_SEAT = "paid Sales Hub or Service Hub seat"

# A desk: its relay URL from the settings and its token from the keyring (``callrelay join`` put them there),
# each recording of the manifest sent with `RelayClient.upload` under the external id the desk chose for it (a
# desk started again sends the same ids: what the relay accepted already is answered as done, nothing is sent
# twice); while the relay cannot be reached it waits and tries again, as a desk queues its submissions.
DESK = textwrap.dedent("""
    import json, sys, time
    from desktop_app import keystore, settings
    from desktop_app.relay.client import RelayClient, RelayError
    manifest = json.loads(open(sys.argv[1], encoding="utf-8").read())
    pause_name, _, pause_part = (sys.argv[2] if len(sys.argv) > 2 else "").partition(":")
    client = RelayClient(settings.load().get("team.relay_url"), keystore.get(keystore.TEAM_RELAY_TOKEN))
    for item in manifest:
        sent = []
        def on_part(number, size, name=item["name"]):
            sent.append(size)
            if name == pause_name:
                print(f"part {name} {number} {size}", flush=True)
                if str(number) == pause_part:
                    time.sleep(3600)  # the test kills this desk here, mid-upload
        deadline = time.monotonic() + 240
        while True:
            try:
                done = client.upload(item["path"], item["call"], on_part=on_part)
                break
            except RelayError as exc:
                if exc.status in (400, 401, 403, 404, 409, 422) or time.monotonic() > deadline:
                    print(f"error {item['name']} {exc.status} {exc}", flush=True)
                    sys.exit(1)
                print(f"retry {item['name']} {exc.status}", flush=True)
                time.sleep(0.5)
        print(f"done {item['name']} {done['external_id']} {sum(sent)}", flush=True)
    print("finished", flush=True)
""")


class DeskProcess:
    """One desk subprocess (its own ``CALLRELAY_HOME``, so its own settings and keyring entry); its output lines."""

    def __init__(self, home: Path, manifest: Path, pause: str = "") -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", DESK, str(manifest), *([pause] if pause else [])],
                                     env=_env({"CALLRELAY_HOME": str(home)}), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_line(self, wanted: str, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: wanted in self.lines or self.proc.poll() is not None, timeout) \
                and wanted in self.lines

    def finish(self, timeout: float) -> str:
        self.proc.wait(timeout)
        self._reader.join(10)
        return "\n".join(self.lines)

    def kill(self) -> None:
        self.proc.kill()  # kill -9
        self.proc.wait(10)
        self._reader.join(10)


def run_callrelay(*args: str, env: dict[str, str]) -> str:
    out = subprocess.run([sys.executable, "-m", "desktop_app", *args], env=_env(env), capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and "Traceback" not in out.stderr, (args[:2], out.stderr)
    return out.stdout


def test_three_desks_and_two_relays_carry_300_recordings_through_kills_and_a_postgresql_restart(
        database_url: str, seaweed: Seaweed, bucket: str, postgres: Postgres, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    began = time.monotonic()
    link_key = "link-key-e2e-" + os.urandom(12).hex()
    # enforced, and high enough for 300 calls in a couple of minutes (a submission is about five requests)
    limits = RateLimits(per_interval=60, interval_ms=1000, search_per_second=20)
    with Sandbox(port=0, search_lag_s=0.5, limits=limits) as sandbox:
        env = {**seaweed.env(), **sandbox.env(), "CALLRELAY_DATABASE_URL": database_url,
               "CALLRELAY_LINK_KEY": link_key}
        balancer = Balancer()  # the team's one public URL; HubSpot and the desks call it
        logs: list[Path] = []

        def start_relay(label: str) -> RelayProcess:
            logs.append(tmp_path / f"relay-{label}.log")
            return RelayProcess(
                ["--storage", f"s3://{bucket}/team", "--s3-endpoint", seaweed.endpoint, "--s3-addressing", "path",
                 "--lease-s", "6", "--transcript-check-s", "1", "--workers", "3", "--public-url", balancer.url],
                _env(env), logs[-1])

        relays = [start_relay("0"), start_relay("1")]
        relay_out: list[str] = []
        balancer.ports[:] = [local_port(r) for r in relays]
        desks: list[DeskProcess] = []
        try:
            assert sandbox.recording_setting()["urlToRetrieveAuthedRecording"] == balancer.url + ENDPOINT + "%s"
            # --- the team: invites made on the relay's host, redeemed by each desk with `callrelay join` ---------
            homes, outputs = [], []
            for n, (name, _) in enumerate(DESKS):
                code = run_callrelay("relay", "invite", name, env={"CALLRELAY_DATABASE_URL": database_url}) \
                    .strip().splitlines()[-1]
                homes.append(tmp_path / f"desk{n}")
                outputs.append(run_callrelay("join", balancer.url, code, env={"CALLRELAY_HOME": str(homes[-1])}))
            lead_code = run_callrelay("relay", "invite", "Lead", "--supervisor",
                                  env={"CALLRELAY_DATABASE_URL": database_url}).strip().splitlines()[-1]
            lead = RelayClient(balancer.url, RelayClient(balancer.url).join(lead_code)["token"])
            tokens = [lead.token]
            for home in homes:  # the desks' tokens, to look for them later where no token may be
                monkeypatch.setenv("CALLRELAY_HOME", str(home))
                tokens.append(keystore.get(keystore.TEAM_RELAY_TOKEN))
            monkeypatch.delenv("CALLRELAY_HOME")
            assert all(tokens) and len(set(tokens)) == 4

            # --- 300 distinct recordings, with call details naming a contact and the agent's owner -----------
            contacts = [c["id"] for c in sandbox.contacts()]
            agent_of: dict[str, str] = {}
            sha_of: dict[str, str] = {}
            manifests = []
            for n, (name, owner) in enumerate(DESKS):
                folder = tmp_path / f"recordings{n}"
                folder.mkdir()
                items = []
                for i in range(PER_DESK):
                    big = n == 0 and i == BIG_AT
                    seed = n * 1000 + i
                    rec = call_wav(folder / f"call-{i:03d}.wav", seed, seconds=520 if big else 1.0)
                    external_id = f"callrelay-e2e-{n}-{i:03d}"
                    agent_of[external_id] = name
                    sha_of[external_id] = hashlib.sha256(rec.read_bytes()).hexdigest()
                    items.append({"name": rec.name, "path": str(rec), "call": {
                        "external_id": external_id, "title": f"{name} call {i}", "owner_id": owner,
                        "contact_id": contacts[seed % len(contacts)], "direction": "INBOUND",
                        "timestamp": "2026-12-04T10:00:00+00:00", "duration_ms": 1000}})
                manifests.append(tmp_path / f"manifest{n}.json")
                manifests[-1].write_text(json.dumps(items))
            assert len(set(sha_of.values())) == 3 * PER_DESK
            big_file = tmp_path / "recordings0" / f"call-{BIG_AT:03d}.wav"
            big_size = big_file.stat().st_size
            assert big_size > 3 * MIN_PART_SIZE

            # --- the batch, with crashes ------------------------------------------------------------------------
            desks = [DeskProcess(homes[0], manifests[0], pause=f"{big_file.name}:2")] + [
                DeskProcess(homes[n], manifests[n]) for n in (1, 2)]
            incidents: list[tuple[str, float, float]] = []  # what, and from when to when: each kill, the restart
            killed_pids: list[int] = []
            restarts: list[float] = []  # how long each killed relay took to start again, its pipeline included
            chaos_errors: list[BaseException] = []

            def chaos() -> None:
                rng = random.Random()
                try:
                    for round_ in range(3):
                        time.sleep(rng.uniform(1.5, 5.0))
                        victim = rng.randrange(2)
                        start = time.time()
                        killed_pids.append(relays[victim].proc.pid)
                        relays[victim].proc.kill()  # kill -9: no cleanup, its leases run out
                        relays[victim].proc.wait(10)
                        relays[victim].stop()
                        relay_out.extend(relays[victim].stdout)
                        incidents.append((f"relay {victim} killed", start, time.time()))
                        if round_ == 1:
                            start = time.time()
                            postgres._run(postgres.bindir / "pg_ctl", "-D", postgres.data, "-m", "fast", "-w",
                                          "-t", "60", "restart", "-l", postgres.log)
                            incidents.append(("PostgreSQL restarted", start, time.time()))
                        start = time.time()
                        relays[victim] = start_relay(f"{victim}-{round_}")  # back when its pipeline has started
                        balancer.ports[:] = [local_port(r) for r in relays]
                        restarts.append(time.time() - start)
                except BaseException as exc:  # noqa: BLE001 - reported by the test's thread
                    chaos_errors.append(exc)

            chaos_thread = threading.Thread(target=chaos, daemon=True)
            chaos_thread.start()
            assert desks[0].wait_line(f"part {big_file.name} 2 {MIN_PART_SIZE}", 240), desks[0].lines[-5:]
            desks[0].kill()  # mid-upload: parts 1 and 2 are in the store, 3 and 4 are not
            first_run = list(desks[0].lines)
            desks[0] = DeskProcess(homes[0], manifests[0])  # started again
            desk_out = first_run + [desks[n].finish(300) for n in range(3)]
            uploaded_at = time.time()
            for desk in desks:
                assert desk.proc.returncode == 0, desk.lines[-10:]
            chaos_thread.join(240)
            assert not chaos_thread.is_alive() and chaos_errors == [] and len(incidents) == 4, chaos_errors
            resent = next(int(line.split()[3]) for line in desks[0].lines
                          if line.startswith(f"done {big_file.name} "))
            print(f"\nthe killed desk resumed {big_file.name}: sent again {resent} of {big_size} bytes "
                  f"({resent / big_size:.0%}; parts 1 and 2 of {MIN_PART_SIZE} bytes were not sent again)")
            assert resent == big_size - 2 * MIN_PART_SIZE
            # only missing parts are ever sent: the desks sent each recording's bytes once, whatever was killed
            sent = sum(int(line.split()[3]) for line in [*first_run, *(ln for d in desks for ln in d.lines)]
                       if line.startswith("done ")) + 2 * MIN_PART_SIZE
            sizes = {e: Path(i["path"]).stat().st_size for m in manifests for i in json.loads(m.read_text())
                     for e in [i["call"]["external_id"]]}
            assert sent == sum(sizes.values()), (sent, sum(sizes.values()))

            # --- every submission finished --------------------------------------------------------------------
            ids = sorted(agent_of)
            deadline = time.monotonic() + 300
            while True:
                done = statuses(database_url, ids)
                if all(done.get(e, ("",))[0] in ("transcribed", "not-transcribed", "failed") for e in ids) \
                        or time.monotonic() > deadline:
                    break
                time.sleep(1)
            assert sorted(done) == ids  # 0 lost
            with psycopg.connect(database_url) as conn:  # when the pipeline's last step (a transcript look) ended
                row = conn.execute("SELECT extract(epoch FROM max(ended_at)) FROM steps").fetchone()
            assert row is not None
            # the crashes came during the batch: the first while desks were uploading, all before the pipeline ended
            assert incidents[0][1] < uploaded_at and incidents[-1][2] < float(row[0]), (incidents, uploaded_at, row)
            calls = {c["properties"]["hs_call_external_id"]: c for c in sandbox.calls()}
            assert calls_per_external_id(sandbox) == Counter({e: 1 for e in ids})  # 0 duplicates
            fetches: dict[str, list[Any]] = {}
            for record in sandbox.fetch_log:
                fetches.setdefault(record.external_id, []).append(record)
            cut: list[str] = []
            for e, (status, error) in done.items():
                if status == "transcribed" or (status == "not-transcribed" and NO_SEAT in str(error)
                                               and agent_of[e] == "Cy Viewer"):
                    continue
                assert status == "not-transcribed" and CUT in str(error), (e, status, error)
                (record,) = fetches[e]  # a fetch that met a kill or the restart, and nothing else
                assert record.reason == "retrieve_failed", record
                met = [what for what, a, b in incidents
                       if a - 2 <= (record.finished_at or time.time()) and record.started_at <= b + 2]
                assert met, (record, incidents)
                print(f"{e}: HubSpot's fetch met {' and '.join(met)}: {record.detail}")
                cut.append(e)
            for e in cut:  # someone plays it: HubSpot asks again and gets it
                sandbox.fetches.start(calls[e]["id"])
                fetches[e].append(sandbox.wait_for_fetch(calls[e]["id"], 60))
            for e in ids:  # through the endpoint, then the store's presigned link with Range
                record = fetches[e][-1]
                assert record.retrieve_url.startswith(balancer.url + ENDPOINT + e), record
                assert seaweed.endpoint in record.authenticated_url, record
                ranged = [r for r in record.requests if r.get("range")]
                assert ranged and all(r["status"] == 206 for r in ranged), record.requests
                assert record.size == sizes[e], (record, sizes[e])
            with psycopg.connect(database_url) as conn:
                by_sha = dict(conn.execute("SELECT external_id, recording_sha256 FROM submissions").fetchall())
                call_ids = dict(conn.execute("SELECT external_id, call_id FROM submissions").fetchall())
            assert by_sha == sha_of  # one submission per recording, by SHA-256
            assert {call_ids[e] for e in ids} == {calls[e]["id"] for e in ids} and len(set(call_ids.values())) == 300

            # --- the team history, as a supervisor sees it through the agents' API ---------------------------
            history = {s["external_id"]: s for s in lead.submissions()}
            assert {e: s["agent"] for e, s in history.items()} == agent_of
            assert {calls[e]["properties"]["hubspot_owner_id"] for e in ids if agent_of[e] == "Bo Caller"} \
                == {"71000002"}
            own = RelayClient(balancer.url, tokens[2]).submissions()
            assert len(own) == PER_DESK and {s["agent"] for s in own} == {"Bo Caller"}

            # --- no secret in any table, relay log or desk output --------------------------------------------
            for relay in relays:
                relay.stop()
                relay_out.extend(relay.stdout)
            relay_text = "\n".join(p.read_text(errors="replace") for p in logs) + "\n".join(relay_out)
            stored = _everything_in(database_url)
            out = "\n".join([*outputs, *desk_out])
            assert "Traceback" not in relay_text and "Traceback" not in out
            assert sum(agent_of[e] in stored for e in ids) and "/api/uploads" in relay_text  # the texts hold data
            hubspot = [sandbox.env()[k] for k in ("HUBSPOT_ACCESS_TOKEN", "HUBSPOT_DEVELOPER_API_KEY",
                                                  "HUBSPOT_CLIENT_SECRET")]
            for secret in (*hubspot, *tokens, link_key, seaweed.access_key, seaweed.secret_key, postgres.password):
                for where, text in (("the database", stored), ("a relay's log", relay_text), ("a desk", out)):
                    assert secret not in text, f"a secret is in {where}"

            outcomes = Counter(s for s, _ in done.values())
            too_many = sum(1 for r in sandbox.requests if r.status == 429)
            retries = sum(line.startswith("retry ") for line in [*first_run, *(ln for d in desks for ln in d.lines)])
            print(f"300 recordings from 3 desks through 2 relays: {dict(outcomes)}; {len(cut)} fetch(es) cut by a "
                  f"kill or the restart, played again; relays killed {len(killed_pids)} times, PostgreSQL restarted "
                  f"once (the relays started again in {', '.join(f'{r:.1f}' for r in restarts)} s); the desks tried "
                  f"again {retries} times; {too_many} answers 429; {time.monotonic() - began:.0f} s")
        finally:
            for desk in desks:
                if desk.proc.poll() is None:
                    desk.kill()
            for relay in relays:
                relay.stop()
            balancer.close()


def test_a_relay_killed_between_joining_the_parts_and_writing_the_submission_down_costs_no_resend(
        database_url: str, seaweed: Seaweed, bucket: str, tmp_path: Path) -> None:
    """The store joined the parts (``complete``), then the relay was killed before the submission was written: the
    desk, sending the recording again, must not upload it all again, and one submission comes of it."""
    env = {**seaweed.env(), "CALLRELAY_DATABASE_URL": database_url, "CALLRELAY_HUBSPOT_CLIENT_SECRET": "x" * 20}
    relay = RelayProcess(["--storage", f"s3://{bucket}/team", "--s3-endpoint", seaweed.endpoint,
                          "--s3-addressing", "path", "--app-id", "4242", "--account-id", "777001"],
                         _env(env), tmp_path / "relay.log")
    try:
        code = run_callrelay("relay", "invite", "Dee", env={"CALLRELAY_DATABASE_URL": database_url}).strip() \
            .splitlines()[-1]
        desk = RelayClient(relay.url, RelayClient(relay.url).join(code)["token"])
        rec = call_wav(tmp_path / "call.wav", 4242, seconds=200)  # two parts
        plan = desk.begin(rec)
        etags = []
        with open(rec, "rb") as f:
            for part in plan["parts"]:
                answer = requests.put(part["url"], data=f.read(part["size"]), timeout=60)
                assert answer.status_code == 200
                etags.append({"PartNumber": part["number"], "ETag": answer.headers["ETag"]})
        with psycopg.connect(database_url) as conn:
            row = conn.execute("SELECT object_key, store_upload_id FROM uploads").fetchone()
        assert row is not None
        # what the killed relay did last: the store joined the parts
        seaweed.client().complete_multipart_upload(Bucket=bucket, Key=f"team/{row[0]}", UploadId=row[1],
                                                   MultipartUpload={"Parts": etags})
        sent: list[int] = []
        done = desk.upload(rec, {"external_id": "callrelay-joined-1", "title": "t"},
                           on_part=lambda n, size: sent.append(size))
        assert done == {"external_id": "callrelay-joined-1", "status": "queued"}
        assert sent == [], f"{sum(sent)} of {rec.stat().st_size} bytes sent again"
        with psycopg.connect(database_url) as conn:
            subs = conn.execute("SELECT object_key, recording_sha256 FROM submissions").fetchall()
        assert subs == [(row[0], hashlib.sha256(rec.read_bytes()).hexdigest())]
        assert "Traceback" not in relay.log
    finally:
        relay.stop()


def test_a_relay_started_while_the_team_is_busy_gets_its_share_of_the_limit_the_others_learned(
        database_url: str) -> None:
    """A relay starts with the configured window (HubSpot's 100 per 10 s) until an answer's headers say the app's
    real one; the team's other relays, which learned it, may be sending more than 100 per 10 s. The newcomer must
    count by the window the team learned, or it waits until the whole team is quiet (the end-to-end test saw a
    restarted relay start its pipeline 32 s late)."""
    from desktop_app.hubspot.ratelimit import STANDARD, RateLimiter
    from desktop_app.relay.db import TeamDB
    from desktop_app.relay.ratebudget import PgBudget

    learned = {"X-HubSpot-RateLimit-Max": "40", "X-HubSpot-RateLimit-Interval-Milliseconds": "1000"}
    dbs = [TeamDB(database_url, max_size=4) for _ in range(2)]
    try:
        busy, fresh = (RateLimiter(limit=10, interval=10.0, budget=PgBudget(db)) for db in dbs)
        busy.release(busy.acquire(STANDARD), status=200, headers=learned)
        assert (busy.limit, busy.interval) == (40, 1.0)
        for _ in range(30):  # the team at 30 requests in the last second: more than 10 in 10 s, under 40 per s
            busy.release(busy.acquire(STANDARD), status=200, headers=learned)
        started = time.monotonic()
        fresh.release(fresh.acquire(STANDARD), status=200)  # its first request, no headers seen yet
        waited = time.monotonic() - started
        assert waited < 1.5, f"the fresh relay waited {waited:.1f} s for its first request"
    finally:
        for db in dbs:
            db.close()


def test_the_services_ports_are_below_the_kernels_ephemeral_range() -> None:
    """The ports the tests give PostgreSQL and SeaweedFS are checked free, then bound by the server a moment later: in
    the kernel's ephemeral range any outgoing connection on the machine may take one in between (SeaweedFS's S3
    gateway once died so, `bind: address already in use`, while other tests ran)."""
    from services import free_ports

    low, high = (int(n) for n in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    for offset in (None, 10000):
        for _ in range(10):
            for port in free_ports(4, grpc_offset=offset):
                assert not any(low <= p <= high for p in (port, port + (offset or 0))), (port, offset, low, high)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    sb = Sandbox(port=0, search_lag_s=0.5, fetch_chunk=16 * 1024).start()
    try:
        yield sb
    finally:
        sb.stop()


def test_upload_wait_on_a_joined_desk_reaches_ready_through_the_relays_pipeline(
        sandbox: Sandbox, database_url: str, seaweed: Seaweed, bucket: str, tmp_path: Path) -> None:
    relay = start_pipeline_relay(sandbox, database_url, seaweed, bucket, tmp_path / "relay.log")
    try:
        home = tmp_path / "desk"
        env = join(relay, database_url, "Ana Silva", home)
        contact = str(sandbox.contacts()[0]["id"])
        rec = call_wav(tmp_path / "renewal.wav", 7, seconds=3)
        out = callrelay("upload", str(rec), "--title", "Renewal", "--owner", PAID, "--contact", contact,
                        "--direction", "OUTBOUND", "--wait", "--wait-timeout", "120", env=env)
        print(out.stdout, out.stderr)
        assert out.returncode == 0, out.stdout + out.stderr + relay.log[-3000:]
        with sqlite3.connect(home / "team-outbox.sqlite3") as db:
            [(external_id, state)] = list(db.execute("SELECT external_id, state FROM outbox"))
        assert state == "sent"
        assert calls_per_external_id(sandbox) == Counter({external_id: 1})  # one call, the desk's external id
        call = next(c for c in sandbox.calls() if c["properties"]["hs_call_external_id"] == external_id)
        assert call["properties"]["hs_call_title"] == "Renewal"
        assert call["properties"]["hubspot_owner_id"] == PAID
        assert call["properties"]["hs_call_direction"] == "OUTBOUND"
        last = [line for line in out.stdout.splitlines() if line.startswith("[1/1]")][-1]
        assert last.startswith(("[1/1] renewal.wav: ready, call ", "[1/1] renewal.wav: transcribed, call ")), last
        assert f"call {call['id']}  https://app.hubspot.com/contacts/" in last

        history = callrelay("history", "--json", env=env)
        [sub] = [json.loads(line) for line in history.stdout.splitlines()]
        assert (sub["external_id"], sub["agent"], sub["call_id"]) == (external_id, "Ana Silva", str(call["id"]))
        assert sub["status"] in ("ready", "transcribed")
    finally:
        relay.stop()
