"""Benchmark: the relay's pipeline, 1,000 submissions through two relays against the sandbox's rate limit.

    ./scripts/with-keyring .venv/bin/python benchmarks/relay_pipeline.py [--submissions 1000] [--per-interval 100]
        [--interval-ms 10000] [--workers 4]

Starts a throwaway PostgreSQL and SeaweedFS (``tests/relay/services.py``, as the relay tests do) and the
sandbox in this process with its per-app limit at ``--per-interval`` requests per ``--interval-ms`` (default
HubSpot's and the sandbox's own: 100 per 10 s; a smaller window makes a quicker run). One relay without HubSpot credentials takes the
submissions through the agents' API (`RelayClient.upload`, each a distinct two-channel recording, to the
store); then two relays (``callrelay relay serve`` subprocesses, ``--workers`` each, the sandbox's
``HUBSPOT_*`` credentials) log them all, sharing one rate budget through PostgreSQL, until every submission
is ``ready``. The sandbox's own limiter counts every request it sees.

Printed: the requests the sandbox counted in its rate window (per window from the first), the achieved rate
as a percentage of the shared bound (goal >= 95 %): the requests in the sandbox's sliding window, sampled
from the first full window to the last request, over the limit; and the number of 429s (goal 0). ``main()``
returns 0 when both goals are met (``benchmarks/relay.py`` runs it as its pipeline part).
"""

from __future__ import annotations

import argparse
import bisect
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import wave
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "relay"))  # the throwaway PostgreSQL and SeaweedFS the relay tests use
from services import Postgres, Seaweed  # noqa: E402

from desktop_app.relay.client import RelayClient  # noqa: E402
from desktop_app.relay.db import TeamDB  # noqa: E402
from desktop_app.sandbox.limits import STANDARD, Limiter, RateLimits, Verdict  # noqa: E402
from desktop_app.sandbox.server import Sandbox  # noqa: E402

RATE_GOAL = 0.95
PAID_OWNER = "71000001"


class CountingLimiter(Limiter):
    """The sandbox's limiter, noting when each request was counted and whether it was refused (429)."""

    def __init__(self, limits: RateLimits) -> None:
        super().__init__(limits)
        self.seen: list[tuple[float, str, bool]] = []
        self._seen_lock = threading.Lock()

    def check(self, key: str, *, kind: str = STANDARD, daily_headers: bool = True) -> Verdict:
        verdict = super().check(key, kind=kind, daily_headers=daily_headers)
        with self._seen_lock:
            self.seen.append((time.monotonic(), kind, verdict.allowed))
        return verdict


def call_wav(path: Path, seed: int, seconds: float = 0.5, rate: int = 8000) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    noise = np.random.default_rng(seed).standard_normal((2, t.size)) * 0.01
    data = np.stack([np.sin(2 * np.pi * (200 + seed % 500) * t), np.sin(2 * np.pi * 330 * t) * (t > 0.2)]) * 0.4
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip((data + noise).T, -1, 1) * 32767).astype("<i2").tobytes())
    return path


