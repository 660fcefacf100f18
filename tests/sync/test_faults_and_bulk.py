"""Submissions against the sandbox with HubSpot's failures injected, and bulk submissions in batches."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sync_helpers import write_call

from desktop_app import settings as settings_mod
from desktop_app.cli import main
from desktop_app.runtime import Runtime
from desktop_app.sync import history as h
from desktop_app.sync.pipeline import CallDetails, RetryPolicy

FAST = RetryPolicy(base_s=0.01, cap_s=0.2, search_lag_s=0.05, in_flight_s=0.5, ready_evidence_wait_s=3.0)


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    rt = Runtime(settings_mod.Settings(), sandbox=True, policy=FAST)
    rt.start()
    assert rt.client is not None
    rt.client.config = replace(rt.client.config, read_timeout=1.0)  # a "timeout" fault answers after 2 s
    yield rt
    rt.stop()


def contact_id(rt: Runtime, n: int = 0) -> str:
    return str(rt.sandbox.contacts()[n]["id"])


def calls_for(rt: Runtime, external_id: str) -> list[dict[str, object]]:
    return [c for c in rt.sandbox.calls() if c["properties"].get("hs_call_external_id") == external_id]


TRANSIENT = [
    "calls.create:429x2",  # SECONDLY 429s with HubSpot's rate-limit headers and Retry-After
    "calls.create:500x2",
    "calls.create:502x1",
    "calls.create:503x2",
    "calls.create:timeout=2x1",
    "calls.create:reset",
    "calls.create:lost",  # created, then the connection dropped: the answer never came
    "recordings.ready:lost",
    "recordings.ready:503x2",
    "settings.get:500x1",
    "associations.create:502x2",
]


@pytest.mark.parametrize("fault", TRANSIENT)
def test_transient_failures_end_ready_with_one_call_marked_once(runtime: Runtime, tmp_path: Path, fault: str) -> None:
    runtime.sandbox.faults.add_spec(fault)
    sid = runtime.submit(write_call(tmp_path / "c.wav"), CallDetails(title="t", duration_ms=3000,
                                                                      contact_id=contact_id(runtime)))
    sub = runtime.run_submission(sid)
    assert sub.status == h.READY, (fault, sub.error)
    calls = calls_for(runtime, sub.external_id)
    assert len(calls) == 1
    assert runtime.sandbox.ready_marked().count(sub.call_id) == 1


@pytest.mark.parametrize(("fault", "status"), [("calls.create:400x1", 400), ("calls.create:401x1", 401),
                                               ("recordings.ready:403x1", 403)])
def test_permanent_failures_end_failed_with_message_and_correlation_id(
        runtime: Runtime, tmp_path: Path, capsys: pytest.CaptureFixture[str], fault: str, status: int) -> None:
    runtime.sandbox.faults.add_spec(fault)
    sid = runtime.submit(write_call(tmp_path / "c.wav"), CallDetails(title="t", duration_ms=3000))
    sub = runtime.run_submission(sid)
    assert sub.status == h.FAILED and sub.error_status == status
    hubspot_cid = [r for r in runtime.sandbox.requests if r.status == status][-1]
    capsys.readouterr()
    assert main(["history", "--json", "--status", "failed"]) == 0
    [row] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["id"] == sid and row["status"] == "failed"
    assert row["correlation_id"] and row["correlation_id"] == sub.error_correlation_id
    assert getattr(hubspot_cid, "correlation_id", row["correlation_id"]) == row["correlation_id"]
    assert row["error"] and row["steps"][-1]["outcome"] == "failed"
    assert main(["history"]) == 0
    table = capsys.readouterr().out
    assert "failed" in table and str(sub.error)[:30] in table


def test_bulk_submissions_use_the_batch_endpoints(runtime: Runtime, tmp_path: Path) -> None:
    ids = []
    for n in range(7):
        rec = write_call(tmp_path / f"c{n}.wav", seconds=1.0, seed=n)
        ids.append(runtime.submit(rec, CallDetails(title=f"bulk {n}", duration_ms=1000,
                                                   contact_id=contact_id(runtime, n % 2))))
    runtime.sandbox.faults.add_spec("calls.batch_create:lost")  # the batch's answer is lost once
    runtime.run_batch(ids)
    subs = [runtime.run_submission(i) for i in ids]
    assert all(s.status == h.READY for s in subs), [s.error for s in subs]
    paths = [(r.method, r.path) for r in runtime.sandbox.requests]
    assert paths.count(("POST", "/crm/v3/objects/calls/batch/create")) == 1
    # after the lost answer: one IN search, and one more after the search lag for what the index had not shown yet
    assert 1 <= paths.count(("POST", "/crm/v3/objects/calls/search")) <= 2
    assert paths.count(("POST", "/crm/v4/associations/calls/contacts/batch/create")) == 1
    assert paths.count(("POST", "/crm/v3/objects/calls")) == 0  # no call was created one by one
    for s in subs:
        assert len(calls_for(runtime, s.external_id)) == 1
    assert sorted(runtime.sandbox.ready_marked()) == sorted(str(s.call_id) for s in subs)


def test_history_csv_export_of_a_filter(runtime: Runtime, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ok = runtime.submit(write_call(tmp_path / "a.wav"), CallDetails(title="good", duration_ms=3000))
    runtime.run_submission(ok)
    runtime.sandbox.faults.add_spec("calls.create:400x1")
    bad = runtime.submit(write_call(tmp_path / "b.wav", seed=3), CallDetails(title="bad", duration_ms=3000))
    runtime.run_submission(bad)
    capsys.readouterr()
    assert main(["history", "--csv", "--status", "ready"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["id"] for r in rows] == [str(ok)] and rows[0]["title"] == "good"
    assert rows[0]["call_url"].endswith(f"/record/0-48/{rows[0]['call_id']}")
    assert main(["history", "--since", "2999-01-01", "--json"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["history", "--since", "yesterday"]) == 2
