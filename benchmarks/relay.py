"""Benchmark: the team relay (issue 17) on a real PostgreSQL and SeaweedFS, loopback only.

    ./scripts/with-keyring .venv/bin/python benchmarks/relay.py [--seconds 20] [--rate 200] [--known 10000]
        [--files 200] [--mb 20] [--desks 20] [--parts endpoint,ingest,pipeline,queries]

Starts a throwaway PostgreSQL cluster and SeaweedFS (``tests/relay/services.py``, as the relay tests do)
and ``callrelay relay serve`` as a subprocess on them (``s3://BUCKET/team``, HubSpot's signatures checked),
then measures, each against a reference measured in the same run:

1. **HubSpot's endpoint at a fixed rate** (default 200 requests/s for 20 s) over ``--known`` submissions:
   an open-loop generator sends each request at its scheduled time (``--rate``, from 16 keep-alive
   connections, each request signed with HubSpot's v3 signature when it is sent) and measures its latency
   from that scheduled time, so a stall of the server delays (and counts against) every request behind it
   instead of quietly sending fewer (coordinated omission). The relay and the reference take turns (4
   each, latencies pooled). Printed: p50/p99/max, the requests sent late (every connection busy) and the
   server's CPU time per answer; every answer must be 200. Goal: p99 <= 10 ms. The reference is the
   desk's own recording server (``callrelay serve``, its
   ``server.workers`` default) answering the same endpoint for the same number of shared calls under the
   same load from the same generator: the same job (check the signature, the appId and the account, find
   the call, sign a link), done today for one desk, with this generator's own overhead on this loaded
   machine in both figures. (A store's HEAD or nginx would measure neither a signature check nor a
   lookup, and so would say less about the relay's answer.)
2. **Ingest**: ``--files`` recordings of ``--mb`` MB from ``--desks`` simulated desks (threads, one agent
   each, joined with a real invite) through `RelayClient.upload`, the desk's real code path (SHA-256 of
   the file, begin, the presigned parts PUT straight to the store, complete, where the relay reads the
   object back to check its SHA-256), against boto3's ``upload_file`` of the same files into the same
   bucket with the same concurrency (one stream per desk: ``use_threads=False``, the relay's part size),
   the two taking turns on halves of the files. Printed: both throughputs (MB/s of recordings) and the
   ratio. Goal: >= 0.8x boto3.
3. **Pipeline** (``benchmarks/relay_pipeline.py``) and 4. **supervisor queries**
   (``benchmarks/relay_queries.py``) are their own benchmarks; this one runs their ``main`` after its own
   parts (their goals count here too).

Exit 1 when a goal is missed. A quick run: ``--seconds 3 --files 8 --mb 6 --desks 4 --known 500``.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import importlib
import inspect
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "relay"))  # the throwaway PostgreSQL and SeaweedFS the relay tests use
sys.path.insert(0, str(ROOT / "benchmarks"))  # relay_pipeline, relay_queries (also when this file is imported)
from services import Postgres, RelayProcess, Seaweed  # noqa: E402

from desktop_app.relay.storage import MIN_PART_SIZE  # noqa: E402
from desktop_app.server.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign_v3  # noqa: E402

APP_ID, ACCOUNT = "4242", "777001"
ENDPOINT = "/retrieve/authenticated/recordings/"
PARTS = ("endpoint", "ingest", "pipeline", "queries")
OTHERS = {"pipeline": "relay_pipeline", "queries": "relay_queries"}
P99_GOAL_MS = 10.0
INGEST_GOAL = 0.8
ROUNDS = 4  # turns the relay and the desk server take at the endpoint load

# The desk's recording server with `count` calls shared (the same ids the relay knows), as `callrelay
# serve` runs it; prints its URL and serves until SIGTERM.
DESK_SERVER = """
import signal, sys, threading
from pathlib import Path
from desktop_app.server import RecordingServer
from desktop_app.server.recordings import RecordingStore
path, count, secret, workers, app_id, account = sys.argv[1:7]
store = RecordingStore()
rec = store.add(Path(path))
conn = store._conn()
conn.execute("BEGIN")
for n in range(int(count)):
    store.share(f"bench-{n:07d}", rec.sha256, app_id=app_id, external_account_id=account)
