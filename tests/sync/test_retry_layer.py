"""Retries live in one layer (issue 16): the pipeline retries a step and writes each attempt down; the HubSpot
client sends each of those attempts once, waiting only where HubSpot says to (a 429's ``Retry-After``).

Against the sandbox on 127.0.0.1 with its faults: the sandbox's request log counts the HTTP attempts, the
history counts the pipeline's.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sync_helpers import write_call

from desktop_app import settings as settings_mod
from desktop_app.hubspot.errors import HubSpotError
from desktop_app.runtime import Runtime
from desktop_app.sync import history as h
from desktop_app.sync.pipeline import CallDetails, RetryPolicy

ATTEMPTS = 3
POLICY = RetryPolicy(base_s=0.01, cap_s=0.05, max_attempts=ATTEMPTS, search_lag_s=0.05, in_flight_s=0.2,
                     ready_evidence_wait_s=0.2)


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    rt = Runtime(settings_mod.Settings(), sandbox=True, policy=POLICY)
    rt.start()
    yield rt
    rt.stop()


def _sent(rt: Runtime, alias: str) -> int:
    return sum(1 for r in rt.sandbox.requests if r.alias == alias)


@pytest.mark.parametrize(("fault", "alias", "step"), [
    ("recordings.ready:503x*", "recordings.ready", "mark_ready"),
    ("calls.create:503x*", "calls.create", "log_call"),
])
def test_each_pipeline_attempt_sends_one_http_request(runtime: Runtime, tmp_path: Path, fault: str, alias: str,
                                                      step: str) -> None:
    runtime.sandbox.faults.add_spec(fault)  # HubSpot answers 503 to every try
    sid = runtime.submit(write_call(tmp_path / "c.wav"), CallDetails(title="t", duration_ms=3000))
    sub = runtime.run_submission(sid)
    assert sub.status == h.FAILED and f"gave up after {ATTEMPTS} attempts" in (sub.error or "")
    attempts = [s for s in sub.steps if s.step == step]
    assert len(attempts) == ATTEMPTS  # the pipeline wrote each attempt down …
    assert _sent(runtime, alias) == ATTEMPTS  # … and each was one HTTP request (the client retried none)


def test_a_429_with_retry_after_waits_and_succeeds_in_one_pipeline_attempt(runtime: Runtime, tmp_path: Path) -> None:
    assert runtime.client is not None
    pauses = runtime.client.limiter.pauses_429
    runtime.sandbox.faults.add_spec("calls.create:429x1")  # SECONDLY, with Retry-After
    sid = runtime.submit(write_call(tmp_path / "c.wav"), CallDetails(title="t", duration_ms=3000))
    sub = runtime.run_submission(sid)
    assert sub.status == h.READY, sub.error
    assert [s.outcome for s in sub.steps if s.step == "log_call"] == [h.OK]  # one pipeline attempt
    assert _sent(runtime, "calls.create") == 2  # the 429, then the create after its Retry-After
    assert runtime.client.limiter.pauses_429 == pauses + 1  # the shared limiter held every thread


def test_an_interactive_contact_search_gets_its_error_at_once(runtime: Runtime) -> None:
    assert runtime.client is not None
    runtime.sandbox.faults.add_spec("contacts.search:503x*")
    started = time.monotonic()
    with pytest.raises(HubSpotError) as info:
        runtime.client.search_contacts_by_email("someone@example.com")
    assert info.value.status == 503 and info.value.retryable
    assert _sent(runtime, "contacts.search") == 1
    assert time.monotonic() - started < 5.0  # no back-off slept inside the client
