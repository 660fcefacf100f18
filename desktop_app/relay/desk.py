"""A desk that joined a team (``team.relay_url`` set, its token in the keyring as
`keystore.TEAM_RELAY_TOKEN`): the one core the command (``callrelay upload``, ``team flush``,
``history``) and the app's Upload & Log share, Qt-free and blocking (the app calls it on a worker thread).

`TeamDesk.queue` writes a submission into the `Outbox` first (its externalId made there, once), then
`send` uploads it with `RelayClient.upload` (presigned multipart, resumable: after a crash only the parts
the store lacks go again). A relay that cannot be reached, or answers 5xx, 401, 408 or 429, leaves the
entry pending for the next `flush` (``callrelay upload``, ``callrelay team flush``, the app's background
loop); a refusal sending again cannot fix (another 4xx) marks it refused with the relay's sentence.
`wait` polls the relay until its pipeline ends for each submission.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from desktop_app.relay.client import RelayClient, RelayError
from desktop_app.relay.outbox import PENDING, REFUSED, SENT, Entry, Outbox
from desktop_app.server.recordings import sha256_of

# the relay's statuses once its pipeline is done with a submission (the desk's, `sync.history`)
FINAL = ("ready", "transcribed", "not-transcribed", "failed")
_RETRYABLE = (401, 408, 429)


class TeamSetupError(RuntimeError):
    """This desk's team set-up cannot be used as it is (one sentence saying what to do)."""


@dataclass
class Sent:
    """What one attempt at sending an outbox entry gave: ``state`` sent, pending (kept for later) or
    refused; ``resumed`` the bytes the relay held already, ``sent_bytes`` those sent now."""

    entry: Entry
    state: str
    status: str | None = None
    error: str | None = None
    resumed: int = 0
    sent_bytes: int = 0

    @property
    def external_id(self) -> str:
        return self.entry.external_id


Progress = Callable[[str, int, int], None]  # (externalId, bytes done, bytes in all)


def joined_url(settings: Any = None) -> str:
    """The relay this desk joined, or "" (a single desk)."""
    if settings is None:
        from desktop_app import settings as settings_mod

        settings = settings_mod.load()
    return str(settings.get("team.relay_url") or "").strip()