conn.execute("COMMIT")
srv = RecordingServer(store, port=0, signing_key="benchmark-key", client_secret=secret, workers=int(workers))
srv.start()
print(srv.local_url, flush=True)
print(" ".join(map(str, srv.processes)), flush=True)
done = threading.Event()
signal.signal(signal.SIGTERM, lambda *a: done.set())
done.wait()
srv.stop()
"""


# --- the open-loop load generator ---------------------------------------------------------------------------
@dataclass
class Load:
    latencies_ms: list[float] = field(default_factory=list)  # from each request's scheduled time
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    late_starts: int = 0  # requests sent more than 1 ms after their time (every connection was busy)

    def add(self, other: Load) -> None:
        self.latencies_ms += other.latencies_ms
        for status, n in other.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + n
        self.errors += other.errors
        self.late_starts += other.late_starts

    def pct(self, q: float) -> float:
        data = sorted(self.latencies_ms)
        if not data:
            return float("nan")
        return data[min(len(data) - 1, max(0, round(q / 100 * len(data)) - 1))]


def open_loop(base_url: str, secret: str, ids: list[str], rate: float, seconds: float,
              connections: int = 16) -> Load:
    """``rate`` signed endpoint requests a second for ``seconds``, each at its scheduled time (request
    i at start + i / rate) on whichever keep-alive connection is free; latency counts from that time."""
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    total = int(rate * seconds)
    load = Load()
    lock = threading.Lock()
    counter = iter(range(total))
    start = time.perf_counter() + 0.2
    rng = secrets.SystemRandom()

    def worker() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            due = start + i / rate
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            late = time.perf_counter() - due > 0.001
            target = f"{ENDPOINT}{quote(rng.choice(ids))}?externalAccountId={ACCOUNT}&appId={APP_ID}"
            ts = int(time.time() * 1000)
            sig = sign_v3(secret, "GET", f"http://{host}:{port}{target}", b"", ts)
            try:
                conn.request("GET", target, headers={SIGNATURE_HEADER: sig, TIMESTAMP_HEADER: str(ts)})
                answer = conn.getresponse()
                answer.read()
                status = answer.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=30)
                status = 0
            took = (time.perf_counter() - due) * 1000
            with lock:
                load.latencies_ms.append(took)
                load.statuses[status] = load.statuses.get(status, 0) + 1
                load.errors += status != 200
                load.late_starts += late
        conn.close()

    # a thread woken at its request's time takes the GIL within 0.5 ms, not the default 5 ms, so the
    # generator's own threads add little to what it measures
    switch = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(switch)
    return load


# --- set-up -----------------------------------------------------------------------------------------------------
def _env(extra: dict[str, str]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("CALLRELAY_DATABASE", "CALLRELAY_HUBSPOT", "CALLRELAY_LINK", "CREDENTIALS_DIR"))}
    return {**base, **extra}


@contextmanager
def team(tmp: Path, services: tuple[Postgres, Seaweed] | None = None) -> Iterator[dict[str, Any]]:
    """PostgreSQL, SeaweedFS (``services``: running ones), a bucket and ``callrelay relay serve`` on them;
    stopped and removed after (but ``services``)."""
    with ExitStack() as stack:
        if services is not None:
            pg, s3 = services
        else:
            pg = Postgres()
            stack.callback(pg.stop)
            s3 = Seaweed()
            stack.callback(s3.stop)
            # the two start together, each takes seconds; SeaweedFS on this thread, as it dies with the
            # thread that started it (PR_SET_PDEATHSIG)
            with ThreadPoolExecutor(1) as pool:
                started = pool.submit(pg.start)
                s3.start()
                started.result()
        database_url = pg.create_database("bench")
        bucket = s3.make_bucket()
        secret = "hs-client-" + secrets.token_urlsafe(16)
        relay = RelayProcess(
            ["--storage", f"s3://{bucket}/team", "--s3-endpoint", s3.endpoint, "--s3-addressing", "path",
             "--app-id", APP_ID, "--account-id", ACCOUNT],
            _env({**s3.env(), "CALLRELAY_DATABASE_URL": database_url, "CALLRELAY_HUBSPOT_CLIENT_SECRET": secret,
                  "CALLRELAY_LINK_KEY": "link-" + secrets.token_urlsafe(16),
                  "CALLRELAY_HOME": str(tmp / "relay-home")}),
            tmp / "relay.log")
        stack.callback(relay.stop)
        yield {"pg": pg, "s3": s3, "database_url": database_url, "bucket": bucket, "secret": secret, "relay": relay}


def join_desks(relay: RelayProcess, database_url: str, names: list[str]) -> list[Any]:
    """One agent per name, each with an invite made on the relay's host and redeemed through its API."""
    from desktop_app.relay.client import RelayClient
    from desktop_app.relay.db import TeamDB

    with TeamDB(database_url) as db:
        codes = [db.create_invite(name, "agent") for name in names]
    return [RelayClient(relay.url, RelayClient(relay.url).join(code)["token"]) for code in codes]


