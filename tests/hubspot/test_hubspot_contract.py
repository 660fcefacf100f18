"""The contract check itself: it catches requests HubSpot's descriptions do not allow, and one run of
every client function sends every operation the client knows through it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import urllib.parse
from typing import Any

import pytest
from hs_support import Sent, contract_problems

from desktop_app import USER_AGENT, openapi
from desktop_app.hubspot import versions
from desktop_app.hubspot.client import HubSpotClient
from desktop_app.hubspot.config import config_from_env
from desktop_app.hubspot.endpoints import CallDetails
from desktop_app.hubspot.ratelimit import RateLimiter
from desktop_app.sandbox import Sandbox

BASE = "http://127.0.0.1:9"
GOOD = {"User-Agent": USER_AGENT, "Authorization": "Bearer pat-na1-x"}


def problems(method: str, path: str, headers: dict[str, str], body: bytes | None = None,
             content_type: str | None = None) -> list[str]:
    if content_type:
        headers = {**headers, "Content-Type": content_type}
    return contract_problems(Sent(method, BASE + path, headers, body))[1]


def test_a_valid_request_passes() -> None:
    assert problems("GET", "/crm/v3/owners?limit=100", GOOD) == []


def test_the_check_catches_what_hubspot_would_refuse() -> None:
    assert problems("GET", "/crm/v3/owners", {"User-Agent": USER_AGENT}) == [
        "no bearer token sent to an operation that needs one"]
    assert problems("GET", "/crm/v3/owners?hapikey=k", {"User-Agent": USER_AGENT}) == [
        "the developer API key was sent to an operation that does not take it"]
    assert problems("GET", "/crm/v3/owners", {**GOOD, "User-Agent": "python-requests/2"})[0].startswith("User-Agent")
    assert "a bearer token sent to an operation that takes only the developer API key" in problems(
        "GET", "/crm/extensions/calling/2026-09/1/settings/recording", GOOD)
    assert problems("GET", "/crm/extensions/calling/2026-09/1/settings/recording?hapikey=k",
                    {"User-Agent": USER_AGENT}) == []
    assert problems("POST", "/oauth/v1/token", GOOD, b"grant_type=refresh_token",
                    "application/x-www-form-urlencoded") == ["credentials sent to an operation that takes none"]
    assert problems("DELETE", "/crm/v3/extensions/calling/1/settings/recording", GOOD)[0].startswith(
        "DELETE /crm/v3/extensions/calling/1/settings/recording is no operation")
    wrong_body = problems("POST", "/crm/v3/objects/calls", GOOD, b'{"properties": {"hs_call_duration": 5}}',
                          "application/json")
    assert any("associations" in p for p in wrong_body) and any("hs_call_duration" in p for p in wrong_body)
    assert problems("POST", "/crm/v3/objects/calls", GOOD, b'{"properties": {}, "associations": []}',
                    "text/plain") != []


# Operations HubSpot publishes no dated copy of (in the 2026-09 files): they keep their path in every version.
UNVERSIONED = ("/calling/v1/dispositions", "/account-info/v3/details")


@pytest.mark.parametrize("version", versions.VERSIONS)
def test_every_operation_of_the_client_goes_through_the_check(sandbox: Sandbox, contract: Any, version: str) -> None:
    config = dataclasses.replace(config_from_env(sandbox.env()), api_version=version)
    with HubSpotClient(config, limiter=RateLimiter()) as client:
        when = dt.datetime(2026, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc)
        client.get_recording_settings()
        client.create_recording_settings("https://rec.example.com/r/%s")
        client.update_recording_settings("https://rec.example.com/v2/%s")
        (jane,) = client.search_contacts_by_email("jane.doe@example.com")
        call = client.create_call(CallDetails("rec-c1", when, 5000, owner_id="71000001"), {"contacts": [jane.id]})
        batch = client.batch_create_calls([(CallDetails("rec-c2", when, 6000), {})])
        assert client.find_calls_by_external_id("rec-c1")[0].id == call.id
        assert [c.id for c in client.read_calls([call.id]).results] == [call.id]
        assert client.read_call(call.id).id == call.id
        client.associate(batch.results[0].id, "contacts", jane.id)
        client.associate_batch("contacts", [(call.id, jane.id)])
        client.create_contact(email="contract@example.com", firstname="Con", lastname="Tract", phone="+16175550999")
        assert client.owners()
        client.call_dispositions()
        client.account_details()
        client.check_may_log_calls()  # `hubspot test`'s empty batch create
        client.mark_recording_ready(call.id)
    sent_ops = {(lambda op: (op.source, op.operation_id))(openapi.find_operation(s.method, urllib.parse.urlsplit(s.url).path)[0])  # type: ignore[index]
                for s in contract.sent}
    assert len(sent_ops) == 17  # each operation the client uses, bar OAuth's (test_hubspot_oauth.py)
    assert all(contract_problems(s)[1] == [] for s in contract.sent)
    paths = {urllib.parse.urlsplit(s.url).path for s in contract.sent}
    # Each request is on the configured version's path (association labels have no dated copy).
    dated = {p for p in paths if versions.version_of(p) == "2026-09"}
    other = {p for p in paths - dated if not p.startswith(UNVERSIONED) and not p.endswith("/labels")}
    if version == "v3":
        assert not dated and other
    else:
        assert other == set() and len(dated) >= 10, paths
    # the sandbox served them from one state: the call it created is the one it marked ready
    assert sandbox.ready_marked() == [call.id]


def test_a_second_validator_openapi_core_judges_each_request_too() -> None:
    """openapi-core, not written by us, reads HubSpot's descriptions on its own: it passes what they allow
    and names what they refuse, so a shared bug in our checker cannot hide a wrong request."""
    from hs_support import openapi_core_problems

    def sent(method: str, path: str, body: bytes | None = None) -> Sent:
        headers = {**GOOD, "Content-Type": "application/json"} if body is not None else dict(GOOD)
        return Sent(method, BASE + path, headers, body)

    assert openapi_core_problems(sent("GET", "/crm/v3/owners?limit=100")) == []
    assert openapi_core_problems(sent("POST", "/crm/v3/objects/calls",
                                      b'{"properties": {"hs_call_title": "x"}, "associations": []}')) == []
    missing = openapi_core_problems(sent("POST", "/crm/v3/objects/calls", b'{"associations": []}'))
    assert missing and "properties" in missing[0]
    wrong_type = openapi_core_problems(sent("GET", "/crm/v3/owners?limit=many"))
    assert wrong_type and "limit" in wrong_type[0]
    assert openapi_core_problems(sent("GET", "/crm/v3/nowhere"))[0].endswith("in none of HubSpot's descriptions")