class Relay:
    """``callrelay relay serve`` as a subprocess; ``url`` once it printed its template (the last line)."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self._log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "desktop_app", "relay", "serve", "--port", "0", *args],
                                     env=env, stdout=subprocess.PIPE, stderr=self._log, text=True)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"relay serve ended ({self.proc.wait()}); see {log}")
            if line.rstrip().endswith("/%s"):
                self.url = line.strip()[: -len("/retrieve/authenticated/recordings/%s")]
                return
        raise RuntimeError(f"relay serve did not start; see {log}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


@contextmanager
def started(service: Any) -> Iterator[Any]:
    try:
        service.start()
        yield service
    finally:
        service.stop()


def statuses(db: TeamDB) -> dict[str, int]:
    with db.connection() as conn:
        return {str(s): int(n) for s, n in conn.execute("SELECT status, count(*) FROM submissions GROUP BY status")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--submissions", type=int, default=1000, help="submissions to log (default 1000)")
    ap.add_argument("--per-interval", type=int, default=100, help="the sandbox's limit per window (default 100)")
    ap.add_argument("--interval-ms", type=int, default=10_000, help="the sandbox's window (default 10000 ms)")
    ap.add_argument("--workers", type=int, default=4, help="pipeline workers of each relay (default 4)")
    ap.add_argument("--timeout", type=float, default=1800, help="give up after this many seconds (default 1800)")
    args = ap.parse_args(argv)

    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="relay-pipeline-") as tmp:
        work = Path(tmp)
        pg = stack.enter_context(started(Postgres()))
        s3 = stack.enter_context(started(Seaweed()))
        bucket = s3.make_bucket()
        database = pg.create_database("bench")
        limits = RateLimits(per_interval=args.per_interval, interval_ms=args.interval_ms, search_per_second=50)
        sandbox = Sandbox(port=0, search_lag_s=0, fetch_chunk=64 * 1024, max_logged_requests=1000)
        counting = CountingLimiter(limits)
        sandbox.limiter = counting
        stack.enter_context(started(sandbox))
        base_env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("HUBSPOT_", "CALLRELAY_DATABASE", "CALLRELAY_HUBSPOT", "CREDENTIALS_DIR"))}
        env = {**base_env, **s3.env(), "CALLRELAY_DATABASE_URL": database, "CALLRELAY_LINK_KEY": secrets.token_hex(16)}
        store = ["--storage", f"s3://{bucket}/team", "--s3-endpoint", s3.endpoint, "--s3-addressing", "path"]
        hubspot = sandbox.env()
        db = stack.enter_context(TeamDB(database))

        # 1. the desks' submissions, through the agents' API of a relay that logs nothing
        intake = Relay([*store, "--workers", "0", "--app-id", hubspot["HUBSPOT_APP_ID"],
                        "--account-id", hubspot["HUBSPOT_PORTAL_ID"]], env, work / "intake.log")
        started_at = time.monotonic()
        try:
            token = RelayClient(intake.url).join(db.create_invite("bench"))["token"]
            desk = RelayClient(intake.url, token)
            contact = sandbox.contacts()[0]["id"]

            def submit(n: int) -> str:
                rec = call_wav(work / f"call-{n}.wav", n)
                done = desk.upload(rec, {"title": f"call {n}", "owner_id": PAID_OWNER, "contact_id": contact})
                rec.unlink()
                return str(done["external_id"])

            with ThreadPoolExecutor(8) as pool:
                ids = list(pool.map(submit, range(args.submissions)))
        finally:
            intake.stop()
        print(f"{len(ids)} submissions made through the agents' API in {time.monotonic() - started_at:.1f} s")

        # 2. two relays log them, one rate budget between them
        env = {**env, **hubspot}
        relays = [Relay([*store, "--workers", str(args.workers), "--transcript-check-s", "3600"], env,
                        work / f"relay-{n}.log") for n in range(2)]
        began = time.monotonic()
        try:
            deadline = began + args.timeout
            while time.monotonic() < deadline:
                now = statuses(db)
                if sum(now.get(s, 0) for s in ("queued", "running")) == 0:
                    break
                time.sleep(1.0)
        finally:
            for r in relays:
                r.stop()
        took = time.monotonic() - began
        now = statuses(db)
        seen = list(counting.seen)

    window = sorted(t for t, kind, allowed in seen if kind == STANDARD and allowed)
    refused = sum(1 for _, _, allowed in seen if not allowed)
    interval = args.interval_ms / 1000.0
    bound = args.per_interval / interval
    span = window[-1] - window[0] if len(window) > 1 else 0.0
    # the rate achieved in the window the sandbox enforces, sliding from the first full window to the last
    # request (every 1/100 of a window): the requests in (t - interval, t] over the bound's allowance
    moments = [window[0] + interval + k * interval / 100 for k in range(int(max(0.0, span - interval) * 100 / interval) + 1)]
    used = [bisect.bisect_right(window, t) - bisect.bisect_right(window, t - interval) for t in moments]
    ratio = sum(used) / (len(used) * args.per_interval) if used and span > interval else 0.0
    rate = ratio * bound
    per_window = [0] * (int(span // (args.interval_ms / 1000.0)) + 1)
    for t in window:
        per_window[int((t - window[0]) // (args.interval_ms / 1000.0))] += 1
    print(f"statuses after {took:.1f} s: {now}")
    print(f"requests counted per window of {args.interval_ms} ms from the first: {per_window}")
    print(f"requests the sandbox counted in its window: {len(window)} over {span:.1f} s")
    print(f"achieved rate in the sandbox's sliding window: {rate:.2f} requests/s of the shared bound "
          f"{bound:.2f}/s = {ratio:.1%} (goal >= {RATE_GOAL:.0%}); on average from first to last: "
          f"{(len(window) - 1) / span if span else 0:.2f}/s")
    print(f"429s: {refused} (goal 0)")
    ready = now.get("ready", 0) + now.get("transcribed", 0) + now.get("not-transcribed", 0)
    ok = ratio >= RATE_GOAL and refused == 0 and ready == args.submissions
    if ready != args.submissions:
        print(f"only {ready} of {args.submissions} submissions reached ready")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
