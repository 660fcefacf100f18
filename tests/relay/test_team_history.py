"""The team's history on the relay (issue 17): `relay/queries.py` over PostgreSQL behind the agents' API's
GET routes, and ``callrelay history`` on a joined desk showing it (an agent their own submissions, a
supervisor everyone's), with totals per day, agent and team, and CSV."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from services import Seaweed
from test_relay_service import RelayProcess, callrelay
from test_team_desk import join, start_relay, write_wav

from desktop_app.relay.db import TeamDB


@pytest.fixture
def s3_relay(database_url: str, seaweed: Seaweed, bucket: str, tmp_path: Path) -> Iterator[RelayProcess]:
    relay = start_relay(database_url, seaweed, bucket, tmp_path)
    yield relay
    relay.stop()


def test_team_history_an_agent_sees_their_own_a_supervisor_everyones(
    s3_relay: RelayProcess, database_url: str, tmp_path: Path
) -> None:
    desks = {name: join(s3_relay, database_url, name, tmp_path / name) for name in ("dee", "eve")}
    boss = join(s3_relay, database_url, "the boss", tmp_path / "boss", supervisor=True)
    for name, env in desks.items():
        files = [str(write_wav(tmp_path / f"{name}-{i}.wav", seconds=1 + i)) for i in range(2)]
        out = callrelay("upload", *files, "--title", f"{name} call", env=env)
        assert out.returncode == 0, out.stdout + out.stderr
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE submissions SET status = 'ready', call_id = '55', portal_id = '777001'"
                     " WHERE recording_name = 'dee-1.wav'")

    def history(env: dict[str, str], *args: str) -> list[dict[str, object]]:
        out = callrelay("history", "--json", *args, env=env)
        assert out.returncode == 0, out.stderr
        return [json.loads(line) for line in out.stdout.splitlines()]

    dee = history(desks["dee"])
    assert sorted(s["recording"] for s in dee) == ["dee-0.wav", "dee-1.wav"]
    assert {s["agent"] for s in dee} == {"dee"}
    everyone = history(boss)
    assert sorted(s["recording"] for s in everyone) == ["dee-0.wav", "dee-1.wav", "eve-0.wav", "eve-1.wav"]
    assert [s["recording"] for s in history(boss, "--status", "ready")] == ["dee-1.wav"]
    assert history(boss, "--status", "ready")[0]["call_url"] == "https://app.hubspot.com/contacts/777001/record/0-48/55"
    assert sorted(s["recording"] for s in history(boss, "--text", "eve ca")) == ["eve-0.wav", "eve-1.wav"]
    assert [s["recording"] for s in history(boss, "--agent", "eve", "--text", "eve-1")] == ["eve-1.wav"]
    assert history(desks["eve"], "--agent", "dee") == []  # an agent never sees another's, even asking

    totals = callrelay("history", "--totals", "agent", "--json", env=boss)
    per_agent = [json.loads(line) for line in totals.stdout.splitlines()]
    assert [(r["agent"], r["total"], r["queued"], r["ready"]) for r in per_agent] == [("dee", 2, 1, 1), ("eve", 2, 2, 0)]
    team = callrelay("history", "--totals", "team", "--json", env=boss)
    assert [(r["total"], r["queued"], r["ready"], r["agents"]) for r in map(json.loads, team.stdout.splitlines())] \
        == [(4, 3, 1, 2)]
    own_team = callrelay("history", "--totals", "team", "--json", env=desks["eve"])
    assert json.loads(own_team.stdout)["total"] == 2
    day = callrelay("history", "--totals", "day", env=boss)
    assert day.returncode == 0 and f"day={time.strftime('%Y-%m-%d', time.gmtime())}  total=4" in day.stdout
    csv_out = callrelay("history", "--csv", env=boss)
    lines = csv_out.stdout.splitlines()
    assert lines[0].startswith("id,created_at,agent,recording,status") and len(lines) == 5
    table = callrelay("history", env=desks["eve"])
    assert "2 submission(s) on the team relay" in table.stdout
    bad = callrelay("history", "--since", "yesterday", env=boss)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


@pytest.mark.parametrize("query", ["status=lost", "since=not-a-date", "limit=100000", "offset=-1",
                                   "by=month&x=1", "text=" + "x" * 300])
def test_crafted_history_requests_get_one_sentence(s3_relay: RelayProcess, database_url: str, query: str) -> None:
    import requests

    from desktop_app.relay.client import RelayClient

    with TeamDB(database_url) as db:
        code = db.create_invite("fay", "supervisor")
    token = RelayClient(s3_relay.url).join(code)["token"]
    path = "/api/history/totals" if query.startswith("by=") else "/api/history"
    answer = requests.get(f"{s3_relay.url}{path}?{query}", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert answer.status_code == 400
    message = answer.json()["message"]
    assert message.endswith(".") and "\n" not in message
    assert requests.get(f"{s3_relay.url}/api/history", timeout=30).status_code == 401


def test_history_on_a_desk_whose_token_is_gone_says_so_in_one_sentence(s3_relay: RelayProcess, tmp_path: Path) -> None:
    from test_team_desk import set_relay_url

    env = {"CALLRELAY_HOME": str(tmp_path / "desk")}
    set_relay_url(env, s3_relay.url)
    hist = callrelay("history", "--json", env=env)
    assert hist.returncode == 1 and "run callrelay join again" in hist.stderr
    assert hist.stderr.strip().count("\n") == 0 and "Traceback" not in hist.stderr


def test_totals_kept_by_the_triggers_match_the_submissions(database_url: str) -> None:
    """The totals and counts read `submission_totals` (kept by triggers) for whole days and the submissions
    for part-days: after inserts, status changes, a moved timestamp and deletes, every filter of status,
    agent and dates gives what counting the submissions gives."""
    import datetime as dt
    import random

    from desktop_app.relay import queries as q
    from desktop_app.sync.history import Query

    rnd = random.Random(5)
    with TeamDB(database_url) as db:
        agents = [db.authenticate(db.redeem_invite(db.create_invite(n))) for n in ("a1", "a2")]
        boss = db.authenticate(db.redeem_invite(db.create_invite("sup", "supervisor")))
        assert all(agents) and boss is not None
        now = dt.datetime(2026, 12, 4, 15, 30, tzinfo=dt.timezone.utc)
        with db.connection() as conn:
            for n in range(300):
                agent = agents[n % 2]
                assert agent is not None
                conn.execute("INSERT INTO submissions (agent_id, external_id, recording_name, state, status,"
                             " created_at) VALUES (%s, %s, 'r.wav', 'checked', %s, %s)",
                             (agent.id, f"x-{n}", rnd.choice(["queued", "ready", "failed"]),
                              now - dt.timedelta(minutes=rnd.randrange(10 * 1440))))
            conn.execute("UPDATE submissions SET status = 'transcribed' WHERE id % 3 = 0")
            conn.execute("UPDATE submissions SET created_at = created_at - interval '2 days' WHERE id % 7 = 0")
            conn.execute("DELETE FROM submissions WHERE id % 11 = 0")

            def counted(query: Query, viewer_id: int | None) -> dict[str, int]:
                sql = "SELECT status, count(*) FROM submissions WHERE true"
                args: list[object] = []
                if viewer_id is not None:
                    sql, args = sql + " AND agent_id = %s", [*args, viewer_id]
                if query.statuses:
                    sql, args = sql + " AND status = ANY(%s)", [*args, list(query.statuses)]
                if query.since:
                    sql, args = sql + " AND created_at >= %s", [*args, query.since]
                if query.until:
                    sql, args = sql + " AND created_at < %s", [*args, query.until]
                return dict(conn.execute(sql + " GROUP BY 1", args).fetchall())

            filters = [Query(), Query(statuses=("ready", "transcribed")), Query(since=now - dt.timedelta(days=3)),
                       Query(until=now - dt.timedelta(days=2, hours=5)),
                       Query(since=now - dt.timedelta(days=6, hours=3), until=now - dt.timedelta(days=1, hours=2)),
                       Query(since=now - dt.timedelta(hours=5), until=now - dt.timedelta(hours=1)),
                       Query(since=dt.datetime(2026, 11, 30, tzinfo=dt.timezone.utc), agent="a2")]
            for query in filters:
                for viewer in (boss, agents[0]):
                    assert viewer is not None
                    own = None if viewer.is_supervisor else viewer.id
                    expected = counted(query, own if query.agent is None else agents[1].id if own is None else -1)
                    team = q.totals_team(conn, viewer, query)[0]
                    got = {s: team[s] for s in team if s not in ("team", "total", "agents") and team[s]}
                    assert got == expected, (query, viewer.name)
                    assert q.count(conn, viewer, query) == sum(expected.values())
                    per_day = q.totals_per_day(conn, viewer, query)
                    assert sum(r["total"] for r in per_day) == sum(expected.values())
                    per_agent = q.totals_per_agent(conn, viewer, query)
                    assert sum(r["total"] for r in per_agent) == sum(expected.values())
            # per day: the same as grouping the submissions by their UTC day
            days = dict(conn.execute("SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), count(*)"
                                     " FROM submissions GROUP BY 1").fetchall())
            assert {r["day"]: r["total"] for r in q.totals_per_day(conn, boss)} == days


def test_a_page_of_several_statuses_is_the_newest_of_all_of_them(database_url: str) -> None:
    """Several statuses are read per status and merged: every page (offset too) is what one ordered
    query over all matching submissions gives, ties on created_at ordered by id."""
    import datetime as dt
    import random

    from desktop_app.relay import queries as q
    from desktop_app.sync.history import Query

    rnd = random.Random(9)
    with TeamDB(database_url) as db:
        agent = db.authenticate(db.redeem_invite(db.create_invite("gus")))
        boss = db.authenticate(db.redeem_invite(db.create_invite("sup", "supervisor")))
        assert agent is not None and boss is not None
        start = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)
        with db.connection() as conn:
            for n in range(400):
                conn.execute("INSERT INTO submissions (agent_id, external_id, recording_name, state, status,"
                             " created_at) VALUES (%s, %s, 'r.wav', 'checked', %s, %s)",
                             (agent.id, f"m-{n}", rnd.choice(["queued", "running", "ready", "failed"]),
                              start + dt.timedelta(minutes=rnd.randrange(300))))  # many ties
            query = Query(statuses=("queued", "running", "failed"))
            expected = [r[0] for r in conn.execute(
                "SELECT external_id FROM submissions WHERE status = ANY(%s) ORDER BY created_at DESC, id DESC",
                (list(query.statuses),)).fetchall()]
            for limit, offset in ((50, 0), (50, 50), (37, 113), (1000, 0), (10, len(expected) - 5)):
                got = [r["external_id"] for r in q.search(conn, boss, query, limit=limit, offset=offset)]
                assert got == expected[offset:offset + limit], (limit, offset)
            assert q.count(conn, boss, query) == len(expected)
