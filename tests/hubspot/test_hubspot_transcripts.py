"""The client's third-party transcripts (issue 20) against the sandbox: post, read, delete, on v3 and the dated
path, the one sentence naming OAuth when a sign-in cannot post them, and ``callrelay hubspot test``'s check."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from desktop_app.hubspot import endpoints, versions
from desktop_app.hubspot.client import TRANSCRIPTS_NEED_OAUTH, HubSpotClient
from desktop_app.hubspot.config import config_from_env
from desktop_app.hubspot.endpoints import TranscriptUtterance
from desktop_app.hubspot.errors import HubSpotError
from desktop_app.hubspot.ratelimit import RateLimiter
from desktop_app.sandbox import Sandbox

SCOPES = ["crm.extensions_calling_transcripts.write", "crm.extensions_calling_transcripts.read",
          "crm.objects.contacts.write", "crm.objects.contacts.read", "crm.objects.calls.read"]
WORDS = [TranscriptUtterance("71000001", "Ann Agent", "Hello, this is Ann.", 0, 1400, "en", "ann@example.com"),
         TranscriptUtterance("51", "Carl Caller", "Hi Ann, my order is late.", 1200, 3100, "en")]


def _oauth_client(sandbox: Sandbox, version: str = versions.V3) -> HubSpotClient:
    token = sandbox.issue_token(SCOPES)
    assert isinstance(token, str)
    config = dataclasses.replace(config_from_env(sandbox.env()), access_token=token, api_version=version)
    return HubSpotClient(config, limiter=RateLimiter())


@pytest.fixture
def call_id(client: HubSpotClient) -> str:
    details = endpoints.CallDetails(external_id="callrelay-tx-1", timestamp=endpoints.dt.datetime.now(
        endpoints.dt.timezone.utc), duration_ms=3100, title="Late order", owner_id="71000001")
    return str(client.create_call(details).id)


@pytest.fixture
def oauth(sandbox: Sandbox) -> Iterator[HubSpotClient]:
    with _oauth_client(sandbox) as c:
        yield c


@pytest.mark.parametrize("version", versions.VERSIONS)
def test_post_read_delete_on_each_api_version(sandbox: Sandbox, call_id: str, version: str) -> None:
    with _oauth_client(sandbox, version) as c:
        tid = c.post_transcript(call_id, WORDS)
        got = c.get_transcript(tid)
        assert got is not None and got.id == tid and got.engagement_id == call_id
        assert got.source == "INTEGRATOR_GENERATED"
        assert [(u["speaker"]["id"], u["text"], u["startTimeMillis"], u["endTimeMillis"], u.get("languageCode"))
                for u in got.utterances] == [("71000001", "Hello, this is Ann.", 0, 1400, "en"),
                                             ("51", "Hi Ann, my order is late.", 1200, 3100, "en")]
        assert got.utterances[0]["speaker"]["email"] == "ann@example.com"
        assert c.read_call(call_id).get("hs_call_transcription_id") == tid
        assert c.delete_transcript(tid) is True
        assert c.get_transcript(tid) is None
        assert c.delete_transcript(tid) is False  # already gone: said, not raised
    assert sandbox.transcripts() == []


def test_a_private_app_token_gets_one_sentence_naming_oauth(sandbox: Sandbox, client: HubSpotClient,
                                                            call_id: str, oauth: HubSpotClient) -> None:
    with pytest.raises(HubSpotError) as caught:
        client.post_transcript(call_id, WORDS)
    assert caught.value.status == 403 and caught.value.agent_message == TRANSCRIPTS_NEED_OAUTH
    assert "OAuth" in TRANSCRIPTS_NEED_OAUTH and "private-app" in TRANSCRIPTS_NEED_OAUTH
    assert sandbox.transcripts() == []
    with pytest.raises(HubSpotError) as probe:
        client.check_may_post_transcripts()
    assert probe.value.agent_message == TRANSCRIPTS_NEED_OAUTH
    oauth.check_may_post_transcripts()  # allowed: raises nothing
    assert sandbox.transcripts() == []  # and the probe created nothing


def test_a_lost_answer_is_ambiguous_not_retried(sandbox: Sandbox, oauth: HubSpotClient, call_id: str) -> None:
    sandbox.faults.add_spec("transcripts.create:lost")
    with pytest.raises(HubSpotError) as caught:
        oauth.post_transcript(call_id, WORDS)
    assert caught.value.ambiguous
    assert len(sandbox.transcripts()) == 1  # it happened once; the client did not post it again


@pytest.mark.parametrize("bad, words", [
    ([], "at least one utterance"),
    ([TranscriptUtterance("1", "A", "Hi", 900, 100)], "does not end after it starts"),
    ([TranscriptUtterance("1", "A", "Hi", 900, 900)], "does not end after it starts"),
    ([TranscriptUtterance("1", "A", "  ", 0, 100)], "no text"),
    ([TranscriptUtterance("1", "A", "Hi", 0, 100, "english please")], "not a language code"),
])
def test_a_malformed_transcript_is_refused_before_sending(bad: list[TranscriptUtterance], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        endpoints.transcripts_create("123", bad)
    with pytest.raises(ValueError, match="must be a number"):
        endpoints.transcripts_create("call-12", WORDS)


def test_hubspot_test_says_when_the_account_cannot_post_transcripts(sandbox: Sandbox, tmp_path: Path) -> None:
    env = {**os.environ, **sandbox.env(), "CALLRELAY_HOME": str(tmp_path / "home")}
    out = subprocess.run([sys.executable, "-m", "desktop_app", "hubspot", "test"], env=env, capture_output=True,
                         text=True, timeout=120)
    assert f"WARN  transcripts: {TRANSCRIPTS_NEED_OAUTH}" in out.stdout, out.stdout
    token = sandbox.issue_token([*SCOPES, "crm.objects.owners.read", "oauth"])
    assert isinstance(token, str)
    out = subprocess.run([sys.executable, "-m", "desktop_app", "hubspot", "test"], text=True, timeout=120,
                         env={**env, "HUBSPOT_ACCESS_TOKEN": token}, capture_output=True)
    assert "ok    transcripts: can be posted" in out.stdout, out.stdout
    assert sandbox.transcripts() == []


def test_connect_says_a_private_app_token_cannot_post_transcripts(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    import io

    from desktop_app.cli import main

    monkeypatch.setattr(sys, "stdin", io.StringIO("".join(f"{k}={v}\n" for k, v in sandbox.env().items())))
    assert main(["hubspot", "connect"]) == 0
    out = capsys.readouterr().out
    assert f"Note: {TRANSCRIPTS_NEED_OAUTH}" in out
