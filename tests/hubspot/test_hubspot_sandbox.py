"""Each client function against the sandbox (a strict local HubSpot), including faults it injects."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time

import pytest

from desktop_app.hubspot import errors
from desktop_app.hubspot.client import HubSpotClient, recording_registration_problem
from desktop_app.hubspot.config import config_from_env
from desktop_app.hubspot.endpoints import CallDetails
from desktop_app.hubspot.errors import HubSpotError
from desktop_app.hubspot.models import call_url
from desktop_app.hubspot.ratelimit import RateLimiter
from desktop_app.sandbox import Sandbox

OWNER = "71000001"
WHEN = dt.datetime(2026, 2, 3, 14, 5, 0, tzinfo=dt.timezone.utc)


def details(external_id: str, **kw: object) -> CallDetails:
    base: dict[str, object] = dict(external_id=external_id, timestamp=WHEN, duration_ms=185_250,
                                   title="Call with Jane", notes="Renewal", owner_id=OWNER,
                                   from_number="+16175550142", to_number="+16175550100", direction="INBOUND")
    base.update(kw)
    return CallDetails(**base)  # type: ignore[arg-type]


def contact_id(client: HubSpotClient, email: str) -> str:
    (found,) = client.search_contacts_by_email(email)
    return found.id


def test_recording_settings_lifecycle(client: HubSpotClient, sandbox: Sandbox) -> None:
    assert client.get_recording_settings() is None
    created = client.create_recording_settings("http://127.0.0.1:8765/retrieve/authenticated/recordings/%s")
    assert created.url_to_retrieve_authed_recording.endswith("/recordings/%s")
    updated = client.update_recording_settings("https://rec.example.com/r/%s")
    assert updated.url_to_retrieve_authed_recording == "https://rec.example.com/r/%s"
    got = client.get_recording_settings()
    assert got is not None and got.url_to_retrieve_authed_recording == "https://rec.example.com/r/%s"
    assert sandbox.recording_setting() == {"urlToRetrieveAuthedRecording": "https://rec.example.com/r/%s"}
    assert client.register_recording_url("https://rec.example.com/r/%s") == got  # unchanged: no write
    assert [r.auth for r in sandbox.requests] == ["developer-api-key"] * len(sandbox.requests)
    assert len(sandbox.requests_for("settings.update")) == 1


def test_recording_settings_without_developer_key_need_the_developer_scope(sandbox: Sandbox) -> None:
    """A private-app token can never hold developers-write: the client says so before sending."""
    config = dataclasses.replace(config_from_env(sandbox.env()), developer_api_key="")
    assert recording_registration_problem(config) is not None
    assert recording_registration_problem(config_from_env(sandbox.env())) is None
    assert recording_registration_problem(dataclasses.replace(config, auth="oauth")) is None
    with HubSpotClient(config, limiter=RateLimiter()) as client, pytest.raises(HubSpotError) as info:
        client.create_recording_settings("https://rec.example.com/r/%s")
    assert info.value.status is None and info.value.category == errors.MISSING_SCOPES
    assert "developer API key" in info.value.agent_message and "developers-write" in info.value.agent_message


def test_on_the_2026_09_api_only_the_developer_key_registers_the_recording_url(sandbox: Sandbox) -> None:
    """2026-09's calling settings list only the developer API key (no OAuth scope): an OAuth sign-in without
    the key is told so before sending, as a private-app token is on v3."""
    oauth = dataclasses.replace(config_from_env(sandbox.env()), developer_api_key="", auth="oauth")
    assert recording_registration_problem(oauth) is None  # v3 takes developers-write
    dated = dataclasses.replace(oauth, api_version="2026-09")
    problem = recording_registration_problem(dated)
    assert problem is not None and "2026-09" in problem and "developer API key" in problem
    assert recording_registration_problem(dataclasses.replace(dated, developer_api_key="k")) is None
    assert sandbox.requests_for("settings.create") == []  # (tests/sandbox/test_auth.py: the sandbox refuses it)


def test_a_loopback_recording_url_is_refused_for_hubspots_own_servers(sandbox: Sandbox) -> None:
    remote = dataclasses.replace(config_from_env(sandbox.env()), api_url="https://api.hubapi.com", is_sandbox=False)
    with HubSpotClient(remote, limiter=RateLimiter()) as client, pytest.raises(ValueError, match="loopback"):
        client.create_recording_settings("http://127.0.0.1:8765/r/%s")
    with HubSpotClient(config_from_env(sandbox.env()), limiter=RateLimiter()) as client:
        made = client.create_recording_settings("http://127.0.0.1:8765/r/%s")  # the sandbox can reach it
    assert made.url_to_retrieve_authed_recording == "http://127.0.0.1:8765/r/%s"


def test_create_call_with_contact_association(client: HubSpotClient, sandbox: Sandbox) -> None:
    jane = contact_id(client, "Jane.Doe@example.com")
    call = client.create_call(details("rec-001"), {"contacts": [jane]})
    stored = sandbox.call(call.id)
    assert stored is not None
    props = stored["properties"]
    assert props["hs_call_duration"] == "185250"  # milliseconds
    assert props["hs_call_source"] == "INTEGRATIONS_PLATFORM"
    assert props["hs_call_app_id"] == str(sandbox.credentials.app_id)
    assert props["hs_call_external_account_id"] == str(sandbox.credentials.portal_id)
    assert props["hs_call_external_id"] == "rec-001" and props["hubspot_owner_id"] == OWNER
    links = [a for a in sandbox.associations() if a["fromType"] == "calls" and a["fromId"] == call.id]
    assert links == [{"fromType": "calls", "fromId": call.id, "toType": "contacts", "toId": jane,
                      "types": [{"category": "HUBSPOT_DEFINED", "typeId": 194}]}]
    client.create_call(details("rec-002"), {"contacts": [jane]})
    assert len(sandbox.requests_for("associations.labels")) == 1  # read once, then cached
    assert call_url(sandbox.credentials.portal_id, call.id).endswith(f"/record/0-48/{call.id}")


def test_create_call_with_disposition_from_the_account(client: HubSpotClient, sandbox: Sandbox) -> None:
    dispositions = client.call_dispositions()
    assert dispositions and all(d.id and d.label for d in dispositions)
    connected = next(d for d in dispositions if d.label.lower() == "connected")
    call = client.create_call(details("rec-disp", disposition=connected.id))
    assert sandbox.call(call.id)["properties"]["hs_call_disposition"] == connected.id  # type: ignore[index]


def test_batch_create_and_batch_read(client: HubSpotClient, sandbox: Sandbox) -> None:
    jane = contact_id(client, "jane.doe@example.com")
    result = client.batch_create_calls([(details("rec-b1"), {"contacts": [jane]}), (details("rec-b2"), {})])
    assert result.status == "COMPLETE" and not result.errors
    assert sorted(c.external_id or "" for c in result.results) == ["rec-b1", "rec-b2"]
    assert len(sandbox.calls()) == 2
    ids = [c.id for c in result.results]
    read = client.read_calls([*ids, "40999999999"])
    assert sorted(c.external_id or "" for c in read.results) == ["rec-b1", "rec-b2"]
    assert all(c.duration_ms == 185_250 for c in read.results)
    assert [e.category for e in read.errors] == ["OBJECT_NOT_FOUND"]  # a 207: the unknown id
    assert read.errors[0].context["ids"] == ["40999999999"]


def test_search_by_external_id_finds_only_that_call(client: HubSpotClient) -> None:
    made = client.create_call(details("rec-s1"))
    client.create_call(details("rec-s2"))
    found = client.find_calls_by_external_id("rec-s1")
    assert [c.id for c in found] == [made.id]
    assert client.find_calls_by_external_id("rec-none") == []


def test_search_many_external_ids_at_once(client: HubSpotClient, sandbox: Sandbox) -> None:
    made = {ext: client.create_call(details(ext)).id for ext in ("callrelay-m1", "callrelay-m2", "callrelay-m3")}
    wanted = ["callrelay-m1", "callrelay-m3", *(f"callrelay-none-{i}" for i in range(120))]
    found = client.find_calls_by_external_ids(wanted)
    assert [c.id for c in found["callrelay-m1"]] == [made["callrelay-m1"]]
    assert [c.id for c in found["callrelay-m3"]] == [made["callrelay-m3"]]
    assert "callrelay-m2" not in found and found["callrelay-none-7"] == []
    assert len(sandbox.requests_for("calls.search")) == 2  # 122 ids: two searches of at most 100


def test_read_call_with_transcript_properties(client: HubSpotClient, sandbox: Sandbox) -> None:
    made = client.create_call(details("rec-r1"))
    call = client.read_call(made.id, associations=["contacts"])
    assert call.external_id == "rec-r1" and call.duration_ms == 185_250 and not call.has_transcript
    assert "hs_call_has_transcript" in sandbox.requests[-1].query.get("properties", [])


def test_single_and_batch_associations(client: HubSpotClient, sandbox: Sandbox) -> None:
    a = client.create_call(details("rec-a1"))
    b = client.create_call(details("rec-a2"))
    jane, john = contact_id(client, "jane.doe@example.com"), contact_id(client, "john.smith@example.com")
    company = sandbox.companies()[0]["id"]
    single = client.associate(a.id, "contacts", jane)
    assert (single.from_id, single.to_id) == (a.id, jane)
    client.associate(a.id, "companies", company)
    results, errs = client.associate_batch("contacts", [(a.id, john), (b.id, jane)])
    assert not errs and sorted((r.from_id, r.to_id) for r in results) == sorted([(a.id, john), (b.id, jane)])
    pairs = {(x["fromId"], x["toType"], x["toId"]) for x in sandbox.associations() if x["fromType"] == "calls"}
    assert pairs == {(a.id, "contacts", jane), (a.id, "companies", company), (a.id, "contacts", john),
                     (b.id, "contacts", jane)}


def test_association_to_a_missing_record_is_an_error(client: HubSpotClient) -> None:
    a = client.create_call(details("rec-a3"))
    with pytest.raises(HubSpotError) as info:
        client.associate(a.id, "contacts", "999999")
    assert info.value.status == 404 and not info.value.retryable


def test_contacts_by_email_and_name(client: HubSpotClient) -> None:
    (jane,) = client.search_contacts_by_email("JANE.DOE@example.com")
    assert jane.name == "Jane Doe"
    assert [c.id for c in client.search_contacts_by_name("Jane Doe")] == [jane.id]
    assert client.search_contacts_by_email("nobody@example.com") == []


@pytest.mark.parametrize("typed, region, who", [
    ("617-555-0199", "US", "John Smith"),  # stored as "(617) 555-0199"
    ("+1 617 555 0123", "US", "Maria Garcia"),  # mobile stored as digits "6175550123"
    ("(415) 555-0100", "US", "Lee Chen"),  # mobile stored as "+1 (415) 555-0100"
    ("030 1234567", "DE", "Hans Müller"),  # stored as "+49 30 1234567"
    ("07700 900123", "GB", "Priya Patel"),  # mobile stored as "+44 7700 900123"
    ("6175550142", "US", "Jane Doe"),  # stored as E.164
])
def test_contacts_by_phone_in_any_stored_form(client: HubSpotClient, typed: str, region: str, who: str) -> None:
    assert [c.name for c in client.search_contacts_by_phone(typed, region)] == [who]


def test_unknown_phone_finds_nobody(client: HubSpotClient) -> None:
    assert client.search_contacts_by_phone("+1 212 555 0000") == []


def test_create_contact_stores_e164_and_is_found_again(client: HubSpotClient, sandbox: Sandbox) -> None:
    made = client.create_contact(email="new.caller@example.com", firstname="New", lastname="Caller",
                                 phone="(617) 555-0777")
    assert made.get("phone") == "+16175550777"
    assert [c.id for c in client.search_contacts_by_phone("617.555.0777")] == [made.id]
    with pytest.raises(HubSpotError) as info:
        client.create_contact(email="NEW.caller@example.com")
    assert info.value.status == 409 and info.value.category == "CONFLICT"
    assert sum(1 for c in sandbox.contacts() if c["properties"].get("email") == "new.caller@example.com") == 1


def test_owners_are_read_across_pages(client: HubSpotClient, sandbox: Sandbox) -> None:
    owners = client.owners(page_size=2)
    assert sorted(o.id for o in owners) == sorted(o["id"] for o in sandbox.owners())
    assert len(sandbox.requests_for("owners.list")) == 2
    assert {o.name for o in owners} >= {"Alice Agent", "Bob Caller"}


def test_account_details(client: HubSpotClient, sandbox: Sandbox) -> None:
    account = client.account_details()
    assert account.portal_id == sandbox.credentials.portal_id
    assert client.limiter.utc_offset_s == account.utc_offset_ms / 1000


def test_mark_recording_ready(client: HubSpotClient, sandbox: Sandbox) -> None:
    call = client.create_call(details("rec-ready"))
    client.mark_recording_ready(call.id)
    assert sandbox.ready_marked() == [call.id]
    assert sandbox.requests_for("recordings.ready")[0].json == {"engagementId": int(call.id)}


def test_injected_503_on_create_is_reported_at_once_and_not_ambiguous(client: HubSpotClient, sandbox: Sandbox) -> None:
    sandbox.faults.fail("calls.create", times=1, status=503)
    with pytest.raises(HubSpotError) as info:  # the caller (the pipeline's RetryPolicy) retries, not the client
        client.create_call(details("rec-f1"))
    assert info.value.retryable and not info.value.ambiguous and not sandbox.calls()
    client.create_call(details("rec-f1"))
    assert len(sandbox.calls()) == 1 and len(sandbox.requests_for("calls.create")) == 2


def test_lost_create_is_ambiguous_and_settled_by_searching(client: HubSpotClient, sandbox: Sandbox) -> None:
    sandbox.faults.lost("calls.create")
    with pytest.raises(HubSpotError) as info:
        client.create_call(details("rec-lost"))
    assert info.value.ambiguous and len(sandbox.requests_for("calls.create")) == 1
    (found,) = client.find_calls_by_external_id("rec-lost")  # it did happen
    assert len(sandbox.calls()) == 1 and sandbox.calls()[0]["id"] == found.id


def test_timeout_on_a_search_is_retryable_and_reported_at_once(sandbox: Sandbox) -> None:
    sandbox.faults.timeout("calls.search", seconds=1.0)
    config = dataclasses.replace(config_from_env(sandbox.env()), read_timeout=0.3)
    with HubSpotClient(config, limiter=RateLimiter()) as client:
        with pytest.raises(HubSpotError) as info:
            client.find_calls_by_external_id("rec-x")
        assert info.value.retryable and not info.value.ambiguous and info.value.category == errors.TIMEOUT
        assert client.find_calls_by_external_id("rec-x") == []  # the caller's next attempt
    assert [(r.fault, r.status) for r in sandbox.requests_for("calls.search")] == [("timeout", 0), ("", 200)]


def test_secondly_429_from_the_sandbox_is_waited_out(client: HubSpotClient, sandbox: Sandbox) -> None:
    sandbox.faults.rate_limit("owners.list", times=1, policy="SECONDLY")
    started = time.monotonic()
    assert client.owners()
    assert time.monotonic() - started >= 0.95  # its Retry-After: 1
    assert [r.status for r in sandbox.requests_for("owners.list")] == [429, 200]


def test_daily_429_from_the_sandbox_stops(client: HubSpotClient, sandbox: Sandbox) -> None:
    sandbox.faults.rate_limit("owners.list", times=1, policy="DAILY")
    with pytest.raises(HubSpotError) as info:
        client.owners()
    assert info.value.policy_name == "DAILY" and not info.value.retryable
    with pytest.raises(HubSpotError):
        client.account_details()
    assert len(sandbox.requests) == 1


def test_wrong_token_is_refused(sandbox: Sandbox) -> None:
    config = dataclasses.replace(config_from_env(sandbox.env()), access_token="pat-na1-wrong")
    with HubSpotClient(config, limiter=RateLimiter()) as client, pytest.raises(HubSpotError) as info:
        client.owners()
    assert info.value.status == 401 and info.value.category == "INVALID_AUTHENTICATION"
    assert "pat-na1-wrong" not in str(info.value)


def test_a_token_without_the_write_scope(sandbox: Sandbox) -> None:
    token = sandbox.issue_token(["crm.objects.contacts.read"], kind="private-app")
    assert isinstance(token, str)
    config = dataclasses.replace(config_from_env(sandbox.env()), access_token=token)
    with HubSpotClient(config, limiter=RateLimiter()) as client, pytest.raises(HubSpotError) as info:
        client.create_call(details("rec-scope"))
    assert info.value.agent_message.startswith("The token has no `crm.objects.contacts.write` scope")
    assert sandbox.calls() == []


def test_on_the_2026_09_api_partial_batches_answer_200_and_the_client_reads_their_errors(sandbox: Sandbox) -> None:
    """2026-09 describes no 207: a batch with failures answers 200 with ``errors`` beside the results. The
    client reads the failures the same way on both versions."""
    config = dataclasses.replace(config_from_env(sandbox.env()), api_version="2026-09")
    with HubSpotClient(config, limiter=RateLimiter()) as client:
        when = dt.datetime(2026, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc)
        call = client.create_call(CallDetails("dated-1", when, 1000))
        done, failed = client.associate_batch("contacts", [(call.id, "101"), (call.id, "999999")])
        assert [r.from_id for r in done] == [call.id] and len(failed) == 1
        read = client.read_calls([call.id, "404404"])
        assert [c.id for c in read.results] == [call.id] and len(read.errors) == 1
    statuses = {r.alias: r.status for r in sandbox.requests}
    assert statuses["associations.batch_create"] == 200 and statuses["calls.batch_read"] == 200
    assert all(r.path.startswith(("/crm/objects/2026-09/", "/crm/associations/2026-09/", "/crm/v4/associations/"))
               for r in sandbox.requests), [r.path for r in sandbox.requests]
