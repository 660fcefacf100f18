"""Third-party transcripts in the sandbox (issue 20): what HubSpot accepts, refuses, stores and shows on the call.

HubSpot's description: ``transcriptions-v3.json`` (OAuth only, ``crm.extensions_calling_transcripts.write``) and
``transcriptions-2026-09.json`` (the dated path); hubspot-facts.md: a GET shows ``INTEGRATOR_GENERATED``.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests
from sandbox_helpers import bearer

from desktop_app.sandbox import Sandbox

SCOPES = ["crm.extensions_calling_transcripts.write", "crm.extensions_calling_transcripts.read"]
V3 = "/crm/v3/extensions/calling/transcripts"
DATED = "/crm/extensions/calling/2026-09/transcripts"


def _call(sandbox: Sandbox, http: requests.Session) -> str:
    made = http.post(f"{sandbox.url}/crm/v3/objects/calls", headers=bearer(sandbox.credentials.access_token), json={
        "properties": {"hs_timestamp": "2026-03-04T10:30:00.000Z", "hs_call_title": "Support call",
                       "hubspot_owner_id": "71000001"}})
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def _utterance(text: str = "Hello there", start: int = 0, end: int = 900, who: str = "1") -> dict[str, Any]:
    return {"speaker": {"id": who, "name": f"Speaker {who}", "email": "ann@example.com"}, "text": text,
            "startTimeMillis": start, "endTimeMillis": end, "languageCode": "en"}


def _oauth(sandbox: Sandbox) -> dict[str, str]:
    token = sandbox.issue_token(SCOPES)
    assert isinstance(token, str)
    return bearer(token)


def _error(resp: requests.Response, status: int, category: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body: dict[str, Any] = resp.json()
    assert body["status"] == "error" and body["category"] == category and body["message"], body
    uuid.UUID(body["correlationId"])
    return body


@pytest.mark.parametrize("path", [V3, DATED])
def test_a_posted_transcript_is_stored_returned_and_shown_on_its_call(sandbox: Sandbox, http: requests.Session,
                                                                       path: str) -> None:
    call_id = _call(sandbox, http)
    auth = _oauth(sandbox)
    utterances = [_utterance("Hello, Call Relay here", 0, 1500, "1"), _utterance("Hi, I have a question", 1200,
                                                                                  2600, "2")]
    made = http.post(sandbox.url + path, headers=auth, json={"engagementId": int(call_id),
                                                             "transcriptCreateUtterances": utterances})
    assert made.status_code == 200, made.text
    tid = made.json()["id"]
    got = http.get(f"{sandbox.url}{path}/{tid}", headers=auth)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["transcriptSource"] == "INTEGRATOR_GENERATED"
    assert body["engagementId"] == int(call_id)
    assert [(u["text"], u["startTimeMillis"], u["endTimeMillis"], u["speaker"]["id"])
            for u in body["transcriptUtterances"]] == [
        ("Hello, Call Relay here", 0, 1500, "1"), ("Hi, I have a question", 1200, 2600, "2")]
    assert all(u["id"] for u in body["transcriptUtterances"])
    props = sandbox.call(call_id)["properties"]  # type: ignore[index]
    assert props["hs_call_has_transcript"] == "true" and props["hs_call_transcription_id"] == tid
    assert sandbox.call_transcript(call_id) == body
    assert sandbox.response_problems == []


def test_a_deleted_transcript_leaves_its_call(sandbox: Sandbox, http: requests.Session) -> None:
    call_id = _call(sandbox, http)
    auth = _oauth(sandbox)
    tid = http.post(sandbox.url + V3, headers=auth, json={
        "engagementId": int(call_id), "transcriptCreateUtterances": [_utterance()]}).json()["id"]
    assert http.delete(f"{sandbox.url}{V3}/{tid}", headers=auth).status_code == 204
    _error(http.get(f"{sandbox.url}{V3}/{tid}", headers=auth), 404, "OBJECT_NOT_FOUND")
    _error(http.delete(f"{sandbox.url}{V3}/{tid}", headers=auth), 404, "OBJECT_NOT_FOUND")
    props = sandbox.call(call_id)["properties"]  # type: ignore[index]
    assert props.get("hs_call_has_transcript") == "false" and not props.get("hs_call_transcription_id")
    assert sandbox.call_transcript(call_id) is None
    # posted again (after a correction): the call shows the new one
    again = http.post(sandbox.url + V3, headers=auth, json={
        "engagementId": int(call_id), "transcriptCreateUtterances": [_utterance("Corrected words")]}).json()["id"]
    assert again != tid
    assert sandbox.call(call_id)["properties"]["hs_call_transcription_id"] == again  # type: ignore[index]


def test_a_private_app_token_cannot_post_on_the_v3_path_even_holding_the_scope(sandbox: Sandbox,
                                                                                http: requests.Session) -> None:
    call_id = _call(sandbox, http)
    body = {"engagementId": int(call_id), "transcriptCreateUtterances": [_utterance()]}
    plain = _error(http.post(sandbox.url + V3, headers=bearer(sandbox.credentials.access_token), json=body),
                   403, "MISSING_SCOPES")
    assert plain["errors"][0]["context"]["requiredGranularScopes"] == ["crm.extensions_calling_transcripts.write"]
    token = sandbox.issue_token(SCOPES, kind="private-app")
    assert isinstance(token, str)
    refused = _error(http.post(sandbox.url + V3, headers=bearer(token), json=body), 403, "MISSING_SCOPES")
    assert "OAuth" in refused["message"]
    assert sandbox.transcripts() == []
    # the dated file lists private apps with the scope (transcriptions-2026-09.json): accepted there
    assert http.post(sandbox.url + DATED, headers=bearer(token), json=body).status_code == 200


@pytest.mark.parametrize("utterances, field", [
    ([], "transcriptCreateUtterances"),
    ([_utterance(start=900, end=100)], "endTimeMillis"),
    ([_utterance(start=900, end=900)], "endTimeMillis"),  # HubSpot: "Should be greater than startTimeMillis"
    ([_utterance(start=-5, end=100)], "startTimeMillis"),
    ([_utterance(text="   ")], "text"),
    ([{**_utterance(), "speaker": {"id": "", "name": "Ann"}}], "speaker"),
    ([{**_utterance(), "languageCode": "not a language"}], "languageCode"),
    ([{"speaker": {"id": "1", "name": "Ann"}, "text": "Hi", "startTimeMillis": 0}], "endTimeMillis"),
    ([{**_utterance(), "startTimeMillis": "soon"}], "startTimeMillis"),
])
def test_malformed_utterances_are_refused_and_nothing_is_stored(sandbox: Sandbox, http: requests.Session,
                                                                utterances: list[dict[str, Any]], field: str) -> None:
    call_id = _call(sandbox, http)
    resp = http.post(sandbox.url + V3, headers=_oauth(sandbox), json={"engagementId": int(call_id),
                                                                      "transcriptCreateUtterances": utterances})
    body = _error(resp, 400, "VALIDATION_ERROR")
    assert field in resp.text, body
    assert sandbox.transcripts() == []
    assert sandbox.call(call_id)["properties"].get("hs_call_has_transcript") != "true"  # type: ignore[index]


def test_an_unknown_engagement_is_refused(sandbox: Sandbox, http: requests.Session) -> None:
    resp = http.post(sandbox.url + V3, headers=_oauth(sandbox), json={
        "engagementId": 987654321, "transcriptCreateUtterances": [_utterance()]})
    _error(resp, 404, "OBJECT_NOT_FOUND")
    assert "987654321" in resp.json()["message"]
    assert sandbox.transcripts() == []
