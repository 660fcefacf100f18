"""Every kind of failure, against a real server on 127.0.0.1 that answers as HubSpot does.

The scripted server gives exact bodies and network failures; the sandbox tests cover the same
paths against the HubSpot emulator.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
import time

import pytest
from hs_support import Answer, Scripted, hubspot_error

from desktop_app.hubspot import errors
from desktop_app.hubspot.client import RATE_LIMIT_WAITS, HubSpotClient
from desktop_app.hubspot.config import HubSpotConfig
from desktop_app.hubspot.endpoints import CallDetails
from desktop_app.hubspot.errors import HubSpotError
from desktop_app.hubspot.ratelimit import RateLimiter

TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
HAPIKEY = "dev-key-66666666-7777"
CALL = CallDetails(external_id="rec-1", timestamp=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
                   duration_ms=1000)
CALL_JSON = {"id": "901", "properties": {"hs_call_external_id": "rec-1"}, "createdAt": "2026-01-02T03:04:05Z",
             "updatedAt": "2026-01-02T03:04:05Z", "archived": False}
LABELS = {"results": [{"category": "HUBSPOT_DEFINED", "typeId": 194, "label": None}]}


def make_client(url: str, **kw: object) -> HubSpotClient:
    config = HubSpotConfig(api_url=url, access_token=TOKEN, developer_api_key=HAPIKEY, app_id="12345",
                           portal_id="99", is_sandbox=True, read_timeout=float(kw.pop("read_timeout", 5.0)))  # type: ignore[arg-type]
    return HubSpotClient(config, limiter=RateLimiter(), **kw)  # type: ignore[arg-type]


def test_missing_scope_names_the_scope_and_is_not_retried(scripted: Scripted) -> None:
    body = hubspot_error("MISSING_SCOPES", "This app hasn't been granted all required scopes to make this call.",
                         errors=[{"message": "One or more of the following scopes are required.",
                                  "context": {"requiredGranularScopes": ["crm.objects.contacts.write"]}}])
    scripted.add(Answer(403, body))
    with make_client(scripted.url) as client, pytest.raises(HubSpotError) as info:
        client.create_call(CALL)
    err = info.value
    assert err.status == 403 and err.category == "MISSING_SCOPES"
    assert err.correlation_id == "aeb5f871-7f07-4993-9211-075dc63e7cbf"
    assert err.agent_message.startswith("The token has no `crm.objects.contacts.write` scope")
    assert err.missing_scopes == ["crm.objects.contacts.write"]
    assert not err.retryable and not err.ambiguous
    assert len(scripted.received) == 1


def test_validation_error_carries_field_errors(scripted: Scripted) -> None:
    scripted.add(Answer(400, hubspot_error("VALIDATION_ERROR", "Property values were not valid", errors=[
        {"message": "100 is not a valid owner", "in": "hubspot_owner_id", "code": "INVALID_OWNER_ID"}])))
    with make_client(scripted.url) as client, pytest.raises(HubSpotError) as info:
        client.create_call(CALL)
    err = info.value
    assert [(e.in_, e.code) for e in err.errors] == [("hubspot_owner_id", "INVALID_OWNER_ID")]
    assert "hubspot_owner_id: 100 is not a valid owner" in err.agent_message
    assert not err.retryable
    assert "HTTP 400" in str(err) and "VALIDATION_ERROR" in str(err)


def test_unauthorized_tells_the_agent_to_sign_in(scripted: Scripted) -> None:
    scripted.add(Answer(401, hubspot_error("INVALID_AUTHENTICATION", "Authentication credentials not found.")))
    with make_client(scripted.url) as client, pytest.raises(HubSpotError) as info:
        client.account_details()
    assert "sign in" in info.value.agent_message.lower() and not info.value.retryable


def test_recording_settings_absent_is_none(scripted: Scripted) -> None:
    scripted.add(Answer(404, hubspot_error("OBJECT_NOT_FOUND", "No recording settings for app 12345")))
    with make_client(scripted.url) as client:
        assert client.get_recording_settings() is None
    assert scripted.received[0].path.endswith("/settings/recording?hapikey=" + HAPIKEY)
    assert "Authorization" not in scripted.received[0].headers


def test_secondly_429_waits_for_retry_after_then_succeeds(scripted: Scripted) -> None:
    scripted.add(Answer(429, hubspot_error("RATE_LIMITS", "You have reached your secondly limit.",
                                           policyName="SECONDLY"), {"Retry-After": "1"}),
                 Answer(200, {"results": []}))
    with make_client(scripted.url) as client:
        started = time.monotonic()
        assert client.owners() == []
        elapsed = time.monotonic() - started
        assert client.limiter.pauses_429 == 1
    assert elapsed >= 0.95
    assert len(scripted.received) == 2


def test_daily_429_stops_without_retrying(scripted: Scripted) -> None:
    scripted.add(Answer(429, hubspot_error("RATE_LIMITS", "You have reached your daily limit.",
                                           policyName="DAILY")))
    with make_client(scripted.url) as client:
        with pytest.raises(HubSpotError) as info:
            client.owners()
        assert info.value.policy_name == "DAILY" and not info.value.retryable
        assert info.value.retry_after is not None and 0 < info.value.retry_after <= 86400
        assert "daily" in info.value.agent_message
        with pytest.raises(HubSpotError) as again:  # no request leaves until the day ends
            client.owners()
    assert again.value.policy_name == "DAILY"
    assert len(scripted.received) == 1


def test_503_on_a_create_is_reported_at_once_for_the_caller_to_retry(scripted: Scripted) -> None:
    scripted.add(Answer(200, LABELS), Answer(503, hubspot_error("SERVICE_UNAVAILABLE", "down")), Answer(201, CALL_JSON))
    with make_client(scripted.url) as client:
        with pytest.raises(HubSpotError) as info:
            client.create_call(CALL, {"contacts": ["51"]})
        assert info.value.retryable and not info.value.ambiguous and info.value.status == 503
        assert [r.method for r in scripted.received] == ["GET", "POST"]  # the client itself tried once
        call = client.create_call(CALL, {"contacts": ["51"]})  # the caller's (the pipeline's) next attempt
    assert call.id == "901"
    assert [r.method for r in scripted.received] == ["GET", "POST", "POST"]


def test_502_on_a_create_is_ambiguous_and_not_retried(scripted: Scripted) -> None:
    scripted.add(Answer(502, b"<html>Bad gateway</html>"))
    with make_client(scripted.url) as client, pytest.raises(HubSpotError) as info:
        client.create_call(CALL)
    assert info.value.ambiguous and info.value.retryable and info.value.status == 502
    assert "looked up" in info.value.agent_message
    assert len(scripted.received) == 1


def test_5xx_on_a_read_is_reported_after_one_request(scripted: Scripted) -> None:
    scripted.default = Answer(500, hubspot_error("INTERNAL_ERROR", "boom"))
    with make_client(scripted.url) as client, pytest.raises(HubSpotError) as info:
        client.read_call("901")
    assert info.value.retryable and not info.value.ambiguous
    assert len(scripted.received) == 1


def test_503_with_retry_after_is_reported_with_it_not_slept_on(scripted: Scripted) -> None:
    scripted.default = Answer(503, hubspot_error("SERVICE_UNAVAILABLE", "down"), {"Retry-After": "30"})
    with make_client(scripted.url) as client, pytest.raises(HubSpotError) as info:
        started = time.monotonic()
        client.owners()
    assert time.monotonic() - started < 5  # the caller's policy waits the 30 s (RetryPolicy.backoff honours it)
    assert info.value.retry_after == 30 and info.value.retryable
    assert len(scripted.received) == 1


def test_429s_in_a_row_are_waited_out_a_bounded_number_of_times(scripted: Scripted) -> None:
    scripted.default = Answer(429, hubspot_error("RATE_LIMITS", "You have reached your secondly limit.",
                                                 policyName="SECONDLY"), {"Retry-After": "0.2"})
    with make_client(scripted.url) as client, pytest.raises(HubSpotError) as info:
        client.owners()
    assert info.value.status == 429 and info.value.retryable and info.value.retry_after == 0.2
    assert len(scripted.received) == 1 + RATE_LIMIT_WAITS  # then the caller's policy takes over
    assert client.limiter.pauses_429 == 1 + RATE_LIMIT_WAITS


def test_a_429_without_retry_after_is_reported_at_once(scripted: Scripted) -> None:
    scripted.default = Answer(429, hubspot_error("RATE_LIMITS", "You have reached your secondly limit.",
                                                 policyName="SECONDLY"))
    with make_client(scripted.url) as client, pytest.raises(HubSpotError) as info:
        client.owners()
    assert info.value.status == 429 and info.value.retryable
    assert len(scripted.received) == 1
    assert client.limiter.pauses_429 == 1  # the limiter still holds every thread for its window


def test_reset_during_a_create_is_ambiguous(scripted: Scripted) -> None:
    scripted.add(Answer(action="reset"))
    with make_client(scripted.url) as client, pytest.raises(HubSpotError) as info:
        client.create_call(CALL)
    assert info.value.ambiguous and info.value.category == errors.NETWORK and info.value.status is None
    assert len(scripted.received) == 1


def test_reset_during_a_search_is_retryable_and_reported_at_once(scripted: Scripted) -> None:
    scripted.add(Answer(action="reset"), Answer(200, {"total": 0, "results": []}))
    with make_client(scripted.url) as client:
        with pytest.raises(HubSpotError) as info:
            client.find_calls_by_external_id("rec-1")
        assert info.value.retryable and not info.value.ambiguous and info.value.category == errors.NETWORK
        assert len(scripted.received) == 1
        assert client.find_calls_by_external_id("rec-1") == []  # the caller's next attempt
    assert len(scripted.received) == 2


def test_read_timeout_on_a_create_is_ambiguous(scripted: Scripted) -> None:
    scripted.add(Answer(action="stall"))
    with make_client(scripted.url, read_timeout=0.3) as client, pytest.raises(HubSpotError) as info:
        client.create_call(CALL)
    assert info.value.ambiguous and info.value.category == errors.TIMEOUT


def test_refused_connection_is_retryable_and_never_ambiguous() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with make_client(f"http://127.0.0.1:{port}") as client, pytest.raises(HubSpotError) as info:
        client.create_call(CALL)
    assert info.value.retryable and not info.value.ambiguous
    assert "could not be reached" in info.value.agent_message


def test_unknown_host_is_reported_as_such() -> None:
    with make_client("http://hubspot.invalid") as client, pytest.raises(HubSpotError) as info:
        client.owners()
    assert "address could not be found" in info.value.agent_message and not info.value.ambiguous


def test_an_answer_that_is_not_hubspots_shape_is_a_bad_response(scripted: Scripted) -> None:
    scripted.add(Answer(200, b"not json"), Answer(200, {"portalId": 5}))
    with make_client(scripted.url) as client:
        for _ in range(2):
            with pytest.raises(HubSpotError) as info:
                client.account_details()
            assert info.value.category == errors.BAD_RESPONSE and not info.value.retryable


def test_secrets_never_reach_errors_or_logs(scripted: Scripted, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3")  # HubSpot's SDK (tests/conformance) sets it to WARNING
    scripted.add(Answer(400, hubspot_error("VALIDATION_ERROR", f"bad key {HAPIKEY}")), Answer(action="reset"))
    raised = []
    with make_client(scripted.url) as client:
        for action in (lambda: client.create_recording_settings("http://127.0.0.1:1/r/%s"),
                       lambda: client.get_recording_settings()):
            with pytest.raises(HubSpotError) as info:
                action()
            raised.append(info.value)
    texts = [str(e) for e in raised] + [repr(e) for e in raised] + [e.message for e in raised]
    texts += [str(vars(e)) for e in raised] + [caplog.text]
    assert any("hapikey" in r.getMessage() for r in caplog.records)  # urllib3 did log the URL …
    for text in texts:
        assert HAPIKEY not in text and TOKEN not in text  # … without the key
    assert raised[1].category == errors.NETWORK and raised[1].retryable


def test_scrub_blanks_secrets_in_any_text() -> None:
    text = f"GET /x?hapikey={HAPIKEY}&a=1 Authorization: Bearer {TOKEN} refresh_token=rt-9 other"
    clean = errors.scrub(text, [TOKEN])
    assert HAPIKEY not in clean and TOKEN not in clean and "rt-9" not in clean
    assert clean.endswith("other") and "a=1" in clean


@pytest.mark.parametrize("answer", [
    Answer(503, hubspot_error("SERVICE_UNAVAILABLE", "down")),
    Answer(429, hubspot_error("RATE_LIMITS", "You have reached your secondly limit.", policyName="SECONDLY")),
    Answer(action="reset"),
    Answer(action="stall"),
], ids=["503", "429", "reset", "timeout"])
def test_an_error_reported_at_once_promises_no_retry_the_client_does_not_make(scripted: Scripted,
                                                                               answer: Answer) -> None:
    """The client retries nothing now: its sentence (shown by `hubspot test`, contact search, set-up, and in the
    history beside the pipeline's own retry note) must not say the request is tried again."""
    scripted.default = answer
    with make_client(scripted.url, read_timeout=0.3) as client, pytest.raises(HubSpotError) as info:
        client.owners()
    assert info.value.retryable and len(scripted.received) == 1
    assert "tried again" not in info.value.agent_message and "tried again" not in str(info.value)
