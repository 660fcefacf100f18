"""HubSpot's official Python SDK against the sandbox, through what an integration does."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from desktop_app.sandbox import Sandbox

hubspot = pytest.importorskip("hubspot", reason="the test extra installs hubspot-api-client")

from hubspot import HubSpot  # noqa: E402
from hubspot.crm.associations.v4 import (  # noqa: E402
    AssociationSpec,
    BatchInputPublicAssociationMultiPost,
    BatchInputPublicFetchAssociationsBatchRequest,
    PublicAssociationMultiPost,
    PublicFetchAssociationsBatchRequest,
)
from hubspot.crm.contacts import SimplePublicObjectInput  # noqa: E402
from hubspot.crm.contacts import SimplePublicObjectInputForCreate as ContactInput  # noqa: E402
from hubspot.crm.extensions.calling import (  # noqa: E402
    MarkRecordingAsReadyRequest,
    RecordingSettingsPatchRequest,
    RecordingSettingsRequest,
)
from hubspot.crm.objects.calls import (  # noqa: E402
    BatchInputSimplePublicObjectBatchInputForCreate,
    BatchReadInputSimplePublicObjectId,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInputForCreate,
    SimplePublicObjectId,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.objects.calls.exceptions import ApiException as CallsApiException  # noqa: E402

CALL = {"hs_timestamp": "2026-03-04T10:30:00.000Z", "hs_call_title": "Support call", "hs_call_duration": "185000",
        "hs_call_direction": "INBOUND", "hs_call_status": "COMPLETED", "hubspot_owner_id": "71000001"}


def sdk(sandbox: Sandbox, **auth: Any) -> Any:
    auth = auth or {"access_token": sandbox.credentials.access_token}
    return HubSpot(host=sandbox.url, base_url=sandbox.url, **auth)


def assert_hubspot_error(exc: Any, status: int, category: str) -> dict[str, Any]:
    assert exc.status == status, exc.body
    body: dict[str, Any] = json.loads(exc.body)
    assert body["status"] == "error" and body["category"] == category and body["message"]
    uuid.UUID(body["correlationId"])
    return body


def test_contacts_and_calls_with_and_without_associations(sandbox: Sandbox) -> None:
    client = sdk(sandbox)
    contact = client.crm.contacts.basic_api.create(ContactInput(properties={
        "email": "ann.lee@example.com", "firstname": "Ann", "lastname": "Lee", "phone": "+14155550111"}))
    assert contact.id and contact.properties["email"] == "ann.lee@example.com"
    updated = client.crm.contacts.basic_api.update(contact.id, SimplePublicObjectInput(properties={"jobtitle": "CFO"}))
    assert updated.properties["jobtitle"] == "CFO"
    listed = client.crm.contacts.basic_api.get_page(limit=3, properties=["phone"])
    assert len(listed.results) == 3 and listed.paging.next.after
    # the recordings guide's step 3: a call with its properties only
    plain = client.crm.objects.calls.basic_api.create(SimplePublicObjectInputForCreate(properties=CALL))
    linked = client.crm.objects.calls.basic_api.create(SimplePublicObjectInputForCreate(properties=CALL, associations=[
        {"to": {"id": contact.id}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 194}]}]))
    read = client.crm.objects.calls.basic_api.get_by_id(linked.id, properties=["hs_call_title"],
                                                       associations=["contacts"])
    assert read.associations["contacts"].results[0].id == contact.id
    page = client.crm.objects.calls.basic_api.get_page(limit=10)
    assert {c.id for c in page.results} >= {plain.id, linked.id}
    client.crm.objects.calls.basic_api.archive(plain.id)
    with pytest.raises(CallsApiException) as missing:
        client.crm.objects.calls.basic_api.get_by_id(plain.id)
    assert_hubspot_error(missing.value, 404, "OBJECT_NOT_FOUND")
    with pytest.raises(CallsApiException) as bad:
        client.crm.objects.calls.basic_api.create(SimplePublicObjectInputForCreate(properties={
            **CALL, "hs_call_direction": "SIDEWAYS"}))
    assert_hubspot_error(bad.value, 400, "VALIDATION_ERROR")
    assert sandbox.response_problems == []


def test_batch_create_and_read_and_minimal_searches(sandbox: Sandbox) -> None:
    client = sdk(sandbox)
    ids = [f"sdk-{uuid.uuid4()}" for _ in range(3)]
    created = client.crm.objects.calls.batch_api.create(BatchInputSimplePublicObjectBatchInputForCreate(inputs=[
        SimplePublicObjectBatchInputForCreate(properties={**CALL, "hs_call_external_id": i}) for i in ids]))
    assert len(created.results) == 3
    read = client.crm.objects.calls.batch_api.read(BatchReadInputSimplePublicObjectId(
        inputs=[SimplePublicObjectId(id=r.id) for r in created.results], properties=["hs_call_external_id"],
        properties_with_history=[]))
    assert sorted(r.properties["hs_call_external_id"] for r in read.results) == sorted(ids)
    everything = client.crm.objects.calls.search_api.do_search(PublicObjectSearchRequest())  # the basic search
    assert everything.total == 3
    by_external_id = client.crm.objects.calls.search_api.do_search(PublicObjectSearchRequest(filter_groups=[
        {"filters": [{"propertyName": "hs_call_external_id", "operator": "EQ", "value": ids[1]}]}],
        properties=["hs_call_external_id"]))
    assert [r.properties["hs_call_external_id"] for r in by_external_id.results] == [ids[1]]
    by_phone = client.crm.contacts.search_api.do_search({"filterGroups": [{"filters": [
        {"propertyName": "phone", "operator": "EQ", "value": "+16175550142"}]}],
        "sorts": [{"propertyName": "createdate", "direction": "DESCENDING"}], "properties": ["phone"]})
    assert [r.properties["phone"] for r in by_phone.results] == ["+16175550142"]
    assert sandbox.response_problems == []


def test_owners_and_associations_v4_with_a_partial_batch(sandbox: Sandbox) -> None:
    client = sdk(sandbox)
    owners = client.crm.owners.owners_api.get_page(limit=100)
    assert {o.email for o in owners.results} >= {"alice.agent@example.com"}
    assert client.crm.owners.owners_api.get_by_id(owners.results[0].id).id == owners.results[0].id
    call = client.crm.objects.calls.basic_api.create(SimplePublicObjectInputForCreate(properties=CALL))
    spec = AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=194)
    client.crm.associations.v4.basic_api.create("calls", call.id, "contacts", "101", [spec])
    client.crm.associations.v4.basic_api.create_default("calls", call.id, "contacts", "102")
    listed = client.crm.associations.v4.basic_api.get_page("calls", call.id, "contacts")
    assert sorted(r.to_object_id for r in listed.results) in (["101", "102"], [101, 102])
    partial = client.crm.associations.v4.batch_api.create("calls", "contacts", BatchInputPublicAssociationMultiPost(
        inputs=[PublicAssociationMultiPost(_from={"id": call.id}, to={"id": "103"}, types=[spec]),
                PublicAssociationMultiPost(_from={"id": call.id}, to={"id": "987654"}, types=[spec])]))
    assert len(partial.results) == 1 and partial.num_errors == 1  # a 207: one pair made, one refused
    batch_read = client.crm.associations.v4.batch_api.get_page("calls", "contacts",
                                                               BatchInputPublicFetchAssociationsBatchRequest(
                                                                   inputs=[PublicFetchAssociationsBatchRequest(
                                                                       id=call.id)]))
    assert len(batch_read.results[0].to) == 3
    client.crm.associations.v4.basic_api.archive("calls", call.id, "contacts", "103")
    assert len(client.crm.associations.v4.basic_api.get_page("calls", call.id, "contacts").results) == 2
    assert sandbox.response_problems == []


def test_recording_settings_ready_and_transcripts(sandbox: Sandbox) -> None:
    developer = sdk(sandbox, api_key=sandbox.credentials.developer_api_key)
    app_id = sandbox.credentials.app_id
    recording = developer.crm.extensions.calling.recording_settings_api
    made = recording.register_url_format(app_id, RecordingSettingsRequest(
        url_to_retrieve_authed_recording="https://recordings.example.com/r/%s"))
    assert made.url_to_retrieve_authed_recording.endswith("/%s")
    recording.update_url_format(app_id, RecordingSettingsPatchRequest(
        url_to_retrieve_authed_recording="https://recordings.example.com/v2/%s"))
    assert recording.get_url_format(app_id).url_to_retrieve_authed_recording.endswith("/v2/%s")
    client = sdk(sandbox)
    call = client.crm.objects.calls.basic_api.create(SimplePublicObjectInputForCreate(properties=CALL))
    client.crm.extensions.calling.recording_settings_api.mark_as_ready(MarkRecordingAsReadyRequest(
        engagement_id=int(call.id)))
    assert sandbox.ready_marked() == [call.id]
    # third-party transcripts: no SDK model yet, so the SDK's generic request (OAuth only, as described)
    token = sandbox.issue_token(["crm.extensions_calling_transcripts.write", "crm.extensions_calling_transcripts.read"])
    oauth = sdk(sandbox, access_token=token)
    made_t = oauth.api_request({"method": "POST", "path": "/crm/v3/extensions/calling/transcripts", "body": {
        "engagementId": int(call.id), "transcriptCreateUtterances": [
            {"speaker": {"id": "1", "name": "Ann"}, "text": "Hello", "startTimeMillis": 0, "endTimeMillis": 800,
             "languageCode": "en-US"}]}})
    assert made_t.status_code == 200, made_t.text
    got = oauth.api_request({"method": "GET", "path": f"/crm/v3/extensions/calling/transcripts/{made_t.json()['id']}"})
    assert got.json()["transcriptSource"] == "INTEGRATOR_GENERATED"
    refused = sdk(sandbox).api_request({"method": "POST", "path": "/crm/v3/extensions/calling/transcripts",
                                        "body": {"engagementId": int(call.id), "transcriptCreateUtterances": []}})
    assert refused.status_code == 403 and refused.json()["category"] == "MISSING_SCOPES"  # private app: no scope
    assert sandbox.response_problems == []
