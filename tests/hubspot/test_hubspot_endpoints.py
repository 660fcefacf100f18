"""Request building without a network: each builder's request matches HubSpot's description, and
wrong input is refused with a sentence."""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse

import pytest
import requests

from desktop_app import openapi as spec
from desktop_app import phones
from desktop_app.hubspot import endpoints, versions
from desktop_app.hubspot.endpoints import ApiRequest, AssociationTarget, CallDetails
from desktop_app.hubspot.models import AssociationType, call_url

BASE = "https://api.hubapi.com"
CONTACT = AssociationType("HUBSPOT_DEFINED", 194)
WHEN = dt.datetime(2026, 3, 4, 10, 30, 15, 250000, tzinfo=dt.timezone(dt.timedelta(hours=1)))


def check(req: ApiRequest) -> spec.RequestCheck:
    prepared = endpoints.http_request(req, BASE).prepare()
    parts = urllib.parse.urlsplit(prepared.url or "")
    body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
    return spec.check_request(req.method, parts.path, parts.query, prepared.headers.get("Content-Type"), body,
                              as_written=True)


def details(**kw: object) -> CallDetails:
    base: dict[str, object] = dict(external_id="rec-7f3a", timestamp=WHEN, duration_ms=185_250, title="Call with Ann",
                                   notes="Follow up", owner_id="77", from_number="+15551234567",
                                   to_number="+15559876543", direction="OUTBOUND", disposition="f240bbac",
                                   status="COMPLETED")
    base.update(kw)
    return CallDetails(**base)  # type: ignore[arg-type]


def all_builders() -> list[ApiRequest]:
    props = endpoints.call_properties(details(), app_id="12345", external_account_id="99")
    return [
        endpoints.recording_settings_get(12345),
        endpoints.recording_settings_create("12345", "https://rec.example.com/r/%s"),
        endpoints.recording_settings_update("12345", "https://rec.example.com/v2/%s?x=1"),
        endpoints.recordings_ready("4011"),
        endpoints.calls_create(props, [AssociationTarget("51", (CONTACT,))]),
        endpoints.calls_batch_create([(props, [AssociationTarget("51", (CONTACT,))]), (props, [])]),
        endpoints.calls_search_by_external_id("rec-7f3a"),
        endpoints.calls_batch_read(["4011", 4012]),
        endpoints.calls_search_by_external_ids(["callrelay-1", "callrelay-2"], after="200"),
        endpoints.calls_read("4011", associations=["contacts"]),
        endpoints.association_labels("calls", "contacts"),
        endpoints.association_create("calls", "4011", "contacts", "51", [CONTACT]),
        endpoints.association_batch_create("calls", "contacts", [("4011", "51"), ("4012", "52")], [CONTACT]),
        endpoints.contacts_search(endpoints.contact_filters_phone("(555) 123-4567")),
        endpoints.contacts_search(endpoints.contact_filters_email("Ann@Example.com")),
        endpoints.contacts_search(endpoints.contact_filters_name("Ann Lee")),
        endpoints.contacts_create({"email": "ann@example.com", "phone": "+15551234567"}),
        endpoints.owners_page(), endpoints.owners_page("MTAw", 50),
        endpoints.call_dispositions(),
        endpoints.account_details(),
        endpoints.oauth_exchange_code("c0de", client_id="cid", client_secret="sec", redirect_uri="http://127.0.0.1:1/cb"),
        endpoints.oauth_refresh("rt", client_id="cid", client_secret="sec"),
    ]


@pytest.mark.parametrize("req", all_builders(), ids=lambda r: r.operation)
def test_every_builder_matches_hubspots_description(req: ApiRequest) -> None:
    result = check(req)
    assert result.operation is not None, f"{req.method} {req.path} is not described"
    assert result.problems == []


def test_the_checker_catches_a_wrong_request() -> None:
    """The check above can fail: a create without ``associations`` and a string engagementId are refused."""
    bad = ApiRequest("x", "POST", "/crm/v3/objects/calls", json={"properties": {"hs_call_title": "t"}})
    assert any("associations" in p.message for p in check(bad).problems)
    bad_ready = ApiRequest("x", "POST", "/crm/v3/extensions/calling/recordings/ready", json={"engagementId": "4011"})
    assert [p.code for p in check(bad_ready).problems] == ["INVALID_TYPE"]


