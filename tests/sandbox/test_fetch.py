"""After "recording ready" the sandbox behaves like HubSpot: it asks the registered endpoint for the
recording (signed, v3), downloads it with Range requests, checks the audio and sets the call's
transcript properties, or records why it could not."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from pathlib import Path
from typing import Any

import requests
from sandbox_helpers import TinyRecordingServer, bearer, write_wav
from test_validation import CALL, assert_error

from desktop_app.sandbox import REASONS, RateLimits, Sandbox

HUBSPOT_DECODES = {"%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$", "%27": "'", "%28": "(",
                   "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";"}


def register(sb: Sandbox, http: requests.Session, server: TinyRecordingServer) -> None:
    c = sb.credentials
    resp = http.post(f"{sb.url}/crm/v3/extensions/calling/{c.app_id}/settings/recording",
                     params={"hapikey": c.developer_api_key},
                     json={"urlToRetrieveAuthedRecording": f"{server.url}/retrieve/%s"})
    assert resp.status_code == 200, resp.text


def log_call(sb: Sandbox, http: requests.Session, external_id: str, **extra: str) -> str:
    c = sb.credentials
    props = {**CALL, "hs_call_source": "INTEGRATIONS_PLATFORM", "hs_call_app_id": str(c.app_id),
             "hs_call_external_id": external_id, "hs_call_external_account_id": str(c.portal_id), **extra}
    resp = http.post(f"{sb.url}/crm/v3/objects/calls", headers=bearer(c.access_token),
                     json={"properties": props, "associations": []})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def mark_ready(sb: Sandbox, http: requests.Session, call_id: str) -> None:
    resp = http.post(f"{sb.url}/crm/v3/extensions/calling/recordings/ready",
                     headers=bearer(sb.credentials.access_token), json={"engagementId": int(call_id)})
    assert resp.status_code == 204 and resp.content == b""


def transcript_props(sb: Sandbox, http: requests.Session, call_id: str) -> dict[str, Any]:
    resp = http.get(f"{sb.url}/crm/v3/objects/calls/{call_id}", headers=bearer(sb.credentials.access_token),
                    params={"properties": "hs_call_has_transcript,hs_call_transcription_id,sandbox_transcript_status,"
                                          "sandbox_transcript_reason"})
    return dict(resp.json()["properties"])


def test_a_good_stereo_recording_is_fetched_signed_with_ranges_and_transcribed(
        sandbox: Sandbox, http: requests.Session, recording_server: TinyRecordingServer) -> None:
    register(sandbox, http, recording_server)
    recording_server.map["call/ext 1"] = "stereo.wav"
    call_id = log_call(sandbox, http, "call/ext 1")
    mark_ready(sandbox, http, call_id)
    record = sandbox.wait_for_fetch(call_id, timeout=20)
    assert record.status == "transcribed", (record.reason, record.detail)
    assert sandbox.ready_marked() == [call_id]

    # the retrieve request: %s replaced (escaped), the account and app in the query, signed v3
    (asked,) = recording_server.log.retrieve
    assert asked["externalId"] == "call/ext 1"
    assert asked["query"] == {"externalAccountId": [str(sandbox.credentials.portal_id)],
                              "appId": [str(sandbox.credentials.app_id)]}
    stamp = asked["headers"]["x-hubspot-request-timestamp"]
    assert abs(int(stamp) - time.time() * 1000) < 60_000
    uri = f"{recording_server.url}{asked['target']}"
    for escape, char in HUBSPOT_DECODES.items():  # HubSpot's guide: these escapes are decoded before hashing
        uri = uri.replace(escape, char)
    expected = base64.b64encode(hmac.new(sandbox.credentials.client_secret.encode(),
                                         f"GET{uri}{stamp}".encode(), hashlib.sha256).digest()).decode()
    assert asked["headers"]["x-hubspot-signature-v3"] == expected

    # ranges: the start, a seek to the middle, then the rest; all 206
    ranges = [f["range"] for f in recording_server.log.files]
    size = (recording_server.files["stereo.wav"]).stat().st_size
    assert ranges[0] == f"bytes=0-{16 * 1024 - 1}"
    assert ranges[1].startswith(f"bytes={size // 2}-")
    assert len(ranges) >= 3 and all(f["status"] == 206 for f in recording_server.log.files)
    assert record.size == size and record.container == "wav" and record.channels == 2

    props = transcript_props(sandbox, http, call_id)
    assert props["hs_call_has_transcript"] == "true" and props["sandbox_transcript_status"] == "TRANSCRIBED"
    transcript = http.get(f"{sandbox.url}/crm/v3/extensions/calling/transcripts/{props['hs_call_transcription_id']}",
                          headers=bearer(str(sandbox.issue_token(["crm.extensions_calling_transcripts.read"]))))
    assert transcript.status_code == 200 and transcript.json()["engagementId"] == int(call_id)
    assert len(transcript.json()["transcriptUtterances"]) == 2
    assert sandbox.response_problems == []


def _outcome(sb: Sandbox, http: requests.Session, server: TinyRecordingServer, ext: str, file: str | None,
             **extra: str) -> tuple[str, dict[str, Any]]:
    if file is not None:
        server.map[ext] = file
    call_id = log_call(sb, http, ext, **extra)
    mark_ready(sb, http, call_id)
    record = sb.wait_for_fetch(call_id, timeout=20)
    props = transcript_props(sb, http, call_id)
    if record.status != "transcribed":
        assert props["hs_call_has_transcript"] == "false"
        assert props["sandbox_transcript_reason"] == record.reason and record.detail
    return record.reason or "transcribed", props


def test_each_reason_a_recording_is_not_transcribed(sandbox: Sandbox, http: requests.Session,
                                                    recording_server: TinyRecordingServer) -> None:
    register(sandbox, http, recording_server)
    assert _outcome(sandbox, http, recording_server, "m1", "mono.wav")[0] == "one_channel"
    assert _outcome(sandbox, http, recording_server, "s1", "same.wav")[0] == "identical_channels"
    assert _outcome(sandbox, http, recording_server, "t1", "notes.txt")[0] == "unsupported_format"
    assert _outcome(sandbox, http, recording_server, "z1", "silent.wav")[0] == "bad_audio"
    assert _outcome(sandbox, http, recording_server, "c1", "cut.wav")[0] == "bad_audio"
    assert _outcome(sandbox, http, recording_server, "u1", None)[0] == "retrieve_failed"  # endpoint says 404
    assert _outcome(sandbox, http, recording_server, "o1", "stereo.wav",
                    hubspot_owner_id="71000003")[0] == "owner_without_paid_seat"
    sandbox.set_owner_seat("71000003", True)
    assert _outcome(sandbox, http, recording_server, "o2", "stereo.wav",
                    hubspot_owner_id="71000003")[0] == "transcribed"
    recording_server.honour_range = False
    assert _outcome(sandbox, http, recording_server, "r1", "stereo.wav")[0] == "range_not_supported"
    recording_server.honour_range = True
    missing = log_call(sandbox, http, "x1", hs_call_source="")
    mark_ready(sandbox, http, missing)
    assert sandbox.wait_for_fetch(missing).reason == "missing_properties"
    assert {r.reason for r in sandbox.fetch_log} <= set(REASONS) | {""}


def test_the_monthly_analysis_limit_and_an_unregistered_app(http: requests.Session,
                                                            recording_server: TinyRecordingServer) -> None:
    with Sandbox(analysis_limit=1, limits=RateLimits(per_interval=1000), fetch_chunk=16 * 1024) as sb:
        recording_server.map.update({"a": "stereo.wav", "b": "stereo.wav"})
        first = log_call(sb, http, "a")
        mark_ready(sb, http, first)
        assert sb.wait_for_fetch(first).reason == "no_recording_setting"
        register(sb, http, recording_server)
        mark_ready(sb, http, first)
        assert sb.wait_for_fetch(first).status == "transcribed"
        second = log_call(sb, http, "b")
        mark_ready(sb, http, second)
        assert sb.wait_for_fetch(second).reason == "analysis_limit_reached"
        assert_error(http.post(f"{sb.url}/crm/v3/extensions/calling/recordings/ready",
                               headers=bearer(sb.credentials.access_token), json={"engagementId": 12345}), 404,
                     "OBJECT_NOT_FOUND")


def _app_verdict(path: Path) -> str:
    """The app's own inspector's verdict, in the sandbox's reason codes."""
    from desktop_app.audio import inspect

    result = inspect(str(path), analyse=True)
    errors = [p for p in result.problems if p.severity == "error"]
    if any(p.code == "unsupported-format" for p in errors):
        return "unsupported_format"
    if errors or not result.probe.readable:
        return "bad_audio"
    if (result.probe.channels or 0) < 2:
        return "one_channel"
    if result.analysis is not None and result.analysis.identical_channels:
        return "identical_channels"
    return ""


