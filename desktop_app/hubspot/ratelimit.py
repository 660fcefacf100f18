"""HubSpot's rate limits, kept on our side so a burst never meets a 429.

One ``RateLimiter`` per account, shared by every thread (``shared_limiter``). It keeps:

- a window of ``limit`` requests per ``interval`` seconds (HubSpot: 100/190/250 per 10 s by tier);
- a separate window for the search endpoints (about 4 per second per token; HubSpot's
  descriptions exempt them from the ten-second window; the headers their answers may carry describe
  the ten-second window, so they never adjust the search window);
- a daily budget, which resets at midnight in the account's time zone.

Each request holds a slot from ``acquire`` until its answer arrives; the slot then counts until
``interval`` seconds after the answer (the server saw the request somewhere between the two, so
this never undercounts). Each answer's headers tell the server's count when the request arrived,
which includes our own requests sent before it, answered or not. Each answer's ``X-HubSpot-RateLimit-*`` headers adjust the limits and
add the use that other programs made of the same account. A 429 ``SECONDLY`` pauses every thread
until its ``Retry-After``; a ``DAILY`` stop raises at once rather than retrying every second.

**Backends.** The windows are counted in this process by default (the desk). A ``SharedBudget`` given as
``budget`` counts them where several processes see them instead (the relays of a team, in PostgreSQL:
``desktop_app.relay.ratebudget``): each request takes a slot there before it goes, gives it back with its
answer's moment, and a 429's ``Retry-After`` pauses every process sharing it. The limits themselves (and
the answers' headers that adjust them) and the daily budget stay in this process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from desktop_app.hubspot.errors import DAILY, DAILY_LIMIT, RATE_LIMITS, HubSpotError

STANDARD = "standard"
SEARCH = "search"

H_INTERVAL = "X-HubSpot-RateLimit-Interval-Milliseconds"
H_MAX = "X-HubSpot-RateLimit-Max"
H_REMAINING = "X-HubSpot-RateLimit-Remaining"
H_DAILY = "X-HubSpot-RateLimit-Daily"
H_DAILY_REMAINING = "X-HubSpot-RateLimit-Daily-Remaining"


@dataclass
class _Slot:
    sent_at: float = float("-inf")  # -inf: another program's request, known from the headers
    done_at: float | None = None  # None while the request is in flight


@dataclass
class _Window:
    limit: int
    interval: float
    slots: list[_Slot] = field(default_factory=list)
    blocked_until: float = 0.0

    def prune(self, now: float) -> None:
        horizon = now - self.interval
        self.slots = [s for s in self.slots if s.done_at is None or s.done_at > horizon]

    def used(self) -> int:
        return len(self.slots)

    def wait_needed(self, now: float) -> float:
        """Seconds until this window has room (0 when it has room now)."""
        if now < self.blocked_until:
            return self.blocked_until - now
        self.prune(now)
        if self.used() < self.limit:
            return 0.0
        finished = sorted(s.done_at for s in self.slots if s.done_at is not None)
        excess = self.used() - self.limit  # this many must expire before one more may go
        if excess < len(finished):
            return max(0.001, finished[excess] + self.interval - now)
        return 0.05  # all in flight: wait for an answer (release notifies)


@dataclass
class Ticket:
    """A request's hold on the limiter, from ``acquire`` to ``release``."""

    kind: str
    slot: _Slot
    shared: object | None = None  # the shared budget's slot, when the limiter has one


class SharedBudget(Protocol):
    """Rate windows counted where several processes draw from them (see the module's description)."""

    def take(self, kind: str, limit: int, interval: float) -> tuple[object | None, float]:
        """A slot of the window ``kind`` (``limit`` requests per ``interval`` seconds, counted from each
        answer), or None and the seconds to wait before asking again."""

    def give_back(self, slot: object) -> None:
        """The request that held ``slot`` has its answer (or failed): its slot counts from now."""

    def pause(self, kind: str, seconds: float) -> None:
        """A 429: no process takes a slot of ``kind`` for ``seconds``."""

    def learned(self, kind: str, limit: int, interval: float) -> None:
        """An answer's headers changed the window ``kind`` to ``limit`` per ``interval`` seconds: every process
        counts by it (one started later still holds the configured window until its own first answer)."""


