"""The sandbox accepts what HubSpot accepts: bodies without the fields HubSpot does not enforce, the
operations an integration uses beyond Call Relay's own, partial (207) association batches, and
HubSpot's JSON error shape for every method, known or not."""

from __future__ import annotations

import http.client
import json
from typing import Any

import requests
from sandbox_helpers import bearer
from test_validation import CALL, assert_error

from desktop_app.sandbox import Sandbox

TO_CONTACT = {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 194}


def _call(sandbox: Sandbox, http: requests.Session, **extra: Any) -> str:
    resp = http.post(f"{sandbox.url}/crm/v3/objects/calls", headers=bearer(sandbox.credentials.access_token),
                     json={"properties": CALL, **extra})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def test_creates_without_associations_and_minimal_searches_are_accepted(sandbox: Sandbox,
                                                                        http: requests.Session) -> None:
    h = bearer(sandbox.credentials.access_token)
    u = sandbox.url
    call_id = _call(sandbox, http)  # the recordings guide's step 3 body: properties only
    contact = http.post(f"{u}/crm/v3/objects/contacts", headers=h, json={"properties": {"email": "new@example.com"}})
    assert contact.status_code == 201, contact.text
    basic = http.post(f"{u}/crm/v3/objects/calls/search", headers=h, json={})
    assert basic.status_code == 200 and call_id in [r["id"] for r in basic.json()["results"]]
    by_phone = http.post(f"{u}/crm/v3/objects/contacts/search", headers=h, json={"filterGroups": [{"filters": [
        {"propertyName": "phone", "operator": "EQ", "value": "+16175550142"}]}]})
    assert [r["properties"]["firstname"] for r in by_phone.json()["results"]] == ["Jane"]
    sorted_desc = http.post(f"{u}/crm/v3/objects/contacts/search", headers=h, json={
        "sorts": [{"propertyName": "firstname", "direction": "DESCENDING"}], "properties": ["firstname"]})
    names = [r["properties"]["firstname"] or "" for r in sorted_desc.json()["results"]]
    assert names == sorted(names, reverse=True) and len(names) == 7
    only_total = http.post(f"{u}/crm/v3/objects/contacts/search", headers=h, json={"limit": 0}).json()
    assert only_total["results"] == [] and only_total["total"] == 7 and "paging" not in only_total
    batch = http.post(f"{u}/crm/v3/objects/calls/batch/read", headers=h, json={"inputs": [{"id": call_id}]})
    assert batch.status_code == 200, batch.text
    assert sandbox.response_problems == []


def test_list_update_and_delete_objects_and_associations(sandbox: Sandbox, http: requests.Session) -> None:
    h = bearer(sandbox.credentials.access_token)
    u = sandbox.url
    call_id = _call(sandbox, http, associations=[{"to": {"id": "101"}, "types": [TO_CONTACT]}])
    page = http.get(f"{u}/crm/v3/objects/contacts?limit=4&properties=phone", headers=h).json()
    assert len(page["results"]) == 4 and page["paging"]["next"]["after"] == "4"
    rest = http.get(f"{u}/crm/v3/objects/contacts?limit=4&after=4", headers=h).json()
    assert len(rest["results"]) == 2 and "paging" not in rest
    calls = http.get(f"{u}/crm/v3/objects/calls?associations=contacts", headers=h).json()
    assert calls["results"][0]["associations"]["contacts"]["results"][0]["id"] == "101"
    patched = http.patch(f"{u}/crm/v3/objects/contacts/101", headers=h, json={"properties": {"jobtitle": "CTO"}})
    assert patched.status_code == 200 and patched.json()["properties"]["jobtitle"] == "CTO"
    by_email = http.get(f"{u}/crm/v3/objects/contacts/jane.doe@example.com?idProperty=email", headers=h)
    assert by_email.status_code == 200 and by_email.json()["id"] == "101"
    # calls have no unique-value property: a read by one is refused alike, single or batch
    single = assert_error(http.get(f"{u}/crm/v3/objects/calls/x?idProperty=hs_call_external_id", headers=h), 400,
                          "VALIDATION_ERROR")
    batch = assert_error(http.post(f"{u}/crm/v3/objects/calls/batch/read", headers=h, json={
        "inputs": [{"id": "x"}], "idProperty": "hs_call_external_id"}), 400, "VALIDATION_ERROR")
    assert single["message"] == batch["message"]
    assoc = f"{u}/crm/v4/objects/calls/{call_id}/associations/contacts/101"
    assert http.delete(assoc, headers=h).status_code == 204
    assert sandbox.associations() == []
    _ = http.put(assoc, headers=h, json=[TO_CONTACT])
    assert http.delete(f"{u}/crm/v3/objects/calls/{call_id}", headers=h).status_code == 204
    assert sandbox.calls() == [] and sandbox.associations() == []
    assert http.delete(f"{u}/crm/v3/objects/contacts/106", headers=h).status_code == 204
    assert len(sandbox.contacts()) == 5
    assert sandbox.response_problems == []


