"""Reachability checks through the public URL, as HubSpot and a browser would see it.

One check is three requests: the server's ``/healthz``; ``Range: bytes=0-0`` on the probe
recording, which must answer 206 with one byte (HubSpot seeks with ranges); and the probe recording
fetched like a browser playing it (a browser ``User-Agent``, no special header), which must give
audio bytes, not an HTML page such as ngrok's free-plan warning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import requests

log = logging.getLogger(__name__)

BROWSER_USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
WARNING_PAGE_ADVICE = (
    "A browser playing the recording gets an HTML page instead of audio (ngrok's free plan shows a "
    "warning page to browsers), so calls will not play in HubSpot. Use a paid ngrok domain or "
    "cloudflared instead."
)


@dataclass(frozen=True)
class CheckResult:
    """``reachable``: the server answered through the public URL; ``ok``: every step passed."""

    reachable: bool
    ok: bool
    message: str
    step: str  # the step that failed, or "all"


def looks_like_html(content_type: str, head: bytes) -> bool:
    if "html" in content_type.lower():
        return True
    start = head.lstrip()[:64].lower()
    return start.startswith((b"<!doctype html", b"<html", b"<head", b"<!--"))


class ReachabilityCheck:
    """Checks one public base URL. ``probe_url(base)`` gives the probe recording's link under ``base``."""

    def __init__(
        self,
        probe_url: Callable[[str], str] | None,
        *,
        timeout: float = 10.0,
        session: requests.Session | None = None,
    ) -> None:
        self._probe_url = probe_url
        self.timeout = timeout
        self._session = session or requests.Session()
        self._session.trust_env = False  # a proxy from the environment would hide the real path

    def _get(self, url: str, headers: dict[str, str]) -> tuple[int, str, bytes]:
        with self._session.get(url, headers=headers, timeout=self.timeout, stream=True,
                               allow_redirects=False) as resp:
            head = b""
            for chunk in resp.iter_content(4096):
                head += chunk
                if len(head) >= 4096:
                    break
            return resp.status_code, resp.headers.get("Content-Type", ""), head

    def run(self, base_url: str) -> CheckResult:
        base = base_url.rstrip("/")
        try:
            status, ctype, body = self._get(base + "/healthz", {"Accept": "application/json"})
        except requests.RequestException as exc:
            return CheckResult(False, False, f"{base} cannot be reached: {_short(exc)}", "healthz")
        if status != 200 or looks_like_html(ctype, body):
            what = "an HTML page" if looks_like_html(ctype, body) else f"HTTP {status}"
            reachable = status < 500 and status != 404
            hint = WARNING_PAGE_ADVICE if looks_like_html(ctype, body) else (
                "the tunnel is up but does not reach this app's server")
            return CheckResult(reachable, False, f"{base}/healthz answered {what}: {hint}", "healthz")
        if self._probe_url is None:
            return CheckResult(True, True, f"{base} answers", "all")
        try:
            probe = self._probe_url(base)
        except Exception as exc:  # noqa: BLE001 - the probe link is made by other code; report, don't crash
            return CheckResult(True, False, f"no probe recording link could be made: {exc}", "range")
        try:
            status, ctype, body = self._get(probe, {"Range": "bytes=0-0"})
        except requests.RequestException as exc:
            return CheckResult(False, False, f"the probe recording cannot be fetched: {_short(exc)}", "range")
        if status != 206 or len(body) != 1:
            return CheckResult(True, False, f"a Range request through {base} answered HTTP {status} with "
                               f"{len(body)} bytes, not 206 with one byte: HubSpot could not seek", "range")
        try:
            status, ctype, body = self._get(probe, {"User-Agent": BROWSER_USER_AGENT,
                                                    "Accept": "*/*", "Range": "bytes=0-"})
        except requests.RequestException as exc:
            return CheckResult(False, False, f"the probe recording cannot be fetched like a browser: "
                               f"{_short(exc)}", "browser")
        if looks_like_html(ctype, body):
            return CheckResult(True, False, WARNING_PAGE_ADVICE, "browser")
        if status not in (200, 206):
            return CheckResult(True, False, f"a browser fetching a recording through {base} gets HTTP "
                               f"{status}", "browser")
        return CheckResult(True, True, f"{base} serves recordings (health, 206 ranges, browser playback)",
                           "all")


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 200 else text[:197] + "..."
