"""Who carries which submission when (Qt-free): one claim set, one background loop.

The pipeline decides *when* a submission's next attempt is due (``next_attempt_at``, written with each
retry); the ``Scheduler`` runs submissions through it so that only one thread carries a submission at a
time (two at once could both create its call), and ``work_once`` carries on every unfinished submission
that is due and looks for the transcripts of ready calls as their checks fall due. ``Worker`` is the one
background thread that repeats a round of work every few seconds (so a killed app resumes its work on
the next start).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from desktop_app.sync import history as h
from desktop_app.sync.pipeline import Pipeline

log = logging.getLogger(__name__)


class Scheduler:
    """Runs a pipeline's submissions, each by one thread at a time."""

    def __init__(self, pipeline: Pipeline, history: h.History, stop: threading.Event | None = None) -> None:
        self.pipeline = pipeline
        self.history = history
        self.stop = stop or threading.Event()  # set: ``work_once`` ends its round early
        self._claims = threading.Condition()
        self._busy: set[int] = set()  # submissions a thread is carrying right now

    def claim(self, submission_id: int, *, wait: bool) -> bool:
        """Make this thread the only one carrying the submission; False (``wait`` off) when another does."""
        with self._claims:
            while submission_id in self._busy:
                if not wait:
                    return False
                self._claims.wait()
            self._busy.add(submission_id)
            return True

    def release(self, submission_id: int) -> None:
        with self._claims:
            self._busy.discard(submission_id)
            self._claims.notify_all()

    @contextmanager
    def claimed(self, submission_id: int) -> Iterator[None]:
        self.claim(submission_id, wait=True)
        try:
            yield
        finally:
            self.release(submission_id)

    def run(self, submission_id: int) -> h.Submission:
        """Blocking: carry a submission to ready (or failed), waiting for a thread carrying it to let go."""
        with self.claimed(submission_id):
            return self.pipeline.run(submission_id)

    def run_many(self, ids: list[int]) -> list[h.Submission]:
        """Blocking: ``Pipeline.run_batch`` for the batchable steps, then the rest of each submission, all
        claimed so the background worker leaves them alone; their final states."""
        pipeline = self.pipeline
        for sid in ids:
            self.claim(sid, wait=True)

        def rest(chunk: list[int]) -> None:
            for i in chunk:
                pipeline.run(i)

        try:
            pipeline.run_batch(ids, rest)
            finals = [self.history.get(i) for i in ids]
            return [sub for sub in finals if sub is not None]
        finally:
            for sid in ids:
                self.release(sid)

    def work_once(self) -> int:
        """One round: every unfinished submission whose next attempt is due moves on, every ready call
        whose transcript check is due is looked at; returns how many were moved on. A submission another
        thread carries is left to it."""
        moved = 0
        for sub in self.history.unfinished() + self.history.awaiting_transcript():
            if self.stop.is_set():
                break
            due = h.parse_iso(sub.next_attempt_at)
            if due is not None and due > h.now():
                continue
            if not self.claim(sub.id, wait=False):
                continue  # another thread carries it now
            try:
                if sub.status == h.READY:
                    self.pipeline.check_transcript(sub.id)
                else:
                    self.pipeline.advance(sub.id)
                moved += 1
            finally:
                self.release(sub.id)
        return moved


class Worker:
    """The background thread: ``work`` every ``interval_s`` until ``stop`` is set (an error is logged and
    the loop goes on)."""

    def __init__(self, work: Callable[[], int], interval_s: float, stop: threading.Event,
                 name: str = "callrelay-sync") -> None:
        self._work = work
        self._interval_s = interval_s
        self._stop = stop
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> Worker:
        self._thread.start()
        return self

    def join(self, timeout: float) -> None:
        self._thread.join(timeout=timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._work()
            except Exception:  # noqa: BLE001 - the loop must go on; the error is in the log
                log.exception("background sync")
            self._stop.wait(self._interval_s)
