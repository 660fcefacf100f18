"""HubSpot's rate limits as the sandbox enforces them.

A rolling window of ``per_interval`` requests per ``interval_ms`` (HubSpot: 100, 190 or 250 per
10 s by tier) and a daily count (250,000 to 1,000,000; the sandbox's day is the UTC day).

Operations HubSpot marks ``x-hubspot-rate-limit-exemptions: ten-secondly`` in its descriptions are
not counted in that window; they count toward the day only. Of those, the search endpoints alone
have a limit of their own: ``search_per_second`` per token (HubSpot's changelog "CRM Search API
rate limit increase": four per second and token; the association batch endpoints carry the same
exemption but no such limit). Every answer, searches included, carries the ten-second window's
headers as they stand (an exempt request does not use it up). ``interval_ms`` can be scaled down
so a benchmark meets the limit in less time.
"""

from __future__ import annotations

import datetime as _dt
import math
import threading
import time
from collections import deque
from dataclasses import dataclass

from desktop_app import openapi
from desktop_app.sandbox.errors import ApiError


@dataclass(frozen=True)
class RateLimits:
    per_interval: int = 100
    interval_ms: int = 10_000
    daily: int = 250_000
    search_per_second: int = 5
    enabled: bool = True


STANDARD = "standard"  # counted in the ten-second window
EXEMPT = "exempt"  # exempt from the ten-second window: counted toward the day only
SEARCH = "search"  # exempt, and limited per second and token


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    policy: str = ""  # SECONDLY or DAILY when refused
    retry_after_s: int = 0
    headers: tuple[tuple[str, str], ...] = ()


def limit_kind(op: openapi.Operation) -> str:
    """Which rule limits an operation: its description's exemptions decide, and of the exempt ones
    the searches (``…/search``) have their per-second limit."""
    if "ten-secondly" not in op.rate_limit_exemptions:
        return STANDARD
    return SEARCH if op.path.endswith("/search") else EXEMPT


def _seconds_to_utc_midnight(now: float) -> int:
    today = _dt.datetime.fromtimestamp(now, _dt.timezone.utc).date()
    midnight = _dt.datetime.combine(today + _dt.timedelta(days=1), _dt.time(), _dt.timezone.utc)
    return max(1, math.ceil(midnight.timestamp() - now))


class Limiter:
    """Counts requests; thread-safe."""

    def __init__(self, limits: RateLimits) -> None:
        self.limits = limits
        self._lock = threading.Lock()
        self._window: deque[float] = deque()
        self._search: dict[str, deque[float]] = {}
        self._day = ""
        self._daily_used = 0

    def _roll_day(self, now: float) -> None:
        day = _dt.datetime.fromtimestamp(now, _dt.timezone.utc).strftime("%Y-%m-%d")
        if day != self._day:
            self._day, self._daily_used = day, 0

    def check(self, key: str, *, kind: str = STANDARD, daily_headers: bool = True) -> Verdict:
        """Count one request of ``kind`` by ``key`` (a token, for searches) unless refused; the headers to
        send with the answer."""
        lim = self.limits
        if not lim.enabled:
            return Verdict(True)
        now = time.monotonic()
        wall = time.time()
        with self._lock:
            self._roll_day(wall)
            interval = lim.interval_ms / 1000.0
            while self._window and now - self._window[0] >= interval:
                self._window.popleft()
            if self._daily_used >= lim.daily:
                return Verdict(False, "DAILY", _seconds_to_utc_midnight(wall), self._headers(daily_headers))
            if kind == SEARCH:
                searches = self._search.setdefault(key, deque())
                while searches and now - searches[0] >= 1.0:
                    searches.popleft()
                if len(searches) >= lim.search_per_second:
                    return Verdict(False, "SECONDLY", max(1, math.ceil(1.0 - (now - searches[0]))),
                                   self._headers(daily_headers))
                searches.append(now)
            elif kind == STANDARD:
                if len(self._window) >= lim.per_interval:
                    wait = interval - (now - self._window[0])
                    return Verdict(False, "SECONDLY", max(1, math.ceil(wait)), self._headers(daily_headers))
                self._window.append(now)
            self._daily_used += 1
            return Verdict(True, headers=self._headers(daily_headers))

    def _headers(self, daily_headers: bool) -> tuple[tuple[str, str], ...]:
        return self.headers(daily=daily_headers, remaining=self.limits.per_interval - len(self._window),
                            daily_remaining=self.limits.daily - self._daily_used)

    def headers(self, *, daily: bool = True, remaining: int | None = None,
                daily_remaining: int | None = None) -> tuple[tuple[str, str], ...]:
        """HubSpot's rate-limit headers; the remaining counts default to the full allowance."""
        lim = self.limits
        out = [
            ("X-HubSpot-RateLimit-Interval-Milliseconds", str(lim.interval_ms)),
            ("X-HubSpot-RateLimit-Max", str(lim.per_interval)),
            ("X-HubSpot-RateLimit-Remaining", str(max(0, lim.per_interval if remaining is None else remaining))),
        ]
        if daily:
            out += [
                ("X-HubSpot-RateLimit-Daily", str(lim.daily)),
                ("X-HubSpot-RateLimit-Daily-Remaining",
                 str(max(0, lim.daily if daily_remaining is None else daily_remaining))),
            ]
        return tuple(out)


def rate_limit_error(policy: str, retry_after: int, headers: list[tuple[str, str]], portal_id: int) -> ApiError:
    """HubSpot's 429 answer for ``policy`` (``SECONDLY`` or ``DAILY``), with ``Retry-After``."""
    which = "daily" if policy == "DAILY" else "secondly"
    return ApiError(429, "RATE_LIMITS", f"You have reached your {which} limit.", headers=[
        *headers, ("Retry-After", str(retry_after))],
        extra={"errorType": "RATE_LIMIT", "policyName": policy,
               "groupName": f"publicapi:{'daily' if policy == 'DAILY' else 'ten-secondly'}:{portal_id}"})
