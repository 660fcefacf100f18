"""The desk's pipeline (`desktop_app.sync.pipeline.Pipeline`) run on the relay: its history in PostgreSQL and
its store and server ports over the relay's.

- `TeamHistory` is what ``Pipeline`` calls on its history (``add_submission``, ``get``, ``of_recording``,
  ``update``, ``step_started``, ``step_ended``), on the team database, handing out the same
  ``history.Submission``/``Step`` shapes. Each write is one PostgreSQL transaction; ``step_ended`` writes the
  step's end and the submission's new state in the same one. A worker thread that holds a claim says so
  (`bind`): ``step_started`` then refuses (`LeaseLost`) once the lease is no longer this worker's, so a
  relay that lost its claim (paused past its lease) never sends a request for a submission another relay
  took over.
- `RelayStorePort`: the recording is in the store already (the desk uploaded it, the relay checked its
  SHA-256), so ``store`` is a check that the object exists.
- `RelayServerPort`: the relay's endpoint template, and ``fetched_since`` from the fetch log its endpoint
  writes in PostgreSQL (``fetches``): the endpoint answers only after the row is written, so the log never
  lost a fetch and the answer is never unknown.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from desktop_app.relay.db import DatabaseError, TeamDB
from desktop_app.relay.storage import FileStore, S3Store, StorageError
from desktop_app.server.recordings import StoreError
from desktop_app.sync import history as h


class LeaseLost(RuntimeError):
    """This worker's claim on a submission ran out (another relay may have taken it over)."""


_COLUMNS = (
    "s.id, s.created_at, s.updated_at, a.name AS agent, coalesce(s.object_key, '') AS recording_path,"
    " s.recording_name, s.recording_sha256, s.external_id, s.details, s.state, s.status, s.call_id, s.portal_id,"
    " s.contact_id, s.owner_id, s.error, s.error_status, s.error_correlation_id, s.next_attempt_at, s.ready_at,"
    " s.transcript_checks"
)
_STEP_COLUMNS = ("id, submission_id, step, attempt, started_at, ended_at, outcome, http_status, message,"
                 " correlation_id, next_retry_at")
_TIMES = ("created_at", "updated_at", "next_attempt_at", "ready_at", "started_at", "ended_at", "next_retry_at")
_UPDATABLE = frozenset({
    "state", "status", "call_id", "portal_id", "recording_sha256", "contact_id", "error", "error_status",
    "error_correlation_id", "next_attempt_at", "ready_at", "transcript_checks", "details",
})


def _texts(row: dict[str, Any]) -> dict[str, Any]:
    """Timestamps as the desk's history writes them (ISO 8601, UTC, milliseconds)."""
    return {k: (h.iso(v) if k in _TIMES and isinstance(v, dt.datetime) else v) for k, v in row.items()}


def _moment(value: Any) -> Any:
    return h.parse_iso(value) if isinstance(value, str) else value


