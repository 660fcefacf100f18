"""How the pipeline finds the recording server HubSpot will fetch from.

HubSpot fetches a recording after ``callrelay upload`` has returned, so the pipeline must use a
server that keeps running: the app's, or ``callrelay serve``'s, for the same data directory. A
running server describes itself in ``run/server.json`` (address, public URL); this module reads
that, checks the server really answers, and reads its access log to tell whether HubSpot came for a
recording (or that it cannot be told: lines were lost).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import requests

from desktop_app.server import accesslog, runinfo


class NoServer(RuntimeError):
    """No recording server runs for this data directory (the message says what to do)."""


def fetched_since(external_id: str, since: dt.datetime, log_path: Path | None = None, *,
                  lost_since: float | None = None) -> bool | None:
    """Whether the access log shows a successful request about the call ``external_id`` since ``since``:
    True when it does; None (unknown) when it doesn't but lines were lost since then (the log records
    each loss, and ``lost_since`` is the server's word that it cannot write them now); else False."""
    stamp = since.timestamp()
    fetches, losses = accesslog.evidence(external_id, path=log_path)
    if any(f.time >= stamp and f.status < 400 for f in fetches):
        return True
    if lost_since is not None or any(loss.until >= stamp for loss in losses):
        return None
    return False


@dataclass
class ServerLink:
    """A running recording server, seen from the pipeline."""

    local_url: str
    endpoint_template: str
    log_path: Path | None = None

    def recording_endpoint_template(self) -> str:
        return self.endpoint_template

    def fetched_since(self, external_id: str, since: dt.datetime) -> bool | None:
        return fetched_since(external_id, since, self.log_path, lost_since=self._lost_since())

    def _lost_since(self) -> float | None:
        """Since when the server cannot write its access log (its /healthz says), or None. A server that
        doesn't answer says nothing: then the log alone tells."""
        try:
            health = requests.get(self.local_url.rstrip("/") + "/healthz", timeout=2).json()
            since = health["access_log"]["lost_since"]
        except (requests.RequestException, ValueError, KeyError, TypeError):
            return None
        return float(since) if isinstance(since, (int, float)) else None

    @classmethod
    def discover(cls, *, timeout: float = 3.0) -> ServerLink:
        """The server recorded in this data directory's ``run/server.json``, if it answers."""
        advice = ("Start the Call Relay app, or run `callrelay serve` (with a tunnel or --public-url) for the "
                  "same data directory, then try again.")
        info = runinfo.read()
        if info is None:
            raise NoServer(f"No recording server is running for this data directory. {advice}")
        local = str(info.get("local_url", ""))
        try:
            requests.get(local.rstrip("/") + "/healthz", timeout=timeout).raise_for_status()
        except requests.RequestException as exc:
            raise NoServer(f"The recording server at {local} does not answer ({exc.__class__.__name__}). {advice}") \
                from None
        if not info.get("public_url"):
            raise NoServer("The recording server has no public URL, so HubSpot could not reach it: start it with a "
                           "tunnel (`callrelay serve --tunnel …`) or `--public-url`.")
        return cls(local_url=local, endpoint_template=str(info["endpoint_template"]))
