"""Many finished submissions written into a history file at once, for benchmarks, screenshots and the
history page's tests (the pipeline writes one submission at a time, step by step, and is far too slow to
make 100,000 rows)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from desktop_app import dbfile
from desktop_app.errors import UserError

_INSERT = (
    "INSERT INTO submissions (created_at, updated_at, agent, recording_path, recording_name,"
    " external_id, details, title, owner_id, contact_id, from_number, to_number, duration_ms,"
    " state, status, call_id) VALUES (:created_at, :created_at, :agent, :recording_path,"
    " :recording_name, :external_id, :details, :title, :owner_id, :contact_id, :from_number,"
    " :to_number, :duration_ms, :state, :status, :call_id)"
)


def insert_submissions(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (one dict per submission, keys as in ``_INSERT``; ``details`` is JSON text) into the
    history file ``path`` in one transaction. The file must exist (open a ``History`` on it first); a
    ``History`` open on it sees the rows at its next read."""
    db = dbfile.connect(path, what="history file", error=UserError)
    try:
        db.execute("PRAGMA busy_timeout=30000")
        with dbfile.transaction(db, "IMMEDIATE"):
            db.executemany(_INSERT, rows)
    finally:
        db.close()
