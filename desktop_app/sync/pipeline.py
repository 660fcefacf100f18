"""The submission pipeline: a checked recording carried to "ready for transcription", exactly once.

An explicit state machine, one step per transition::

    checked → stored → endpoint_registered → call_logged → associated → ready_marked → transcript_seen
                                                                                    ↘ not_transcribed
                                                                                      → transcript_posted

(``transcript_posted``: Call Relay's own transcript posted through HubSpot's transcripts API, by
``desktop_app.sync.transcripts``, with the same before/after record and a look before posting again.)

Every step is written down in the history *before* it talks to HubSpot (``step_started``) and
*after* (``step_ended``, in the same transaction as the submission's new state), so a process killed
anywhere leaves a record that says exactly what may have happened:

- ``log_call``: the call's ``hs_call_external_id`` is generated once, stored first, and before any
  create that follows an earlier attempt (a crash, a timeout, a reset, a 5xx) the pipeline searches
  HubSpot for a call with that external id and adopts it. So a crash or a retry never makes a
  second call record.
- ``associate`` uses HubSpot's idempotent association PUT.
- ``mark_ready``: after an attempt that may have reached HubSpot, the recording server's access log
  tells whether HubSpot already came for the recording (it does so right after "ready"); only
  without that evidence is the call marked again.

Transient failures (429, 5xx, timeouts, connection errors) are retried with exponential back-off and
jitter, honouring ``Retry-After``; permanent ones stop the submission as ``failed`` with HubSpot's
message and correlation id, to be retried after the user fixes the cause.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from desktop_app.hubspot.endpoints import (
    CallDetails,  # the one CallDetails (what the agent states about a call)
)
from desktop_app.server.recordings import StoreError, sha256_of
from desktop_app.sync import history as h
from desktop_app.testing import crash_point

log = logging.getLogger(__name__)

# Pipeline states, in order.
CHECKED, STORED, ENDPOINT_REGISTERED, CALL_LOGGED, ASSOCIATED, READY_MARKED = (
    "checked", "stored", "endpoint_registered", "call_logged", "associated", "ready_marked",
)
TRANSCRIPT_SEEN, NOT_TRANSCRIBED_STATE = "transcript_seen", "not_transcribed"
TRANSCRIPT_POSTED = "transcript_posted"  # the step (desktop_app.sync.transcripts) and the state it leads to
STATES = (CHECKED, STORED, ENDPOINT_REGISTERED, CALL_LOGGED, ASSOCIATED, READY_MARKED, TRANSCRIPT_SEEN)

# step name → (state it starts from, state it leads to)
STEPS: tuple[tuple[str, str, str], ...] = (
    ("store", CHECKED, STORED),
    ("register_endpoint", STORED, ENDPOINT_REGISTERED),
    ("log_call", ENDPOINT_REGISTERED, CALL_LOGGED),
    ("associate", CALL_LOGGED, ASSOCIATED),
    ("mark_ready", ASSOCIATED, READY_MARKED),
)
NEXT_STEP = {start: (name, end) for name, start, end in STEPS}
_BEFORE_LOG_CALL = ("store", "register_endpoint")  # the steps a cancel may come during


class TransientError(Exception):
    """A failure worth retrying: carries what HubSpot said and how long to wait."""

    def __init__(self, message: str, *, status: int | None = None, correlation_id: str | None = None,
                 retry_after: float | None = None, ambiguous: bool = False) -> None:
        super().__init__(message)
        self.status, self.correlation_id, self.retry_after, self.ambiguous = (
            status, correlation_id, retry_after, ambiguous)


class PermanentError(Exception):
    """A failure retrying will not fix until the user changes something."""

    def __init__(self, message: str, *, status: int | None = None, correlation_id: str | None = None) -> None:
        super().__init__(message)
        self.status, self.correlation_id = status, correlation_id


class HubSpotPort(Protocol):
    """What the pipeline needs from HubSpot (``desktop_app.sync.hubspot_port`` adapts the client).

    Each method raises TransientError or PermanentError on failure.
    """

    portal_id: str
    app_id: str
    external_account_id: str

    def ensure_recording_endpoint(self, url_template: str) -> str: ...
    def find_call(self, external_id: str) -> str | None: ...
    def create_call(self, external_id: str, details: CallDetails) -> str: ...
    def associate(self, call_id: str, to_type: str, to_id: str) -> None: ...
    def mark_ready(self, call_id: str) -> None: ...
    def transcript_state(self, call_id: str) -> tuple[bool, str | None]: ...
    # batch forms, for bulk submissions (HubSpot's batch endpoints)
    def find_calls(self, external_ids: Sequence[str]) -> dict[str, str]: ...
    def create_calls(self, items: Sequence[tuple[str, CallDetails]]) -> dict[str, str]: ...
    def associate_many(self, to_type: str, pairs: Sequence[tuple[str, str]]) -> set[tuple[str, str]]: ...


class HistoryPort(Protocol):
    """Where the pipeline writes each submission and step down: the desk's SQLite ``history.History``, or the
    relay's PostgreSQL ``relay.teamhistory.TeamHistory``; both hand out ``history.Submission``/``Step``."""

    def add_submission(self, *, recording_path: str, recording_name: str, external_id: str, details: dict[str, Any],
                       agent: str, state: str, recording_sha256: str | None = None, status: str = h.QUEUED,
                       portal_id: str | None = None) -> int: ...
    def get(self, submission_id: int, *, with_steps: bool = True) -> h.Submission | None: ...
    def of_recording(self, sha256: str, portal_id: str) -> list[h.Submission]: ...
    def update(self, submission_id: int, **fields: Any) -> None: ...
    def step_started(self, submission_id: int, step: str) -> int: ...
    def step_ended(self, step_id: int, outcome: str, *, http_status: int | None = None, message: str | None = None,
                   correlation_id: str | None = None, next_retry_at: dt.datetime | None = None,
                   submission: dict[str, Any] | None = None) -> None: ...