def add_known(env: dict[str, Any], count: int, tmp: Path) -> Path:
    """``count`` submissions ``bench-0000000``… all playing one small recording in the bucket; returns it."""
    import psycopg

    from desktop_app.relay.db import TeamDB

    rec = tmp / "known.wav"
    rec.write_bytes(b"RIFF" + os.urandom(200_000 - 4))
    key = "recordings/bench-known"
    env["s3"].client().upload_file(str(rec), env["bucket"], f"team/{key}")
    (desk,) = join_desks(env["relay"], env["database_url"], ["bench endpoint"])
    with TeamDB(env["database_url"]) as db:
        agent = db.authenticate(desk.token)
    assert agent is not None
    sha = hashlib.sha256(rec.read_bytes()).hexdigest()
    with psycopg.connect(env["database_url"], autocommit=True) as conn:
        conn.execute(
            "INSERT INTO submissions (agent_id, external_id, recording_name, recording_sha256, recording_size,"
            " object_key, state, status) SELECT %s, 'bench-' || lpad(g::text, 7, '0'), 'known.wav', %s, %s, %s,"
            " 'checked', 'queued' FROM generate_series(0, %s - 1) g",
            (agent.id, sha, rec.stat().st_size, key, count))
        conn.execute("ANALYZE submissions")
    return rec


def check_link(relay: RelayProcess, secret: str, external_id: str, expect: bytes) -> None:
    """One endpoint answer followed to the store with a Range: the links the load asks for really play."""
    import requests

    url = f"{relay.url}{ENDPOINT}{external_id}?externalAccountId={ACCOUNT}&appId={APP_ID}"
    ts = int(time.time() * 1000)
    answer = requests.get(url, headers={SIGNATURE_HEADER: sign_v3(secret, "GET", url, b"", ts),
                                        TIMESTAMP_HEADER: str(ts)}, timeout=30)
    if answer.status_code != 200:
        raise SystemExit(f"the relay's endpoint answered {answer.status_code}: {answer.text[:200]}")
    got = requests.get(answer.json()["authenticatedUrl"], headers={"Range": "bytes=100-199"}, timeout=30)
    if got.status_code != 206 or got.content != expect[100:200]:
        raise SystemExit(f"the presigned link answered {got.status_code}, not the recording's bytes 100-199")


