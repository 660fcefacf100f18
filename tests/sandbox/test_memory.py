"""The sandbox's memory stays flat however long it runs: its request log and its list of response
problems are bounded, and nothing else grows with traffic that creates no records."""

from __future__ import annotations

import gc
import json
import sys

import pytest

from desktop_app.sandbox import RateLimits, Sandbox
from desktop_app.sandbox.server import MAX_RESPONSE_PROBLEMS


def test_the_response_problem_list_keeps_distinct_problems_up_to_its_bound() -> None:
    sb = Sandbox(seed=False)
    for i in range(3 * MAX_RESPONSE_PROBLEMS):
        sb._note_response_problem(f"calls.get 200: problem {i % (2 * MAX_RESPONSE_PROBLEMS)}")
    sb._note_response_problem("calls.get 200: problem 0")
    assert len(sb.response_problems) == MAX_RESPONSE_PROBLEMS
    assert sb.response_problems[0] == "calls.get 200: problem 0"
    assert sb.response_problem_count == 3 * MAX_RESPONSE_PROBLEMS + 1
    sb.stop()


@pytest.mark.slow
def test_memory_stays_flat_over_100000_requests() -> None:
    """100,000 requests through the whole pipeline (lookup, auth, limits, request and response checks,
    handler, log), in-process to keep the test short: the allocated blocks after 100,000 are within a
    small margin of those after the first 20,000 (by then the 10,000-entry request log is full)."""
    # a short window: the limiter holds one entry per request of the last interval, bounded by the rate
    sb = Sandbox(limits=RateLimits(per_interval=10**9, interval_ms=100, daily=10**9, search_per_second=10**9))
    h = {"authorization": f"Bearer {sb.credentials.access_token}", "content-type": "application/json"}
    search = json.dumps({"filterGroups": [{"filters": [
        {"propertyName": "phone", "operator": "EQ", "value": "+16175550142"}]}]}).encode()
    mix = [("GET", "/crm/v3/objects/contacts/101?properties=phone", b""),
           ("POST", "/crm/v3/objects/contacts/search", search),
           ("GET", "/crm/v3/owners/71000001", b""),
           ("GET", "/nowhere", b""),
           ("TRACE", "/crm/v3/owners", b""),
           ("POST", "/crm/v3/objects/calls", b"{not json"),
           ("GET", "/crm/v3/objects/calls/1?idProperty=hs_call_external_id", b"")]
    blocks: dict[int, int] = {}
    for i in range(1, 100_001):
        method, path, body = mix[i % len(mix)]
        outcome = sb.process(method, path, h, body)
        assert outcome.status < 500
        if i % 1000 == 0:
            sb._note_response_problem(f"distinct problem {i}")  # as a drifting handler would produce
        if i in (20_000, 100_000):
            gc.collect()
            blocks[i] = sys.getallocatedblocks()
    assert len(sb.requests) == 10_000
    assert len(sb.response_problems) <= MAX_RESPONSE_PROBLEMS
    growth = blocks[100_000] - blocks[20_000]
    assert growth < 5_000, f"{growth} more allocated blocks after 80,000 more requests"
    sb.stop()
