"""Rate limits with HubSpot's headers and 429 bodies; injected faults (statuses, resets, lost answers,
timeouts, slow answers) and their text form."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests
from sandbox_helpers import bearer
from test_validation import CALL, assert_error

from desktop_app.sandbox import FaultSpecError, RateLimits, Sandbox, parse_spec

SEARCH = {"filterGroups": [], "after": "0", "limit": 1, "properties": [], "sorts": []}


@pytest.fixture
def limited() -> Iterator[Sandbox]:
    sb = Sandbox(limits=RateLimits(per_interval=5, interval_ms=800, daily=9, search_per_second=3))
    sb.start()
    yield sb
    sb.stop()


def test_headers_count_down_then_secondly_429_then_the_window_frees(limited: Sandbox,
                                                                   http: requests.Session) -> None:
    u, h = f"{limited.url}/crm/v3/owners", bearer(limited.credentials.access_token)
    remaining = []
    for _ in range(5):
        resp = http.get(u, headers=h)
        assert resp.status_code == 200
        assert resp.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "800"
        assert resp.headers["X-HubSpot-RateLimit-Max"] == "5"
        assert resp.headers["X-HubSpot-RateLimit-Daily"] == "9"
        remaining.append(int(resp.headers["X-HubSpot-RateLimit-Remaining"]))
    assert remaining == [4, 3, 2, 1, 0]
    refused = http.get(u, headers=h)
    body = assert_error(refused, 429, "RATE_LIMITS")
    assert body["policyName"] == "SECONDLY" and body["errorType"] == "RATE_LIMIT"
    assert int(refused.headers["Retry-After"]) >= 1
    time.sleep(0.85)
    again = http.get(u, headers=h)
    assert again.status_code == 200 and again.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "3"


def test_search_has_its_own_per_second_limit_and_the_ten_second_headers(limited: Sandbox,
                                                                        http: requests.Session) -> None:
    u, h = f"{limited.url}/crm/v3/objects/contacts/search", bearer(limited.credentials.access_token)
    answers = [http.post(u, headers=h, json=SEARCH) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    # the ten-second window's headers, which a search does not use up
    assert [a.headers["X-HubSpot-RateLimit-Remaining"] for a in answers[:3]] == ["5", "5", "5"]
    assert answers[0].headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "800"
    assert answers[3].json()["policyName"] == "SECONDLY"
    other = limited.issue_token(["crm.objects.contacts.read"], kind="private-app")
    assert http.post(u, headers=bearer(str(other)), json=SEARCH).status_code == 200  # per token
    assert http.get(f"{limited.url}/crm/v3/owners", headers=h).status_code == 200  # other window untouched


def test_exempt_operations_use_neither_the_window_nor_the_search_limit(http: requests.Session) -> None:
    """associations-v4.json exempts the association batches from the ten-second window; only searches
    have a per-second limit. Five batch creates in a second leave the next search and GET alone."""
    with Sandbox(limits=RateLimits(per_interval=3, interval_ms=5000, daily=100, search_per_second=2)) as sb:
        h = bearer(sb.credentials.access_token)
        calls = [http.post(f"{sb.url}/crm/v3/objects/calls", headers=h, json={"properties": {
            "hs_timestamp": "2024-01-01T00:00:00Z"}}).json()["id"] for _ in range(2)]
        batch = {"inputs": [{"from": {"id": calls[0]}, "to": {"id": "101"}, "types": [
            {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 194}]}]}
        for _ in range(5):
            resp = http.post(f"{sb.url}/crm/v4/associations/calls/contacts/batch/create", headers=h, json=batch)
            assert resp.status_code == 201 and resp.headers["X-HubSpot-RateLimit-Remaining"] == "1", resp.text
        assert http.post(f"{sb.url}/crm/v3/objects/contacts/search", headers=h, json={}).status_code == 200
        assert http.get(f"{sb.url}/crm/v3/owners", headers=h).status_code == 200
        assert http.get(f"{sb.url}/crm/v3/owners", headers=h).status_code == 429  # the window itself still holds


def test_daily_limit_answers_daily_429_until_midnight(limited: Sandbox, http: requests.Session) -> None:
    h = bearer(limited.credentials.access_token)
    limited.set_limits(RateLimits(per_interval=100, daily=3))
    for _ in range(3):
        assert http.get(f"{limited.url}/crm/v3/owners", headers=h).status_code == 200
    refused = http.get(f"{limited.url}/crm/v3/owners", headers=h)
    assert refused.status_code == 429 and refused.json()["policyName"] == "DAILY"
    assert int(refused.headers["Retry-After"]) > 1
    assert refused.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "0"


def test_status_faults_fire_n_times_and_the_operation_is_not_done(sandbox: Sandbox, http: requests.Session) -> None:
    sandbox.faults.fail("calls.create", times=2, status=503)
    h = bearer(sandbox.credentials.access_token)
    u = f"{sandbox.url}/crm/v3/objects/calls"
    statuses = [http.post(u, headers=h, json={"properties": CALL, "associations": []}).status_code for _ in range(3)]
    assert statuses == [503, 503, 201]
    assert len(sandbox.calls()) == 1
    assert [r.fault for r in sandbox.requests_for("calls.create")] == ["status", "status", ""]
    sandbox.faults.rate_limit("contacts.search", policy="DAILY")
    resp = http.post(f"{sandbox.url}/crm/v3/objects/contacts/search", headers=h, json=SEARCH)
    assert resp.status_code == 429 and resp.json()["policyName"] == "DAILY" and "Retry-After" in resp.headers
    assert resp.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "0"
    sandbox.faults.rate_limit("owners.list")
    secondly = http.get(f"{sandbox.url}/crm/v3/owners", headers=h)
    assert secondly.json()["policyName"] == "SECONDLY" and secondly.headers["Retry-After"] == "1"
    assert secondly.headers["X-HubSpot-RateLimit-Remaining"] == "0"


def test_reset_timeout_slow_and_lost(sandbox: Sandbox, http: requests.Session) -> None:
    h = bearer(sandbox.credentials.access_token)
    owners = f"{sandbox.url}/crm/v3/owners"
    sandbox.faults.reset("owners.list")
    with pytest.raises(requests.ConnectionError):
        http.get(owners, headers=h)
    assert http.get(owners, headers=h).status_code == 200
    sandbox.faults.timeout("owners.list", seconds=2)
    with pytest.raises(requests.ReadTimeout):
        http.get(owners, headers=h, timeout=0.3)
    sandbox.faults.slow("owners.list", seconds=0.4)
    started = time.monotonic()
    assert http.get(owners, headers=h).status_code == 200
    assert time.monotonic() - started >= 0.4
    sandbox.faults.lost("calls.create")
    with pytest.raises(requests.ConnectionError):
        http.post(f"{sandbox.url}/crm/v3/objects/calls", headers=h,
                  json={"properties": {**CALL, "hs_call_external_id": "maybe"}, "associations": []})
    assert [c["properties"]["hs_call_external_id"] for c in sandbox.calls()] == ["maybe"]  # it did happen


def test_fault_spec_text_form() -> None:
    rules = parse_spec("calls.create:503x2; contacts.search:429/DAILY, *:slow=0.5x*;recordings.ready:lost@1;"
                       "owners.list:timeout=3;GET /crm/v3/owners:reset")
    assert [(r.target, r.action, r.status, r.times, r.skip) for r in rules] == [
        ("calls.create", "status", 503, 2, 0), ("contacts.search", "status", 429, 1, 0), ("*", "slow", 0, None, 0),
        ("recordings.ready", "lost", 0, 1, 1), ("owners.list", "timeout", 0, 1, 0),
        ("GET /crm/v3/owners", "reset", 0, 1, 0)]
    assert rules[1].policy == "DAILY" and rules[2].seconds == 0.5 and rules[4].seconds == 3
    for bad in ("calls.create", "nosuch.op:500", "calls.create:explode", "calls.create:500x"):
        with pytest.raises(FaultSpecError):
            parse_spec(bad)


def test_spec_given_to_the_constructor_and_skip(http: requests.Session) -> None:
    with Sandbox(faults="owners.list:500x1@1") as sb:
        h = bearer(sb.credentials.access_token)
        assert [http.get(f"{sb.url}/crm/v3/owners", headers=h).status_code for _ in range(3)] == [200, 500, 200]