class RateLimiter:
    """Thread-safe limiter for one HubSpot account (see the module's description)."""

    def __init__(
        self,
        *,
        limit: int = 100,
        interval: float = 10.0,
        daily_limit: int = 250_000,
        search_limit: int = 4,
        search_interval: float = 1.0,
        utc_offset_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        budget: SharedBudget | None = None,
    ) -> None:
        if limit < 1 or interval <= 0 or search_limit < 1 or search_interval <= 0 or daily_limit < 1:
            raise ValueError("rate limits must be positive")
        self._clock = clock
        self._wall = wall_clock
        self._cond = threading.Condition()
        self._windows = {
            STANDARD: _Window(limit, interval),
            SEARCH: _Window(search_limit, search_interval),
        }
        self.daily_limit = daily_limit
        self.utc_offset_s = utc_offset_s
        self._day = self._day_key()
        self._daily_used = 0
        self._daily_remaining: int | None = None
        self._daily_stopped = False
        self.waited_s = 0.0  # total time threads spent waiting here (for reports and benchmarks)
        self.pauses_429 = 0
        self.budget = budget

    # --- what the limits are now ---------------------------------------------------------------
    @property
    def limit(self) -> int:
        return self._windows[STANDARD].limit

    @property
    def interval(self) -> float:
        return self._windows[STANDARD].interval

    @property
    def search_limit(self) -> int:
        return self._windows[SEARCH].limit

    @property
    def daily_remaining(self) -> int:
        with self._cond:
            self._roll_day()
            local = self.daily_limit - self._daily_used
            return local if self._daily_remaining is None else min(local, self._daily_remaining)

    def seconds_until_daily_reset(self) -> float:
        now = self._wall() + self.utc_offset_s
        midnight = (int(now // 86400) + 1) * 86400
        return midnight - now

    def _day_key(self) -> int:
        return int((self._wall() + self.utc_offset_s) // 86400)

    def _roll_day(self) -> None:
        day = self._day_key()
        if day != self._day:
            self._day = day
            self._daily_used = 0
            self._daily_remaining = None
            self._daily_stopped = False

    def _daily_error(self, status: int | None = None) -> HubSpotError:
        wait = self.seconds_until_daily_reset()
        hours = wait / 3600
        return HubSpotError(
            f"daily API limit reached ({self.daily_limit} requests); resets in {hours:.1f} h",
            status=status, category=RATE_LIMITS if status else DAILY_LIMIT, policy_name=DAILY,
            retryable=False, retry_after=wait,
            agent_message=("The HubSpot account's daily API limit is used up; sending resumes after "
                           f"midnight in the account's time zone (in about {hours:.1f} h)."),
        )

    # --- the two calls around each request ------------------------------------------------------
    def acquire(self, kind: str = STANDARD) -> Ticket:
        """Wait until a request of ``kind`` may go; raise ``HubSpotError`` (DAILY) when the day's
        budget is used up."""
        if self.budget is not None:
            return self._acquire_shared(kind)
        window = self._windows[kind]
        started = self._clock()
        with self._cond:
            while True:
                self._roll_day()
                if self._daily_stopped or self._daily_used >= self.daily_limit or (
                        self._daily_remaining is not None and self._daily_remaining <= 0):
                    self._daily_stopped = True
                    raise self._daily_error()
                now = self._clock()
                wait = window.wait_needed(now)
                if wait <= 0:
                    break
                self._cond.wait(timeout=wait)
            slot = _Slot(sent_at=self._clock())
            window.slots.append(slot)
            self._daily_used += 1
            if self._daily_remaining is not None:
                self._daily_remaining -= 1
            self.waited_s += self._clock() - started
        return Ticket(kind, slot)

    def _count_day(self) -> None:
        """Under ``_cond``: one more request today, or the DAILY error when the day's budget is used up."""
        self._roll_day()
        if self._daily_stopped or self._daily_used >= self.daily_limit or (
                self._daily_remaining is not None and self._daily_remaining <= 0):
            self._daily_stopped = True
            raise self._daily_error()
        self._daily_used += 1
        if self._daily_remaining is not None:
            self._daily_remaining -= 1

    def _acquire_shared(self, kind: str) -> Ticket:
        """``acquire`` with a shared budget: the window's slot is taken there (waiting outside any lock)."""
        assert self.budget is not None
        window = self._windows[kind]
        started = self._clock()
        while True:
            with self._cond:
                if self._daily_stopped:
                    raise self._daily_error()
                wait = max(0.0, window.blocked_until - self._clock())
                limit, interval = window.limit, window.interval
            if wait <= 0:
                shared, wait = self.budget.take(kind, limit, interval)
                if shared is not None:
                    break
            time.sleep(min(max(wait, 0.001), 1.0))
        with self._cond:
            try:
                self._count_day()
            except HubSpotError:
                self.budget.give_back(shared)
                raise
            self.waited_s += self._clock() - started
        return Ticket(kind, _Slot(sent_at=self._clock()), shared)

    def release(self, ticket: Ticket, *, status: int | None = None,
                headers: Mapping[str, str] | None = None, policy_name: str | None = None,
                retry_after: float | None = None) -> None:
        """Record the answer (or its absence) of a request that held ``ticket``."""
        if ticket.shared is not None and self.budget is not None:
            self.budget.give_back(ticket.shared)
        with self._cond:
            now = self._clock()
            # The server counted the request at some moment between sending and the answer; counting
            # the slot from the answer never undercounts (a busy server may read a request late).
            ticket.slot.done_at = now
            window = self._windows[ticket.kind]
            learned = None
            if headers:
                before = (window.limit, window.interval)
                self._adjust(headers, now, ticket.kind, ticket.slot.sent_at)
                if (window.limit, window.interval) != before:
                    learned = (window.limit, window.interval)
            pause = 0.0
            if status == 429:
                if policy_name == DAILY:
                    self._daily_stopped = True
                else:
                    self.pauses_429 += 1
                    pause = retry_after if retry_after is not None else window.interval
                    window.blocked_until = max(window.blocked_until, now + pause)
            self._cond.notify_all()
        if pause > 0 and self.budget is not None:
            self.budget.pause(ticket.kind, pause)
        if learned is not None and self.budget is not None:
            self.budget.learned(ticket.kind, *learned)

    def _adjust(self, headers: Mapping[str, str], now: float, kind: str, sent_at: float) -> None:
        def num(name: str) -> int | None:
            value = headers.get(name)
            try:
                return int(value) if value is not None else None
            except ValueError:
                return None

        window = self._windows[kind]
        interval_ms, maximum, remaining = num(H_INTERVAL), num(H_MAX), num(H_REMAINING)
        # Each window takes only its own headers. HubSpot's headers describe the ten-second window,
        # searches' answers included: they say nothing about the search window's per-second limit, and
        # taking them would widen it (to 100 per 10 s). Only headers of the search window's own interval
        # (none are documented) would adjust it.
        if kind == SEARCH and (interval_ms is None or interval_ms / 1000.0 != window.interval):
            interval_ms = maximum = remaining = None
        if interval_ms and interval_ms > 0:
            window.interval = interval_ms / 1000.0
        if maximum and maximum > 0:
            window.limit = maximum
        if remaining is not None and self.budget is None:  # a shared budget counts every relay's requests
            # The answer tells the server's count when this request arrived: it includes our requests
            # sent before this one, whether or not their answers are back yet (counting only answered
            # ones would take our own requests in flight for other programs' use, and hold back too much).
            window.prune(now)
            server_used = window.limit - max(0, remaining)
            ours = sum(1 for s in window.slots if s.sent_at <= sent_at)
            missing = server_used - ours
            for _ in range(max(0, missing)):  # use by others of the same account
                window.slots.append(_Slot(done_at=now))
        daily, daily_remaining = num(H_DAILY), num(H_DAILY_REMAINING)
        if daily and daily > 0:
            self.daily_limit = daily
        if daily_remaining is not None:
            self._daily_remaining = daily_remaining
            if daily_remaining <= 0:
                self._daily_stopped = True


_SHARED: dict[str, RateLimiter] = {}
_SHARED_LOCK = threading.Lock()


def shared_limiter(key: str, factory: Callable[[], RateLimiter]) -> RateLimiter:
    """The one limiter of account ``key`` in this process (made by ``factory`` the first time)."""
    with _SHARED_LOCK:
        limiter = _SHARED.get(key)
        if limiter is None:
            limiter = _SHARED[key] = factory()
        return limiter
