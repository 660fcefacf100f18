"""HubSpot's rate limits as the sandbox enforces them.

A rolling window of ``per_interval`` requests per ``interval_ms`` (HubSpot: 100, 190 or 250 per
10 s by tier) and a daily count (250,000 to 1,000,000; the sandbox's day is the UTC day). The
search endpoints are exempt from the ten-second window (HubSpot marks them
``x-hubspot-rate-limit-exemptions: ten-secondly``) and limited instead to ``search_per_second``
per token, and their answers carry no rate-limit headers. ``interval_ms`` can be scaled down so a
benchmark meets the limit in less time.
"""

from __future__ import annotations

import datetime as _dt
import math
import threading
import time
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class RateLimits:
    per_interval: int = 100
    interval_ms: int = 10_000
    daily: int = 250_000
    search_per_second: int = 5
    enabled: bool = True


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    policy: str = ""  # SECONDLY or DAILY when refused
    retry_after_s: int = 0
    headers: tuple[tuple[str, str], ...] = ()


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

    def check(self, key: str, *, search: bool, daily_headers: bool = True) -> Verdict:
        """Count one request of ``key`` (a token) unless refused; the headers to send with the answer."""
        lim = self.limits
        if not lim.enabled:
            return Verdict(True)
        now = time.monotonic()
        wall = time.time()
        with self._lock:
            self._roll_day(wall)
            if self._daily_used >= lim.daily:
                return Verdict(False, "DAILY", _seconds_to_utc_midnight(wall), self._headers(daily_headers, search))
            if search:
                window = self._search.setdefault(key, deque())
                while window and now - window[0] >= 1.0:
                    window.popleft()
                if len(window) >= lim.search_per_second:
                    return Verdict(False, "SECONDLY", max(1, math.ceil(1.0 - (now - window[0]))))
                window.append(now)
                self._daily_used += 1
                return Verdict(True)
            interval = lim.interval_ms / 1000.0
            while self._window and now - self._window[0] >= interval:
                self._window.popleft()
            if len(self._window) >= lim.per_interval:
                wait = interval - (now - self._window[0])
                return Verdict(False, "SECONDLY", max(1, math.ceil(wait)), self._headers(daily_headers, search))
            self._window.append(now)
            self._daily_used += 1
            return Verdict(True, headers=self._headers(daily_headers, search))

    def _headers(self, daily_headers: bool, search: bool) -> tuple[tuple[str, str], ...]:
        if search:
            return ()
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
