"""The pipeline against the real sandbox, the real recording server and a real history file."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sync_helpers import write_call

from desktop_app import settings as settings_mod
from desktop_app.runtime import Runtime, SubmissionRefused
from desktop_app.sync import history as h
from desktop_app.sync.pipeline import CallDetails, RetryPolicy

FAST = RetryPolicy(base_s=0.01, cap_s=0.05, search_lag_s=0.05, in_flight_s=0.5, ready_evidence_wait_s=2.0,
                   transcript_first_check_s=0.05, transcript_cap_s=0.1, transcript_deadline_s=30)


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    rt = Runtime(settings_mod.Settings(), sandbox=True, policy=FAST)
    rt.start()
    yield rt
    rt.stop()


def paid_owner(rt: Runtime) -> str:
    return next(str(o["id"]) for o in rt.sandbox.owners() if o.get("paid_seat"))


def a_contact(rt: Runtime) -> dict[str, str]:
    contact = rt.sandbox.contacts()[0]
    return {"id": str(contact["id"]), **contact["properties"]}


def test_a_submission_reaches_ready_then_transcribed(runtime: Runtime, tmp_path: Path) -> None:
    rec = write_call(tmp_path / "call.wav")
    original = rec.read_bytes()
    contact = a_contact(runtime)
    seen: list[str] = []
    runtime.add_listener(lambda sub: seen.append(sub.status))
    details = CallDetails(title="Renewal", timestamp="2026-11-20T10:00:00+00:00", duration_ms=3000,
                          from_number="+15551230001", to_number="+15551230002", direction="OUTBOUND",
                          owner_id=paid_owner(runtime), notes="talked", contact_id=contact["id"])
    sid = runtime.submit(rec, details)
    sub = runtime.run_submission(sid)

    assert sub.status == h.READY and sub.state == "ready_marked", sub.error
    assert [s.step for s in sub.steps] == ["store", "register_endpoint", "log_call", "associate", "mark_ready"]
    assert all(s.outcome == h.OK and s.ended_at for s in sub.steps)
    calls = [c for c in runtime.sandbox.calls() if c["properties"].get("hs_call_external_id") == sub.external_id]
    assert len(calls) == 1 and str(calls[0]["id"]) == sub.call_id
    props = calls[0]["properties"]
    assert props["hs_call_duration"] == "3000"  # milliseconds
    assert props["hs_call_source"] == "INTEGRATIONS_PLATFORM"
    assert props["hs_call_app_id"] == str(runtime.config.app_id)  # type: ignore[union-attr]
    assert props["hs_call_title"] == "Renewal" and props["hs_call_body"] == "talked"
    links = [(a["fromType"], a["fromId"], a["toType"], a["toId"]) for a in runtime.sandbox.associations()]
    assert ("calls", sub.call_id, "contacts", contact["id"]) in links, links
    assert runtime.sandbox.ready_marked() == [sub.call_id]
    setting = runtime.sandbox.recording_setting()
    assert setting and setting["urlToRetrieveAuthedRecording"] == runtime.server.recording_endpoint_template()

    fetch = runtime.sandbox.wait_for_fetch(sub.call_id, timeout=30)
    assert fetch.status == "transcribed", fetch
    outcome = runtime.check_transcript(sid)
    assert outcome.submission.status == h.TRANSCRIBED
    assert rec.read_bytes() == original  # the original is never changed
    assert h.QUEUED in seen and h.READY in seen and seen[-1] == h.TRANSCRIBED


def test_owner_without_seat_ends_not_transcribed_with_the_reason(runtime: Runtime, tmp_path: Path) -> None:
    unpaid = next((str(o["id"]) for o in runtime.sandbox.owners() if not o.get("paid_seat")), None)
    assert unpaid is not None, "the sandbox seeds an owner without a paid seat"
    sid = runtime.submit(write_call(tmp_path / "c.wav"), CallDetails(title="x", duration_ms=3000, owner_id=unpaid,
                                                                      contact_id=a_contact(runtime)["id"]))
    sub = runtime.run_submission(sid)
    assert sub.status == h.READY
    runtime.sandbox.wait_for_fetch(sub.call_id, timeout=30)
    outcome = runtime.check_transcript(sid)
    assert outcome.submission.status == h.NOT_TRANSCRIBED
    assert "paid Sales Hub or Service Hub seat" in (outcome.submission.error or "")


def test_transient_failures_are_retried_and_written_down(runtime: Runtime, tmp_path: Path) -> None:
    runtime.sandbox.faults.add_spec("calls.create:502x2")
    sid = runtime.submit(write_call(tmp_path / "c.wav"), CallDetails(title="x", duration_ms=3000,
                                                                      contact_id=a_contact(runtime)["id"]))
    sub = runtime.run_submission(sid)
    assert sub.status == h.READY, sub.error
    log_steps = [s for s in sub.steps if s.step == "log_call"]
    assert [s.outcome for s in log_steps][-1] in (h.OK, h.ADOPTED)
    assert any(s.outcome == h.RETRY and s.http_status == 502 and s.correlation_id for s in log_steps)
    calls = [c for c in runtime.sandbox.calls() if c["properties"].get("hs_call_external_id") == sub.external_id]
    assert len(calls) == 1


def test_a_permanent_failure_stops_with_hubspots_message_and_can_be_retried(runtime: Runtime, tmp_path: Path) -> None:
    runtime.sandbox.faults.add_spec("calls.create:400x1")
    sid = runtime.submit(write_call(tmp_path / "c.wav"), CallDetails(title="x", duration_ms=3000,
                                                                      contact_id=a_contact(runtime)["id"]))
    sub = runtime.run_submission(sid)
    assert sub.status == h.FAILED
    assert sub.error and sub.error_status == 400 and sub.error_correlation_id
    assert runtime.sandbox.calls() == [] or all(
        c["properties"].get("hs_call_external_id") != sub.external_id for c in runtime.sandbox.calls())
    runtime.retry(sid)
    again = runtime.run_submission(sid)
    assert again.status == h.READY and again.error is None


def test_details_for_file_refuses_bad_input_and_resolves_contacts(runtime: Runtime, tmp_path: Path) -> None:
    bad = tmp_path / "noise.wav"
    bad.write_bytes(b"not audio at all" * 10)
    with pytest.raises(SubmissionRefused):
        runtime.details_for_file(bad, {})
    rec = write_call(tmp_path / "out-5551230002-5551230001-20261120-100000-1.wav")
    with pytest.raises(SubmissionRefused, match="not a valid phone number"):
        runtime.details_for_file(rec, {"from_number": "12"})
    contact = a_contact(runtime)
    details = runtime.details_for_file(rec, {"contact": contact.get("email") or contact["id"]})
    assert details.contact_id == contact["id"]
    assert details.duration_ms == 3000
    assert details.from_number.startswith("+") and details.to_number.startswith("+")
    with pytest.raises(SubmissionRefused, match="No HubSpot contact"):
        runtime.details_for_file(rec, {"contact": "nobody@example.invalid"})


def test_no_transcript_within_the_deadline_says_hubspot_never_fetched(tmp_path: Path) -> None:
    policy = RetryPolicy(base_s=0.01, transcript_first_check_s=0.01, transcript_deadline_s=86400)
    with Runtime(settings_mod.Settings(), sandbox=True, policy=policy) as rt:
        # a call that is logged but whose recording HubSpot never came for
        sid = rt.submit(write_call(tmp_path / "c.wav"), CallDetails(title="x", duration_ms=3000))
        rt.sandbox.faults.add_spec("recordings.ready:400x1")
        sub = rt.history.get(sid)
        assert sub is not None
        ready = rt.run_submission(sid)
        assert ready.status == h.FAILED  # ready could not be marked: HubSpot has nothing to fetch
        rt.history.update(sid, status=h.READY, state="ready_marked", ready_at=h.iso(h.now() - dt.timedelta(hours=2)))
        first = rt.check_transcript(sid)
        assert first.submission.status == h.READY, first.submission.error  # still within the day
        assert first.wait_s is not None
        rt.history.update(sid, ready_at=h.iso(h.now() - dt.timedelta(days=2)), next_attempt_at=None)
        last = rt.check_transcript(sid)
        assert last.submission.status == h.NOT_TRANSCRIBED
        assert "never fetched the recording" in (last.submission.error or "")
        assert [s.step for s in last.submission.steps].count("transcript") == 2


def test_the_background_worker_resumes_what_a_killed_app_left(tmp_path: Path) -> None:
    with Runtime(settings_mod.Settings(), sandbox=True, policy=FAST) as first:
        sid = first.submit(write_call(tmp_path / "c.wav"), CallDetails(
            title="left behind", duration_ms=3000, contact_id=a_contact(first)["id"], owner_id=paid_owner(first)))
    # the app stopped before running it; the next start's worker carries it on and then sees the transcript
    with Runtime(settings_mod.Settings(), sandbox=True, policy=FAST) as second:
        assert second.work_once() == 1
        sub = second.history.get(sid)
        assert sub is not None and sub.status == h.READY, sub.error
        second.sandbox.wait_for_fetch(str(sub.call_id), timeout=30)
        deadline = h.now() + dt.timedelta(seconds=20)
        while second.history.get(sid).status == h.READY and h.now() < deadline:  # type: ignore[union-attr]
            second.work_once()
        assert second.history.get(sid).status == h.TRANSCRIBED  # type: ignore[union-attr]
        assert second.work_once() == 0  # nothing left to do


def test_a_full_disk_fails_the_submission_clearly_and_sends_nothing(runtime: Runtime, tmp_path: Path) -> None:
    import shutil

    from desktop_app.server.recordings import RecordingStore

    free = shutil.disk_usage(runtime.store.root).free
    runtime.store = RecordingStore(min_free_bytes=free)  # this disk, with less room than the store keeps free
    assert runtime.pipeline is not None
    runtime.pipeline.store = runtime.store
    sid = runtime.submit(write_call(tmp_path / "c.wav"), CallDetails(title="x", duration_ms=3000))
    sub = runtime.run_submission(sid)
    assert sub.status == h.FAILED and sub.steps[-1].step == "store"
    assert "disk" in (sub.error or "").lower()
    assert runtime.sandbox.calls() == [] or all(
        c["properties"].get("hs_call_external_id") != sub.external_id for c in runtime.sandbox.calls())
    assert not [p for p in runtime.store.root.iterdir() if p.suffix == ".wav"]


def test_the_worker_never_carries_a_submission_another_thread_is_running(runtime: Runtime, tmp_path: Path) -> None:
    import threading

    runtime.sandbox.faults.add_spec("calls.create:slow=1.5")
    sid = runtime.submit(write_call(tmp_path / "c.wav"), CallDetails(title="x", duration_ms=3000))
    result: list[h.Submission] = []
    runner = threading.Thread(target=lambda: result.append(runtime.run_submission(sid)))
    runner.start()
    deadline = h.now() + dt.timedelta(seconds=10)
    while not any(s.step == "log_call" for s in runtime.history.steps(sid)) and h.now() < deadline:
        threading.Event().wait(0.02)
    assert runtime.work_once() == 0  # the submission is being carried: the worker leaves it alone
    runner.join(timeout=30)
    assert result and result[0].status == h.READY
    assert len([c for c in runtime.sandbox.calls()
                if c["properties"].get("hs_call_external_id") == result[0].external_id]) == 1
