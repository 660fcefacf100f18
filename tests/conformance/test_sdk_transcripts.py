"""HubSpot's official Python SDK drives the sandbox's third-party transcripts (issue 20). The SDK has no
transcripts model yet, so its generic ``api_request`` sends what HubSpot's reference shows; the call is read
back through the SDK's calls API, as an integration would look for the transcript it posted."""

from __future__ import annotations

from typing import Any

import pytest

from desktop_app.sandbox import Sandbox

pytest.importorskip("hubspot", reason="the test extra installs hubspot-api-client")

from hubspot import HubSpot  # noqa: E402
from hubspot.crm.objects.calls import SimplePublicObjectInputForCreate  # noqa: E402

PATH = "/crm/v3/extensions/calling/transcripts"
SCOPES = ["crm.extensions_calling_transcripts.write", "crm.extensions_calling_transcripts.read"]


def sdk(sandbox: Sandbox, token: str) -> Any:
    return HubSpot(host=sandbox.url, base_url=sandbox.url, access_token=token)


def test_post_read_delete_and_refusals_through_the_sdk(sandbox: Sandbox) -> None:
    private = sdk(sandbox, sandbox.credentials.access_token)
    call = private.crm.objects.calls.basic_api.create(SimplePublicObjectInputForCreate(properties={
        "hs_timestamp": "2026-03-04T10:30:00.000Z", "hs_call_title": "Late order", "hubspot_owner_id": "71000003"}))
    token = sandbox.issue_token(SCOPES)
    assert isinstance(token, str)
    oauth = sdk(sandbox, token)
    words = [{"speaker": {"id": "71000003", "name": "Carol Viewer", "email": "carol.viewer@example.com"},
              "text": "Hello, this is Carol.", "startTimeMillis": 0, "endTimeMillis": 1400, "languageCode": "en"},
             {"speaker": {"id": "51", "name": "Jane Doe"}, "text": "Hi Carol.", "startTimeMillis": 1300,
              "endTimeMillis": 2100, "languageCode": "en"}]
    made = oauth.api_request({"method": "POST", "path": PATH, "body": {
        "engagementId": int(call.id), "transcriptCreateUtterances": words}})
    assert made.status_code == 200, made.text
    tid = made.json()["id"]
    got = oauth.api_request({"method": "GET", "path": f"{PATH}/{tid}"}).json()
    assert got["transcriptSource"] == "INTEGRATOR_GENERATED" and got["engagementId"] == int(call.id)
    assert [u["text"] for u in got["transcriptUtterances"]] == ["Hello, this is Carol.", "Hi Carol."]
    shown = private.crm.objects.calls.basic_api.get_by_id(call.id, properties=["hs_call_transcription_id",
                                                                                "hs_call_has_transcript"])
    assert shown.properties["hs_call_transcription_id"] == tid and shown.properties["hs_call_has_transcript"] == "true"

    reversed_times = oauth.api_request({"method": "POST", "path": PATH, "body": {
        "engagementId": int(call.id), "transcriptCreateUtterances": [{**words[0], "startTimeMillis": 900, "endTimeMillis": 10}]}})
    assert reversed_times.status_code == 400 and reversed_times.json()["category"] == "VALIDATION_ERROR"
    scoped_private = sandbox.issue_token(SCOPES, kind="private-app")
    assert isinstance(scoped_private, str)
    refused = sdk(sandbox, scoped_private).api_request({"method": "POST", "path": PATH, "body": {
        "engagementId": int(call.id), "transcriptCreateUtterances": words}})
    assert refused.status_code == 403 and refused.json()["category"] == "MISSING_SCOPES"

    assert oauth.api_request({"method": "DELETE", "path": f"{PATH}/{tid}"}).status_code == 204
    assert oauth.api_request({"method": "GET", "path": f"{PATH}/{tid}"}).status_code == 404
    cleared = private.crm.objects.calls.basic_api.get_by_id(call.id, properties=["hs_call_has_transcript"])
    assert cleared.properties["hs_call_has_transcript"] == "false"
    assert sandbox.transcripts() == [] and sandbox.response_problems == []