class StorePort(Protocol):
    def add(self, path: Path, *, filename: str | None = None) -> Any: ...
    def share(self, external_id: str, sha256: str, *, app_id: str, external_account_id: str) -> None: ...


class ServerPort(Protocol):
    """The recording server the call will be fetched from (in-process, or found through run/server.json)."""

    def recording_endpoint_template(self) -> str: ...
    def fetched_since(self, external_id: str, since: dt.datetime) -> bool | None:
        """Whether HubSpot fetched the call's recording since ``since``; None: unknown (the server's
        access log lost lines since then), which is never taken as "no"."""


@dataclass
class RetryPolicy:
    base_s: float = 1.0
    cap_s: float = 300.0
    max_attempts: int = 8
    search_lag_s: float = 3.0  # HubSpot's search index may trail a create by a few seconds
    # how long an unanswered request (its process killed, its answer lost) may still be under way at HubSpot:
    # the client's read timeout (HubSpotConfig.read_timeout); a search finds what it made only after that + the lag
    in_flight_s: float = 30.0
    ready_evidence_wait_s: float = 10.0
    transcript_first_check_s: float = 60.0
    transcript_cap_s: float = 3600.0
    transcript_deadline_s: float = 86400.0

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return max(0.0, retry_after)
        delay: float = min(self.cap_s, self.base_s * 2 ** max(0, attempt - 1))
        return delay / 2 + random.uniform(0, delay / 2)  # "equal jitter"


@dataclass(frozen=True)
class Seen:
    """What a HubSpot account already has of a recording (``Pipeline.seen``).

    ``unfinished``: a submission of it that an earlier run left unfinished (killed, or waiting for a
    retry): run it rather than submit the recording again, which would log a second call. ``logged``:
    the newest submission that logged it as a call (whatever became of it after): send the recording
    again only when the user asks to. Both None: a recording to submit.
    """

    sha256: str
    unfinished: h.Submission | None
    logged: h.Submission | None


