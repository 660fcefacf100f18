"""Benchmark: supervisors' queries over a history of 100,000 submissions.

    .venv/bin/python benchmarks/history.py [--rows 100000]

Fills a history file with submissions spread over a year, 40 agents, 25 owners, 5,000 contacts and
every status (with step rows for each), then times each supervisor query as the app runs it (the
history page asks for a page of 200 rows plus the total count): by status, agent, owner, contact,
date range, text, a submission's step timeline, totals per day and per agent, and a CSV export of a
filter. Goal (issue 6): each query < 100 ms. The reference beside each is SQLite's own time for a
plain COUNT(*) over the whole table on the same file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def timed(fn: Callable[[], object], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    os.environ["CALLRELAY_HOME"] = tempfile.mkdtemp(prefix="callrelay-bench-history-")
    from desktop_app.sync import history as h
    from desktop_app.testing import fill as bulk

    hist = h.History()
    rng = random.Random(7)
    start = h.now() - dt.timedelta(days=365)
    rows = []
    for n in range(args.rows):
        created = start + dt.timedelta(seconds=n * 365 * 86400 / args.rows)
        status = rng.choices(h.STATUSES, weights=(1, 1, 10, 70, 8, 10))[0]
        details = {"title": f"Call {n} about order {rng.randint(1000, 99999)}", "from_number": f"+1617555{n % 10000:04d}",
                   "to_number": f"+1212555{rng.randint(0, 9999):04d}", "duration_ms": rng.randint(5_000, 3_600_000),
                   "direction": rng.choice(("INBOUND", "OUTBOUND"))}
        rows.append({"created_at": h.iso(created), "agent": f"agent{n % 40}", "recording_path": f"/calls/{n}.wav",
                     "recording_name": f"{n}.wav", "external_id": f"callrelay-{n}", "details": json.dumps(details),
                     "title": details["title"], "owner_id": str(7100 + n % 25), "contact_id": str(n % 5000),
                     "from_number": details["from_number"], "to_number": details["to_number"],
                     "duration_ms": details["duration_ms"], "state": "ready_marked", "status": status,
                     "call_id": str(40_000_000_000 + n)})
    fill = time.perf_counter()
    bulk.insert_submissions(hist.path, rows)
    with sqlite3.connect(hist.path) as db:  # five step rows per submission, as a real history has
        db.executemany(
            "INSERT INTO steps (submission_id, step, attempt, started_at, ended_at, outcome, http_status)"
            " VALUES (?, ?, 1, ?, ?, 'ok', 200)",
            ((sid, step, r["created_at"], r["created_at"]) for sid, r in enumerate(rows, start=1)
             for step in ("store", "register_endpoint", "log_call", "associate", "mark_ready")))
    fill = time.perf_counter() - fill
    print(f"history of {args.rows:,} submissions ({args.rows * 5:,} steps) filled in {fill:.1f} s; "
          f"file {hist.path.stat().st_size / 1e6:.0f} MB")

    def page(query: h.Query) -> Callable[[], object]:
        return lambda: (hist.search(query, limit=200), hist.count(query))

    month = (h.now() - dt.timedelta(days=60), h.now() - dt.timedelta(days=30))
    queries: list[tuple[str, Callable[[], object]]] = [
        ("newest page, no filter", page(h.Query())),
        ("status = failed", page(h.Query(statuses=(h.FAILED,)))),
        ("status in (ready, running)", page(h.Query(statuses=(h.READY, h.RUNNING)))),
        ("agent", page(h.Query(agent="agent17"))),
        ("owner", page(h.Query(owner_id="7105"))),
        ("contact", page(h.Query(contact_id="4242"))),
        ("date range (a month)", page(h.Query(since=month[0], until=month[1]))),
        ("agent + status + month", page(h.Query(agent="agent3", statuses=(h.TRANSCRIBED,), since=month[0],
                                                until=month[1]))),
        ("text (order number)", page(h.Query(text="order 4242"))),
        ("text (phone digits)", page(h.Query(text="5550042"))),
        ("step timeline of one", lambda: hist.get(args.rows // 2)),
        ("totals per day (a month)", lambda: hist.totals_per_day(h.Query(since=month[0], until=month[1]))),
        ("totals per agent (a month)", lambda: hist.totals_per_agent(h.Query(since=month[0], until=month[1]))),
        ("CSV export (failed, a month)", lambda: hist.export_csv(h.Query(statuses=(h.FAILED,), since=month[0],
                                                                         until=month[1]), io.StringIO())),
    ]
    with sqlite3.connect(hist.path) as db:
        reference = timed(lambda: db.execute("SELECT COUNT(*) FROM submissions WHERE duration_ms >= 0").fetchone())
    print(f"reference: SQLite full scan COUNT(*) over {args.rows:,} rows: {reference:.1f} ms\n")
    print(f"{'query':<32}{'median ms':>10}  goal < 100 ms")
    worst = 0.0
    for name, fn in queries:
        ms = timed(fn)
        worst = max(worst, ms)
        print(f"{name:<32}{ms:>10.1f}  {'ok' if ms < 100 else 'SLOW'}")
    print(f"\nslowest: {worst:.1f} ms — goal {'met' if worst < 100 else 'NOT met'}")
    return 0 if worst < 100 else 1


if __name__ == "__main__":
    raise SystemExit(main())
