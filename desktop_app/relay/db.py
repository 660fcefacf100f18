"""The team database on PostgreSQL (psycopg 3 and its connection pool).

- **Schema**: an ordered list of `MIGRATIONS` and a ``schema_version`` table. `migrate` applies the missing
  ones in one transaction under a transaction-scoped advisory lock, so two relays starting at once never
  race: the second waits, then finds nothing left to do.
- **Agents**: name, role (``agent`` or ``supervisor``), the SHA-256 of their token — never the token —,
  when they were created and revoked. A desk gets its token once, by redeeming a one-time invite
  (`create_invite` → `redeem_invite`); the invite's code is kept as a SHA-256 too.
- **History**: submissions, steps and events shaped after the desk's SQLite history
  (`desktop_app/sync/history.py`), plus the agent and the recording's SHA-256 and store key.
- **Work queue**: `claim` takes the next due submission with ``FOR UPDATE SKIP LOCKED`` and leases it
  to one relay worker for a while: two relays never claim the same row, and a relay that dies lets its
  lease run out so another takes the submission over.

Passwords: nothing here prints or logs a database URL; `describe_url` gives a form without the password
and `DatabaseError`'s sentences never hold one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import select
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

AGENT, SUPERVISOR = "agent", "supervisor"
ROLES = (AGENT, SUPERVISOR)
INVITE_TTL = dt.timedelta(days=3)
TOKEN_PREFIX = "crt_"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@ -]{0,63}")
# pg_advisory_xact_lock's key for migrations: any constant, the same in every relay ("callrelay" in ASCII)
MIGRATION_LOCK = 0x63616C6C72656C6179 & 0x7FFFFFFFFFFFFFFF
# A pooled connection idle this long gets a round trip to the server before it is handed out (psycopg_pool's
# check_connection); one used more recently only has its socket looked at, which costs no round trip.
IDLE_CHECK_S = 10.0
_USED_AT = "_callrelay_used_at"  # the attribute of a pooled connection: time.monotonic() when last given back

MIGRATIONS: tuple[str, ...] = (
    # 1: agents, invites, the team history, the work queue
    """
    CREATE TABLE agents (
        id BIGSERIAL PRIMARY KEY,
        name TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('agent', 'supervisor')),
        token_sha256 TEXT NOT NULL UNIQUE CHECK (token_sha256 ~ '^[0-9a-f]{64}$'),
        created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        revoked_at TIMESTAMPTZ
    );
    CREATE UNIQUE INDEX agents_active_name ON agents(name) WHERE revoked_at IS NULL;
    CREATE TABLE invites (
        id BIGSERIAL PRIMARY KEY,
        code_sha256 TEXT NOT NULL UNIQUE CHECK (code_sha256 ~ '^[0-9a-f]{64}$'),
        name TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('agent', 'supervisor')),
        created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        expires_at TIMESTAMPTZ NOT NULL,
        used_at TIMESTAMPTZ,
        agent_id BIGINT REFERENCES agents(id)
    );
    CREATE TABLE submissions (
        id BIGSERIAL PRIMARY KEY,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        agent_id BIGINT NOT NULL REFERENCES agents(id),
        recording_name TEXT NOT NULL,
        recording_sha256 TEXT CHECK (recording_sha256 ~ '^[0-9a-f]{64}$'),
        recording_size BIGINT,
        object_key TEXT,
        external_id TEXT NOT NULL UNIQUE,
        details JSONB NOT NULL DEFAULT '{}',
        title TEXT NOT NULL DEFAULT '',
        owner_id TEXT NOT NULL DEFAULT '',
        contact_id TEXT NOT NULL DEFAULT '',
        from_number TEXT NOT NULL DEFAULT '',
        to_number TEXT NOT NULL DEFAULT '',
        duration_ms BIGINT NOT NULL DEFAULT 0,
        call_timestamp TIMESTAMPTZ,
        state TEXT NOT NULL,
        status TEXT NOT NULL,
        call_id TEXT,
        portal_id TEXT,
        error TEXT,
        error_status INTEGER,
        error_correlation_id TEXT,
        next_attempt_at TIMESTAMPTZ,
        ready_at TIMESTAMPTZ,
        transcript_checks INTEGER NOT NULL DEFAULT 0,
        claimed_by TEXT,
        claimed_until TIMESTAMPTZ
    );
    CREATE INDEX submissions_status ON submissions(status, created_at);
    CREATE INDEX submissions_created ON submissions(created_at);
    CREATE INDEX submissions_agent ON submissions(agent_id, created_at);
    CREATE INDEX submissions_owner ON submissions(owner_id, created_at);
    CREATE INDEX submissions_contact ON submissions(contact_id, created_at);
    CREATE INDEX submissions_call ON submissions(call_id);
    CREATE INDEX submissions_due ON submissions(next_attempt_at, id) WHERE status IN ('queued', 'running');
    CREATE TABLE steps (
        id BIGSERIAL PRIMARY KEY,
        submission_id BIGINT NOT NULL REFERENCES submissions(id) ON DELETE CASCADE,
        step TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        ended_at TIMESTAMPTZ,
        outcome TEXT NOT NULL,
        http_status INTEGER,
        message TEXT,
        correlation_id TEXT,
        next_retry_at TIMESTAMPTZ,
        relay TEXT
    );
    CREATE INDEX steps_submission ON steps(submission_id, id);
    CREATE TABLE events (
        id BIGSERIAL PRIMARY KEY,
        at TIMESTAMPTZ NOT NULL DEFAULT now(),
        kind TEXT NOT NULL,
        message TEXT NOT NULL,
        data JSONB NOT NULL DEFAULT '{}',
        agent_id BIGINT REFERENCES agents(id)
    );
    CREATE INDEX events_at ON events(at);
    """,
    # 2: the desks' uploads (a multipart upload to the store, resumable, until its submission is written)
    """
    CREATE TABLE uploads (
        id TEXT PRIMARY KEY CHECK (id ~ '^[0-9a-f]{32}$'),
        agent_id BIGINT NOT NULL REFERENCES agents(id),
        created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        sha256 TEXT NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
        size BIGINT NOT NULL CHECK (size >= 0),
        filename TEXT NOT NULL,
        part_size BIGINT NOT NULL CHECK (part_size > 0),
        object_key TEXT NOT NULL,
        store_upload_id TEXT NOT NULL,
        submission_id BIGINT REFERENCES submissions(id)
    );
    CREATE INDEX uploads_open ON uploads(agent_id, sha256, size) WHERE submission_id IS NULL;
    """,
    # 3: the relay's pipeline: the endpoint's fetch log (did HubSpot come for a recording?), the rate budget
    # every relay of the team draws from, and the work queue's index taking ready submissions (transcripts) too
    """
    CREATE TABLE fetches (
        id BIGSERIAL PRIMARY KEY,
        external_id TEXT NOT NULL,
        at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
        relay TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX fetches_external ON fetches(external_id, at);
    CREATE TABLE rate_slots (
        id BIGSERIAL PRIMARY KEY,
        kind TEXT NOT NULL,
        sent_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
        done_at TIMESTAMPTZ
    );
    CREATE INDEX rate_slots_done ON rate_slots(kind, done_at);
    CREATE INDEX rate_slots_open ON rate_slots(kind, sent_at) WHERE done_at IS NULL;
    CREATE TABLE rate_pauses (
        kind TEXT PRIMARY KEY,
        until TIMESTAMPTZ NOT NULL
    );
    CREATE INDEX submissions_work ON submissions(next_attempt_at, id) WHERE status IN ('queued', 'running', 'ready');
    """,
    # ------------------------------------------------------------------------------------------------
    # 4 (the team history's queries, `relay/queries.py`): newest-first pages, the totals kept per day,
    # agent and status, and the text filter; the trigram index only where the server has pg_trgm (a
    # trusted extension since PostgreSQL 13), else the text filter reads every row
    """
    CREATE INDEX submissions_newest ON submissions(created_at, id);
    CREATE INDEX submissions_status_newest ON submissions(status, created_at, id);
    CREATE INDEX submissions_agent_newest ON submissions(agent_id, created_at, id);
    DO $$
    BEGIN
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
    EXCEPTION WHEN OTHERS THEN
        RAISE NOTICE 'pg_trgm is not available: the history text filter reads every row';
    END $$;
    -- totals per day, agent and status, kept by statement-level triggers (one grouped upsert per
    -- statement, so a COPY of a million rows is one statement too): the totals and counts read this
    -- instead of every submission
    CREATE TABLE submission_totals (
        day DATE NOT NULL,
        agent_id BIGINT NOT NULL,
        status TEXT NOT NULL,
        n BIGINT NOT NULL,
        PRIMARY KEY (day, agent_id, status)
    );
    CREATE INDEX submission_totals_agent ON submission_totals(agent_id, day);
    CREATE INDEX submission_totals_status ON submission_totals(status, day);
    CREATE FUNCTION submission_totals_apply() RETURNS trigger LANGUAGE plpgsql AS $fn$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO submission_totals AS t (day, agent_id, status, n)
            SELECT (created_at AT TIME ZONE 'UTC')::date, agent_id, status, count(*) FROM new_rows
            GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
            ON CONFLICT (day, agent_id, status) DO UPDATE SET n = t.n + excluded.n;
        ELSIF TG_OP = 'DELETE' THEN
            INSERT INTO submission_totals AS t (day, agent_id, status, n)
            SELECT (created_at AT TIME ZONE 'UTC')::date, agent_id, status, -count(*) FROM old_rows
            GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
            ON CONFLICT (day, agent_id, status) DO UPDATE SET n = t.n + excluded.n;
        ELSE
            INSERT INTO submission_totals AS t (day, agent_id, status, n)
            SELECT day, agent_id, status, sum(d) FROM (
                SELECT (created_at AT TIME ZONE 'UTC')::date AS day, agent_id, status, -1 AS d FROM old_rows
                UNION ALL
                SELECT (created_at AT TIME ZONE 'UTC')::date, agent_id, status, 1 FROM new_rows
            ) changes GROUP BY 1, 2, 3 HAVING sum(d) <> 0 ORDER BY 1, 2, 3
            ON CONFLICT (day, agent_id, status) DO UPDATE SET n = t.n + excluded.n;
        END IF;
        RETURN NULL;
    END $fn$;
    CREATE TRIGGER submission_totals_insert AFTER INSERT ON submissions REFERENCING NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION submission_totals_apply();
    CREATE TRIGGER submission_totals_update AFTER UPDATE ON submissions
        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION submission_totals_apply();
    CREATE TRIGGER submission_totals_delete AFTER DELETE ON submissions REFERENCING OLD TABLE AS old_rows
        FOR EACH STATEMENT EXECUTE FUNCTION submission_totals_apply();
    INSERT INTO submission_totals (day, agent_id, status, n)
    SELECT (created_at AT TIME ZONE 'UTC')::date, agent_id, status, count(*) FROM submissions GROUP BY 1, 2, 3;
    DO $$
    BEGIN
        IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
            EXECUTE $index$ CREATE INDEX submissions_text ON submissions USING gin (
                (title || ' ' || recording_name || ' ' || from_number || ' ' || to_number || ' ' || external_id
                 || ' ' || coalesce(call_id, '') || ' ' || coalesce(error, '')) gin_trgm_ops) $index$;
        END IF;
    END $$;
    """,
    # ------------------------------------------------------------------------------------------------
    # 5: the rate window HubSpot's headers told a relay (its limit may be above the configured 100 per 10 s): a
    # relay that starts later counts by it from its first request, not by the configured one
    """
    CREATE TABLE rate_windows (
        kind TEXT PRIMARY KEY,
        max_requests INTEGER NOT NULL,
        interval_s DOUBLE PRECISION NOT NULL,
        learned_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
    );
    """,
)

WORK_STATUSES = ("queued", "running")  # what `claim` takes by default: submissions still to log
PIPELINE_STATUSES = ("queued", "running", "ready")  # what the relay's workers take: ready ones to follow


class DatabaseError(RuntimeError):
    """A problem with the team database, said in one sentence (never with a password)."""


class InviteError(DatabaseError):
    pass


class ConflictError(DatabaseError):
    """A request that contradicts what the database holds (an externalId another submission has)."""


@dataclass(frozen=True)
class Agent:
    id: int
    name: str
    role: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None

    @property
    def is_supervisor(self) -> bool:
        return self.role == SUPERVISOR

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "created_at": self.created_at.isoformat(),
                "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None}


@dataclass(frozen=True)
class Upload:
    """A desk's upload of one recording: the store's multipart upload, then (once the relay has checked
    the stored object's SHA-256) the submission it became."""

    id: str
    agent_id: int
    sha256: str
    size: int
    filename: str
    part_size: int
    object_key: str
    store_upload_id: str
    submission_id: int | None


_UPLOAD_COLUMNS = "id, agent_id, sha256, size, filename, part_size, object_key, store_upload_id, submission_id"
SUBMISSION_FIELDS = ("recording_sha256", "recording_size", "object_key", "title", "owner_id", "contact_id",
                     "from_number", "to_number", "duration_ms", "call_timestamp", "next_attempt_at")


@dataclass(frozen=True)
class Claim:
    """A submission leased to one relay worker until ``claimed_until``."""

    submission_id: int
    external_id: str
    state: str
    claimed_by: str
    claimed_until: dt.datetime


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def describe_url(url: str) -> str:
    """``user@host:port/dbname`` of a database URL or conninfo, without its password."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error:
        return "the database (its URL cannot be read)"
    host = str(info.get("host") or info.get("hostaddr") or "localhost")
    port = str(info.get("port") or "5432")
    user = str(info.get("user") or "")
    name = str(info.get("dbname") or user or "")
    return f"{user + '@' if user else ''}{host}:{port}/{name}"


def _scrub(text: str, url: str) -> str:
    """``text`` with the URL's password taken out, should a driver message ever echo it."""
    try:
        password = str(psycopg.conninfo.conninfo_to_dict(url).get("password") or "")
    except psycopg.Error:
        password = ""
    first = (text.strip().splitlines() or [""])[0].strip().rstrip(".")
    return first.replace(password, "***") if password else first


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name != name.strip():
        raise DatabaseError(
            f"{name!r} is not a valid agent name: 1-64 letters, digits, spaces and ._@- , starting with a letter or digit."
        )
    return name


# --- schema ----------------------------------------------------------------------------------------------
def schema_version(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return 0
    got = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    return int(got[0]) if got else 0


def migrate(conn: psycopg.Connection[Any], migrations: Sequence[str] = MIGRATIONS) -> int:
    """Bring the schema up to date in one transaction, under an advisory lock; returns the version. A
    schema already up to date needs no right but reading ``schema_version`` (relays may run as a user
    that cannot create tables)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        version = schema_version(conn)
        if version == 0:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                " version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
        if version > len(migrations):
            raise DatabaseError(
                f"The team database is at schema {version}, newer than this Call Relay knows ({len(migrations)}); "
                "update Call Relay on this host."
            )
        for number in range(version, len(migrations)):
            conn.execute(migrations[number].encode("utf-8"))
            conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (number + 1,))
        return len(migrations)


# --- the database ----------------------------------------------------------------------------------------
def check_pooled(conn: psycopg.Connection[Any]) -> None:
    """The pool's ``check`` as a connection is handed out: raises when it is closed or broken, or when the
    server has closed it or said something on it while it sat in the pool (a PostgreSQL restart, an
    administrator ending the session: its socket is readable), and, for a connection idle longer than
    ``IDLE_CHECK_S``, when a round trip fails. Checking every connection with a round trip cost about 15 %
    of the relay's CPU."""
    if conn.closed or conn.broken:
        raise psycopg.OperationalError("the connection is closed")
    idle = time.monotonic() - getattr(conn, _USED_AT, float("-inf"))
    if idle > IDLE_CHECK_S or select.select([conn.fileno()], [], [], 0)[0]:
        ConnectionPool.check_connection(conn)


def _stamp(conn: psycopg.Connection[Any]) -> None:
    setattr(conn, _USED_AT, time.monotonic())


class TeamDB:
    """The team database behind a connection pool. ``TeamDB(url)`` connects, migrates and opens the pool;
    a database that cannot be reached is a `DatabaseError` with one sentence."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 8, connect_timeout_s: float = 10) -> None:
        self.where = describe_url(url)
        self._url = url
        timeout = max(1, int(connect_timeout_s))
        try:
            psycopg.conninfo.conninfo_to_dict(url)
        except psycopg.Error:
            raise DatabaseError("The database URL cannot be read: write postgresql://USER@HOST[:PORT]/DBNAME.") from None
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=timeout) as conn:
                self.schema = migrate(conn)
        except DatabaseError:
            raise
        except psycopg.OperationalError as exc:
            raise DatabaseError(f"The team database at {self.where} cannot be reached: {_scrub(str(exc), url)}.") from None
        except psycopg.Error as exc:
            raise DatabaseError(f"The team database at {self.where} refused the schema update: "
                                f"{_scrub(str(exc), url)}.") from None
        # check: a connection is checked as it is handed out (check_pooled), so connections a PostgreSQL restart
        # closed are replaced instead of failing the next query; timeout: how long to wait for one before giving up
        self.pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url, min_size=min_size, max_size=max_size, open=False, name="callrelay-team",
            kwargs={"autocommit": True, "connect_timeout": timeout}, configure=_stamp,
            check=check_pooled, timeout=2 * connect_timeout_s,
            reconnect_timeout=max(60.0, 6 * connect_timeout_s),
        )
        try:
            self.pool.open(wait=True, timeout=connect_timeout_s + 5)
        except PoolTimeout:
            self.pool.close()
            raise DatabaseError(f"The team database at {self.where} cannot be reached: no connection was "
                                f"made in {connect_timeout_s + 5:g} s.") from None

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> TeamDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        try:
            with self.pool.connection() as conn:
                try:
                    yield conn
                finally:
                    _stamp(conn)
        except PoolTimeout:
            raise DatabaseError(f"The team database at {self.where} cannot be reached: no connection could be "
                                "made in time.") from None
        except psycopg.OperationalError as exc:
            raise DatabaseError(f"The team database at {self.where} cannot be reached: "
                                f"{_scrub(str(exc), self._url)}.") from None

    # -- invites and agents ---------------------------------------------------------------------------
    def create_invite(self, name: str, role: str = AGENT, *, ttl: dt.timedelta = INVITE_TTL) -> str:
        """A one-time code that makes agent ``name``; only its SHA-256 is kept."""
        check_name(name)
        if role not in ROLES:
            raise DatabaseError(f"The role must be agent or supervisor, not {role!r}.")
        code = secrets.token_urlsafe(18)
        while code.startswith("-"):  # `callrelay join URL CODE` would take it for an option
            code = secrets.token_urlsafe(18)
        with self.connection() as conn, conn.transaction():
            if conn.execute("SELECT 1 FROM agents WHERE name = %s AND revoked_at IS NULL", (name,)).fetchone():
                raise InviteError(f"An agent named {name!r} already exists: revoke it first, or choose another name.")
            conn.execute(
                "INSERT INTO invites (code_sha256, name, role, expires_at) VALUES (%s, %s, %s, now() + %s)",
                (sha256_hex(code), name, role, ttl),
            )
        return code

    def redeem_invite(self, code: str) -> str:
        """The new agent's token for a valid invite, once only; the token is never stored, only its hash."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        try:
            self._redeem(code, token)
        except psycopg.errors.UniqueViolation:  # another invite for the name was redeemed at the same moment
            raise InviteError("An agent with this invite's name joined already: ask for an invite with another "
                              "name.") from None
        return token

    def _redeem(self, code: str, token: str) -> None:
        with self.connection() as conn, conn.transaction():
            row = conn.execute(
                "UPDATE invites SET used_at = now() WHERE code_sha256 = %s AND used_at IS NULL AND expires_at > now()"
                " RETURNING id, name, role",
                (sha256_hex(code.strip()),),
            ).fetchone()
            if row is None:
                raise InviteError("This invite code is unknown, already used or expired: ask for a new one.")
            invite_id, name, role = row
            if conn.execute("SELECT 1 FROM agents WHERE name = %s AND revoked_at IS NULL", (name,)).fetchone():
                raise InviteError(f"An agent named {name!r} joined already: ask for an invite with another name.")
            agent = conn.execute(
                "INSERT INTO agents (name, role, token_sha256) VALUES (%s, %s, %s) RETURNING id",
                (name, role, sha256_hex(token)),
            ).fetchone()
            assert agent is not None
            conn.execute("UPDATE invites SET agent_id = %s WHERE id = %s", (agent[0], invite_id))

    def authenticate(self, token: str) -> Agent | None:
        """The active agent holding ``token``, or None (unknown, made up or revoked)."""
        if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        with self.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                "SELECT id, name, role, created_at, revoked_at FROM agents"
                " WHERE token_sha256 = %s AND revoked_at IS NULL",
                (sha256_hex(token),),
            ).fetchone()
        return Agent(**row) if row else None

    def list_agents(self, *, include_revoked: bool = True) -> list[Agent]:
        query = "SELECT id, name, role, created_at, revoked_at FROM agents"
        if not include_revoked:
            query += " WHERE revoked_at IS NULL"
        with self.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(query + " ORDER BY name, created_at").fetchall()
        return [Agent(**r) for r in rows]

    def revoke(self, name: str) -> bool:
        """Revoke the active agent ``name`` (their token stops working at once) and cancel that name's
        unused invites; False when there is no such active agent."""
        with self.connection() as conn, conn.transaction():
            row = conn.execute(
                "UPDATE agents SET revoked_at = now() WHERE name = %s AND revoked_at IS NULL RETURNING id", (name,)
            ).fetchone()
            conn.execute("UPDATE invites SET expires_at = now() WHERE name = %s AND used_at IS NULL"
                         " AND expires_at > now()", (name,))
        return row is not None

    # -- the work queue -------------------------------------------------------------------------------
    def add_submission(self, agent: Agent, *, external_id: str, recording_name: str, state: str = "checked",
                       status: str = "queued", **fields: Any) -> int:
        """Write a submission down (the relay's pipeline fills in the rest); returns its id."""
        unknown = set(fields) - set(SUBMISSION_FIELDS)
        if unknown:
            raise ValueError(f"unknown submission fields: {sorted(unknown)}")
        columns = ["agent_id", "external_id", "recording_name", "state", "status", *fields]
        values = [agent.id, external_id, recording_name, state, status, *fields.values()]
        with self.connection() as conn:
            row = conn.execute(
                f"INSERT INTO submissions ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(values))})"
                " RETURNING id",
                values,
            ).fetchone()
        assert row is not None
        return int(row[0])

    # -- uploads ---------------------------------------------------------------------------------------
    def add_upload(self, upload: Upload) -> Upload:
        """Write a new upload down; should the agent have another open upload of the same recording
        (two requests at once), that one is kept and returned instead of two."""
        with self.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (upload.agent_id,))
            same = self._open_upload(conn, upload.agent_id, upload.sha256, upload.size)
            if same is not None:
                return same
            conn.execute(
                f"INSERT INTO uploads ({_UPLOAD_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, NULL)",
                (upload.id, upload.agent_id, upload.sha256, upload.size, upload.filename, upload.part_size,
                 upload.object_key, upload.store_upload_id),
            )
        return upload

    def open_upload(self, agent: Agent, sha256: str, size: int) -> Upload | None:
        """The agent's unfinished upload of this recording (a desk resuming after a restart), if any."""
        with self.connection() as conn:
            return self._open_upload(conn, agent.id, sha256, size)

    @staticmethod
    def _open_upload(conn: psycopg.Connection[Any], agent_id: int, sha256: str, size: int) -> Upload | None:
        row = conn.execute(
            f"SELECT {_UPLOAD_COLUMNS} FROM uploads WHERE agent_id = %s AND sha256 = %s AND size = %s"
            " AND submission_id IS NULL ORDER BY created_at DESC LIMIT 1",
            (agent_id, sha256, size),
        ).fetchone()
        return Upload(*row) if row else None

    def drop_upload(self, upload: Upload) -> None:
        """Forget an unfinished upload (the store no longer has it)."""
        with self.connection() as conn:
            conn.execute("DELETE FROM uploads WHERE id = %s AND submission_id IS NULL", (upload.id,))

    def get_upload(self, upload_id: str, agent: Agent) -> Upload | None:
        """The upload ``upload_id`` when ``agent`` made it (another agent's is None, as an unknown one)."""
        with self.connection() as conn:
            row = conn.execute(f"SELECT {_UPLOAD_COLUMNS} FROM uploads WHERE id = %s AND agent_id = %s",
                               (upload_id, agent.id)).fetchone()
        return Upload(*row) if row else None

    def finish_upload(self, upload: Upload, *, external_id: str, recording_name: str, details: dict[str, Any],
                      **fields: Any) -> tuple[int, str]:
        """Write the submission of a checked upload (queued) and tie the upload to it, in one transaction;
        an upload finished already (a desk sending ``complete`` again) gives its submission, not a second
        one. Returns the submission's id and externalId."""
        unknown = set(fields) - set(SUBMISSION_FIELDS)
        if unknown:
            raise ValueError(f"unknown submission fields: {sorted(unknown)}")
        with self.connection() as conn, conn.transaction():
            row = conn.execute("SELECT submission_id FROM uploads WHERE id = %s FOR UPDATE", (upload.id,)).fetchone()
            if row is None:
                raise DatabaseError("That upload is unknown.")
            if row[0] is not None:
                got = conn.execute("SELECT id, external_id FROM submissions WHERE id = %s", (row[0],)).fetchone()
                assert got is not None
                return int(got[0]), str(got[1])
            same = conn.execute("SELECT id, agent_id, recording_sha256 FROM submissions WHERE external_id = %s",
                                (external_id,)).fetchone()
            if same is not None:  # a desk completing again what it submitted already (it missed the answer)
                if same[1] != upload.agent_id or same[2] != upload.sha256:
                    raise ConflictError(f"The externalId {external_id} belongs to another submission.")
                conn.execute("UPDATE uploads SET submission_id = %s WHERE id = %s", (same[0], upload.id))
                return int(same[0]), external_id
            columns = ["agent_id", "external_id", "recording_name", "state", "status", "details", *fields]
            values = [upload.agent_id, external_id, recording_name, "checked", "queued",
                      Jsonb(details), *fields.values()]
            new = conn.execute(
                f"INSERT INTO submissions ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(values))})"
                " RETURNING id", values,
            ).fetchone()
            assert new is not None
            conn.execute("UPDATE uploads SET submission_id = %s WHERE id = %s", (new[0], upload.id))
            return int(new[0]), external_id

    # -- reading the history ------------------------------------------------------------------------
    def submission(self, external_id: str) -> dict[str, Any] | None:
        """One submission by its externalId, with its agent's name (for the endpoint and the API)."""
        with self.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(
                f"SELECT {_SUBMISSION_VIEW} FROM submissions s JOIN agents a ON a.id = s.agent_id"
                " WHERE s.external_id = %s", (external_id,),
            ).fetchone()

    def submissions(self, agent: Agent | None, *, limit: int = 1000) -> list[dict[str, Any]]:
        """The newest submissions of ``agent`` (None: the whole team's), newest first."""
        where, params = ("WHERE s.agent_id = %s", [agent.id]) if agent is not None else ("", [])
        with self.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(
                f"SELECT {_SUBMISSION_VIEW} FROM submissions s JOIN agents a ON a.id = s.agent_id {where}"
                " ORDER BY s.created_at DESC, s.id DESC LIMIT %s", [*params, limit],
            ).fetchall()

    def claim(self, worker: str, lease: dt.timedelta = dt.timedelta(minutes=5),
              statuses: Sequence[str] = WORK_STATUSES) -> Claim | None:
        with self.connection() as conn:
            return claim(conn, worker, lease, statuses)

    def renew(self, worker: str, lease: dt.timedelta) -> int:
        """Extend every lease ``worker`` holds (a relay renews its claims while it works on them)."""
        with self.connection() as conn:
            cur = conn.execute("UPDATE submissions SET claimed_until = clock_timestamp() + %s"
                               " WHERE claimed_by = %s AND claimed_until >= clock_timestamp()", (lease, worker))
            return cur.rowcount

    def log_fetch(self, external_id: str, relay: str) -> None:
        """HubSpot came for the recording of ``external_id`` (the endpoint answered it a link)."""
        with self.connection() as conn:
            conn.execute("INSERT INTO fetches (external_id, relay) VALUES (%s, %s)", (external_id, relay))

    def fetched_since(self, external_id: str, since: dt.datetime) -> bool:
        with self.connection() as conn:
            row = conn.execute("SELECT 1 FROM fetches WHERE external_id = %s AND at >= %s LIMIT 1",
                               (external_id, since)).fetchone()
        return row is not None

    def release(self, submission_id: int, worker: str) -> bool:
        """Give a claimed submission back before its lease ends (True if ``worker`` held it)."""
        with self.connection() as conn:
            cur = conn.execute(
                "UPDATE submissions SET claimed_by = NULL, claimed_until = NULL WHERE id = %s AND claimed_by = %s",
                (submission_id, worker),
            )
            return cur.rowcount == 1


_SUBMISSION_VIEW = (
    "s.id, s.external_id, s.agent_id, a.name AS agent, s.created_at, s.updated_at, s.recording_name,"
    " s.recording_sha256, s.recording_size, s.object_key, s.title, s.owner_id, s.contact_id, s.from_number,"
    " s.to_number, s.duration_ms, s.call_timestamp, s.state, s.status, s.call_id, s.portal_id, s.error,"
    " s.error_correlation_id"
)


def claim(conn: psycopg.Connection[Any], worker: str, lease: dt.timedelta,
          statuses: Sequence[str] = WORK_STATUSES) -> Claim | None:
    """Lease the next due, unclaimed (or lease-expired) unfinished submission to ``worker``, on ``conn``
    (in its transaction if one is open). Rows another transaction is claiming are skipped, not waited for:
    two connections never get the same row. ``statuses``: which submissions to take (the relay's workers
    take ``ready`` ones too, to follow their transcripts)."""
    row = conn.execute(
        """
        UPDATE submissions s SET claimed_by = %(worker)s, claimed_until = clock_timestamp() + %(lease)s
        FROM (
            SELECT id FROM submissions
            WHERE status = ANY(%(statuses)s)
              AND (next_attempt_at IS NULL OR next_attempt_at <= clock_timestamp())
              AND (claimed_until IS NULL OR claimed_until < clock_timestamp())
            ORDER BY next_attempt_at NULLS FIRST, id
            LIMIT 1
            FOR UPDATE SKIP LOCKED
        ) next
        WHERE s.id = next.id
        RETURNING s.id, s.external_id, s.state, s.claimed_by, s.claimed_until
        """,
        {"worker": worker, "lease": lease, "statuses": list(statuses)},
    ).fetchone()
    return Claim(*row) if row else None
