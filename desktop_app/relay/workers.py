"""The relay's pipeline workers: threads that claim due submissions from PostgreSQL and carry each through the
desk's `Pipeline` (on a `TeamHistory`), so every relay of a team shares one queue.

Each worker claims with ``FOR UPDATE SKIP LOCKED`` (`TeamDB.claim`, ``queued``/``running`` ones to log and
``ready`` ones whose transcript is due), marks its thread as the claim's holder (`TeamHistory.bind`: a step
starts only while the lease is still its own), advances the submission until it is ready, failed or waiting
for a retry (or, for a ready one, looks at its transcript once), and releases it. A renewer thread extends
every lease the relay holds every third of the lease, so a long step (the search lag waited out before a
create) keeps its claim; a relay killed anywhere lets its leases run out and another relay takes over, and
the pipeline's record of each step (written before and after HubSpot is asked) makes the one that takes over
search before creating.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import socket
import threading

from desktop_app.hubspot.client import HubSpotClient
from desktop_app.hubspot.config import HubSpotConfig
from desktop_app.hubspot.ratelimit import RateLimiter
from desktop_app.relay.db import PIPELINE_STATUSES, DatabaseError, TeamDB
from desktop_app.relay.ratebudget import PgBudget
from desktop_app.relay.storage import FileStore, S3Store
from desktop_app.relay.teamhistory import LeaseLost, RelayServerPort, RelayStorePort, TeamHistory
from desktop_app.sync import history as h
from desktop_app.sync.hubspot_port import ClientPort
from desktop_app.sync.pipeline import PermanentError, Pipeline, RetryPolicy, TransientError

log = logging.getLogger("desktop_app.relay")


def relay_name() -> str:
    """This relay process's name in the team database (claims, steps, the fetch log): host, pid, a nonce."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(2)}"


class PipelineWorkers:
    def __init__(self, db: TeamDB, pipeline: Pipeline, history: TeamHistory, *, name: str, workers: int = 2,
                 lease_s: float = 60.0, idle_s: float = 0.5) -> None:
        self.db, self.pipeline, self.history = db, pipeline, history
        self.name = name
        self.count = workers
        self.lease = dt.timedelta(seconds=lease_s)
        self.idle_s = idle_s
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def worker_names(self) -> list[str]:
        return [f"{self.name}/{n}" for n in range(1, self.count + 1)]

    def start(self) -> None:
        for worker in self.worker_names():
            t = threading.Thread(target=self._work, args=(worker,), name=f"pipeline {worker}", daemon=True)
            t.start()
            self._threads.append(t)
        renewer = threading.Thread(target=self._renew, name="lease renewer", daemon=True)
        renewer.start()
        self._threads.append(renewer)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming; wait a while for the steps under way (a lease left behind runs out)."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout / max(1, len(self._threads)))

    def _renew(self) -> None:
        every = max(0.2, self.lease.total_seconds() / 3)
        while not self._stop.wait(every):
            for worker in self.worker_names():
                try:
                    self.db.renew(worker, self.lease)
                except DatabaseError as exc:
                    log.info("leases of %s not renewed: %s", worker, exc)

    def _work(self, worker: str) -> None:
        self.history.bind(worker)
        while not self._stop.is_set():
            try:
                claim = self.db.claim(worker, self.lease, PIPELINE_STATUSES)
            except DatabaseError as exc:
                log.info("%s cannot claim work now: %s", worker, exc)
                self._stop.wait(1.0)
                continue
            if claim is None:
                self._stop.wait(self.idle_s)
                continue
            try:
                self.carry(claim.submission_id)
            except LeaseLost as exc:
                log.warning("%s", exc)
            except DatabaseError as exc:  # PostgreSQL restarting: the lease runs out, the step's record stays
                log.warning("submission %s paused: %s", claim.submission_id, exc)
                self._stop.wait(1.0)
            except Exception as exc:  # noqa: BLE001 - one submission's fault never stops the worker
                log.error("submission %s: %s", claim.submission_id, type(exc).__name__)
                self._stop.wait(1.0)
            finally:
                try:
                    self.db.release(claim.submission_id, worker)
                except DatabaseError:
                    pass  # its lease runs out instead

    def carry(self, submission_id: int) -> None:
        """One turn of a claimed submission: its steps until ready, failed or waiting; or one transcript look."""
        sub = self.history.get(submission_id, with_steps=False)
        if sub is None:
            return
        if sub.status in h.UNFINISHED:
            done = self.pipeline.advance(submission_id).submission
            if done.status == h.READY and not done.next_attempt_at:  # HubSpot fetches, then transcribes: look later
                first = h.now() + dt.timedelta(seconds=self.pipeline.policy.transcript_first_check_s)
                self.history.update(submission_id, next_attempt_at=h.iso(first))
            log.info("submission %s (%s): %s", submission_id, done.external_id, done.status)
        elif sub.status == h.READY:
            try:
                outcome = self.pipeline.check_transcript(submission_id)
            except (TransientError, PermanentError) as exc:
                log.info("submission %s: transcript not read: %s", submission_id, exc)
                return
            if outcome.finished:
                log.info("submission %s (%s): %s", submission_id, outcome.submission.external_id,
                         outcome.submission.status)


def start_pipeline(db: TeamDB, store: S3Store | FileStore, template: str, config: HubSpotConfig, *, name: str,
                   workers: int = 2, lease_s: float = 60.0, policy: RetryPolicy | None = None) -> PipelineWorkers:
    """The relay's HubSpot client (its rate budget shared with every relay through ``db``), the desk's
    ``Pipeline`` over the team database, store and endpoint, and its started workers. Registers ``template``
    first (the pipeline's ``register_endpoint`` step tries again should that fail now)."""
    limiter = RateLimiter(limit=config.rate_limit_per_10s, daily_limit=config.daily_limit,
                          search_limit=config.search_per_second, budget=PgBudget(db))
    client = HubSpotClient(config, limiter=limiter)
    port = ClientPort(client, portal_id=config.portal_id or None)
    history = TeamHistory(db, name)
    pipeline = Pipeline(history, RelayStorePort(db, store), port, RelayServerPort(db, template),
                        policy=policy or RetryPolicy())
    try:
        port.ensure_recording_endpoint(template)
        log.info("recording endpoint registered with HubSpot app %s: %s", port.app_id, template)
    except (TransientError, PermanentError) as exc:
        log.warning("the recording endpoint could not be registered now (the pipeline tries again): %s", exc)
    runner = PipelineWorkers(db, pipeline, history, name=name, workers=workers, lease_s=lease_s)
    runner.start()
    return runner