def cpu_s(pids: list[int]) -> float:
    """CPU time (user + system) the processes ``pids`` have used, in seconds."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def start_desk_server(tmp: Path, rec: Path, count: int, secret: str) -> tuple[subprocess.Popen[str], str, list[int]]:
    from desktop_app.settings import BY_NAME

    workers = int(BY_NAME["server.workers"].default)
    env = dict(os.environ, CALLRELAY_HOME=str(tmp / "desk-home"), PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", DESK_SERVER, str(rec), str(count), secret, str(workers),
                             APP_ID, ACCOUNT], env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http://127.0.0.1:"):
        proc.kill()
        raise SystemExit(f"the desk's recording server did not start: {url!r}")
    return proc, url, [int(p) for p in proc.stdout.readline().split()]


# --- the parts ----------------------------------------------------------------------------------------------
def bench_endpoint(env: dict[str, Any], args: argparse.Namespace, tmp: Path) -> list[tuple[str, str, str, str, str]]:
    rec = add_known(env, args.known, tmp)
    relay, secret = env["relay"], env["secret"]
    ids = [f"bench-{n:07d}" for n in range(args.known)]
    check_link(relay, secret, ids[-1], rec.read_bytes())
    desk, desk_url, desk_pids = start_desk_server(tmp, rec, args.known, secret)
    try:
        servers = (("desk", desk_url, desk_pids), ("relay", relay.url, [relay.proc.pid]))
        results: dict[str, Load] = {name: Load() for name, _, _ in servers}
        cpu: dict[str, float] = {name: 0.0 for name, _, _ in servers}
        for _, url, _ in servers:
            open_loop(url, secret, ids, args.rate, min(1.0, args.seconds))  # warm-up: connections, caches
        # other work on the machine comes and goes: the two take turns, ROUNDS each, and their latencies
        # are pooled
        for _ in range(ROUNDS):
            for name, url, pids in servers:
                before = cpu_s(pids)
                results[name].add(open_loop(url, secret, ids, args.rate, args.seconds / ROUNDS))
                cpu[name] += cpu_s(pids) - before
    finally:
        desk.terminate()
        desk.wait(10)
    r, d = results["relay"], results["desk"]
    for name, load in results.items():
        if load.errors:
            print(f"{name}: {load.errors} of {len(load.latencies_ms)} answers were not 200: {load.statuses}")
    rows = []
    for label, q in (("p50", 50.0), ("p99", 99.0), ("max", 100.0)):
        rv, dv = r.pct(q), d.pct(q)
        goal = f"<= {P99_GOAL_MS:g} ms, all 200" if label == "p99" else ""
        rows.append((f"  {label} (ms)", f"{rv:.2f}", f"{dv:.2f}", f"{rv / dv:.2f}", goal))
    rows.insert(0, (f"endpoint, {args.rate:g} req/s x {args.seconds:g} s", f"{len(r.latencies_ms)} req",
                    f"{len(d.latencies_ms)} req", "", ""))
    rows.append(("  sent late (all conns busy)", str(r.late_starts), str(d.late_starts), "", ""))
    # what each answer costs the server's processes (PostgreSQL's and SQLite's own work not counted):
    # less swayed by the machine's other work than the latencies are
    rc, dc = (cpu[n] * 1000 / len(results[n].latencies_ms) for n in ("relay", "desk"))
    rows.append(("  server CPU per answer (ms)", f"{rc:.2f}", f"{dc:.2f}", f"{rc / dc:.2f}", ""))
    env["endpoint_ok"] = r.errors == 0 and r.pct(99.0) <= P99_GOAL_MS
    return rows


def make_files(folder: Path, count: int, mb: int, desks: int) -> list[list[Path]]:
    """``count`` distinct recordings of ``mb`` MB, dealt round-robin to ``desks`` desks."""
    block = bytearray(os.urandom(mb * 1_000_000))
    per_desk: list[list[Path]] = [[] for _ in range(desks)]
    for n in range(count):
        block[:16] = b"RIFF" + n.to_bytes(12, "big")  # a distinct file (and SHA-256) each
        path = folder / f"desk-{n % desks:02d}" / f"call-{n:04d}.wav"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(block)
        per_desk[n % desks].append(path)
    return per_desk


def timed(per_desk: list[list[Path]], send: Callable[[int, Path], None]) -> float:
    """Each desk sends its files one after another, all desks at once; the wall time in seconds."""
    def desk(index: int) -> None:
        for path in per_desk[index]:
            send(index, path)

    started = time.perf_counter()
    with ThreadPoolExecutor(len(per_desk)) as pool:
        for f in [pool.submit(desk, i) for i in range(len(per_desk))]:
            f.result()
    return time.perf_counter() - started


def bench_ingest(env: dict[str, Any], args: argparse.Namespace, tmp: Path) -> list[tuple[str, str, str, str, str]]:
    from boto3.s3.transfer import TransferConfig

    folder = tmp / "calls"
    folder.mkdir()
    per_desk = make_files(folder, args.files, args.mb, args.desks)
    total = sum(p.stat().st_size for files in per_desk for p in files)
    desks = join_desks(env["relay"], env["database_url"], [f"desk {i:02d}" for i in range(args.desks)])
    clients = [env["s3"].client() for _ in range(args.desks)]
    bucket = env["bucket"]
    transfer = TransferConfig(multipart_threshold=MIN_PART_SIZE, multipart_chunksize=MIN_PART_SIZE, use_threads=False)
    results: list[dict[str, Any]] = []

    def boto3_put(i: int, path: Path) -> None:
        clients[i].upload_file(str(path), bucket, f"direct/{path.parent.name}/{path.name}", Config=transfer)

    def relay_put(i: int, path: Path) -> None:
        results.append(desks[i].upload(path, {"title": f"bench {path.name}", "duration_ms": 60_000}))

    # other work on the machine comes and goes: the two take turns, each round on the same half of
    # every desk's files
    boto3_s = relay_s = 0.0
    for half in (0, 1):
        files = [paths[half::2] for paths in per_desk]
        boto3_s += timed(files, boto3_put)
        relay_s += timed(files, relay_put)
    shutil.rmtree(folder, ignore_errors=True)
    queued = sum(1 for r in results if r.get("status") == "queued")
    if queued != args.files:
        print(f"ingest: {queued} of {args.files} recordings were accepted by the relay")
    relay_mbs, boto3_mbs = total / relay_s / 1e6, total / boto3_s / 1e6
    env["ingest_ok"] = queued == args.files and relay_mbs / boto3_mbs >= INGEST_GOAL
    return [
        (f"ingest {args.files} x {args.mb} MB, {args.desks} desks", "relay", "boto3", "", ""),
        ("  throughput (MB/s)", f"{relay_mbs:.1f}", f"{boto3_mbs:.1f}", f"{relay_mbs / boto3_mbs:.2f}",
         f">= {INGEST_GOAL:g}"),
        ("  wall time (s)", f"{relay_s:.1f}", f"{boto3_s:.1f}", "", ""),
    ]


def run_other(part: str) -> bool:
    """Run ``benchmarks/relay_<part>.py``'s ``main``; True when it met its goals."""
    module = OTHERS[part]
    print()
    print(f"--- {part}: benchmarks/{module}.py ---", flush=True)
    main = importlib.import_module(module).main
    saved = sys.argv
    sys.argv = [str(Path(__file__).with_name(f"{module}.py"))]
    try:
        rc = main([]) if inspect.signature(main).parameters else main()
    except SystemExit as exc:
        rc = exc.code
    finally:
        sys.argv = saved
    return rc in (0, None)


