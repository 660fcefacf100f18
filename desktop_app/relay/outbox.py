"""The team desk's outbox: every submission a joined desk makes is written down here (``team-outbox.sqlite3``
in the data directory) BEFORE anything is sent to the relay, with its externalId generated once, here.

Sending it again (after the relay was unreachable, or the desk was killed mid-upload) sends the same
externalId, so the relay answers the submission it already has instead of making a second one
(`RelayClient.begin` with ``external_id``; ``complete`` with the same one is idempotent too), and the
relay resumes the store's multipart upload where it stopped: nothing lost, nothing sent twice.

A row is ``pending`` until the relay accepted it (then ``sent``, with the relay's answer), or
``refused`` when the relay said no for a reason sending again cannot fix (a 4xx other than 401/408/429).
The same recording (SHA-256) with the same call details while still pending is the same row.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from desktop_app import dbfile, paths
from desktop_app.errors import UserError

PENDING, SENT, REFUSED = "pending", "sent", "refused"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    external_id TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    call TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    relay_status TEXT
)
"""


class OutboxError(UserError, RuntimeError):
    pass


@dataclass(frozen=True)
class Entry:
    id: int
    external_id: str
    path: str
    sha256: str
    size: int
    call: dict[str, Any]
    state: str
    attempts: int
    last_error: str | None
    relay_status: str | None

    @property
    def name(self) -> str:
        return Path(self.path).name


def outbox_file() -> Path:
    return paths.data_dir() / "team-outbox.sqlite3"


def new_external_id() -> str:
    return f"callrelay-{uuid.uuid4()}"


class Outbox:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or outbox_file()
        self._lock = threading.Lock()
        self._db = dbfile.connect(self.path, what="team outbox", error=OutboxError)
        try:
            dbfile.check_version(self._db, 1, own_tables=("outbox",))
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA busy_timeout=30000")
            self._db.execute(_SCHEMA)
            self._db.execute("PRAGMA user_version = 1")
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    _COLUMNS = "id, external_id, path, sha256, size, call, state, attempts, last_error, relay_status"

    def _entry(self, row: Any) -> Entry:
        values = list(row)
        values[5] = json.loads(values[5])
        return Entry(*values)

    def add(self, path: Path, sha256: str, size: int, call: dict[str, Any]) -> Entry:
        """Write a submission down (its externalId made here, once); the same recording with the same
        details still pending is the entry already written, not a second one."""
        text = json.dumps({k: v for k, v in call.items() if k != "external_id"}, sort_keys=True)
        with self._lock, dbfile.transaction(self._db):
            row = self._db.execute(f"SELECT {self._COLUMNS} FROM outbox WHERE sha256 = ? AND size = ? AND call = ?"
                                   " AND state = ? ORDER BY id LIMIT 1", (sha256, size, text, PENDING)).fetchone()
            if row is None:
                self._db.execute("INSERT INTO outbox (external_id, path, sha256, size, call) VALUES (?,?,?,?,?)",
                                 (new_external_id(), str(Path(path).resolve()), sha256, size, text))
                row = self._db.execute(f"SELECT {self._COLUMNS} FROM outbox WHERE id = last_insert_rowid()").fetchone()
        return self._entry(row)

    def sent_before(self, sha256: str) -> Entry | None:
        """The newest entry of this recording the relay accepted (``callrelay upload`` skips it)."""
        with self._lock:
            row = self._db.execute(f"SELECT {self._COLUMNS} FROM outbox WHERE sha256 = ? AND state = ?"
                                   " ORDER BY id DESC LIMIT 1", (sha256, SENT)).fetchone()
        return None if row is None else self._entry(row)

    def pending(self) -> list[Entry]:
        with self._lock:
            rows = self._db.execute(f"SELECT {self._COLUMNS} FROM outbox WHERE state = ? ORDER BY id",
                                    (PENDING,)).fetchall()
        return [self._entry(r) for r in rows]

    def get(self, external_id: str) -> Entry | None:
        with self._lock:
            row = self._db.execute(f"SELECT {self._COLUMNS} FROM outbox WHERE external_id = ?",
                                   (external_id,)).fetchone()
        return None if row is None else self._entry(row)

    def attempted(self, external_id: str, error: str | None) -> None:
        with self._lock:
            self._db.execute("UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE external_id = ?",
                             (error, external_id))

    def mark(self, external_id: str, state: str, *, relay_status: str | None = None, error: str | None = None) -> None:
        with self._lock:
            self._db.execute("UPDATE outbox SET state = ?, relay_status = ?, last_error = ? WHERE external_id = ?",
                             (state, relay_status, error, external_id))
