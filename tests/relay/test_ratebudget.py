"""One HubSpot rate budget for every relay of a team: `RateLimiter`s with a `PgBudget` on the same PostgreSQL
database (each with its own pool, as two relay processes have) never let more than the limit go per window
between them, and a 429's Retry-After seen by one holds the others back."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from desktop_app.hubspot.ratelimit import STANDARD, RateLimiter
from desktop_app.relay.db import TeamDB
from desktop_app.relay.ratebudget import PgBudget

LIMIT, INTERVAL = 8, 0.6


@pytest.fixture
def relays(database_url: str) -> Iterator[list[RateLimiter]]:
    dbs = [TeamDB(database_url, max_size=4) for _ in range(2)]
    try:
        yield [RateLimiter(limit=LIMIT, interval=INTERVAL, budget=PgBudget(db)) for db in dbs]
    finally:
        for db in dbs:
            db.close()


def test_limiters_sharing_a_budget_stay_under_the_limit_together(relays: list[RateLimiter]) -> None:
    sent: list[float] = []
    lock = threading.Lock()

    def requests(limiter: RateLimiter) -> None:
        for _ in range(12):
            ticket = limiter.acquire(STANDARD)
            with lock:
                sent.append(time.monotonic())
            time.sleep(0.005)  # the request under way
            limiter.release(ticket, status=200)

    threads = [threading.Thread(target=requests, args=(r,)) for r in relays for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    sent.sort()
    assert len(sent) == 48
    # any LIMIT + 1 requests in a row span at least one interval (each slot counts from its answer)
    spans = [sent[i + LIMIT] - sent[i] for i in range(len(sent) - LIMIT)]
    assert min(spans) >= INTERVAL * 0.95, min(spans)
    # and the budget is used, not wasted: 48 requests in about 48 / LIMIT intervals
    assert sent[-1] - sent[0] < (48 / LIMIT + 3) * INTERVAL


def test_a_429_seen_by_one_relay_pauses_the_other(relays: list[RateLimiter]) -> None:
    one, other = relays
    ticket = one.acquire(STANDARD)
    one.release(ticket, status=429, policy_name="SECONDLY", retry_after=1.0)
    started = time.monotonic()
    other.release(other.acquire(STANDARD), status=200)
    assert time.monotonic() - started >= 0.9