class TeamHistory:
    """``Pipeline``'s history on the team database (see the module's description)."""

    def __init__(self, db: TeamDB, relay: str = "") -> None:
        self.db = db
        self.relay = relay
        self._local = threading.local()

    def bind(self, worker: str | None) -> None:
        """Steps started on this thread are this worker's (its lease is checked); None: unbound."""
        self._local.worker = worker

    @property
    def worker(self) -> str | None:
        return getattr(self._local, "worker", None)

    # -- submissions ----------------------------------------------------------------------------
    def add_submission(self, *, recording_path: str, recording_name: str, external_id: str, details: dict[str, Any],
                       agent: str, state: str, recording_sha256: str | None = None, status: str = h.QUEUED,
                       portal_id: str | None = None) -> int:
        """A submission of agent ``agent`` (by name) whose recording is the store's object ``recording_path``."""
        with self.db.connection() as conn, conn.transaction():
            found = conn.execute("SELECT id FROM agents WHERE name = %s AND revoked_at IS NULL", (agent,)).fetchone()
            if found is None:
                raise DatabaseError(f"There is no active agent named {agent!r}.")
            row = conn.execute(
                "INSERT INTO submissions (agent_id, external_id, recording_name, recording_sha256, object_key, details,"
                " title, owner_id, contact_id, from_number, to_number, duration_ms, state, status, portal_id)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (found[0], external_id, recording_name, recording_sha256, recording_path, Jsonb(details),
                 str(details.get("title", "")), str(details.get("owner_id", "") or ""),
                 str(details.get("contact_id", "") or ""), str(details.get("from_number", "") or ""),
                 str(details.get("to_number", "") or ""), int(details.get("duration_ms", 0) or 0), state, status,
                 portal_id),
            ).fetchone()
        assert row is not None
        return int(row[0])

    def get(self, submission_id: int, *, with_steps: bool = True) -> h.Submission | None:
        with self.db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(f"SELECT {_COLUMNS} FROM submissions s JOIN agents a ON a.id = s.agent_id"
                              " WHERE s.id = %s", (submission_id,)).fetchone()
            if row is None:
                return None
            sub = h.Submission(**_texts(row))
            if with_steps:
                steps = cur.execute(f"SELECT {_STEP_COLUMNS} FROM steps WHERE submission_id = %s ORDER BY id",
                                    (submission_id,)).fetchall()
                sub.steps = [h.Step(**_texts(s)) for s in steps]
        return sub

    def of_recording(self, sha256: str, portal_id: str) -> list[h.Submission]:
        with self.db.connection() as conn:
            ids = [r[0] for r in conn.execute(
                "SELECT id FROM submissions WHERE recording_sha256 = %s AND portal_id = %s ORDER BY id DESC",
                (sha256, portal_id)).fetchall()]
        return [s for s in (self.get(i) for i in ids) if s is not None]

    def update(self, submission_id: int, **fields: Any) -> None:
        with self.db.connection() as conn, conn.transaction():
            self._update(conn, submission_id, fields)

    @staticmethod
    def _update(conn: psycopg.Connection[Any], submission_id: int, fields: dict[str, Any]) -> None:
        unknown = set(fields) - _UPDATABLE
        if unknown:
            raise DatabaseError(f"cannot update {sorted(unknown)}")
        values = dict(fields)
        for name in ("next_attempt_at", "ready_at"):
            if name in values:
                values[name] = _moment(values[name])
        if "details" in values:
            details = values["details"]
            values["details"] = Jsonb(details)
            values.update({
                "title": str(details.get("title", "")), "owner_id": str(details.get("owner_id", "") or ""),
                "from_number": str(details.get("from_number", "") or ""),
                "to_number": str(details.get("to_number", "") or ""),
                "duration_ms": int(details.get("duration_ms", 0) or 0),
            })
            values.setdefault("contact_id", str(details.get("contact_id", "") or ""))
        assignments = ", ".join(f"{name} = %s" for name in values)
        cur = conn.execute(f"UPDATE submissions SET {assignments}, updated_at = clock_timestamp() WHERE id = %s",
                           [*values.values(), submission_id])
        if cur.rowcount != 1:
            raise DatabaseError(f"no submission {submission_id}")

    # -- steps ----------------------------------------------------------------------------------
    def step_started(self, submission_id: int, step: str) -> int:
        """Write down that a step is about to talk to HubSpot; refuses (`LeaseLost`) when this thread's worker
        no longer holds the submission's lease."""
        worker = self.worker
        with self.db.connection() as conn, conn.transaction():
            held = conn.execute("SELECT claimed_by, claimed_until > clock_timestamp() FROM submissions"
                                " WHERE id = %s FOR UPDATE", (submission_id,)).fetchone()
            if held is None:
                raise DatabaseError(f"no submission {submission_id}")
            if worker is not None and (held[0] != worker or not held[1]):
                raise LeaseLost(f"submission {submission_id} is no longer claimed by {worker}")
            row = conn.execute(
                "INSERT INTO steps (submission_id, step, attempt, started_at, outcome, relay) VALUES"
                " (%s, %s, 1 + (SELECT count(*) FROM steps WHERE submission_id = %s AND step = %s),"
                " clock_timestamp(), %s, %s) RETURNING id",
                (submission_id, step, submission_id, step, h.STARTED, worker or self.relay),
            ).fetchone()
            conn.execute("UPDATE submissions SET updated_at = clock_timestamp() WHERE id = %s", (submission_id,))
        assert row is not None
        return int(row[0])

    def step_ended(self, step_id: int, outcome: str, *, http_status: int | None = None, message: str | None = None,
                   correlation_id: str | None = None, next_retry_at: dt.datetime | None = None,
                   submission: dict[str, Any] | None = None) -> None:
        """How a step ended, and the submission's new state, in one transaction."""
        with self.db.connection() as conn, conn.transaction():
            row = conn.execute(
                "UPDATE steps SET ended_at = clock_timestamp(), outcome = %s, http_status = %s, message = %s,"
                " correlation_id = %s, next_retry_at = %s WHERE id = %s RETURNING submission_id",
                (outcome, http_status, message, correlation_id, next_retry_at, step_id),
            ).fetchone()
            if row is None:
                raise DatabaseError(f"no step {step_id}")
            if submission:
                self._update(conn, int(row[0]), submission)


@dataclass(frozen=True)
class Stored:
    sha256: str


class RelayStorePort:
    """``StorePort`` over the relay's store: the recording is there already; ``add`` checks that it is."""

    def __init__(self, db: TeamDB, store: S3Store | FileStore, *, attempts: int = 5, pause_s: float = 2.0) -> None:
        self.db, self.store, self.attempts, self.pause_s = db, store, attempts, pause_s

    def add(self, path: Path, *, filename: str | None = None) -> Stored:
        key = path.as_posix()
        with self.db.connection() as conn:
            row = conn.execute("SELECT recording_sha256 FROM submissions WHERE object_key = %s LIMIT 1",
                               (key,)).fetchone()
        if not key or row is None or not row[0]:
            raise FileNotFoundError(key)
        for attempt in range(1, self.attempts + 1):
            try:
                present = self.store.exists(key)
                break
            except StorageError as exc:  # the store unreachable for a moment: it is not a lost recording
                if attempt == self.attempts:
                    raise StoreError(f"The recordings store cannot be reached: {exc}") from None
                time.sleep(self.pause_s)
        if not present:
            raise FileNotFoundError(key)
        return Stored(str(row[0]))

    def share(self, external_id: str, sha256: str, *, app_id: str, external_account_id: str) -> None:
        """Nothing to do: the relay's endpoint finds a recording by its submission's externalId."""


class RelayServerPort:
    """``ServerPort``: the relay's endpoint and the fetch log its endpoint writes in PostgreSQL."""

    def __init__(self, db: TeamDB, template: str) -> None:
        self.db, self.template = db, template

    def recording_endpoint_template(self) -> str:
        return self.template

    def fetched_since(self, external_id: str, since: dt.datetime) -> bool | None:
        return self.db.fetched_since(external_id, since)
