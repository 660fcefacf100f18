"""The rate limiter: windows, headers, 429 pauses, the daily stop, and a 500-request burst against the
sandbox that never meets a 429 (time scaled down: the sandbox allows 30 per 0.25 s instead of 100 per
10 s, slower than the sandbox can answer, so a burst without the limiter does meet 429s)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from desktop_app import USER_AGENT
from desktop_app.hubspot.client import HubSpotClient, limiter_for
from desktop_app.hubspot.config import HubSpotConfig, config_from_env
from desktop_app.hubspot.errors import HubSpotError
from desktop_app.hubspot.ratelimit import SEARCH, RateLimiter, shared_limiter
from desktop_app.sandbox import RateLimits, Sandbox


def run(limiter: RateLimiter, n: int, kind: str = "standard", headers: dict[str, str] | None = None) -> list[float]:
    """Acquire and release ``n`` times; the acquisition times."""
    times = []
    for _ in range(n):
        ticket = limiter.acquire(kind)
        times.append(time.monotonic())
        limiter.release(ticket, status=200, headers=headers)
    return times


def max_in_window(times: list[float], interval: float) -> int:
    times = sorted(times)
    return max(sum(1 for u in times if t <= u < t + interval) for t in times)


def test_window_allows_the_limit_then_waits() -> None:
    limiter = RateLimiter(limit=5, interval=0.2)
    times = run(limiter, 15)
    assert max_in_window(times, 0.2) <= 5
    assert times[-1] - times[0] >= 0.39  # two full windows had to pass
    assert limiter.waited_s > 0


def test_threads_share_one_window() -> None:
    limiter = RateLimiter(limit=6, interval=0.15)
    stamps: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for t in run(limiter, 8):
            with lock:
                stamps.append(t)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(stamps) == 32 and max_in_window(stamps, 0.15) <= 6


def test_headers_set_the_limit_and_the_interval() -> None:
    limiter = RateLimiter(limit=100, interval=10.0)
    run(limiter, 1, headers={"X-HubSpot-RateLimit-Max": "3", "X-HubSpot-RateLimit-Interval-Milliseconds": "150",
                             "X-HubSpot-RateLimit-Remaining": "2"})
    assert (limiter.limit, limiter.interval) == (3, 0.15)
    times = run(limiter, 6)
    assert max_in_window(times, 0.15) <= 3 and times[-1] - times[0] >= 0.14


def test_use_by_another_program_counts() -> None:
    """The server says fewer remain than we used: the difference is someone else's, and counts."""
    limiter = RateLimiter(limit=10, interval=0.3)
    start = time.monotonic()
    run(limiter, 1, headers={"X-HubSpot-RateLimit-Max": "10", "X-HubSpot-RateLimit-Remaining": "2"})
    quick = run(limiter, 2)
    assert quick[-1] - start < 0.1  # the two that remain go at once …
    late = run(limiter, 1)
    assert late[0] - start >= 0.29  # … the next waits for the window


def test_secondly_429_pauses_every_thread_for_retry_after() -> None:
    limiter = RateLimiter(limit=100, interval=10.0)
    ticket = limiter.acquire()
    limiter.release(ticket, status=429, policy_name="SECONDLY", retry_after=0.3)
    started = time.monotonic()
    with ThreadPoolExecutor(3) as pool:
        waits = list(pool.map(lambda _: run(limiter, 1)[0] - started, range(3)))
    assert min(waits) >= 0.29 and limiter.pauses_429 == 1


def test_search_has_its_own_window() -> None:
    limiter = RateLimiter(limit=100, interval=10.0, search_limit=2, search_interval=0.2)
    searches = run(limiter, 5, SEARCH)
    assert max_in_window(searches, 0.2) <= 2 and searches[-1] - searches[0] >= 0.39
    started = time.monotonic()
    run(limiter, 20)  # the standard window is not held up by searches
    assert time.monotonic() - started < 0.1


def test_ten_second_headers_never_widen_the_search_window() -> None:
    """A search answer carrying the ten-second window's headers (100 per 10 s) leaves the search window
    at its own limit: 50 searches still go at most 4 per interval."""
    limiter = RateLimiter(limit=100, interval=10.0, search_limit=4, search_interval=0.1)
    ten_second = {"X-HubSpot-RateLimit-Interval-Milliseconds": "10000", "X-HubSpot-RateLimit-Max": "100",
                  "X-HubSpot-RateLimit-Remaining": "99", "X-HubSpot-RateLimit-Daily-Remaining": "1000"}
    run(limiter, 1, "standard", headers=ten_second)
    searches = run(limiter, 50, SEARCH, headers=ten_second)
    assert (limiter.search_limit, limiter._windows[SEARCH].interval) == (4, 0.1)
    assert max_in_window(searches, 0.1) <= 4 and searches[-1] - searches[0] >= 1.1
    assert limiter.daily_remaining <= 1000  # the daily count is the account's, whichever answer told it