def test_association_batches_answer_207_for_the_inputs_that_fail(sandbox: Sandbox, http: requests.Session) -> None:
    h = bearer(sandbox.credentials.access_token)
    u = sandbox.url
    first, second = _call(sandbox, http), _call(sandbox, http)
    resp = http.post(f"{u}/crm/v4/associations/calls/contacts/batch/create", headers=h, json={"inputs": [
        {"from": {"id": first}, "to": {"id": "101"}, "types": [TO_CONTACT]},
        {"from": {"id": second}, "to": {"id": "999999"}, "types": [TO_CONTACT]}]})
    assert resp.status_code == 207, resp.text
    body = resp.json()
    assert [r["fromObjectId"] for r in body["results"]] == [first] and body["numErrors"] == 1
    assert body["errors"][0]["context"]["toId"] == ["999999"]
    default = http.post(f"{u}/crm/v4/associations/calls/contacts/batch/associate/default", headers=h, json={
        "inputs": [{"from": {"id": second}, "to": {"id": "102"}}]})
    assert default.status_code == 200, default.text
    read = http.post(f"{u}/crm/v4/associations/calls/contacts/batch/read", headers=h,
                     json={"inputs": [{"id": first}, {"id": second}, {"id": "404"}]})
    assert read.status_code == 207, read.text
    out = read.json()
    assert {r["from"]["id"]: [t["toObjectId"] for t in r["to"]] for r in out["results"]} == {
        first: ["101"], second: ["102"]}
    assert out["errors"][0]["context"] == {"fromObjectId": ["404"]}
    wrong_type = http.post(f"{u}/crm/v4/associations/calls/contacts/batch/create", headers=h, json={"inputs": [
        {"from": {"id": first}, "to": {"id": "101"}, "types": [{**TO_CONTACT, "associationTypeId": 1}]}]})
    assert_error(wrong_type, 400, "VALIDATION_ERROR")
    assert sandbox.response_problems == [], sandbox.response_problems


def test_calling_settings_transcripts_and_recording_url_rules(sandbox: Sandbox, http: requests.Session) -> None:
    key = {"hapikey": sandbox.credentials.developer_api_key}
    base = f"{sandbox.url}/crm/v3/extensions/calling/{sandbox.credentials.app_id}/settings"
    assert_error(http.get(base, params=key), 404, "OBJECT_NOT_FOUND")
    settings = {"name": "Call Relay", "url": "https://example.com/widget", "height": 600, "width": 400,
                "isReady": True, "supportsCustomObjects": False, "supportsInboundCalling": False,
                "usesCallingWindow": False, "usesRemote": False}
    assert http.post(base, params=key, json=settings).status_code == 200
    patched = http.patch(base, params=key, json={"isReady": False})
    assert patched.status_code == 200 and patched.json()["isReady"] is False
    assert http.get(base, params=key).json()["name"] == "Call Relay"
    assert http.delete(base, params=key).status_code == 204
    two = http.post(f"{base}/recording", params=key, json={"urlToRetrieveAuthedRecording": "https://x.test/%s/%s"})
    assert_error(two, 400, "VALIDATION_ERROR")
    call_id = _call(sandbox, http)
    token = sandbox.issue_token(["crm.extensions_calling_transcripts.write", "crm.extensions_calling_transcripts.read"])
    assert isinstance(token, str)
    made = http.post(f"{sandbox.url}/crm/v3/extensions/calling/transcripts", headers=bearer(token), json={
        "engagementId": int(call_id), "transcriptCreateUtterances": [
            {"speaker": {"id": "1", "name": "Ann"}, "text": "Hello", "startTimeMillis": 0, "endTimeMillis": 900}]})
    assert made.status_code == 200, made.text  # transcriptions-v3.json: 200
    tid = made.json()["id"]
    assert http.delete(f"{sandbox.url}/crm/v3/extensions/calling/transcripts/{tid}", headers=bearer(token)
                       ).status_code == 204
    assert sandbox.transcripts() == []
    assert sandbox.response_problems == []


def test_every_method_gets_a_json_answer_in_hubspots_error_shape(sandbox: Sandbox) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", sandbox.port, timeout=5)
    try:
        for method, path, status in [("TRACE", "/crm/v3/objects/calls", 405), ("OPTIONS", "/crm/v3/owners", 405),
                                     ("PROPFIND", "/nowhere", 404), ("GET", "/crm/v3/objects/nothing", 404)]:
            conn.request(method, path, headers={"Authorization": f"Bearer {sandbox.credentials.access_token}"})
            resp = conn.getresponse()
            body = json.loads(resp.read())
            assert resp.status == status and resp.getheader("Content-Type", "").startswith("application/json")
            assert body["status"] == "error" and body["category"] in ("VALIDATION_ERROR", "OBJECT_NOT_FOUND")
            assert "sandbox" not in body["message"]
    finally:
        conn.close()


def test_search_lags_creates_by_default_but_finds_seeds_at_once(http: requests.Session) -> None:
    from desktop_app.sandbox.server import DEFAULT_SEARCH_LAG_S

    with Sandbox() as sb:
        assert sb.search_lag_s == DEFAULT_SEARCH_LAG_S >= 1.0  # HubSpot's index trails by a few seconds
        h = bearer(sb.credentials.access_token)
        seeds = http.post(f"{sb.url}/crm/v3/objects/contacts/search", headers=h, json={}).json()
        assert seeds["total"] == 6  # there before anyone searched
        made = http.post(f"{sb.url}/crm/v3/objects/contacts", headers=h, json={"properties": {"firstname": "New"}})
        assert made.status_code == 201
        assert http.post(f"{sb.url}/crm/v3/objects/contacts/search", headers=h, json={}).json()["total"] == 6
        assert http.get(f"{sb.url}/crm/v3/objects/contacts/{made.json()['id']}", headers=h).status_code == 200