def test_call_properties_carry_milliseconds_and_the_integration_properties() -> None:
    props = endpoints.call_properties(details(duration_ms=61_500), app_id="12345", external_account_id="99")
    assert props["hs_call_duration"] == "61500"
    assert props["hs_timestamp"] == "2026-03-04T09:30:15.250Z"
    assert props["hs_call_source"] == "INTEGRATIONS_PLATFORM"
    assert (props["hs_call_app_id"], props["hs_call_external_id"], props["hs_call_external_account_id"]) == (
        "12345", "rec-7f3a", "99")
    assert all(isinstance(v, str) for v in props.values())
    minimal = endpoints.call_properties(details(owner_id=None, disposition=None, direction=None),
                                        app_id="1", external_account_id="9")
    assert "hubspot_owner_id" not in minimal and "hs_call_direction" not in minimal


@pytest.mark.parametrize("kw, words", [
    (dict(timestamp=dt.datetime(2026, 1, 1)), "time zone"),
    (dict(direction="SIDEWAYS"), "INBOUND or OUTBOUND"),
    (dict(status="DONE"), "status"),
    (dict(duration_ms=-1), "negative"),
    (dict(external_id=""), "external id"),
])
def test_call_properties_refuse_wrong_values(kw: dict[str, object], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        endpoints.call_properties(details(**kw), app_id="1", external_account_id="9")


@pytest.mark.parametrize("url, allow_http, ok", [
    ("https://rec.example.com/recordings/%s", False, True),
    ("https://rec.example.com/r?id=%s", False, True),
    ("http://127.0.0.1:8765/r/%s", True, True),  # loopback, for the sandbox or a HubSpot on loopback
    ("http://127.0.0.1:8765/r/%s", False, False),  # HubSpot's own servers can never reach it
    ("https://localhost:8765/r/%s", False, False),
    ("http://[::1]:8765/r/%s", False, False),
    ("http://rec.example.com/r/%s", True, True),  # the sandbox config allows http
    ("http://rec.example.com/r/%s", False, False),
    ("https://rec.example.com/recordings/", False, False),
    ("https://rec.example.com/%s/%s", False, False),
    ("https://%s.example.com/r", False, False),
    ("rec.example.com/r/%s", False, False),
])
def test_recording_url_validation(url: str, allow_http: bool, ok: bool) -> None:
    if ok:
        assert endpoints.validate_recording_url(url, allow_http=allow_http) == url
    else:
        with pytest.raises(ValueError):
            endpoints.recording_settings_create("12345", url, allow_http=allow_http)


def test_app_id_must_be_an_int32() -> None:
    for bad in ("", "abc", "12a", str(2**31)):
        with pytest.raises(ValueError, match="app id"):
            endpoints.recording_settings_get(bad)


def test_batches_are_bounded() -> None:
    with pytest.raises(ValueError):
        endpoints.calls_batch_create([])
    with pytest.raises(ValueError):
        endpoints.calls_batch_read([str(i) for i in range(101)])
    with pytest.raises(ValueError):
        endpoints.association_batch_create("calls", "contacts", [], [CONTACT])


def test_search_by_external_id_filters_on_the_property() -> None:
    body = endpoints.calls_search_by_external_id("rec-9").json
    assert body["filterGroups"] == [{"filters": [
        {"propertyName": "hs_call_external_id", "operator": "EQ", "value": "rec-9"}]}]
    assert "hs_call_has_transcript" in body["properties"]


def test_phone_search_covers_the_stored_forms_on_both_properties() -> None:
    groups = endpoints.contact_filters_phone("(555) 123-4567", "US")
    assert [g["filters"][0]["propertyName"] for g in groups] == ["phone", "mobilephone"]
    forms = groups[0]["filters"][0]["values"]
    for form in ("+15551234567", "(555) 123-4567", "5551234567", "15551234567", "555-123-4567", "+1 555-123-4567"):
        assert form in forms
    assert len(forms) == len(set(forms))


def test_phone_variants_for_a_uk_number() -> None:
    forms = phones.variants("020 7946 0958", "GB")
    assert forms[0] == "+442079460958"
    assert "02079460958" in forms and "442079460958" in forms and "+44 20 7946 0958" in forms
    assert phones.same_number("+44 20 7946 0958", "020 7946 0958", "GB")
    assert not phones.same_number("+442079460958", "+442079460959", "GB")


def test_unparseable_numbers_are_searched_as_typed_and_as_digits() -> None:
    assert phones.variants("ext. 12", "US") == ["ext. 12", "12"]


def test_oauth_requests_carry_secrets_in_the_form_body_not_the_url() -> None:
    req = endpoints.oauth_refresh("rt-secret", client_id="cid", client_secret="cs-secret")
    prepared = endpoints.http_request(req, BASE).prepare()
    assert "secret" not in (prepared.url or "")
    assert prepared.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert "refresh_token=rt-secret" in str(prepared.body)


def test_authorize_url() -> None:
    url = endpoints.authorize_url("https://app.hubspot.com/oauth/authorize", client_id="cid",
                                  redirect_uri="http://127.0.0.1:5000/oauth-callback",
                                  scopes=["crm.objects.contacts.write", "oauth"], state="s1")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert query == {"client_id": ["cid"], "redirect_uri": ["http://127.0.0.1:5000/oauth-callback"],
                     "scope": ["crm.objects.contacts.write oauth"], "state": ["s1"]}


def test_call_url() -> None:
    assert call_url(123, 456) == "https://app.hubspot.com/contacts/123/record/0-48/456"
    assert call_url("9", "8", ui_domain="app-eu1.hubspot.com") == "https://app-eu1.hubspot.com/contacts/9/record/0-48/8"


def test_http_request_sends_json() -> None:
    req = endpoints.recordings_ready(77)
    prepared = endpoints.http_request(req, BASE + "/").prepare()
    assert prepared.url == BASE + "/crm/v3/extensions/calling/recordings/ready"
    assert json.loads(prepared.body or b"") == {"engagementId": 77}
    assert isinstance(endpoints.http_request(req, BASE), requests.Request)


def test_each_request_has_its_own_path_in_each_api_version() -> None:
    """``at_version`` moves a request to the dated path HubSpot's 2026-09 file describes, and back."""
    reqs = [endpoints.calls_create({"hs_timestamp": "2026-01-01T00:00:00.000Z"}),
            endpoints.calls_read("7"), endpoints.contacts_search([]), endpoints.owners_page(),
            endpoints.recordings_ready(7), endpoints.recording_settings_get(5),
            endpoints.association_batch_create("calls", "contacts", [("1", "2")],
                                               [AssociationType("HUBSPOT_DEFINED", 194)]),
            endpoints.association_labels("calls", "contacts")]
    dated = [endpoints.at_version(r, "2026-09") for r in reqs]
    assert [d.path for d in dated] == [
        "/crm/objects/2026-09/calls", "/crm/objects/2026-09/calls/7", "/crm/objects/2026-09/contacts/search",
        "/crm/owners/2026-09", "/crm/extensions/calling/2026-09/recordings/ready",
        "/crm/extensions/calling/2026-09/5/settings/recording", "/crm/associations/2026-09/calls/contacts/batch/create",
        "/crm/v4/associations/calls/contacts/labels"]  # labels: no dated copy
    for r, d in zip(reqs, dated, strict=True):
        assert versions.v3_path(d.path) == r.path and endpoints.at_version(r, "v3") == r
        found = spec.find_operation(d.method, d.path)
        assert found is not None and ("2026-09" in found[0].source) == (d.path != r.path), d.path
    with pytest.raises(ValueError, match="2026-09"):
        endpoints.at_version(reqs[0], "2025-01")


def test_the_details_the_history_keeps_are_the_details_hubspot_gets() -> None:
    """One CallDetails: what the form or a command states, kept in the history (``to_dict``), is what the
    pipeline logs once it has an external id."""
    from dataclasses import replace

    from desktop_app.sync import pipeline

    assert pipeline.CallDetails is CallDetails
    kept = CallDetails(title="Renewal", timestamp="2026-11-20T10:00:00", duration_ms=3000, notes="Call back",
                       contact_id="51", direction="OUTBOUND").to_dict()
    assert "external_id" not in kept and kept["contact_id"] == "51"
    props = endpoints.call_properties(replace(CallDetails.from_dict(kept), external_id="callrelay-1"),
                                      app_id="1", external_account_id="9")
    assert (props["hs_timestamp"], props["hs_call_body"], props["hs_call_direction"], props["hs_call_status"]) == (
        "2026-11-20T10:00:00.000Z", "Call back", "OUTBOUND", "COMPLETED")
    assert "hubspot_owner_id" not in props and "hs_call_to_number" not in props  # empty values left out