class TeamDesk:
    def __init__(self, url: str, token: str, *, outbox: Outbox | None = None, timeout_s: float = 30) -> None:
        self.client = RelayClient(url, token, timeout_s=timeout_s)
        self.outbox = outbox or Outbox()
        self._lock = threading.Lock()
        self._sending: set[str] = set()  # entries a thread is sending now (the app's loop and Upload & Log)

    @classmethod
    def from_settings(cls, settings: Any = None) -> TeamDesk | None:
        """The joined desk's parts, or None for a single desk; TeamSetupError (one sentence) when the
        relay's URL is set but this computer's keyring does not hold the token."""
        url = joined_url(settings)
        if not url:
            return None
        from desktop_app import keystore

        try:
            token = keystore.get(keystore.TEAM_RELAY_TOKEN)
        except keystore.KeyringUnavailable as exc:
            raise TeamSetupError(f"This desk joined the team at {url}, but its keyring cannot be used: {exc}") from None
        if not token:
            raise TeamSetupError(f"This desk joined the team at {url}, but its token is not in this computer's "
                                 "keyring: ask your admin for a new invite and run callrelay join again.")
        return cls(url, token)

    @property
    def url(self) -> str:
        return self.client.url

    def close(self) -> None:
        self.outbox.close()

    def __enter__(self) -> TeamDesk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- submitting ----------------------------------------------------------------------------------
    def queue(self, path: Path, call: Mapping[str, Any], *, again: bool = False) -> tuple[Entry, Entry | None]:
        """Write the submission down before anything is sent (an OSError when the file cannot be read).
        Returns the entry and, unless ``again``, the entry that sent this recording before (then nothing
        new is written: the caller says it was skipped)."""
        sha256 = sha256_of(path)
        before = None if again else self.outbox.sent_before(sha256)
        if before is not None:
            return before, before
        return self.outbox.add(Path(path), sha256, os.path.getsize(path), dict(call)), None

    def send(self, entry: Entry, on_progress: Progress | None = None) -> Sent:
        """One attempt at getting ``entry`` to the relay (see the module's docstring)."""
        with self._lock:
            if entry.external_id in self._sending:
                return Sent(entry, PENDING, error="It is being sent already.")
            self._sending.add(entry.external_id)
        try:
            return self._send(entry, on_progress)
        finally:
            with self._lock:
                self._sending.discard(entry.external_id)

    def _send(self, entry: Entry, on_progress: Progress | None) -> Sent:
        if not Path(entry.path).is_file():
            error = f"The recording {entry.path} is gone from this computer, so it cannot be sent to the relay."
            self.outbox.mark(entry.external_id, REFUSED, error=error)
            return Sent(entry, REFUSED, error=error)
        result = Sent(entry, PENDING)
        sent = 0

        def on_plan(on_relay: int, to_send: int) -> None:
            result.resumed = on_relay
            if on_progress is not None:
                on_progress(entry.external_id, on_relay, entry.size)

        def on_part(_number: int, size: int) -> None:
            nonlocal sent
            sent += size
            result.sent_bytes = sent
            if on_progress is not None:
                on_progress(entry.external_id, result.resumed + sent, entry.size)

        try:
            answer = self.client.upload(entry.path, {**entry.call, "external_id": entry.external_id},
                                        on_part=on_part, on_plan=on_plan)
        except RelayError as exc:
            result.error = str(exc)
            if exc.status is None or exc.status >= 500 or exc.status in _RETRYABLE:
                self.outbox.attempted(entry.external_id, result.error)
            else:
                result.state = REFUSED
                self.outbox.mark(entry.external_id, REFUSED, error=result.error)
            return result
        result.state, result.status = SENT, str(answer.get("status") or "queued")
        self.outbox.mark(entry.external_id, SENT, relay_status=result.status)
        return result

    def flush(self, on_sent: Callable[[Sent], None] | None = None,
              on_progress: Progress | None = None) -> list[Sent]:
        """Send every pending entry, oldest first; a relay that cannot be reached stops the round (the
        rest stay pending: they would only wait for the same timeout)."""
        out = []
        for entry in self.outbox.pending():
            with self._lock:
                if entry.external_id in self._sending:
                    continue  # another thread has it
            result = self.send(entry, on_progress)
            out.append(result)
            if on_sent is not None:
                on_sent(result)
            if result.state == PENDING:
                break
        return out

    # -- following the relay's pipeline --------------------------------------------------------------
    def wait(self, external_ids: list[str], *, timeout_s: float, interval_s: float = 2.0,
             on_final: Callable[[dict[str, Any]], None] | None = None) -> dict[str, dict[str, Any]]:
        """Poll the relay until each submission's pipeline ended (`FINAL`) or ``timeout_s`` passed; the
        last answer for each (a relay that stopped answering: the last one seen, or ``{}``)."""
        latest: dict[str, dict[str, Any]] = {eid: {} for eid in external_ids}
        open_ids = list(external_ids)
        deadline = time.monotonic() + timeout_s
        while open_ids:
            for eid in list(open_ids):
                try:
                    latest[eid] = self.client.submission(eid)
                except RelayError:
                    continue  # a relay restarting: asked again next round
                if latest[eid].get("status") in FINAL:
                    open_ids.remove(eid)
                    if on_final is not None:
                        on_final(latest[eid])
            if not open_ids or time.monotonic() >= deadline:
                break
            time.sleep(min(interval_s, max(0.0, deadline - time.monotonic())))
        return latest

    # -- the team's history ------------------------------------------------------------------------
    def history(self, params: Mapping[str, Any], *, page: int = 1000) -> Iterator[dict[str, Any]]:
        """Every submission the relay shows this desk's agent (a supervisor: the team's), newest first."""
        offset = 0
        while True:
            batch = self.client.history({**params, "limit": page, "offset": offset})["submissions"]
            yield from batch
            if len(batch) < page:
                return
            offset += page

    def totals(self, by: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        return list(self.client.history_totals(by, params)["totals"])

    def csv(self, params: Mapping[str, Any]) -> str:
        return self.client.history_csv(params)


def call_for_relay(details: Mapping[str, Any]) -> dict[str, Any]:
    """The call's details as the relay takes them (`CallDetails.to_dict()` in): empty values left out (the
    relay refuses an empty timestamp), the contact only as a HubSpot id."""
    keep = ("title", "owner_id", "contact_id", "from_number", "to_number", "duration_ms", "timestamp",
            "direction", "notes")
    return {k: details[k] for k in keep if details.get(k) not in (None, "")}


class TeamHistory:
    """The team's history from the relay, read through the same calls as the desk's `history.History`
    (``count``, ``search``, ``get``, ``totals_per_day``, ``totals_per_agent``, ``export_csv``, ``labels``),
    so the app's History page shows it unchanged. Blocking: the page calls it on worker threads."""

    def __init__(self, desk: TeamDesk) -> None:
        self.desk = desk
        self._seen: dict[int, Any] = {}

    @staticmethod
    def params(query: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"status": list(query.statuses), "agent": query.agent, "owner": query.owner_id,
                               "contact": query.contact_id, "text": query.text,
                               "since": query.since.isoformat() if query.since else None,
                               "until": query.until.isoformat() if query.until else None}
        return {k: v for k, v in out.items() if v}

    @staticmethod
    def submission(row: Mapping[str, Any]) -> Any:
        """A relay row as the desk's `history.Submission` (its ``id`` the relay's)."""
        from desktop_app.sync import history as h

        return h.Submission(
            id=int(row["id"]), created_at=str(row["created_at"]), updated_at=str(row["updated_at"]),
            agent=str(row["agent"]), recording_path="", recording_name=str(row["recording"]),
            recording_sha256=row.get("recording_sha256"), external_id=str(row["external_id"]),
            details=dict(row.get("details") or {}), state=str(row["state"]), status=str(row["status"]),
            call_id=row.get("call_id"), portal_id=row.get("portal_id"), contact_id=row.get("contact_id") or "",
            owner_id=row.get("owner_id") or "", error=row.get("error"), error_status=row.get("error_status"),
            error_correlation_id=row.get("correlation_id"), next_attempt_at=row.get("next_attempt_at"),
            ready_at=row.get("ready_at"), transcript_checks=0)

    def count(self, query: Any) -> int:
        return int(self.desk.client.history({**self.params(query), "limit": 0})["total"])

    def search(self, query: Any, *, limit: int | None = 200, offset: int = 0, with_steps: bool = False) -> list[Any]:
        if limit is None:
            rows = list(self.desk.history(self.params(query)))
        else:
            rows = self.desk.client.history({**self.params(query), "limit": min(limit, 1000),
                                             "offset": offset})["submissions"]
        subs = [self.submission(r) for r in rows]
        self._seen.update({s.id: s for s in subs})
        return subs

    def get(self, submission_id: int, *, with_steps: bool = True) -> Any:
        return self._seen.get(submission_id)

    def totals_per_day(self, query: Any) -> list[dict[str, Any]]:
        return self.desk.totals("day", self.params(query))

    def totals_per_agent(self, query: Any) -> list[dict[str, Any]]:
        return self.desk.totals("agent", self.params(query))

    def export_csv(self, query: Any, out: Any = None) -> str:
        text = self.desk.csv(self.params(query))
        if out is None:
            return text
        out.write(text)
        return ""

    def labels(self) -> dict[str, str]:
        return {}

    def set_labels(self, kind: str, pairs: Any) -> None:
        """The relay keeps no names of contacts or owners: nothing to remember."""
