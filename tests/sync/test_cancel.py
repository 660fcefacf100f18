"""Cancel: a submission that has not reached HubSpot yet is stopped; one that has is refused."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sync_helpers import write_call

from desktop_app import settings as settings_mod
from desktop_app.runtime import Runtime
from desktop_app.sync import history as h
from desktop_app.sync.pipeline import CallDetails, Pipeline, RetryPolicy

FAST = RetryPolicy(base_s=0.01, cap_s=0.05, search_lag_s=0.05, in_flight_s=0.5, ready_evidence_wait_s=2.0,
                   transcript_first_check_s=0.05, transcript_cap_s=0.1, transcript_deadline_s=30)


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    rt = Runtime(settings_mod.Settings(), sandbox=True, policy=FAST)
    rt.start()
    yield rt
    rt.stop()


def details(rt: Runtime) -> CallDetails:
    owner = next(str(o["id"]) for o in rt.sandbox.owners() if o.get("paid_seat"))
    return CallDetails(title="Cancel me", timestamp="2026-11-20T10:00:00+00:00", duration_ms=3000,
                       from_number="+15551230001", to_number="+15551230002", direction="OUTBOUND", owner_id=owner)


def calls_of(rt: Runtime, sub: h.Submission) -> list[object]:
    return [c for c in rt.sandbox.calls() if c["properties"].get("hs_call_external_id") == sub.external_id]


def test_a_queued_submission_is_cancelled_and_never_reaches_hubspot(runtime: Runtime, tmp_path: Path) -> None:
    sid = runtime.submit(write_call(tmp_path / "call.wav"), details(runtime))
    assert runtime.cancel(sid) is True
    sub = runtime.run_submission(sid)
    assert sub.status == h.FAILED and "Cancelled" in (sub.error or "")
    assert "log_call" not in [s.step for s in sub.steps]
    assert calls_of(runtime, sub) == []
    runtime.run_batch([sid], lambda chunk: [runtime.run_submission(i) for i in chunk])  # the batch path too
    assert calls_of(runtime, sub) == [] and runtime.history.get(sid).status == h.FAILED  # type: ignore[union-attr]


def test_a_stored_submission_is_cancelled_before_its_call_is_logged(runtime: Runtime, tmp_path: Path) -> None:
    sid = runtime.submit(write_call(tmp_path / "call.wav"), details(runtime))
    runtime.pipeline.store_now(sid)  # type: ignore[union-attr]
    assert runtime.history.get(sid).state == "stored"  # type: ignore[union-attr]
    assert runtime.cancel(sid) is True
    sub = runtime.run_submission(sid)
    assert sub.status == h.FAILED and calls_of(runtime, sub) == []
    assert "log_call" not in [s.step for s in sub.steps]


def test_cancel_is_refused_once_the_call_was_sent_to_hubspot(runtime: Runtime, tmp_path: Path) -> None:
    sid = runtime.submit(write_call(tmp_path / "call.wav"), details(runtime))
    sub = runtime.run_submission(sid)
    assert sub.status == h.READY
    assert runtime.cancel(sid) is False
    after = runtime.history.get(sid)
    assert after is not None and after.status == h.READY and after.error is None and len(calls_of(runtime, after)) == 1


def test_a_cancel_that_raced_a_running_step_still_stops_log_call(runtime: Runtime, tmp_path: Path) -> None:
    """The worker read the submission before the cancel and writes "running" over it: log_call still refuses."""
    sid = runtime.submit(write_call(tmp_path / "call.wav"), details(runtime))
    runtime.pipeline.store_now(sid)  # type: ignore[union-attr]
    assert runtime.cancel(sid) is True
    runtime.history.update(sid, status=h.RUNNING)  # what a worker that read "queued" first would write
    sub = runtime.run_submission(sid)
    assert sub.status == h.FAILED and calls_of(runtime, sub) == []
    assert "Cancelled" in (sub.error or ""), sub.error


def test_a_step_that_ends_after_the_cancel_leaves_it_said(runtime: Runtime, tmp_path: Path) -> None:
    """The step under way when Cancel came ends well and clears the error: it still says it was cancelled."""
    sid = runtime.submit(write_call(tmp_path / "call.wav"), details(runtime))
    runtime.sandbox.faults.slow("settings.get", 2.0)  # the link registration is under way for 2 s
    result: list[h.Submission] = []
    worker = threading.Thread(target=lambda: result.append(runtime.run_submission(sid)))
    worker.start()
    deadline = time.monotonic() + 20
    while runtime.history.open_step(sid, "register_endpoint") is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert runtime.cancel(sid) is True
    worker.join(30)
    sub = runtime.history.get(sid)
    assert sub is not None and result and result[0].status == h.FAILED
    assert [s.step for s in sub.steps] == ["store", "register_endpoint"]
    assert sub.status == h.FAILED and "Cancelled" in (sub.error or ""), sub.error
    assert calls_of(runtime, sub) == []
    assert "log_call" not in [s.step for s in sub.steps]


def test_a_cancel_is_kept_in_the_history_for_every_pipeline(runtime: Runtime, tmp_path: Path) -> None:
    """A second pipeline on the same history (another process's: ``callrelay upload`` beside the desk) read the
    submission before the cancel and writes "running" over it: its log_call still refuses, as the cancel is in
    the history, not in the memory of the pipeline that was asked."""
    sid = runtime.submit(write_call(tmp_path / "call.wav"), details(runtime))
    first = runtime.pipeline
    assert first is not None
    first.store_now(sid)
    other = Pipeline(first.history, first.store, first.hubspot, first.server, policy=first.policy)
    assert runtime.cancel(sid) is True
    runtime.history.update(sid, status=h.RUNNING)  # the other pipeline's worker read "queued" before the cancel
    sub = other.run(sid)
    assert sub.status == h.FAILED and "Cancelled" in (sub.error or ""), sub.error
    assert calls_of(runtime, sub) == [] and "log_call" not in [s.step for s in sub.steps]
