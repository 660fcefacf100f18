"""The sandbox refuses what HubSpot refuses, in HubSpot's Error shape, and answers in HubSpot's shapes."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import jsonschema
import requests
from sandbox_helpers import bearer

from desktop_app import openapi
from desktop_app.sandbox import Sandbox

CALL = {"hs_timestamp": "2024-10-27T12:00:00Z", "hs_call_title": "Demo", "hubspot_owner_id": "71000001",
        "hs_call_duration": "300000", "hs_call_direction": "OUTBOUND", "hs_call_status": "COMPLETED"}


def assert_error(resp: requests.Response, status: int, category: str, body_status: str = "error") -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    schema = openapi.find_operation("POST", "/crm/v3/objects/calls")
    assert schema is not None
    error_schema = schema[0].schema({"$ref": "#/components/schemas/Error"})
    jsonschema.Draft4Validator(error_schema).validate(body)
    assert body["status"] == body_status and body["category"] == category
    uuid.UUID(body["correlationId"])
    assert resp.headers["X-HubSpot-Correlation-Id"] == body["correlationId"]
    return dict(body)


def test_valid_requests_get_answers_that_match_hubspots_response_schemas(sandbox: Sandbox,
                                                                         http: requests.Session) -> None:
    h = bearer(sandbox.credentials.access_token)
    u = sandbox.url
    created = http.post(f"{u}/crm/v3/objects/calls", headers=h, json={"properties": CALL, "associations": [
        {"to": {"id": "101"}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 194}]}]})
    assert created.status_code == 201, created.text
    call_id = created.json()["id"]
    assert created.json()["properties"]["hs_call_duration"] == "300000"
    for method, path, body in [
        ("GET", f"/crm/v3/objects/calls/{call_id}?properties=hs_call_title&associations=contacts", None),
        ("POST", "/crm/v3/objects/calls/search", {"filterGroups": [{"filters": [
            {"propertyName": "hs_call_title", "operator": "EQ", "value": "Demo"}]}], "after": "0", "limit": 10,
            "properties": ["hs_call_title"], "sorts": []}),
        ("POST", "/crm/v3/objects/calls/batch/read", {"inputs": [{"id": call_id}], "properties": ["hs_call_title"],
                                                      "propertiesWithHistory": []}),
        ("PATCH", f"/crm/v3/objects/calls/{call_id}", {"properties": {"hs_call_body": "notes"}}),
        ("GET", "/crm/v3/owners?limit=2", None),
        ("GET", "/crm/v3/owners/71000002", None),
        ("GET", "/crm/v4/objects/calls/" + call_id + "/associations/contacts", None),
        ("GET", "/crm/v4/associations/calls/contacts/labels", None),
        ("GET", "/account-info/v3/details", None),
        ("GET", "/calling/v1/dispositions", None),
        ("GET", "/crm/v3/objects/contacts/102?properties=phone", None),
    ]:
        resp = http.request(method, u + path, headers=h, json=body)
        assert resp.status_code in (200, 201), (path, resp.text)
    assert sandbox.response_problems == []
    fetched = http.get(f"{u}/crm/v3/objects/calls/{call_id}?properties=hs_call_title,hs_call_body&"
                       "associations=contacts", headers=h).json()
    assert fetched["properties"]["hs_call_body"] == "notes"
    assert fetched["associations"]["contacts"]["results"][0]["id"] == "101"
    owners = http.get(f"{u}/crm/v3/owners?limit=2", headers=h).json()
    assert len(owners["results"]) == 2 and owners["paging"]["next"]["after"] == "2"
    rest = http.get(f"{u}/crm/v3/owners?limit=2&after=2", headers=h).json()
    assert [o["id"] for o in rest["results"]] == ["71000003"] and "paging" not in rest
    assert "paid_seat" not in json.dumps(owners)


def test_unknown_path_and_wrong_method(sandbox: Sandbox, http: requests.Session) -> None:
    h = bearer(sandbox.credentials.access_token)
    assert_error(http.get(f"{sandbox.url}/crm/v3/objects/nothing", headers=h), 404, "OBJECT_NOT_FOUND")
    body = assert_error(http.delete(f"{sandbox.url}/crm/v3/objects/calls", headers=h), 405, "VALIDATION_ERROR")
    assert "POST" in body["message"]


def test_body_problems_each_give_a_validation_error(sandbox: Sandbox, http: requests.Session) -> None:
    h = bearer(sandbox.credentials.access_token)
    u = f"{sandbox.url}/crm/v3/objects/calls"
    missing = assert_error(http.post(u, headers=h, json={"associations": []}), 400, "VALIDATION_ERROR")
    assert missing["errors"][0]["in"] == "properties" and missing["errors"][0]["code"] == "REQUIRED"
    wrong_type = assert_error(http.post(u, headers=h, json={"properties": {**CALL, "hs_call_duration": 300},
                                                             "associations": []}), 400, "VALIDATION_ERROR")
    assert wrong_type["errors"][0]["in"] == "properties.hs_call_duration"
    bad_json = assert_error(http.post(u, headers={**h, "Content-Type": "application/json"}, data=b'{"properties":'),
                            400, "VALIDATION_ERROR")
    assert bad_json["errors"][0]["code"] == "INVALID_JSON"
    media = assert_error(http.post(u, headers={**h, "Content-Type": "text/plain"}, data=b"hello"), 400,
                         "VALIDATION_ERROR")
    assert media["errors"][0]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    empty = assert_error(http.post(u, headers=h), 400, "VALIDATION_ERROR")
    assert empty["errors"][0]["code"] == "REQUIRED"
    enum = assert_error(http.post(f"{sandbox.url}/crm/v3/objects/contacts/search", headers=h, json={
        "filterGroups": [{"filters": [{"propertyName": "phone", "operator": "LIKE", "value": "1"}]}], "after": "0",
        "limit": 5, "properties": [], "sorts": []}), 400, "VALIDATION_ERROR")
    assert enum["errors"][0]["code"] == "INVALID_ENUM"
    assert sandbox.calls() == []


def test_parameter_problems(sandbox: Sandbox, http: requests.Session) -> None:
    key = sandbox.credentials.developer_api_key
    path = assert_error(http.get(f"{sandbox.url}/crm/v3/extensions/calling/abc/settings/recording",
                                 params={"hapikey": key}), 400, "VALIDATION_ERROR")
    assert path["errors"][0]["in"] == "appId"
    query = assert_error(http.get(f"{sandbox.url}/crm/v3/owners", params={"limit": "ten"},
                                  headers=bearer(sandbox.credentials.access_token)), 400, "VALIDATION_ERROR")
    assert query["errors"][0]["in"] == "limit"


def test_property_values_are_checked_like_hubspot(sandbox: Sandbox, http: requests.Session) -> None:
    h = bearer(sandbox.credentials.access_token)
    u = f"{sandbox.url}/crm/v3/objects/calls"
    cases = {
        "PROPERTY_DOESNT_EXIST": {"hs_call_colour": "blue"},
        "INVALID_OPTION": {"hs_call_direction": "SIDEWAYS"},
        "INVALID_OWNER_ID": {"hubspot_owner_id": "999"},
        "INVALID_DATE": {"hs_timestamp": "yesterday"},
        "INVALID_DOUBLE": {"hs_call_duration": "5 minutes"},
        "READ_ONLY_VALUE": {"hs_call_has_transcript": "true"},
    }
    for code, bad in cases.items():
        body = assert_error(http.post(u, headers=h, json={"properties": {**CALL, **bad}, "associations": []}), 400,
                            "VALIDATION_ERROR")
        assert [e["code"] for e in body["errors"]] == [code], body
    no_ts = {k: v for k, v in CALL.items() if k != "hs_timestamp"}
    body = assert_error(http.post(u, headers=h, json={"properties": no_ts, "associations": []}), 400,
                        "VALIDATION_ERROR")
    assert body["errors"][0]["code"] == "REQUIRED_PROPERTY"
    dispo = http.get(f"{sandbox.url}/calling/v1/dispositions", headers=h).json()[0]["id"]
    ok = http.post(u, headers=h, json={"properties": {**CALL, "hs_timestamp": "1730030400000",
                                                       "hs_call_disposition": dispo}, "associations": []})
    assert ok.status_code == 201 and ok.json()["properties"]["hs_timestamp"] == "2024-10-27T12:00:00.000Z"
    bad_assoc = assert_error(http.post(u, headers=h, json={"properties": CALL, "associations": [
        {"to": {"id": "101"}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}]}]}),
        400, "VALIDATION_ERROR")
    assert "not valid" in bad_assoc["message"]
    assert len(sandbox.calls()) == 1


def test_contacts_create_conflict_and_search_by_phone_forms(sandbox: Sandbox, http: requests.Session) -> None:
    h = bearer(sandbox.credentials.access_token)
    u = sandbox.url
    created = http.post(f"{u}/crm/v3/objects/contacts", headers=h, json={
        "properties": {"email": "new.person@example.com", "phone": "+15550001111"}, "associations": []})
    assert created.status_code == 201
    dup = assert_error(http.post(f"{u}/crm/v3/objects/contacts", headers=h, json={
        "properties": {"email": "NEW.person@example.com"}, "associations": []}), 409, "CONFLICT")
    assert created.json()["id"] in dup["message"]

    def search(prop: str, op: str, value: str) -> list[str]:
        resp = http.post(f"{u}/crm/v3/objects/contacts/search", headers=h, json={
            "filterGroups": [{"filters": [{"propertyName": prop, "operator": op, "value": value}]}],
            "after": "0", "limit": 10, "properties": ["phone", "mobilephone"], "sorts": []})
        assert resp.status_code == 200, resp.text
        return [r["properties"].get("firstname") or r["id"] for r in resp.json()["results"]]

    assert search("phone", "EQ", "+16175550142") == ["Jane"]
    assert search("phone", "EQ", "(617) 555-0199") == ["John"]
    assert search("phone", "EQ", "6175550199") == []  # stored in another form: an exact match misses
    assert search("mobilephone", "EQ", "6175550123") == ["Maria"]
    assert search("email", "EQ", "LEE.CHEN@example.com") == ["Lee"]
    assert search("lastname", "CONTAINS_TOKEN", "gar*") == ["Maria"]
    or_groups = http.post(f"{u}/crm/v3/objects/contacts/search", headers=h, json={
        "filterGroups": [{"filters": [{"propertyName": "phone", "operator": "EQ", "value": "+16175550142"}]},
                         {"filters": [{"propertyName": "mobilephone", "operator": "EQ", "value": "6175550123"}]}],
        "after": "0", "limit": 1, "properties": [], "sorts": []}).json()
    assert or_groups["total"] == 2 and len(or_groups["results"]) == 1 and or_groups["paging"]["next"]["after"] == "1"


def test_associations_single_batch_and_labels(sandbox: Sandbox, http: requests.Session) -> None:
    h = bearer(sandbox.credentials.access_token)
    u = sandbox.url
    call_ids = [http.post(f"{u}/crm/v3/objects/calls", headers=h, json={"properties": CALL, "associations": []})
                .json()["id"] for _ in range(3)]
    company = sandbox.companies()[0]["id"]
    type_id = http.get(f"{u}/crm/v4/associations/calls/contacts/labels", headers=h).json()["results"][0]["typeId"]
    assert type_id == 194
    assert http.put(f"{u}/crm/v4/objects/calls/{call_ids[0]}/associations/default/contacts/101",
                    headers=h).status_code == 200
    labelled = http.put(f"{u}/crm/v4/objects/calls/{call_ids[1]}/associations/contacts/102", headers=h,
                        json=[{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 194}])
    assert labelled.status_code == 201 and labelled.json()["toObjectTypeId"] == "0-1"
    batch = http.post(f"{u}/crm/v4/associations/calls/companies/batch/create", headers=h, json={"inputs": [
        {"from": {"id": call_ids[2]}, "to": {"id": company}, "types": [{"associationCategory": "HUBSPOT_DEFINED",
                                                                       "associationTypeId": 182}]}]})
    assert batch.status_code == 201, batch.text
    default_batch = http.post(f"{u}/crm/v4/associations/calls/contacts/batch/associate/default", headers=h,
                              json={"inputs": [{"from": {"id": call_ids[2]}, "to": {"id": "103"}}]})
    assert default_batch.status_code == 200
    missing = assert_error(http.put(f"{u}/crm/v4/objects/calls/{call_ids[0]}/associations/default/contacts/99999",
                                    headers=h), 404, "OBJECT_NOT_FOUND")
    assert "99999" in missing["message"]
    pairs = {(a["fromId"], a["toType"], a["toId"], a["types"][0]["typeId"]) for a in sandbox.associations()
             if a["fromType"] == "calls"}
    assert pairs == {(call_ids[0], "contacts", "101", 194), (call_ids[1], "contacts", "102", 194),
                     (call_ids[2], "companies", company, 182), (call_ids[2], "contacts", "103", 194)}
    inverse = [a for a in sandbox.associations() if a["fromType"] == "contacts" and a["fromId"] == "101"]
    assert inverse[0]["types"][0]["typeId"] == 193
    assert sandbox.response_problems == []


def test_calls_batch_create_is_all_or_nothing_and_search_finds_by_external_id(sandbox: Sandbox,
                                                                             http: requests.Session) -> None:
    h = bearer(sandbox.credentials.access_token)
    u = sandbox.url
    inputs = [{"properties": {**CALL, "hs_call_external_id": f"ext-{i}"}, "associations": []} for i in range(3)]
    bad = [*inputs, {"properties": {**CALL, "hs_call_status": "DONE"}, "associations": []}]
    assert_error(http.post(f"{u}/crm/v3/objects/calls/batch/create", headers=h, json={"inputs": bad}), 400,
                 "VALIDATION_ERROR")
    assert sandbox.calls() == []
    ok = http.post(f"{u}/crm/v3/objects/calls/batch/create", headers=h, json={"inputs": inputs})
    assert ok.status_code == 201 and ok.json()["status"] == "COMPLETE" and len(ok.json()["results"]) == 3
    found = http.post(f"{u}/crm/v3/objects/calls/search", headers=h, json={
        "filterGroups": [{"filters": [{"propertyName": "hs_call_external_id", "operator": "EQ", "value": "ext-1"}]}],
        "after": "0", "limit": 10, "properties": ["hs_call_external_id"], "sorts": []}).json()
    assert found["total"] == 1 and found["results"][0]["properties"]["hs_call_external_id"] == "ext-1"
    assert sandbox.response_problems == []


def test_search_can_trail_creates_like_hubspots_index(http: requests.Session) -> None:
    with Sandbox(search_lag_s=0.6) as sb:
        h = bearer(sb.credentials.access_token)
        made = http.post(f"{sb.url}/crm/v3/objects/calls", headers=h, json={
            "properties": {**CALL, "hs_call_external_id": "lagging"}, "associations": []})
        assert made.status_code == 201
        query = {"filterGroups": [{"filters": [{"propertyName": "hs_call_external_id", "operator": "EQ",
                                                "value": "lagging"}]}], "after": "0", "limit": 1,
                 "properties": [], "sorts": []}
        assert http.post(f"{sb.url}/crm/v3/objects/calls/search", headers=h, json=query).json()["total"] == 0
        assert http.get(f"{sb.url}/crm/v3/objects/calls/{made.json()['id']}", headers=h).status_code == 200
        time.sleep(0.7)
        assert http.post(f"{sb.url}/crm/v3/objects/calls/search", headers=h, json=query).json()["total"] == 1


def test_batch_read_by_a_property_that_is_not_unique_is_refused(sandbox: Sandbox, http: requests.Session) -> None:
    h = bearer(sandbox.credentials.access_token)
    created = http.post(f"{sandbox.url}/crm/v3/objects/calls", headers=h,
                        json={"properties": {**CALL, "hs_call_external_id": "ext-1"}, "associations": []})
    assert created.status_code == 201, created.text
    body = {"inputs": [{"id": "ext-1"}], "properties": [], "propertiesWithHistory": []}
    by_external = http.post(f"{sandbox.url}/crm/v3/objects/calls/batch/read", headers=h,
                            json={**body, "idProperty": "hs_call_external_id"})
    assert assert_error(by_external, 400, "VALIDATION_ERROR")["context"] == {"idProperty": ["hs_call_external_id"]}
    by_id = http.post(f"{sandbox.url}/crm/v3/objects/calls/batch/read", headers=h,
                      json={**body, "inputs": [{"id": created.json()["id"]}]})
    assert by_id.status_code == 200 and by_id.json()["results"][0]["id"] == created.json()["id"]
