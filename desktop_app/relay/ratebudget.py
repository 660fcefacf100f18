"""HubSpot's per-app rate limit shared by every relay of a team, through PostgreSQL.

`PgBudget` is the ``SharedBudget`` of `desktop_app.hubspot.ratelimit.RateLimiter`: each request takes a slot
in ``rate_slots`` before it goes, under a transaction-scoped advisory lock per window (so two relays never
both take the last slot), and gives it back with its answer. A slot counts from its answer until
``interval`` seconds later, as the desk's limiter counts (the server saw the request somewhere between
sending and answering, so this never undercounts); a slot never given back (its relay killed mid-request)
counts for ``in_flight_s`` after it was taken. A 429's ``Retry-After`` is written to ``rate_pauses`` and holds
every relay back. Times are the database server's (``clock_timestamp()``), one clock for every relay.

While the database cannot be reached, ``take`` waits for it (up to ``outage_s``): no request goes out
uncounted.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import zlib
from collections.abc import Callable
from typing import TypeVar

from desktop_app.relay.db import DatabaseError, TeamDB

log = logging.getLogger("desktop_app.relay")

T = TypeVar("T")
LOCK_CLASS = 0x6372  # pg_advisory_xact_lock(class, key): "cr"; the key is the window's name's CRC


class PgBudget:
    def __init__(self, db: TeamDB, *, in_flight_s: float = 40.0, outage_s: float = 120.0) -> None:
        self.db = db
        self.in_flight = dt.timedelta(seconds=in_flight_s)
        self.outage_s = outage_s
        self._takes = 0
        self._lock = threading.Lock()

    def _retrying(self, what: str, work: Callable[[], T]) -> T:
        deadline = time.monotonic() + self.outage_s
        while True:
            try:
                return work()
            except DatabaseError as exc:
                if time.monotonic() >= deadline:
                    raise
                log.info("rate budget: %s waits for the database: %s", what, exc)
                time.sleep(1.0)

    def take(self, kind: str, limit: int, interval: float) -> tuple[object | None, float]:
        with self._lock:
            self._takes += 1
            tidy = self._takes % 200 == 1
        return self._retrying("a request", lambda: self._take(kind, limit, interval, tidy))

    def _take(self, kind: str, limit: int, interval: float, tidy: bool) -> tuple[object | None, float]:
        with self.db.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_CLASS, zlib.crc32(kind.encode()) & 0x7FFFFFFF))
            learned = conn.execute("SELECT max_requests, interval_s FROM rate_windows WHERE kind = %s",
                                   (kind,)).fetchone()
            if learned is not None:  # what HubSpot told a relay of the team, over this one's configured window
                limit, interval = int(learned[0]), float(learned[1])
            window = dt.timedelta(seconds=interval)
            if tidy:
                conn.execute("DELETE FROM rate_slots WHERE kind = %s AND (done_at < clock_timestamp() - %s"
                             " OR (done_at IS NULL AND sent_at < clock_timestamp() - %s))",
                             (kind, window + dt.timedelta(minutes=1), self.in_flight + window))
            paused = conn.execute("SELECT extract(epoch FROM until - clock_timestamp()) FROM rate_pauses"
                                  " WHERE kind = %s AND until > clock_timestamp()", (kind,)).fetchone()
            if paused is not None:
                return None, float(paused[0])
            ends = [float(r[0]) for r in conn.execute(
                "SELECT extract(epoch FROM e - clock_timestamp()) FROM ("
                " SELECT done_at AS e FROM rate_slots WHERE kind = %(kind)s AND done_at > clock_timestamp() - %(w)s"
                " UNION ALL"
                " SELECT sent_at + %(f)s FROM rate_slots WHERE kind = %(kind)s AND done_at IS NULL"
                "  AND sent_at + %(f)s > clock_timestamp() - %(w)s) x ORDER BY e",
                {"kind": kind, "w": window, "f": self.in_flight}).fetchall()]
            if len(ends) >= limit:
                return None, max(0.001, ends[len(ends) - limit] + interval)
            row = conn.execute("INSERT INTO rate_slots (kind) VALUES (%s) RETURNING id", (kind,)).fetchone()
        assert row is not None
        return int(row[0]), 0.0

    def give_back(self, slot: object) -> None:
        def work() -> None:
            with self.db.connection() as conn:
                conn.execute("UPDATE rate_slots SET done_at = clock_timestamp() WHERE id = %s", (slot,))

        try:
            self._retrying("an answer", work)
        except DatabaseError:  # the slot then counts as in flight until in_flight_s: never too few
            log.warning("rate budget: an answer could not be written down; its slot counts a while longer")

    def learned(self, kind: str, limit: int, interval: float) -> None:
        try:
            with self.db.connection() as conn:
                conn.execute(
                    "INSERT INTO rate_windows (kind, max_requests, interval_s) VALUES (%s, %s, %s) ON CONFLICT (kind)"
                    " DO UPDATE SET max_requests = excluded.max_requests, interval_s = excluded.interval_s,"
                    " learned_at = clock_timestamp()", (kind, limit, interval))
        except DatabaseError:  # the next change of the window writes it; until then each relay counts by its own
            log.warning("rate budget: the window HubSpot's headers said could not be shared with the other relays")

    def pause(self, kind: str, seconds: float) -> None:
        def work() -> None:
            with self.db.connection() as conn:
                conn.execute(
                    "INSERT INTO rate_pauses (kind, until) VALUES (%s, clock_timestamp() + %s) ON CONFLICT (kind)"
                    " DO UPDATE SET until = greatest(rate_pauses.until, excluded.until)",
                    (kind, dt.timedelta(seconds=seconds)))

        try:
            self._retrying("a pause", work)
        except DatabaseError:
            log.warning("rate budget: a 429's pause could not be shared with the other relays")
