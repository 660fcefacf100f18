"""The team database against a real PostgreSQL cluster (started by the tests): migrations, invites and
agents, and the work queue's claim."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool
from services import Postgres

from desktop_app.relay import db as db_module
from desktop_app.relay.db import (
    MIGRATIONS,
    Agent,
    DatabaseError,
    InviteError,
    TeamDB,
    claim,
    migrate,
    schema_version,
)


@pytest.fixture
def db(database_url: str) -> Any:
    with TeamDB(database_url, max_size=4) as team:
        yield team


def every_value(url: str) -> str:
    """Every row of every table of the database, as text."""
    with psycopg.connect(url) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()]
        return "\n".join(str(conn.execute(f'SELECT row_to_json(t)::text FROM "{t}" t').fetchall()) for t in tables)


def test_a_new_database_gets_every_migration_once(database_url: str) -> None:
    with TeamDB(database_url) as first:
        assert first.schema == len(MIGRATIONS)
    with TeamDB(database_url), psycopg.connect(database_url) as conn:  # opening again changes nothing
        assert conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall() == [
            (n,) for n in range(1, len(MIGRATIONS) + 1)]
        names = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        assert {"agents", "invites", "submissions", "steps", "events", "schema_version"} <= names


def test_relays_starting_at_once_do_not_race_on_the_migrations(database_url: str) -> None:
    start = threading.Barrier(6)
    results: list[Any] = []

    def relay() -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            start.wait()
            try:
                results.append(migrate(conn))
            except Exception as exc:  # a race shows here (relation exists, duplicate key…)
                results.append(exc)

    threads = [threading.Thread(target=relay) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [len(MIGRATIONS)] * 6
    with psycopg.connect(database_url) as conn:
        assert schema_version(conn) == len(MIGRATIONS)
        assert conn.execute("SELECT count(*) FROM schema_version").fetchone() == (len(MIGRATIONS),)


def test_the_migrations_apply_in_one_transaction(database_url: str) -> None:
    broken = ("CREATE TABLE one (x int)", "CREATE TABLE two (x int)", "CREATE TABLE three (x nosuchtype)")
    with psycopg.connect(database_url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.UndefinedObject):
            migrate(conn, broken)
        assert conn.execute("SELECT to_regclass('one'), to_regclass('two')").fetchone() == (None, None)
        assert schema_version(conn) == 0
        assert migrate(conn, broken[:2]) == 2


def test_a_newer_schema_is_refused_in_one_sentence(database_url: str) -> None:
    TeamDB(database_url).close()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (len(MIGRATIONS) + 5,))
    with pytest.raises(DatabaseError, match="newer than this Call Relay knows") as info:
        TeamDB(database_url)
    assert "\n" not in str(info.value)


def test_an_unreachable_database_is_one_sentence_without_the_password(postgres: Postgres) -> None:
    closed = postgres.url("postgres", password="S3cret-pa55word").replace(f":{postgres.port}/", ":9/")
    with pytest.raises(DatabaseError, match=r"at postgres@127\.0\.0\.1:9/postgres cannot be reached") as info:
        TeamDB(closed, connect_timeout_s=2)
    wrong = postgres.url("postgres", password="S3cret-pa55word")
    with pytest.raises(DatabaseError, match="cannot be reached: .*password authentication failed") as info2:
        TeamDB(wrong, connect_timeout_s=5)
    for message in (str(info.value), str(info2.value)):
        assert "S3cret-pa55word" not in message and "\n" not in message
    with pytest.raises(DatabaseError, match="URL cannot be read"):
        TeamDB("postgresql://[::1")


def test_an_invite_is_redeemed_once_for_a_token_kept_only_as_its_hash(db: TeamDB, database_url: str) -> None:
    code = db.create_invite("Ana Silva")
    token = db.redeem_invite(code)
    agent = db.authenticate(token)
    assert isinstance(agent, Agent) and (agent.name, agent.role, agent.active) == ("Ana Silva", "agent", True)
    with pytest.raises(InviteError, match="unknown, already used or expired"):
        db.redeem_invite(code)
    stored = every_value(database_url)
    assert token not in stored and code not in stored  # only their SHA-256
    assert db.authenticate(token + "x") is None
    assert db.authenticate("crt_" + "A" * 43) is None
    assert db.authenticate("") is None


def test_an_invite_redeemed_twice_at_once_makes_one_agent(db: TeamDB) -> None:
    code = db.create_invite("bo", "supervisor")
    start = threading.Barrier(4)
    outcomes: list[str] = []

    def desk() -> None:
        start.wait()
        try:
            outcomes.append(db.redeem_invite(code))
        except InviteError:
            outcomes.append("refused")

    threads = [threading.Thread(target=desk) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    tokens = [o for o in outcomes if o != "refused"]
    assert len(tokens) == 1 and outcomes.count("refused") == 3
    agent = db.authenticate(tokens[0])
    assert agent is not None and agent.is_supervisor
    assert [a.name for a in db.list_agents()] == ["bo"]


def test_an_expired_invite_is_refused(db: TeamDB) -> None:
    code = db.create_invite("late", ttl=dt.timedelta(seconds=1))
    time.sleep(1.5)
    with pytest.raises(InviteError, match="expired"):
        db.redeem_invite(code)


def test_revoking_stops_the_token_at_once_and_cancels_invites(db: TeamDB) -> None:
    token = db.redeem_invite(db.create_invite("cy"))
    assert db.authenticate(token) is not None
    with pytest.raises(InviteError, match="already exists"):
        db.create_invite("cy")
    assert db.revoke("cy") is True
    assert db.authenticate(token) is None
    assert db.revoke("cy") is False
    pending = db.create_invite("cy")  # the name is free again
    assert db.revoke("nobody") is False
    db.revoke("cy")  # cy has no active agent, but the pending invite is cancelled
    with pytest.raises(InviteError):
        db.redeem_invite(pending)
    listed = db.list_agents()
    assert [(a.name, a.active) for a in listed] == [("cy", False)]
    assert db.list_agents(include_revoked=False) == []


@pytest.mark.parametrize("name", ["", " ana", "a" * 65, "x;drop", "ana\n", "-lead"])
def test_a_bad_agent_name_is_refused(db: TeamDB, name: str) -> None:
    with pytest.raises(DatabaseError, match="not a valid agent name"):
        db.create_invite(name)


def _queue(db: TeamDB, count: int) -> Agent:
    agent = db.authenticate(db.redeem_invite(db.create_invite("queue")))
    assert agent is not None
    for n in range(count):
        db.add_submission(agent, external_id=f"callrelay-{n}", recording_name=f"{n}.wav")
    return agent


def test_two_connections_never_claim_the_same_row(db: TeamDB, database_url: str) -> None:
    _queue(db, 3)
    lease = dt.timedelta(minutes=5)
    with psycopg.connect(database_url) as a, psycopg.connect(database_url) as b:
        b.execute("SET lock_timeout = '3s'")  # waiting on a's row would fail here instead of hanging
        first = claim(a, "relay-a", lease)  # a's transaction is still open: the row is locked, not committed
        second = claim(b, "relay-b", lease)
        assert first is not None and second is not None
        assert first.submission_id != second.submission_id
        b.commit()
        a.rollback()  # relay a dies before committing: its row is free again
        third = claim(b, "relay-b", lease)
        b.commit()
        assert third is not None and third.submission_id == first.submission_id
    assert db.claim("relay-c") is not None and db.claim("relay-c") is None  # all three are leased now


def test_many_workers_claim_each_row_exactly_once(db: TeamDB, database_url: str) -> None:
    _queue(db, 120)
    claimed: dict[str, list[int]] = {}

    def worker(name: str) -> None:
        mine = claimed.setdefault(name, [])
        with psycopg.connect(database_url, autocommit=True) as conn:
            while (got := claim(conn, name, dt.timedelta(minutes=5))) is not None:
                mine.append(got.submission_id)

    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    every = [i for ids in claimed.values() for i in ids]
    assert len(every) == len(set(every)) == 120
    assert sum(1 for ids in claimed.values() if ids) >= 2  # the work was shared


def test_an_expired_lease_is_claimed_again(db: TeamDB) -> None:
    _queue(db, 1)
    got = db.claim("relay-a", dt.timedelta(seconds=2))
    assert got is not None and db.claim("relay-b") is None
    time.sleep(2.3)  # relay a died: its lease runs out
    again = db.claim("relay-b")
    assert again is not None and again.submission_id == got.submission_id and again.claimed_by == "relay-b"
    assert db.release(again.submission_id, "relay-a") is False
    assert db.release(again.submission_id, "relay-b") is True
    assert db.claim("relay-c") is not None


def test_two_invites_for_one_name_redeemed_at_once_make_one_agent(db: TeamDB, database_url: str) -> None:
    """Another relay redeems the other invite for the same name at the same moment: its agent row is
    written but not yet committed when this one checks the name."""
    code = db.create_invite("twin")
    with psycopg.connect(database_url) as other:
        other.execute("INSERT INTO agents (name, role, token_sha256) VALUES ('twin', 'agent', %s)", ("a" * 64,))
        outcome: list[object] = []
        desk = threading.Thread(target=lambda: outcome.append(_try(db.redeem_invite, code)))
        desk.start()
        time.sleep(0.5)  # the redeem now waits on the other transaction's row
        other.commit()
        desk.join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], InviteError), outcome
    assert "joined already" in str(outcome[0])
    assert [a.name for a in db.list_agents()] == ["twin"]


def _try(fn: Any, *args: Any) -> object:
    try:
        return fn(*args)
    except Exception as exc:
        return exc


def test_connections_lost_are_replaced_and_a_database_gone_is_one_sentence(database_url: str,
                                                                           postgres: Postgres) -> None:
    name = database_url.rsplit("/", 1)[1]
    with TeamDB(database_url, max_size=2, connect_timeout_s=1) as db, \
            psycopg.connect(postgres.url(), autocommit=True) as admin:
        db.create_invite("before")
        # as a PostgreSQL restart does to every open connection (waiting, as a restart does, until they are gone:
        # a query sent in the same millisecond as the kill may still fail once, with its one sentence)
        kill = ("SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = %s"
                " AND pid <> pg_backend_pid()")
        admin.execute(kill, (name,))
        db.create_invite("after")  # the pool notices and connects again
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            admin.execute(kill, (name,))
            started = time.monotonic()
            with pytest.raises(DatabaseError, match="cannot be reached") as info:
                db.list_agents()
            assert time.monotonic() - started < 10
            assert "\n" not in str(info.value) and postgres.password not in str(info.value)
        finally:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


def test_the_pool_checks_only_connections_idle_for_a_while(database_url: str, postgres: Postgres,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection given back a moment ago is handed out again without a round trip (checking each one cost
    ~15 % of the relay's CPU); one idle longer than IDLE_CHECK_S gets the round trip; one the server ended
    meanwhile, however recently used, is replaced rather than failing the query."""
    checked: list[object] = []
    real = ConnectionPool.check_connection

    def counting(conn: Any) -> None:
        checked.append(conn)
        real(conn)

    monkeypatch.setattr(ConnectionPool, "check_connection", staticmethod(counting))
    name = database_url.rsplit("/", 1)[1]
    with TeamDB(database_url, max_size=2) as db, psycopg.connect(postgres.url(), autocommit=True) as admin:
        db.list_agents()
        checked.clear()
        for _ in range(20):
            db.list_agents()
        assert checked == []
        monkeypatch.setattr(db_module, "IDLE_CHECK_S", 0.2)
        time.sleep(0.4)
        db.list_agents()
        assert len(checked) == 1
        monkeypatch.setattr(db_module, "IDLE_CHECK_S", 60.0)
        admin.execute("SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                      "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
        db.create_invite("after")  # the socket the server closed says so: the pool connects again
        assert [a.name for a in db.list_agents()] == []


def test_a_relay_whose_user_may_only_read_and_write_opens_a_migrated_database(database_url: str,
                                                                             postgres: Postgres) -> None:
    """The admin migrates (as the owner); the relays run as a user without CREATE rights."""
    TeamDB(database_url).close()
    name = database_url.rsplit("/", 1)[1]
    role = f"rw_{name}"
    with psycopg.connect(database_url, autocommit=True) as owner:
        owner.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'rw-pass'")
        owner.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        owner.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}")
        owner.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}")
    with TeamDB(postgres.url(name, user=role, password="rw-pass")) as relay:
        token = relay.redeem_invite(relay.create_invite("least-privilege"))
        assert relay.authenticate(token) is not None


def test_only_due_unfinished_submissions_are_claimed(db: TeamDB) -> None:
    agent = _queue(db, 0)
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    db.add_submission(agent, external_id="callrelay-later", recording_name="l.wav", next_attempt_at=later)
    db.add_submission(agent, external_id="callrelay-done", recording_name="d.wav", status="transcribed")
    db.add_submission(agent, external_id="callrelay-failed", recording_name="f.wav", status="failed")
    due = db.add_submission(agent, external_id="callrelay-due", recording_name="n.wav", status="running",
                            next_attempt_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1))
    got = db.claim("relay-a")
    assert got is not None and got.submission_id == due
    assert db.claim("relay-a") is None
