"""The sandbox's objects: in memory, written through to a SQLite file when one is given.

Every collection (calls, contacts, owners, associations, settings, tokens, ...) is a dict of JSON
values keyed by id. With a ``state_file`` each change is written at once (one row per object), so a
sandbox started again on the same file finds everything as it was, credentials included.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

COLLECTIONS = (
    "calls", "contacts", "owners", "companies", "deals", "tickets", "associations", "settings", "calling_settings",
    "tokens", "refresh_tokens", "auth_codes", "transcripts", "meta",
)


class Store:
    """Collections of JSON objects. All access goes through ``lock`` (an RLock) held by the caller
    for compound changes; single calls lock themselves."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.lock = threading.RLock()
        self._data: dict[str, dict[str, Any]] = {name: {} for name in COLLECTIONS}
        self._db: sqlite3.Connection | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS objects (kind TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL,"
                " PRIMARY KEY (kind, id))"
            )
            for kind, oid, data in self._db.execute("SELECT kind, id, data FROM objects"):
                if kind in self._data:
                    self._data[kind][oid] = json.loads(data)

    @property
    def persistent(self) -> bool:
        return self._db is not None

    def is_empty(self) -> bool:
        with self.lock:
            return not any(self._data.values())

    def get(self, kind: str, oid: str) -> Any:
        with self.lock:
            return self._data[kind].get(str(oid))

    def put(self, kind: str, oid: str, value: Any) -> None:
        with self.lock:
            self._data[kind][str(oid)] = value
            if self._db is not None:
                self._db.execute("INSERT OR REPLACE INTO objects (kind, id, data) VALUES (?, ?, ?)",
                                 (kind, str(oid), json.dumps(value, sort_keys=True)))

    def delete(self, kind: str, oid: str) -> None:
        with self.lock:
            self._data[kind].pop(str(oid), None)
            if self._db is not None:
                self._db.execute("DELETE FROM objects WHERE kind = ? AND id = ?", (kind, str(oid)))

    def values(self, kind: str) -> list[Any]:
        with self.lock:
            return list(self._data[kind].values())

    def items(self, kind: str) -> Iterator[tuple[str, Any]]:
        with self.lock:
            return iter(list(self._data[kind].items()))

    def next_id(self, counter: str, start: int) -> int:
        """A new numeric id for ``counter`` (kept in ``meta``, so ids never repeat across restarts)."""
        with self.lock:
            current = self.get("meta", f"next:{counter}")
            value = int(current) if current is not None else start
            self.put("meta", f"next:{counter}", value + 1)
            return value

    def close(self) -> None:
        with self.lock:
            if self._db is not None:
                self._db.close()
                self._db = None