def _unsettled_for(attempts: Sequence[h.Step], policy: RetryPolicy) -> float:
    """Seconds until a search that finds nothing proves these earlier attempts created nothing.

    What an attempt made is searchable ``search_lag_s`` after HubSpot made it. An attempt that got no answer
    (its process killed, a timeout, a reset, a gateway's 502/504) may still be under way at HubSpot for
    ``in_flight_s`` after it started: a killed process's create can finish after a rerun's first search. A
    429 made nothing. 0 when every such moment has passed."""
    waits: list[float] = []
    for a in attempts:
        if a.outcome not in (h.STARTED, h.RETRY) or a.http_status == 429:
            continue
        answered = a.outcome == h.RETRY and a.http_status is not None and a.http_status not in (502, 504)
        bound = policy.search_lag_s if answered else policy.in_flight_s + policy.search_lag_s
        start = h.parse_iso(a.started_at)
        waits.append(bound if start is None else (start + dt.timedelta(seconds=bound) - h.now()).total_seconds())
    return max([0.0, *waits])


@dataclass
class Outcome:
    submission: h.Submission
    finished: bool  # reached ready or failed (nothing more to do now)
    wait_s: float | None = None  # when not finished: how long until the next attempt is due


NOT_TRANSCRIBED_CAUSES = (
    "the call's owner has no paid Sales Hub or Service Hub seat",
    "the HubSpot account reached its monthly conversation analysis limit",
)


class SubmissionReader:
    """A submission read from the history, and ``on_change`` told of it: shared by ``Pipeline`` and
    ``transcripts.TranscriptPoster``."""

    history: HistoryPort
    on_change: Callable[[h.Submission], None] | None

    def _missing(self, submission_id: int) -> Exception:
        """What ``_get`` raises for an id the history does not have."""
        return KeyError(f"no submission {submission_id}")

    def _get(self, submission_id: int) -> h.Submission:
        sub = self.history.get(submission_id)
        if sub is None:
            raise self._missing(submission_id)
        return sub

    def _changed(self, submission_id: int) -> h.Submission:
        sub = self._get(submission_id)
        if self.on_change:
            self.on_change(sub)
        return sub


