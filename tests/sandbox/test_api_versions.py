"""The sandbox serves HubSpot's dated API (2026-09) beside v3, on one state, each checked against its own
version's description: a record made on one path family is read on the other, a dated request is refused
by the dated file's rules, and a dated answer takes the dated file's shape (no 207; errors and numErrors)."""

from __future__ import annotations

import requests
from sandbox_helpers import bearer
from test_validation import CALL, assert_error

from desktop_app.hubspot import versions
from desktop_app.sandbox import Sandbox

V = versions.NEWEST
TO_CONTACT = {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 194}


def test_both_path_families_share_one_state(sandbox: Sandbox, http: requests.Session) -> None:
    h = bearer(sandbox.credentials.access_token)
    u = sandbox.url
    made = http.post(f"{u}/crm/objects/{V}/calls", headers=h, json={"properties": CALL})
    assert made.status_code == 201, made.text
    call_id = made.json()["id"]
    by_v3 = http.get(f"{u}/crm/v3/objects/calls/{call_id}", headers=h)
    assert by_v3.status_code == 200 and by_v3.json()["id"] == call_id
    by_type_id = http.get(f"{u}/crm/objects/{V}/0-48/{call_id}", headers=h)  # calls' object type id
    assert by_type_id.status_code == 200 and by_type_id.json()["id"] == call_id
    found = http.post(f"{u}/crm/objects/{V}/calls/search", headers=h, json={})
    assert call_id in [r["id"] for r in found.json()["results"]]
    contacts = http.post(f"{u}/crm/objects/{V}/contacts/search", headers=h, json={})
    assert contacts.status_code == 200 and contacts.json()["results"]
    owners = http.get(f"{u}/crm/owners/{V}", headers=h)
    assert owners.status_code == 200 and owners.json()["results"]
    ready = http.post(f"{u}/crm/extensions/calling/{V}/recordings/ready", headers=h, json={"engagementId": int(call_id)})
    assert ready.status_code == 204, ready.text
    assert sandbox.ready_marked() == [call_id]
    assert [r.alias for r in sandbox.requests][:2] == ["calls.create", "calls.get"]  # one alias for both families
    assert sandbox.response_problems == [], sandbox.response_problems


def test_a_dated_request_is_checked_against_the_dated_description(sandbox: Sandbox, http: requests.Session) -> None:
    h = bearer(sandbox.credentials.access_token)
    u = sandbox.url
    assert_error(http.post(f"{u}/crm/objects/{V}/calls", headers=h, json={"properties": "x"}), 400, "VALIDATION_ERROR")
    # 2026-09's recording settings take only the developer API key (v3's also take an OAuth token)
    settings = f"{u}/crm/extensions/calling/{V}/{sandbox.credentials.app_id}/settings/recording"
    assert_error(http.get(settings, headers=h), 401, "INVALID_AUTHENTICATION")
    assert http.get(settings, params={"hapikey": sandbox.credentials.developer_api_key}).status_code in (200, 404)
    # an operation HubSpot has no dated copy of (listing a record's associations) is unknown there
    listed = http.get(f"{u}/crm/objects/{V}/calls/1/associations/contacts", headers=h)
    assert listed.status_code in (404, 405)


def test_a_partial_dated_batch_answers_200_with_its_errors(sandbox: Sandbox, http: requests.Session) -> None:
    h = bearer(sandbox.credentials.access_token)
    u = sandbox.url
    call_id = http.post(f"{u}/crm/objects/{V}/calls", headers=h, json={"properties": CALL}).json()["id"]
    resp = http.post(f"{u}/crm/associations/{V}/calls/contacts/batch/create", headers=h, json={"inputs": [
        {"from": {"id": call_id}, "to": {"id": "101"}, "types": [TO_CONTACT]},
        {"from": {"id": call_id}, "to": {"id": "999999"}, "types": [TO_CONTACT]}]})
    assert resp.status_code == 200, resp.text  # 2026-09 describes no 207 and no 201 here
    body = resp.json()
    assert body["numErrors"] == 1 and body["errors"][0]["context"]["toId"] == ["999999"]
    read = http.post(f"{u}/crm/objects/{V}/calls/batch/read", headers=h,
                     json={"inputs": [{"id": call_id}, {"id": "404404"}], "properties": ["hs_call_title"]})
    assert read.status_code == 200 and read.json()["numErrors"] == 1, read.text
    assert sandbox.response_problems == [], sandbox.response_problems
