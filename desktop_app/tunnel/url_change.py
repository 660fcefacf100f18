"""Keep HubSpot pointed at the current public URL.

When the tunnel's public base URL changes (a quick tunnel restarted under a new name), HubSpot's
recording setting (``urlToRetrieveAuthedRecording``) must follow, or every call, old and new, stops
playing. ``RecordingUrlFollower`` listens to tunnel events and, once per change, reads the setting,
creates it when missing or updates it (PATCH) when it differs, and records what it did. A failure
is recorded once per URL: a refused URL is not tried again, a HubSpot error is tried again when the
tunnel is next up (each further failure only logged).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from desktop_app.tunnel.base import TunnelEvent, TunnelState
from desktop_app.tunnel.urls import check_public_url

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT_PREFIX = "/retrieve/authenticated/recordings"


class _Setting(Protocol):
    @property
    def url_to_retrieve_authed_recording(self) -> str: ...


class RecordingSettingClient(Protocol):
    """What this needs of ``desktop_app.hubspot.client.HubSpotClient``: the calls on
    ``/crm/v3/extensions/calling/{appId}/settings/recording``."""

    def get_recording_settings(self) -> _Setting | None: ...

    def create_recording_settings(self, url: str) -> object: ...

    def update_recording_settings(self, url: str) -> object: ...


def endpoint_template(public_base: str, prefix: str = DEFAULT_ENDPOINT_PREFIX) -> str:
    """The URL HubSpot calls for a recording's link; HubSpot replaces ``%s`` with the external id."""
    return public_base.rstrip("/") + "/" + prefix.strip("/") + "/%s"


class RecordingUrlFollower:
    """Registers each new public base URL with HubSpot, exactly once per change.

    ``record(event)`` gets a dict for the sync history (``kind`` ``recording-url``, ``action``
    ``created``/``updated``/``unchanged``/``failed``, ``old``, ``new``, ``message``, ``at``).
    """

    def __init__(
        self,
        client: RecordingSettingClient,
        *,
        record: Callable[[dict[str, Any]], None] | None = None,
        template_for: Callable[[str], str] = endpoint_template,
        allow_http: bool = False,
    ) -> None:
        self._client = client
        self._record = record
        self._template_for = template_for
        self.allow_http = allow_http
        self._lock = threading.Lock()
        self._done: str | None = None  # the template last made sure of
        self._failed: str | None = None  # the URL or template whose failure was recorded last

    def __call__(self, event: TunnelEvent) -> None:
        """A tunnel listener: a new URL, or the tunnel coming up (a retry after a failed update)."""
        if event.public_url and (event.kind == "url" or event.state is TunnelState.UP):
            self.follow(event.public_url)

    def follow(self, public_base: str) -> dict[str, Any] | None:
        """Make HubSpot's setting point at ``public_base``; None when this URL was already handled."""
        with self._lock:  # one change at a time, and each change once
            try:
                base = check_public_url(public_base, allow_http=self.allow_http)
            except ValueError as exc:
                return self._fail(public_base, str(exc))
            wanted = self._template_for(base)
            if wanted == self._done:
                return None
            try:
                setting = self._client.get_recording_settings()
                current = setting.url_to_retrieve_authed_recording if setting is not None else None
                if current is None:
                    self._client.create_recording_settings(wanted)
                    action, message = "created", f"HubSpot now fetches recordings through {base}"
                elif current != wanted:
                    self._client.update_recording_settings(wanted)
                    action, message = "updated", f"HubSpot now fetches recordings through {base} (was {current})"
                else:
                    action, message = "unchanged", f"HubSpot already fetches recordings through {base}"
            except Exception as exc:  # noqa: BLE001 - HubSpot's errors carry sentences; keep trying next change
                return self._fail(wanted, f"HubSpot's recording setting could not be updated: {exc}")
            self._done, self._failed = wanted, None
            return self._emit(action, current, wanted, message)

    def _fail(self, new: str, message: str) -> dict[str, Any] | None:
        """Record a failure for ``new`` once; the same failure again (the tunnel reconnected) is only logged."""
        if new == self._failed:
            log.warning("%s (again)", message)
            return None
        self._failed = new
        return self._emit("failed", None, new, message)

    def _emit(self, action: str, old: str | None, new: str, message: str) -> dict[str, Any]:
        entry = {"kind": "recording-url", "action": action, "old": old, "new": new, "message": message,
                 "at": time.time()}
        (log.warning if action == "failed" else log.info)("%s", message)
        if self._record is not None:
            try:
                self._record(entry)
            except Exception:
                log.exception("recording the URL change in the history failed")
        return entry


class _History(Protocol):
    def add_event(self, kind: str, message: str, data: dict[str, Any] | None = None) -> None: ...


def history_recorder(history: _History) -> Callable[[dict[str, Any]], None]:
    """The ``record`` callback writing each URL change into the sync history's events."""

    def record(entry: dict[str, Any]) -> None:
        history.add_event(str(entry["kind"]), str(entry["message"]), entry)

    return record


def keep_hubspot_pointed(tunnel: Any, client: RecordingSettingClient, history: _History | None,
                         endpoint_prefix: str = DEFAULT_ENDPOINT_PREFIX) -> RecordingUrlFollower:
    """Follow ``tunnel``'s public URL into HubSpot's recording setting (each change once, written into
    ``history`` when given), starting with the URL it may already have. Plain http is followed when the
    tunnel takes it (sandbox mode)."""
    follower = RecordingUrlFollower(client, record=history_recorder(history) if history is not None else None,
                                    template_for=lambda base: endpoint_template(base, endpoint_prefix),
                                    allow_http=bool(getattr(tunnel, "allow_http", False)))
    tunnel.add_listener(follower)
    if tunnel.public_url:  # it may have come up before the follower listened
        follower.follow(tunnel.public_url)
    return follower