@dataclass
class Pipeline(SubmissionReader):
    history: HistoryPort
    store: StorePort
    hubspot: HubSpotPort
    server: ServerPort
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    on_change: Callable[[h.Submission], None] | None = None
    _endpoint_registered: str | None = None
    _endpoint_lock: threading.Lock = field(default_factory=threading.Lock)
    # a cancel vs. the pipeline's own writes: the first request for the call, the ends of the steps before it
    _gate: threading.Lock = field(default_factory=threading.Lock)

    # -- entry points ----------------------------------------------------------------------------
    def submit(self, recording: Path, details: CallDetails, *, agent: str, sha256: str | None = None) -> int:
        """Write the submission down (with its external id, generated once) before anything else."""
        external_id = f"callrelay-{uuid.uuid4()}"
        return self.history.add_submission(
            recording_path=str(recording), recording_name=recording.name, external_id=external_id,
            details=details.to_dict(), agent=agent, state=CHECKED, status=h.QUEUED, recording_sha256=sha256,
            portal_id=self.hubspot.portal_id,
        )

    def seen(self, recording: Path) -> Seen:
        """What this HubSpot account already has of the recording (the same content, by SHA-256), so that
        a second upload of it neither doubles an unfinished submission nor logs its call again unasked.
        A failed submission that logged no call does not count. Raises OSError when the file cannot be read.
        """
        sha = sha256_of(recording)
        earlier = self.history.of_recording(sha, self.hubspot.portal_id)
        return Seen(sha, unfinished=next((s for s in earlier if s.status in h.UNFINISHED), None),
                    logged=next((s for s in earlier if s.call_id), None))

    def run(self, submission_id: int, *, wait: bool = True) -> h.Submission:
        """Advance a submission until it is ready or failed; with ``wait``, sleep through back-offs."""
        while True:
            outcome = self.advance(submission_id)
            if outcome.finished or not wait:
                return outcome.submission
            self.sleep(outcome.wait_s or 0.0)

    def retry(self, submission_id: int) -> None:
        """Put a failed submission back in the queue (after the user fixed the cause). A not-transcribed call
        (its owner got a paid seat, say) is marked ready for transcription again and watched anew."""
        sub = self._get(submission_id)
        if sub.status == h.FAILED:
            self.history.update(submission_id, status=h.QUEUED, error=None, error_status=None,
                                error_correlation_id=None, next_attempt_at=None)
        elif sub.status == h.NOT_TRANSCRIBED and sub.call_id:
            self.history.update(submission_id, status=h.QUEUED, state=ASSOCIATED, error=None, error_status=None,
                                error_correlation_id=None, next_attempt_at=None, ready_at=None, transcript_checks=0)

    CANCELLED = "Cancelled before it reached HubSpot (nothing was sent for this call); use Retry to send it."
    # what a cancel writes; the history holds it (``error`` is ``CANCELLED``) until ``retry`` clears it
    _CANCEL = {"status": h.FAILED, "error": CANCELLED, "error_status": None, "error_correlation_id": None,
               "next_attempt_at": None}

    def cancel(self, submission_id: int) -> bool:
        """Stop a submission that has not reached HubSpot yet: True when it is stopped (``failed``, saying
        it was cancelled); False, changing nothing, once a request for its call was written down
        (``log_call`` started) or it finished. A run already under way stops before ``log_call``.

        The history is where a cancel lives (the submission's ``error`` is ``CANCELLED``): every process and
        thread reads it there, and the pipeline's own writes before ``log_call`` (the end of a step under way,
        a worker's "running") never clear it (they happen under ``_gate`` and keep it)."""
        with self._gate:
            sub = self._get(submission_id)
            order = [start for _, start, _ in STEPS]
            if (sub.status not in h.UNFINISHED or sub.state not in order
                    or order.index(sub.state) > order.index(ENDPOINT_REGISTERED)
                    or any(s.step == "log_call" for s in sub.steps)):
                return False
            self.history.update(submission_id, **self._CANCEL)
        self._changed(submission_id)
        return True

    def _stopped(self, submission_id: int) -> bool:
        """Under ``_gate``: whether the submission was cancelled or finished (a run that read it before may still
        be going: one that wrote "running" over a cancel is set back to the cancel)."""
        sub = self._get(submission_id)
        if sub.error == self.CANCELLED:
            if sub.status != h.FAILED:
                self.history.update(submission_id, **self._CANCEL)
            return True
        return sub.status not in h.UNFINISHED

    def _end_step(self, sub: h.Submission, step: str, step_id: int, outcome: str, *,
                  submission: dict[str, Any], **fields: Any) -> bool:
        """Write a step's end (``history.step_ended``); True when the submission was cancelled meanwhile. A step
        before ``log_call`` may end after a cancel: it ends under ``_gate``, its results kept, the cancel too."""
        if step not in _BEFORE_LOG_CALL:
            self.history.step_ended(step_id, outcome, submission=submission, **fields)
            return False
        with self._gate:
            cancelled = self._get(sub.id).error == self.CANCELLED
            self.history.step_ended(step_id, outcome, submission={**submission, **self._CANCEL} if cancelled
                                    else submission, **fields)
        return cancelled

    def advance(self, submission_id: int) -> Outcome:
        """Run steps until the submission is ready, failed, or has to wait for a retry."""
        sub = self._get(submission_id)
        if sub.status not in h.UNFINISHED:
            return Outcome(sub, finished=True)
        due = h.parse_iso(sub.next_attempt_at)
        if due and due > h.now():
            return Outcome(sub, finished=False, wait_s=(due - h.now()).total_seconds())
        if sub.status != h.RUNNING:
            self.history.update(submission_id, status=h.RUNNING)
        while True:
            sub = self._get(submission_id)
            if sub.state == READY_MARKED:
                self.history.update(submission_id, status=h.READY, next_attempt_at=None,
                                    ready_at=sub.ready_at or h.iso(h.now()))
                return Outcome(self._changed(submission_id), finished=True)
            step, target = NEXT_STEP[sub.state]
            wait = self._run_step(sub, step, target)
            if wait is not None:
                return Outcome(self._changed(submission_id), finished=wait < 0, wait_s=max(wait, 0.0))

    # -- many at once ---------------------------------------------------------------------------
    BATCH = 100  # HubSpot's batch endpoints take up to 100 inputs

    def run_batch(self, ids: Sequence[int], on_chunk: Callable[[list[int]], None] | None = None) -> None:
        """Carry many submissions through the steps HubSpot can batch (call creation, associations).

        Works in chunks of 100 (HubSpot's batch size): the local steps, one batch create, one batch
        association per object type; then ``on_chunk`` gets the chunk's ids, so the caller can start
        ``run`` on them (the rest of their steps) while the next chunk is prepared. Each submission's
        steps are still written down one by one before and after each batch request; one a batch could
        not settle is left for ``run``, which searches before creating since an attempt is on record.
        """
        for start in range(0, len(ids), self.BATCH):
            chunk = list(ids[start:start + self.BATCH])
            for sid in chunk:  # local and once-per-account steps
                self._advance_until(sid, ENDPOINT_REGISTERED)
            for state, batch_step in ((ENDPOINT_REGISTERED, self._batch_log_calls),
                                      (CALL_LOGGED, self._batch_associate)):
                for attempt in range(1, self.policy.max_attempts + 1):
                    subs = [s for s in (self._get(i) for i in chunk)
                            if s.state == state and s.status == h.RUNNING and not s.next_attempt_at]
                    if not subs:
                        break
                    failure = batch_step(subs)
                    if not isinstance(failure, TransientError):
                        break  # done, or a permanent failure each submission's ``run`` will report
                    self.sleep(self.policy.backoff(attempt, failure.retry_after))
            if on_chunk is not None:
                on_chunk(chunk)

    def store_now(self, submission_id: int) -> None:
        """Copy a submitted recording into the store now (the first step; no HubSpot request)."""
        self._advance_until(submission_id, STORED)

    def _advance_until(self, submission_id: int, state: str) -> None:
        order = [start for _, start, _ in STEPS] + [READY_MARKED]
        if self._get(submission_id).status == h.QUEUED:
            self.history.update(submission_id, status=h.RUNNING)
        sub = self._changed(submission_id)  # listeners follow each step, as with ``advance``
        while sub.status == h.RUNNING and order.index(sub.state) < order.index(state):
            step, target = NEXT_STEP[sub.state]
            if self._run_step(sub, step, target) is not None:
                self._changed(submission_id)
                return
            sub = self._changed(submission_id)

    def _batch_log_calls(self, subs: list[h.Submission]) -> TransientError | PermanentError | None:
        with self._gate:  # as in ``_run_step``: cancelled ones are left out, the rest written down
            subs = [s for s in subs if not self._stopped(s.id)]
            started = {s.id: self.history.step_started(s.id, "log_call") for s in subs}
        if not subs:
            return None
        crash_point("log_call", "before")
        try:
            found, created = self._log_calls([(s, [st for st in s.steps if st.step == "log_call"]) for s in subs],
                                             self.hubspot.find_calls, self.hubspot.create_calls)
        except (TransientError, PermanentError) as exc:
            crash_point("log_call", "after")
            for s in subs:  # the next batch, or ``run``, reads by external id before creating
                self.history.step_ended(started[s.id], h.RETRY, http_status=exc.status, message=str(exc),
                                        correlation_id=exc.correlation_id)
            return exc
        crash_point("log_call", "after")
        for s in subs:
            call_id = found.get(s.external_id) or created.get(s.external_id)
            if call_id is None:
                self.history.step_ended(started[s.id], h.RETRY, message="not in the batch's answer")
                continue
            self.history.step_ended(started[s.id], h.ADOPTED if s.external_id in found else h.OK,
                                    http_status=201, submission={"state": CALL_LOGGED, "call_id": call_id,
                                                                 "portal_id": self.hubspot.portal_id})
        self._notify_all(subs)
        return None

    def _batch_associate(self, subs: list[h.Submission]) -> TransientError | PermanentError | None:
        wanted: dict[int, list[tuple[str, str]]] = {}
        for s in subs:
            d = CallDetails.from_dict(s.details)
            wanted[s.id] = [(t, i) for t, i in (("contacts", d.contact_id), ("companies", d.company_id),
                                                ("deals", d.deal_id), ("tickets", d.ticket_id)) if i]
        started = {s.id: self.history.step_started(s.id, "associate") for s in subs}
        crash_point("associate", "before")
        confirmed: set[tuple[str, str, str]] = set()
        failure: TransientError | PermanentError | None = None
        for to_type in ("contacts", "companies", "deals", "tickets"):
            pairs = [(str(s.call_id), i) for s in subs for t, i in wanted[s.id] if t == to_type]
            if not pairs:
                continue
            try:
                confirmed |= {(to_type, a, b) for a, b in self.hubspot.associate_many(to_type, pairs)}
            except (TransientError, PermanentError) as exc:
                failure = exc
        crash_point("associate", "after")
        for s in subs:
            if all((t, str(s.call_id), i) in confirmed for t, i in wanted[s.id]):
                self.history.step_ended(started[s.id], h.OK if wanted[s.id] else h.SKIPPED,
                                        http_status=201 if wanted[s.id] else None, submission={"state": ASSOCIATED})
            else:
                self.history.step_ended(started[s.id], h.RETRY, message=str(failure or "not confirmed by the batch"),
                                        http_status=getattr(failure, "status", None),
                                        correlation_id=getattr(failure, "correlation_id", None))
        self._notify_all(subs)
        return failure

    def _notify_all(self, subs: list[h.Submission]) -> None:
        for s in subs:
            self._changed(s.id)

    # -- one step --------------------------------------------------------------------------------
    def _run_step(self, sub: h.Submission, step: str, target: str) -> float | None:
        """Run one step; None when it succeeded, else seconds to wait (-1: failed for good, or cancelled)."""
        previous_attempts = [s for s in sub.steps if s.step == step]
        if step == "log_call":
            with self._gate:  # a cancel comes before this request is written down, or is refused
                if self._stopped(sub.id):
                    return -1.0
                step_id = self.history.step_started(sub.id, step)
        else:
            step_id = self.history.step_started(sub.id, step)
        crash_point(step, "before")
        try:
            fields, status = getattr(self, f"_do_{step}")(sub, previous_attempts)
        except TransientError as exc:
            crash_point(step, "after")
            attempts = len(previous_attempts) + 1
            if attempts >= self.policy.max_attempts:
                message = f"{exc} (gave up after {attempts} attempts; use Retry)"
                self._fail(sub, step, step_id, message, exc.status, exc.correlation_id)
                return -1.0
            delay = self.policy.backoff(attempts, exc.retry_after)
            due = h.now() + dt.timedelta(seconds=delay)
            if self._end_step(
                sub, step, step_id, h.RETRY, http_status=exc.status, message=str(exc),
                correlation_id=exc.correlation_id, next_retry_at=due,
                submission={"next_attempt_at": h.iso(due), "error": str(exc), "error_status": exc.status,
                            "error_correlation_id": exc.correlation_id}):
                return -1.0
            log.info("submission %s: %s will be retried in %.1fs: %s", sub.id, step, delay, exc)
            return delay
        except PermanentError as exc:
            crash_point(step, "after")
            self._fail(sub, step, step_id, str(exc), exc.status, exc.correlation_id)
            return -1.0
        crash_point(step, "after")
        outcome = fields.pop("_outcome", h.OK)
        if self._end_step(sub, step, step_id, outcome, http_status=status,
                          submission={"state": target, "next_attempt_at": None, "error": None, "error_status": None,
                                      "error_correlation_id": None, **fields}):
            return -1.0
        return None

    def _fail(self, sub: h.Submission, step: str, step_id: int, message: str, status: int | None,
              cid: str | None) -> None:
        if not self._end_step(sub, step, step_id, h.FAILED_OUTCOME, http_status=status, message=message,
                              correlation_id=cid, submission={
                                  "status": h.FAILED, "error": message, "error_status": status,
                                  "error_correlation_id": cid, "next_attempt_at": None}):
            log.warning("submission %s failed: %s", sub.id, message)

    def _do_store(self, sub: h.Submission, _prev: list[h.Step]) -> tuple[dict[str, Any], int | None]:
        try:
            stored = self.store.add(Path(sub.recording_path), filename=sub.recording_name)
        except FileNotFoundError:
            raise PermanentError(f"The recording {sub.recording_path} is no longer there.") from None
        except StoreError as exc:  # a full disk, a file that changed while it was copied…
            raise PermanentError(str(exc)) from None
        except OSError as exc:
            raise PermanentError(f"The recording could not be kept: {exc}") from None
        sha = str(stored.sha256)
        self.store.share(sub.external_id, sha, app_id=self.hubspot.app_id,
                         external_account_id=self.hubspot.external_account_id)
        return {"recording_sha256": sha}, None

    def _do_register_endpoint(self, sub: h.Submission, _prev: list[h.Step]) -> tuple[dict[str, Any], int | None]:
        template = self.server.recording_endpoint_template()
        with self._endpoint_lock:
            if self._endpoint_registered == template:
                return {"_outcome": h.SKIPPED}, None
            self.hubspot.ensure_recording_endpoint(template)
            self._endpoint_registered = template
        return {}, 200

    def _do_log_call(self, sub: h.Submission, prev: list[h.Step]) -> tuple[dict[str, Any], int | None]:
        def find_one(external_ids: Sequence[str]) -> dict[str, str]:
            found = self.hubspot.find_call(external_ids[0])
            return {} if found is None else {external_ids[0]: found}

        def create_one(items: Sequence[tuple[str, CallDetails]]) -> dict[str, str]:
            return {ext: self.hubspot.create_call(ext, details) for ext, details in items}

        found, created = self._log_calls([(sub, prev)], find_one, create_one)
        if sub.external_id in found:
            return {"call_id": found[sub.external_id], "portal_id": self.hubspot.portal_id, "_outcome": h.ADOPTED}, 200
        return {"call_id": created[sub.external_id], "portal_id": self.hubspot.portal_id}, 201

    def _log_calls(self, subs: Sequence[tuple[h.Submission, Sequence[h.Step]]],
                   find: Callable[[Sequence[str]], dict[str, str]],
                   create: Callable[[Sequence[tuple[str, CallDetails]]], dict[str, str]],
                   ) -> tuple[dict[str, str], dict[str, str]]:
        """Log the calls of ``subs`` (each with its earlier ``log_call`` attempts), never a second one: (external
        id → call id adopted, external id → call id created). The one path of ``log_call``, for one submission
        (``find_call``/``create_call``) and for a batch (``find_calls``/``create_calls``).

        Where an earlier attempt may have created the call it is looked for by external id first. HubSpot's
        search trails a create by seconds, and an unanswered attempt may still be under way: what it may have
        created is looked for once more when that time has passed (``_unsettled_for``); only then is the call
        created. Raises TransientError or PermanentError."""
        retried = {s.external_id: prev for s, prev in subs if prev}
        found = find(list(retried)) if retried else {}
        waits = {ext: _unsettled_for(prev, self.policy) for ext, prev in retried.items() if ext not in found}
        unsure = [ext for ext, wait in waits.items() if wait > 0]
        if unsure:
            log.info("waiting %.1f s for what earlier attempts at %s may still create to show in search",
                     max(waits.values()), ", ".join(unsure))
            self.sleep(max(waits.values()))
            found.update(find(unsure))
        for s, _prev in subs:
            if s.external_id in found:
                log.info("submission %s: adopted call %s created by an earlier attempt", s.id, found[s.external_id])
        fresh = [(s.external_id, CallDetails.from_dict(s.details)) for s, _prev in subs if s.external_id not in found]
        return found, (create(fresh) if fresh else {})

    def _do_associate(self, sub: h.Submission, _prev: list[h.Step]) -> tuple[dict[str, Any], int | None]:
        details = CallDetails.from_dict(sub.details)
        assert sub.call_id
        targets = [("contacts", details.contact_id), ("companies", details.company_id),
                   ("deals", details.deal_id), ("tickets", details.ticket_id)]
        done = False
        for to_type, to_id in targets:
            if to_id:
                self.hubspot.associate(sub.call_id, to_type, to_id)
                done = True
        return ({} if done else {"_outcome": h.SKIPPED}), (200 if done else None)

    def _do_mark_ready(self, sub: h.Submission, prev: list[h.Step]) -> tuple[dict[str, Any], int | None]:
        assert sub.call_id
        maybe_sent = [s for s in prev if s.outcome in (h.STARTED, h.RETRY)]
        if maybe_sent:
            since = h.parse_iso(maybe_sent[0].started_at) or h.now()
            waited = 0.0
            while True:
                fetched = self.server.fetched_since(sub.external_id, since)
                if fetched:
                    log.info("submission %s: HubSpot already fetched the recording; ready was received", sub.id)
                    return {"ready_at": h.iso(h.now()), "_outcome": h.ADOPTED}, 204
                if fetched is None:  # the evidence cannot come: send it again rather than skip it
                    log.info("submission %s: whether HubSpot fetched the recording is unknown (the access log "
                             "lost lines); ready is sent again", sub.id)
                    break
                if waited >= self.policy.ready_evidence_wait_s:
                    break
                self.sleep(0.5)
                waited += 0.5
        self.hubspot.mark_ready(sub.call_id)
        return {"ready_at": h.iso(h.now())}, 204

    # -- transcripts -----------------------------------------------------------------------------
    def check_transcript(self, submission_id: int) -> Outcome:
        """One look at whether HubSpot transcribed a ready call; schedules the next look with back-off."""
        sub = self._get(submission_id)
        if sub.status != h.READY or not sub.call_id:
            return Outcome(sub, finished=True)
        due = h.parse_iso(sub.next_attempt_at)
        if due and due > h.now():
            return Outcome(sub, finished=False, wait_s=(due - h.now()).total_seconds())
        step_id = self.history.step_started(sub.id, "transcript")
        try:
            seen, reason = self.hubspot.transcript_state(sub.call_id)
            looked = "no transcript yet"
        except (TransientError, PermanentError) as exc:
            seen, reason, looked = False, None, str(exc)
        if seen:
            self.history.step_ended(step_id, h.OK, submission={"state": TRANSCRIPT_SEEN,
                                                               "status": h.TRANSCRIBED, "next_attempt_at": None})
            return Outcome(self._changed(sub.id), finished=True)
        ready_at = h.parse_iso(sub.ready_at) or h.now()
        age = (h.now() - ready_at).total_seconds()
        if reason or age >= self.policy.transcript_deadline_s:  # a stated reason is final
            message = self._not_transcribed_reason(sub, ready_at, reason)
            self.history.step_ended(step_id, h.FAILED_OUTCOME, message=message, submission={
                "state": NOT_TRANSCRIBED_STATE, "status": h.NOT_TRANSCRIBED, "error": message,
                "next_attempt_at": None})
            return Outcome(self._changed(sub.id), finished=True)
        delay = min(self.policy.transcript_cap_s, self.policy.transcript_first_check_s * 2 ** sub.transcript_checks)
        delay = min(delay, max(0.0, self.policy.transcript_deadline_s - age))
        due = h.now() + dt.timedelta(seconds=delay)
        self.history.step_ended(step_id, h.RETRY, message=looked, next_retry_at=due, submission={
            "next_attempt_at": h.iso(due), "transcript_checks": sub.transcript_checks + 1})
        return Outcome(self._changed(sub.id), finished=False, wait_s=delay)

    def _not_transcribed_reason(self, sub: h.Submission, ready_at: dt.datetime, reason: str | None) -> str:
        if reason:
            return f"HubSpot did not transcribe the call: {reason}"
        fetched = self.server.fetched_since(sub.external_id, ready_at - dt.timedelta(minutes=5))
        if fetched is None:
            return ("HubSpot did not transcribe the call within a day. Whether it fetched the recording is unknown: "
                    "the recording server's access log could not be written for part of that time (a full disk?). "
                    "HubSpot documents these causes: " + "; ".join(NOT_TRANSCRIBED_CAUSES) + ".")
        if not fetched:
            return ("HubSpot never fetched the recording (the recording server's access log shows no request "
                    "for it): check that the tunnel was up and the recording endpoint is registered.")
        return ("HubSpot fetched the recording but no transcript appeared within a day. HubSpot documents "
                "these causes: " + "; ".join(NOT_TRANSCRIBED_CAUSES) + ".")

    # -- helpers ---------------------------------------------------------------------------------
