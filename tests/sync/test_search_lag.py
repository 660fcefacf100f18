"""HubSpot's search index trails a create by a few seconds; the sandbox models it (``search_lag_s``).

A create whose answer is lost is settled by searching for the call by its external id, and searching once
more after the policy's ``search_lag_s`` when the first search finds nothing. These tests run the real
pipeline against a sandbox whose search really lags, and show the lag it tolerates: any lag shorter than the
policy's wait (3 s by default, against HubSpot's few seconds and the sandbox's default of 2 s).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sync_helpers import write_call

from desktop_app import settings as settings_mod
from desktop_app.runtime import Runtime
from desktop_app.sandbox.server import DEFAULT_SEARCH_LAG_S
from desktop_app.sync import history as h
from desktop_app.sync.pipeline import CallDetails, RetryPolicy


def _runtime(policy_lag: float, sandbox_lag: float | None) -> Runtime:
    policy = RetryPolicy(base_s=0.01, cap_s=0.05, search_lag_s=policy_lag, in_flight_s=1.0, ready_evidence_wait_s=3.0)
    return Runtime(settings_mod.Settings(), sandbox=True, policy=policy, sandbox_search_lag_s=sandbox_lag).start()


@pytest.fixture
def lagging() -> Iterator[list[Runtime]]:
    started: list[Runtime] = []
    yield started
    for rt in started:
        rt.stop()


def _calls(rt: Runtime, external_id: str) -> list[dict[str, object]]:
    return [c for c in rt.sandbox.calls() if c["properties"].get("hs_call_external_id") == external_id]


@pytest.mark.slow
@pytest.mark.parametrize(("policy_lag", "sandbox_lag"), [(None, None), (1.0, 0.6), (1.0, 0.95)],
                         ids=["defaults", "lag-0.6s-wait-1s", "lag-0.95s-wait-1s"])
def test_a_lost_create_under_search_lag_makes_one_call(lagging: list[Runtime], tmp_path: Path,
                                                       policy_lag: float | None, sandbox_lag: float | None) -> None:
    rt = _runtime(RetryPolicy().search_lag_s if policy_lag is None else policy_lag, sandbox_lag)
    lagging.append(rt)
    if sandbox_lag is None:
        assert rt.sandbox.search_lag_s == DEFAULT_SEARCH_LAG_S  # the default policy outlasts the default lag
    else:
        assert rt.sandbox.search_lag_s == sandbox_lag
    rt.sandbox.faults.add_spec("calls.create:lost")  # created in HubSpot, the answer never came back
    sid = rt.submit(write_call(tmp_path / "c.wav"), CallDetails(title="t", duration_ms=3000,
                                                                contact_id=str(rt.sandbox.contacts()[0]["id"])))
    sub = rt.run_submission(sid)
    assert sub.status == h.READY, sub.error
    assert len(_calls(rt, sub.external_id)) == 1
    searches = [r for r in rt.sandbox.requests if (r.method, r.path) == ("POST", "/crm/v3/objects/calls/search")]
    assert searches, "the lost create was settled without a search"


@pytest.mark.slow
def test_a_lost_batch_create_under_search_lag_makes_one_call_each(lagging: list[Runtime], tmp_path: Path) -> None:
    rt = _runtime(1.0, 0.8)
    lagging.append(rt)
    ids = [rt.submit(write_call(tmp_path / f"c{n}.wav", seconds=1.0, seed=n),
                     CallDetails(title=f"bulk {n}", duration_ms=1000)) for n in range(5)]
    rt.sandbox.faults.add_spec("calls.batch_create:lost")
    rt.run_batch(ids)
    subs = [rt.run_submission(i) for i in ids]
    assert all(s.status == h.READY for s in subs), [s.error for s in subs]
    for s in subs:
        assert len(_calls(rt, s.external_id)) == 1