def main(argv: list[str] | None = None, *, services: tuple[Postgres, Seaweed] | None = None) -> int:
    """``services``: a PostgreSQL and a SeaweedFS already running (the test suite's), else its own."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rate", type=float, default=200, help="endpoint requests per second (default 200)")
    ap.add_argument("--seconds", type=float, default=20, help="how long the endpoint load lasts (default 20)")
    ap.add_argument("--known", type=int, default=10_000, help="submissions the relay knows (default 10,000)")
    ap.add_argument("--files", type=int, default=200, help="recordings to ingest (default 200)")
    ap.add_argument("--mb", type=int, default=20, help="each recording's size in MB (default 20)")
    ap.add_argument("--desks", type=int, default=20, help="desks uploading at once (default 20)")
    ap.add_argument("--parts", default=",".join(PARTS), help=f"which to run, of {','.join(PARTS)} (default all)")
    args = ap.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown or not parts:
        ap.error(f"--parts takes {', '.join(PARTS)}, not {', '.join(unknown) or 'nothing'}")
    if min(args.rate, args.seconds, args.known, args.files, args.mb, args.desks) <= 0:
        ap.error("--rate, --seconds, --known, --files, --mb and --desks must be positive")
    ok = True
    if "endpoint" in parts or "ingest" in parts:
        with tempfile.TemporaryDirectory(prefix="callrelay-bench-relay-") as tmp_s:
            tmp = Path(tmp_s)
            with team(tmp, services) as env:
                print(f"Team relay: relay serve (a subprocess) on PostgreSQL {env['pg'].bindir.parent.name} and "
                      f"SeaweedFS, loopback, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}. Reference: "
                      + "; ".join(x for x in ("endpoint: the desk's recording server" if "endpoint" in parts else "",
                                              "ingest: boto3 upload_file" if "ingest" in parts else "") if x))
                print(f"{'measure':<38}{'relay':>12}{'reference':>12}{'ratio':>8}  goal", flush=True)
                for part, bench in (("endpoint", bench_endpoint), ("ingest", bench_ingest)):
                    if part in parts:
                        for label, a, b, ratio, goal in bench(env, args, tmp):
                            print(f"{label:<38}{a:>12}{b:>12}{ratio:>8}  {goal}".rstrip())
                        sys.stdout.flush()
                        ok &= bool(env[f"{part}_ok"])
    for part in ("pipeline", "queries"):
        if part in parts:
            ok &= run_other(part)
    print("goal met" if ok else "goal NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