def test_daily_budget_stops_with_a_clear_error() -> None:
    limiter = RateLimiter(daily_limit=3)
    run(limiter, 3)
    with pytest.raises(HubSpotError) as info:
        limiter.acquire()
    err = info.value
    assert err.policy_name == "DAILY" and not err.retryable
    assert err.retry_after is not None and 0 < err.retry_after <= 86400
    assert "daily API limit" in err.agent_message


def test_daily_remaining_header_stops_and_a_new_day_resumes() -> None:
    now = [86400 * 20000 + 86399.5]  # half a second before UTC midnight
    limiter = RateLimiter(daily_limit=1000, wall_clock=lambda: now[0])
    run(limiter, 1, headers={"X-HubSpot-RateLimit-Daily": "1000", "X-HubSpot-RateLimit-Daily-Remaining": "0"})
    with pytest.raises(HubSpotError) as info:
        limiter.acquire()
    assert info.value.retry_after == pytest.approx(0.5)
    now[0] += 1.0  # the day ends
    run(limiter, 1)
    assert limiter.daily_remaining == 999


def test_the_day_follows_the_account_time_zone() -> None:
    now = 86400 * 20000 + 3600.0  # 01:00 UTC
    limiter = RateLimiter(utc_offset_s=-5 * 3600, wall_clock=lambda: now)  # 20:00 the day before in New York
    assert limiter.seconds_until_daily_reset() == pytest.approx(4 * 3600)


def test_one_limiter_per_account() -> None:
    a = HubSpotConfig(api_url="https://api.hubapi.com", access_token="t1", portal_id="5")
    b = HubSpotConfig(api_url="https://api.hubapi.com", access_token="t2", portal_id="5")
    c = HubSpotConfig(api_url="https://api.hubapi.com", access_token="t3", portal_id="6")
    assert limiter_for(a) is limiter_for(b) and limiter_for(a) is not limiter_for(c)
    made = RateLimiter()
    assert shared_limiter("test-key-x", lambda: made) is shared_limiter("test-key-x", RateLimiter) is made
    assert HubSpotClient(a).limiter is HubSpotClient(b).limiter


@pytest.fixture
def fast_sandbox(contract: Any) -> Iterator[Sandbox]:
    sb = Sandbox(port=0, limits=RateLimits(per_interval=30, interval_ms=250)).start()
    contract.watch(sb.url)
    yield sb
    sb.stop()


def test_a_burst_of_500_never_meets_a_429(fast_sandbox: Sandbox) -> None:
    client = HubSpotClient(config_from_env(fast_sandbox.env()), limiter=RateLimiter(limit=100, interval=10.0))
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: client.account_details().portal_id, range(500)))
    elapsed = time.monotonic() - started
    client.close()
    assert results == [fast_sandbox.credentials.portal_id] * 500
    statuses = [r.status for r in fast_sandbox.requests]
    assert len(statuses) == 500 and statuses.count(429) == 0
    assert client.limiter.pauses_429 == 0
    assert (client.limiter.limit, client.limiter.interval) == (30, 0.25)  # taken from the headers
    assert elapsed >= 16 * 0.25 - 0.05  # 500 at 30 per 0.25 s: at least sixteen windows had to pass


def test_without_the_limiter_the_same_burst_meets_429s(fast_sandbox: Sandbox) -> None:
    """The control: the sandbox does enforce the limit, so the test above can fail."""
    session = requests.Session()
    headers = {"Authorization": f"Bearer {fast_sandbox.credentials.access_token}", "User-Agent": USER_AGENT}
    url = fast_sandbox.url + "/account-info/v3/details"
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: session.get(url, headers=headers, timeout=5).status_code, range(200)))
    session.close()
    assert statuses.count(429) > 0


def test_our_own_requests_in_flight_are_not_taken_for_another_programs_use() -> None:
    """Three requests go out; the third is answered first, its headers counting all three (each answer
    tells the server's count when that request arrived). Nothing of that count is another program's,
    so there is room for exactly ``limit - 3`` more in the window (counting answered requests only
    would take the two in flight for another program's and leave room for 5)."""
    clock = [100.0]
    limiter = RateLimiter(limit=10, interval=10.0, clock=lambda: clock[0])
    tickets = []
    for _ in range(3):
        tickets.append(limiter.acquire())
        clock[0] += 0.01
    headers = {"X-HubSpot-RateLimit-Max": "10", "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
               "X-HubSpot-RateLimit-Remaining": "7"}
    limiter.release(tickets[2], status=200, headers=headers)
    limiter.release(tickets[0], status=200, headers={**headers, "X-HubSpot-RateLimit-Remaining": "9"})
    limiter.release(tickets[1], status=200, headers={**headers, "X-HubSpot-RateLimit-Remaining": "8"})
    more = 0
    while more < 20:
        waiter = threading.Thread(target=limiter.acquire, daemon=True)
        waiter.start()
        waiter.join(timeout=0.2)
        if waiter.is_alive():
            break  # the window is full: acquire waits
        more += 1
    assert more == 7
    clock[0] += 11  # let the blocked waiter through before the test ends
    with limiter._cond:  # noqa: SLF001 - wake it to see the new time
        limiter._cond.notify_all()