def test_the_sandbox_judges_recordings_on_its_own_and_agrees_with_the_app_on_the_fixtures(
        recording_server: TinyRecordingServer) -> None:
    """Two independent judges: the sandbox's (PyAV and HubSpot's rules, importing nothing of the app's
    audio package) and the app's inspector. On these files they must agree; where they ever disagree,
    one of them is wrong."""
    import ast

    from desktop_app.sandbox import judge

    tree = ast.parse(Path(judge.__file__).read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not any(m.startswith("desktop_app") for m in imported), imported
    expected = {"stereo.wav": "", "same.wav": "identical_channels", "mono.wav": "one_channel",
                "notes.txt": "unsupported_format", "silent.wav": "bad_audio", "cut.wav": "bad_audio"}
    for name, reason in expected.items():
        path = recording_server.files[name]
        assert judge.judge(path).reason == reason, (name, judge.judge(path))
        if reason != "unsupported_format":  # the app calls a file it cannot open unreadable, not a format
            assert _app_verdict(path) == reason, name
    assert judge.judge(recording_server.files["cut.wav"]).detail.startswith("cut off")


def test_against_the_projects_recording_server_with_signatures_required(tmp_path: Path,
                                                                       http: requests.Session) -> None:
    """The real recording server (signature checks required) accepts the sandbox's signed fetch; one
    that knows another client secret refuses it, and the sandbox says so."""
    from desktop_app.server import RecordingServer
    from desktop_app.server.recordings import RecordingStore

    wav = write_wav(tmp_path / "call.wav", seconds=4.0)
    store = RecordingStore(tmp_path / "store")
    with Sandbox(limits=RateLimits(per_interval=1000), fetch_chunk=32 * 1024) as sb:
        c = sb.credentials
        stored = store.add(wav)
        for ext in ("rs-ok", "rs-wrong-secret"):
            store.share(ext, stored.sha256, app_id=str(c.app_id), external_account_id=str(c.portal_id))
        for secret, ext, expected in ((c.client_secret, "rs-ok", "transcribed"),
                                      ("another-secret", "rs-wrong-secret", "retrieve_failed")):
            server = RecordingServer(store, client_secret=secret, signature_mode="required",
                                     signing_key="k" * 43)
            server.start()
            try:
                url = server.recording_endpoint_template()
                existing = sb.recording_setting()
                method = http.patch if existing else http.post
                resp = method(f"{sb.url}/crm/v3/extensions/calling/{c.app_id}/settings/recording",
                              params={"hapikey": c.developer_api_key}, json={"urlToRetrieveAuthedRecording": url})
                assert resp.status_code == 200, resp.text
                call_id = log_call(sb, http, ext)
                mark_ready(sb, http, call_id)
                record = sb.wait_for_fetch(call_id, timeout=20)
                assert (record.reason or record.status) == expected, (record.reason, record.detail)
                if expected == "transcribed":
                    statuses = [r["status"] for r in record.requests]
                    assert statuses[0] == 200 and set(statuses[1:]) == {206} and len(statuses) >= 4
                    assert record.size == wav.stat().st_size
                else:
                    assert "401" in record.detail
            finally:
                server.stop()
    store.close()
