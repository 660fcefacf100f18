"""The history store: every submission and every attempt at each of its steps, in SQLite.

One row per submission (recording, call details, agent, HubSpot ids) and one row per step attempt
(step, start, end, outcome, HTTP status, HubSpot's message and correlation id, next retry time).
WAL mode, a schema version with ordered migrations (the file is copied aside before a migration),
indexes for the supervisors' queries. A damaged, read-only or newer file, or a full disk, raises
``HistoryError`` with one sentence naming the file (``dbfile``), and a damaged file is never written;
``History(readonly=True)`` reads without writing anything (``callrelay history`` on a read-only data
directory or a full disk). Secrets never reach this file: call details are plain data
and error messages come from ``HubSpotError`` which carries no credentials.

All access goes through one connection guarded by a lock, so writes keep their order whatever
thread makes them (the pipeline's workers, the GUI's worker pool).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from desktop_app import dbfile, paths
from desktop_app.errors import UserError

# Submission status as users and `callrelay history --json` see it.
QUEUED, RUNNING, READY, TRANSCRIBED, NOT_TRANSCRIBED, FAILED = (
    "queued", "running", "ready", "transcribed", "not-transcribed", "failed",
)
STATUSES = (QUEUED, RUNNING, READY, TRANSCRIBED, NOT_TRANSCRIBED, FAILED)
UNFINISHED = (QUEUED, RUNNING)
# Who made a transcribed call's transcript (``transcript_source``): HubSpot itself, or Call Relay (posted
# through HubSpot's third-party transcripts API, the ``transcript_posted`` step; issue 20).
SOURCE_HUBSPOT, SOURCE_CALLRELAY = "hubspot", "callrelay"

# Step outcomes.
STARTED, OK, RETRY, FAILED_OUTCOME, ADOPTED, SKIPPED = "started", "ok", "retry", "failed", "adopted", "skipped"

# The columns the supervisors' text filter searches.
_TEXT_COLUMNS = ("title", "recording_name", "from_number", "to_number", "external_id", "call_id", "error")

MIGRATIONS: tuple[str, ...] = (
    # 1: the first schema
    """
    CREATE TABLE submissions (
        id INTEGER PRIMARY KEY,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        agent TEXT NOT NULL DEFAULT '',
        recording_path TEXT NOT NULL,
        recording_name TEXT NOT NULL,
        recording_sha256 TEXT,
        external_id TEXT NOT NULL UNIQUE,
        details TEXT NOT NULL,
        title TEXT NOT NULL DEFAULT '',
        owner_id TEXT NOT NULL DEFAULT '',
        contact_id TEXT NOT NULL DEFAULT '',
        from_number TEXT NOT NULL DEFAULT '',
        to_number TEXT NOT NULL DEFAULT '',
        duration_ms INTEGER NOT NULL DEFAULT 0,
        call_timestamp TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL,
        status TEXT NOT NULL,
        call_id TEXT,
        portal_id TEXT,
        error TEXT,
        error_status INTEGER,
        error_correlation_id TEXT,
        next_attempt_at TEXT,
        ready_at TEXT,
        transcript_checks INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX submissions_status ON submissions(status, created_at);
    CREATE INDEX submissions_created ON submissions(created_at);
    CREATE INDEX submissions_agent ON submissions(agent, created_at);
    CREATE INDEX submissions_owner ON submissions(owner_id, created_at);
    CREATE INDEX submissions_contact ON submissions(contact_id, created_at);
    CREATE INDEX submissions_call ON submissions(call_id);
    CREATE TABLE steps (
        id INTEGER PRIMARY KEY,
        submission_id INTEGER NOT NULL REFERENCES submissions(id) ON DELETE CASCADE,
        step TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        started_at TEXT NOT NULL,
        ended_at TEXT,
        outcome TEXT NOT NULL,
        http_status INTEGER,
        message TEXT,
        correlation_id TEXT,
        next_retry_at TEXT
    );
    CREATE INDEX steps_submission ON steps(submission_id, id);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        kind TEXT NOT NULL,
        message TEXT NOT NULL,
        data TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX events_at ON events(at);
    """,
    # 2: full-text search of the supervisors' text filter (trigram: any part of a title, number or id)
    f"""
    CREATE VIRTUAL TABLE submissions_fts USING fts5({", ".join(_TEXT_COLUMNS)}, content='submissions',
        content_rowid='id', tokenize='trigram');
    CREATE TRIGGER submissions_fts_insert AFTER INSERT ON submissions BEGIN
        INSERT INTO submissions_fts(rowid, {", ".join(_TEXT_COLUMNS)})
        VALUES (new.id, {", ".join("new." + c for c in _TEXT_COLUMNS)});
    END;
    CREATE TRIGGER submissions_fts_delete AFTER DELETE ON submissions BEGIN
        INSERT INTO submissions_fts(submissions_fts, rowid, {", ".join(_TEXT_COLUMNS)})
        VALUES ('delete', old.id, {", ".join("old." + c for c in _TEXT_COLUMNS)});
    END;
    CREATE TRIGGER submissions_fts_update AFTER UPDATE OF {", ".join(_TEXT_COLUMNS)} ON submissions BEGIN
        INSERT INTO submissions_fts(submissions_fts, rowid, {", ".join(_TEXT_COLUMNS)})
        VALUES ('delete', old.id, {", ".join("old." + c for c in _TEXT_COLUMNS)});
        INSERT INTO submissions_fts(rowid, {", ".join(_TEXT_COLUMNS)})
        VALUES (new.id, {", ".join("new." + c for c in _TEXT_COLUMNS)});
    END;
    INSERT INTO submissions_fts(submissions_fts) VALUES ('rebuild');
    """,
    # 3: finding a recording's earlier submissions in an account (``callrelay upload`` skips what was logged)
    """
    CREATE INDEX submissions_recording ON submissions(recording_sha256, portal_id);
    """,
    # 4: the names of contacts and owners the app has seen (the history shows them after a restart)
    """
    CREATE TABLE labels (
        kind TEXT NOT NULL,
        id TEXT NOT NULL,
        name TEXT NOT NULL,
        PRIMARY KEY (kind, id)
    );
    """,
    # 5: who transcribed a call (hubspot / callrelay) and the id of the transcript Call Relay posted (issue 20)
    """
    ALTER TABLE submissions ADD COLUMN transcript_source TEXT;
    ALTER TABLE submissions ADD COLUMN transcript_id TEXT;
    """,
)


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds")


def parse_iso(text: str | None) -> dt.datetime | None:
    return None if not text else dt.datetime.fromisoformat(text)


@dataclass
class Step:
    id: int
    submission_id: int
    step: str
    attempt: int
    started_at: str
    ended_at: str | None
    outcome: str
    http_status: int | None
    message: str | None
    correlation_id: str | None
    next_retry_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "submission_id"}


@dataclass
class Submission:
    id: int
    created_at: str
    updated_at: str
    agent: str
    recording_path: str
    recording_name: str
    recording_sha256: str | None
    external_id: str
    details: dict[str, Any]
    state: str
    status: str
    call_id: str | None
    portal_id: str | None
    contact_id: str
    owner_id: str
    error: str | None
    error_status: int | None
    error_correlation_id: str | None
    next_attempt_at: str | None
    ready_at: str | None
    transcript_checks: int
    steps: list[Step] = field(default_factory=list)
    transcript_source: str | None = None  # SOURCE_CALLRELAY once Call Relay's transcript is posted
    transcript_id: str | None = None  # HubSpot's id of the transcript Call Relay posted

    @property
    def transcribed_by(self) -> str | None:
        """Who made a transcribed call's transcript: SOURCE_CALLRELAY when Call Relay posted it, else HubSpot
        (the pipeline's look at the call, here or on the relay, writes no source: HubSpot's is the default)."""
        if self.status != TRANSCRIBED:
            return None
        return self.transcript_source or SOURCE_HUBSPOT

    @property
    def title(self) -> str:
        return str(self.details.get("title", ""))

    @property
    def duration_ms(self) -> int:
        return int(self.details.get("duration_ms", 0) or 0)

    def to_dict(self, *, with_steps: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "agent": self.agent,
            "recording": self.recording_name,
            "recording_path": self.recording_path,
            "recording_sha256": self.recording_sha256,
            "status": self.status,
            "state": self.state,
            "external_id": self.external_id,
            "call_id": self.call_id,
            "portal_id": self.portal_id,
            "contact_id": self.contact_id or None,
            "owner_id": self.owner_id or None,
            "details": self.details,
            "error": self.error,
            "error_status": self.error_status,
            "correlation_id": self.error_correlation_id,
            "next_attempt_at": self.next_attempt_at,
            "transcript_source": self.transcribed_by,
            "transcript_id": self.transcript_id,
        }
        if with_steps:
            out["steps"] = [s.to_dict() for s in self.steps]
        return out


@dataclass(frozen=True)
class Query:
    """A supervisor's filter. Every field is optional; text matches title, numbers, notes and names."""

    statuses: tuple[str, ...] = ()
    agent: str | None = None
    owner_id: str | None = None
    contact_id: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    text: str | None = None

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        if self.statuses:
            clauses.append(f"status IN ({','.join('?' * len(self.statuses))})")
            args.extend(self.statuses)
        for column, value in (("agent", self.agent), ("owner_id", self.owner_id), ("contact_id", self.contact_id)):
            if value:
                clauses.append(f"{column} = ?")
                args.append(value)
        if self.since:
            clauses.append("created_at >= ?")
            args.append(iso(self.since))
        if self.until:
            clauses.append("created_at < ?")
            args.append(iso(self.until))
        if self.text and len(self.text.strip()) >= 3:  # the trigram index finds any part of 3+ characters
            clauses.append("id IN (SELECT rowid FROM submissions_fts WHERE submissions_fts MATCH ?)")
            args.append('"' + self.text.strip().replace('"', '""') + '"')
        elif self.text:
            like = "%" + self.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            clauses.append("(" + " OR ".join(f"{c} LIKE ? ESCAPE '\\'" for c in _TEXT_COLUMNS) + ")")
            args.extend([like] * len(_TEXT_COLUMNS))
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


# details pass through SQLite's json(): damaged details fail there, as the file's damage, not in json.loads
_SUBMISSION_COLUMNS = (
    "id, created_at, updated_at, agent, recording_path, recording_name, recording_sha256, external_id,"
    " json(details) AS details,"
    " state, status, call_id, portal_id, contact_id, owner_id, error, error_status, error_correlation_id,"
    " next_attempt_at, ready_at, transcript_checks, transcript_source, transcript_id"
)

CSV_COLUMNS = (
    "id", "created_at", "agent", "recording", "status", "state", "title", "from_number", "to_number",
    "direction", "duration_ms", "owner_id", "contact_id", "call_id", "external_id", "call_url", "error",
    "correlation_id", "call_time", "contact", "owner", "notes",
)


def csv_row(details: dict[str, Any], *, id: int, created_at: str, agent: str, recording: str,  # noqa: A002
            status: str, state: str, duration_ms: int, owner_id: str, contact_id: str, call_id: str,
            external_id: str, call_url: str, error: str, correlation_id: str, contact: str,
            owner: str) -> list[Any]:
    """One submission's CSV row, in ``CSV_COLUMNS``' order (the desk's history and the team's)."""
    return [id, created_at, agent, recording, status, state, details.get("title", ""),
            details.get("from_number", ""), details.get("to_number", ""), details.get("direction", ""), duration_ms,
            owner_id, contact_id, call_id, external_id, call_url, error, correlation_id,
            details.get("timestamp", "") or "", contact, owner, details.get("notes", "") or ""]


def write_csv(rows: Iterator[list[Any]], out: io.TextIOBase | None = None) -> str:
    """``CSV_COLUMNS`` then ``rows`` to ``out``; returns the text when ``out`` is None."""
    buffer = out if out is not None else io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    writer.writerows(rows)
    return buffer.getvalue() if isinstance(buffer, io.StringIO) and out is None else ""


class HistoryError(UserError, RuntimeError):
    pass


class History:
    """The history of one data directory (``history.sqlite3``), or of the file given.

    ``readonly``: read the file without writing anything; a missing file reads as an empty history.
    """

    def __init__(self, path: Path | None = None, *, readonly: bool = False) -> None:
        self.path = path or paths.history_db()
        self.readonly = readonly
        self._lock = threading.RLock()
        self._db = self._open()

    def _open(self) -> dbfile.Connection:
        on_disk = not self.readonly or self.path.exists()  # read-only, no file is an empty history
        db = self._connect(self.path if on_disk else None)
        try:
            version = dbfile.check_version(db, len(MIGRATIONS))
            if self.readonly and on_disk and version == 0:  # an empty file: an empty history too
                db.close()
                db = self._connect(None)
            elif self.readonly and on_disk and version < len(MIGRATIONS):
                older = HistoryError(f"The history file {self.path} was written by an older Call Relay: run "
                                     "`callrelay resume` once where it can be written to bring it up to date.")
                older.older = True  # type: ignore[attr-defined]  # History.for_reading upgrades it where it can
                raise older
            elif not self.readonly:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.execute("PRAGMA foreign_keys=ON")
                db.execute("PRAGMA busy_timeout=30000")
            if version < len(MIGRATIONS):  # on disk, or the empty history in memory
                dbfile.upgrade(db, MIGRATIONS, version)
        except BaseException:
            db.close()
            raise
        return db

    @classmethod
    def for_reading(cls, path: Path | None = None) -> History:
        """A read-only history for a command that only reads (``callrelay history``). A file an older release
        wrote is brought up to date first where it can be written (a copy kept, as every migration does), so
        reading never needs another command run first; where it cannot be, the sentence says what to do."""
        try:
            return cls(path, readonly=True)
        except HistoryError as exc:
            if not getattr(exc, "older", False):
                raise
        cls(path).close()  # migrates (or says in one sentence why the file cannot be written)
        return cls(path, readonly=True)

    def _connect(self, path: Path | None) -> dbfile.Connection:
        db = dbfile.connect(path, what="history file", error=HistoryError, readonly=self.readonly and path is not None)
        db.row_factory = sqlite3.Row
        return db

    # -- schema ---------------------------------------------------------------------------------
    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- submissions ----------------------------------------------------------------------------
    def add_submission(
        self,
        *,
        recording_path: str,
        recording_name: str,
        external_id: str,
        details: dict[str, Any],
        agent: str,
        state: str,
        recording_sha256: str | None = None,
        status: str = QUEUED,
        portal_id: str | None = None,
    ) -> int:
        stamp = iso(now())
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO submissions (created_at, updated_at, agent, recording_path, recording_name,"
                " recording_sha256, portal_id, external_id, details, title, owner_id, contact_id, from_number,"
                " to_number, duration_ms, call_timestamp, state, status) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    stamp, stamp, agent, recording_path, recording_name, recording_sha256, portal_id, external_id,
                    json.dumps(details, sort_keys=True), str(details.get("title", "")),
                    str(details.get("owner_id", "") or ""), str(details.get("contact_id", "") or ""),
                    str(details.get("from_number", "") or ""), str(details.get("to_number", "") or ""),
                    int(details.get("duration_ms", 0) or 0), str(details.get("timestamp", "") or ""),
                    state, status,
                ),
            )
            return int(cur.lastrowid or 0)

    _UPDATABLE = frozenset({
        "state", "status", "call_id", "portal_id", "recording_sha256", "contact_id", "error", "error_status",
        "error_correlation_id", "next_attempt_at", "ready_at", "transcript_checks", "details",
        "transcript_source", "transcript_id",
    })

    def update(self, submission_id: int, **fields: Any) -> None:
        unknown = set(fields) - self._UPDATABLE
        if unknown:
            raise HistoryError(f"cannot update {sorted(unknown)}")
        if "details" in fields:
            details = fields["details"]
            fields["details"] = json.dumps(details, sort_keys=True)
            fields.update({
                "title": str(details.get("title", "")), "owner_id": str(details.get("owner_id", "") or ""),
                "from_number": str(details.get("from_number", "") or ""),
                "to_number": str(details.get("to_number", "") or ""),
                "duration_ms": int(details.get("duration_ms", 0) or 0),
                "call_timestamp": str(details.get("timestamp", "") or ""),
            })
            if "contact_id" not in fields:
                fields["contact_id"] = str(details.get("contact_id", "") or "")
        fields["updated_at"] = iso(now())
        assignments = ", ".join(f"{name} = ?" for name in fields)
        with self._lock:
            cur = self._db.execute(
                f"UPDATE submissions SET {assignments} WHERE id = ?", [*fields.values(), submission_id]
            )
            if cur.rowcount != 1:
                raise HistoryError(f"no submission {submission_id}")

    def get(self, submission_id: int, *, with_steps: bool = True) -> Submission | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_SUBMISSION_COLUMNS} FROM submissions WHERE id = ?", (submission_id,)
            ).fetchone()
            if row is None:
                return None
            sub = _submission(row)
            if with_steps:
                sub.steps = self.steps(submission_id)
            return sub

    def unfinished(self) -> list[Submission]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_SUBMISSION_COLUMNS} FROM submissions WHERE status IN (?, ?) ORDER BY id", UNFINISHED
            ).fetchall()
        return [_submission(r) for r in rows]

    def of_recording(self, sha256: str, portal_id: str) -> list[Submission]:
        """Every submission of the recording with this SHA-256 to this HubSpot account, newest first."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_SUBMISSION_COLUMNS} FROM submissions WHERE recording_sha256 = ? AND portal_id = ?"
                " ORDER BY id DESC", (sha256, portal_id)
            ).fetchall()
        return [_submission(r) for r in rows]

    def awaiting_transcript(self) -> list[Submission]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_SUBMISSION_COLUMNS} FROM submissions WHERE status = ? ORDER BY id", (READY,)
            ).fetchall()
        return [_submission(r) for r in rows]

    # -- steps ----------------------------------------------------------------------------------
    def step_started(self, submission_id: int, step: str) -> int:
        """Write down that a step is about to talk to HubSpot (before the request is sent)."""
        with self._lock:
            attempt = 1 + int(
                self._db.execute(
                    "SELECT COUNT(*) FROM steps WHERE submission_id = ? AND step = ?", (submission_id, step)
                ).fetchone()[0]
            )
            cur = self._db.execute(
                "INSERT INTO steps (submission_id, step, attempt, started_at, outcome) VALUES (?,?,?,?,?)",
                (submission_id, step, attempt, iso(now()), STARTED),
            )
            self._db.execute("UPDATE submissions SET updated_at = ? WHERE id = ?", (iso(now()), submission_id))
            return int(cur.lastrowid or 0)

    def step_ended(
        self,
        step_id: int,
        outcome: str,
        *,
        http_status: int | None = None,
        message: str | None = None,
        correlation_id: str | None = None,
        next_retry_at: dt.datetime | None = None,
        submission: dict[str, Any] | None = None,
    ) -> None:
        """Write down how a step ended (after HubSpot answered, or failed to).

        ``submission`` holds fields of the submission to update in the same transaction, so that a
        crash never leaves a step written down as done while the submission's state says otherwise.
        """
        with self._lock, dbfile.transaction(self._db):
            self._db.execute(
                "UPDATE steps SET ended_at = ?, outcome = ?, http_status = ?, message = ?, correlation_id = ?,"
                " next_retry_at = ? WHERE id = ?",
                (iso(now()), outcome, http_status, message, correlation_id, iso(next_retry_at), step_id),
            )
            if submission:
                sid = self._db.execute("SELECT submission_id FROM steps WHERE id = ?", (step_id,)).fetchone()
                self.update(int(sid[0]), **submission)

    def steps(self, submission_id: int) -> list[Step]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, submission_id, step, attempt, started_at, ended_at, outcome, http_status, message,"
                " correlation_id, next_retry_at FROM steps WHERE submission_id = ? ORDER BY id",
                (submission_id,),
            ).fetchall()
        return [Step(**dict(r)) for r in rows]

    def open_step(self, submission_id: int, step: str) -> Step | None:
        """The attempt at ``step`` that was started but never written down as ended (a crash)."""
        for s in reversed(self.steps(submission_id)):
            if s.step == step:
                return s if s.outcome == STARTED else None
        return None

    # -- events (tunnel URL changes and other app-wide happenings) ------------------------------
    def add_event(self, kind: str, message: str, data: dict[str, Any] | None = None) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO events (at, kind, message, data) VALUES (?,?,?,?)",
                (iso(now()), kind, message, json.dumps(data or {}, sort_keys=True)),
            )

    def events(self, kind: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        sql = "SELECT at, kind, message, json(data) AS data FROM events"
        args: list[Any] = []
        if kind:
            sql += " WHERE kind = ?"
            args.append(kind)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [{"at": r["at"], "kind": r["kind"], "message": r["message"], "data": json.loads(r["data"])}
                for r in rows]

    # -- names of contacts and owners ----------------------------------------------------------
    def set_labels(self, kind: str, pairs: Sequence[tuple[str, str]]) -> None:
        """Remember the names of contacts or owners (``kind``), so the history shows them after a restart."""
        rows = [(kind, str(i), str(n)) for i, n in pairs if i and n]
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO labels (kind, id, name) VALUES (?,?,?)", rows)

    def labels(self) -> dict[str, str]:
        """Every remembered name, keyed ``"<kind>:<id>"`` (e.g. ``"contact:501"``)."""
        with self._lock:
            rows = self._db.execute("SELECT kind, id, name FROM labels").fetchall()
        return {f"{r['kind']}:{r['id']}": r["name"] for r in rows}

    # -- supervisors' queries -------------------------------------------------------------------
    def count(self, query: Query = Query()) -> int:
        where, args = query.where()
        with self._lock:
            return int(self._db.execute(f"SELECT COUNT(*) FROM submissions{where}", args).fetchone()[0])

    def search(
        self, query: Query = Query(), *, limit: int | None = 200, offset: int = 0, with_steps: bool = False
    ) -> list[Submission]:
        """Submissions matching ``query``, newest first, one page at a time."""
        where, args = query.where()
        sql = f"SELECT {_SUBMISSION_COLUMNS} FROM submissions{where} ORDER BY created_at DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            args = [*args, limit, offset]
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        subs = [_submission(r) for r in rows]
        if with_steps:
            for s in subs:
                s.steps = self.steps(s.id)
        return subs

    def iter_all(self, query: Query = Query(), *, page: int = 1000) -> Iterator[Submission]:
        offset = 0
        while True:
            batch = self.search(query, limit=page, offset=offset, with_steps=True)
            yield from batch
            if len(batch) < page:
                return
            offset += page

    def totals_per_day(self, query: Query = Query()) -> list[dict[str, Any]]:
        where, args = query.where()
        sql = (
            f"SELECT substr(created_at, 1, 10) AS day, status, COUNT(*) AS n FROM submissions{where}"
            " GROUP BY day, status ORDER BY day"
        )
        return self._totals(sql, args, "day")

    def totals_per_agent(self, query: Query = Query()) -> list[dict[str, Any]]:
        where, args = query.where()
        sql = f"SELECT agent, status, COUNT(*) AS n FROM submissions{where} GROUP BY agent, status ORDER BY agent"
        return self._totals(sql, args, "agent")

    def _totals(self, sql: str, args: Sequence[Any], key: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(sql, list(args)).fetchall()
        out: dict[str, dict[str, Any]] = {}
        for r in rows:
            entry = out.setdefault(r[key], {key: r[key], "total": 0, **{s: 0 for s in STATUSES}})
            entry[r["status"]] = r["n"]
            entry["total"] += r["n"]
        return list(out.values())

    def export_csv(self, query: Query = Query(), out: io.TextIOBase | None = None) -> str:
        """CSV of every submission matching ``query`` (all pages); returns the text when ``out`` is None."""
        names = self.labels()
        return write_csv((csv_row(
            sub.details, id=sub.id, created_at=sub.created_at, agent=sub.agent, recording=sub.recording_name,
            status=sub.status, state=sub.state, duration_ms=sub.duration_ms, owner_id=sub.owner_id,
            contact_id=sub.contact_id, call_id=sub.call_id or "", external_id=sub.external_id,
            call_url=call_url(sub) or "", error=sub.error or "", correlation_id=sub.error_correlation_id or "",
            contact=names.get(f"contact:{sub.contact_id}", sub.contact_id),
            owner=names.get(f"owner:{sub.owner_id}", sub.owner_id)) for sub in self.iter_all(query)), out)


def call_url(sub: Submission) -> str | None:
    """The call's page in HubSpot ("Open in HubSpot")."""
    if not (sub.portal_id and sub.call_id):
        return None
    return f"https://app.hubspot.com/contacts/{sub.portal_id}/record/0-48/{sub.call_id}"


def _submission(row: sqlite3.Row) -> Submission:
    data = dict(row)
    data["details"] = json.loads(data["details"])
    return Submission(**data)

