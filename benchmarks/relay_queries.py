"""Benchmark: the supervisors' queries of the team history (`desktop_app/relay/queries.py`) on 1,000,000
team submissions in PostgreSQL.

    .venv/bin/python benchmarks/relay_queries.py [--rows 1000000] [--database postgresql://…]

Without ``--database`` a throwaway PostgreSQL cluster is started (Debian's ``postgresql``, as the tests
start it: ``tests/relay/services.py``) and removed at the end. The rows are bulk-loaded with COPY: a
year of submissions from 40 agents, 25 owners, 5,000 contacts, every status; then VACUUM ANALYZE (as
autovacuum would after a load). Each query runs as the relay's API runs it for a supervisor (a page of
200 rows plus the total count, totals, a CSV of a filter), median of 5 runs. Goal (issue 17): each
< 100 ms. ``main()`` returns 0 when every query met the goal (``benchmarks/relay.py`` calls it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GOAL_MS = 100.0
STATUS_WEIGHTS = {"transcribed": 70, "ready": 8, "not-transcribed": 6, "failed": 4, "queued": 1, "running": 1}


def timed(fn: Callable[[], object], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def load(db: Any, rows: int, seed: int = 17) -> tuple[list[Any], dt.datetime]:
    """40 agents and a supervisor, then ``rows`` submissions with COPY; returns the agents and 'now'."""
    from desktop_app.relay.db import TeamDB

    assert isinstance(db, TeamDB)
    rnd = random.Random(seed)
    agents = []
    for i in range(40):
        code = db.create_invite(f"agent {i:02d}")
        agents.append(db.authenticate(db.redeem_invite(code)))
    boss = db.authenticate(db.redeem_invite(db.create_invite("supervisor", "supervisor")))
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    statuses = list(STATUS_WEIGHTS)
    weights = list(STATUS_WEIGHTS.values())
    columns = ("agent_id, created_at, updated_at, recording_name, recording_sha256, recording_size, object_key,"
               " external_id, title, owner_id, contact_id, from_number, to_number, duration_ms, state, status,"
               " call_id, portal_id, error")
    started = time.perf_counter()
    # a bulk load as PostgreSQL's manual advises: the secondary indexes dropped, the rows COPYed, the
    # indexes made again from their own definitions (the migration's, unchanged)
    with db.connection() as conn:
        indexes = conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'submissions'"
                               " AND indexname <> 'submissions_pkey' AND indexdef NOT LIKE '%UNIQUE%'").fetchall()
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
    with db.connection() as conn, conn.transaction(), conn.cursor() as cur, \
            cur.copy(f"COPY submissions ({columns}) FROM STDIN") as copy:
        for n in range(rows):
            created = now - dt.timedelta(seconds=rnd.randrange(365 * 86400))
            status = rnd.choices(statuses, weights)[0]
            agent = agents[rnd.randrange(len(agents))]
            done = status in ("ready", "transcribed", "not-transcribed")
            copy.write_row((
                agent.id, created, created, f"call-{n:07d}.wav", f"{n:064x}", 200_000 + n % 50_000,
                f"recordings/{n:032x}", f"callrelay-bench-{n:07d}", f"Call with customer {n}",
                str(71000000 + rnd.randrange(25)), str(5000 + rnd.randrange(5000)),
                f"+1617555{rnd.randrange(10000):04d}", f"+1617556{rnd.randrange(10000):04d}",
                rnd.randrange(30_000, 900_000), "done" if done else "checked", status,
                str(90_000_000 + n) if done else None, "777001" if done else None,
                "HubSpot answered 400: bad owner." if status == "failed" else None,
            ))
    print(f"loaded {rows:,} submissions with COPY in {time.perf_counter() - started:.1f} s", flush=True)
    started = time.perf_counter()
    with db.connection() as conn:
        for _, definition in indexes:
            conn.execute(definition)
    print(f"made its {len(indexes)} indexes again in {time.perf_counter() - started:.1f} s", flush=True)
    with db.connection() as conn:
        conn.execute("VACUUM ANALYZE submissions")
        conn.execute("VACUUM ANALYZE agents")
    return [boss, *agents], now


def run(database_url: str, rows: int) -> int:
    from desktop_app.relay import queries as q
    from desktop_app.relay.db import TeamDB
    from desktop_app.sync.history import Query

    with TeamDB(database_url, max_size=2) as db:
        everyone, now = load(db, rows)
        boss = everyone[0]
        week = now - dt.timedelta(days=7)
        month = now - dt.timedelta(days=30)
        with db.connection() as conn:
            def page(query: Query) -> Callable[[], object]:
                return lambda: (q.search(conn, boss, query, limit=200), q.count(conn, boss, query))

            def csv_of(query: Query) -> Callable[[], object]:
                return lambda: q.export_csv(conn, boss, query, out=io.StringIO())  # type: ignore[arg-type]

            cases: list[tuple[str, Callable[[], object]]] = [
                ("newest 200 + total (everything)", page(Query())),
                ("status failed: page + total", page(Query(statuses=("failed",)))),
                ("status queued+running: page + total", page(Query(statuses=("queued", "running")))),
                ("one agent: page + total", page(Query(agent="agent 07"))),
                ("one owner: page + total", page(Query(owner_id="71000003"))),
                ("one contact: page + total", page(Query(contact_id="7321"))),
                ("last 7 days: page + total", page(Query(since=week))),
                ("text: a title (customer 123456): page + total", page(Query(text="customer 123456"))),
                ("text: a number's part (5550142): page + total", page(Query(text="5550142"))),
                ("text + agent + month", page(Query(text="customer 4242", agent="agent 03", since=month))),
                ("totals per day, last 30 days", lambda: q.totals_per_day(conn, boss, Query(since=month))),
                ("totals per day, the whole year", lambda: q.totals_per_day(conn, boss)),
                ("totals per agent (everything)", lambda: q.totals_per_agent(conn, boss)),
                ("totals per agent, last 30 days", lambda: q.totals_per_agent(conn, boss, Query(since=month))),
                ("team totals (everything)", lambda: q.totals_team(conn, boss)),
                ("CSV: one agent, last 7 days", csv_of(Query(agent="agent 11", since=week))),
            ]
            print(f"\nsupervisor queries on {rows:,} team submissions (median of 5; goal < {GOAL_MS:.0f} ms each)")
            slow = 0
            for name, fn in cases:
                fn()  # warm the cache, as a relay that has been up a while has it
                ms = timed(fn)
                met = ms < GOAL_MS
                slow += not met
                print(f"  {name:52} {ms:8.1f} ms  {'ok' if met else 'SLOWER THAN THE GOAL'}", flush=True)
    print(f"{len(cases) - slow} of {len(cases)} queries under {GOAL_MS:.0f} ms")
    return 0 if slow == 0 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database", help="an empty PostgreSQL database (default: a throwaway cluster)")
    args = parser.parse_args(argv)
    if args.database:
        return run(args.database, args.rows)
    sys.path.insert(0, str(ROOT / "tests" / "relay"))
    from services import Postgres  # the tests' throwaway cluster

    pg = Postgres()
    try:
        pg.start()
        return run(pg.create_database("bench"), args.rows)
    finally:
        pg.stop()


if __name__ == "__main__":
    sys.exit(main())
