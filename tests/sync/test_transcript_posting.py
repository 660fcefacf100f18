"""Call Relay's own transcript posted to HubSpot exactly once (issue 20), against the real sandbox, the real
recording server and a real history file; the kill tests run the poster in a real subprocess."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sync_helpers import callrelay, history, write_call

from desktop_app import settings as settings_mod
from desktop_app.hubspot.client import HubSpotClient
from desktop_app.hubspot.ratelimit import RateLimiter
from desktop_app.runtime import Runtime
from desktop_app.sandbox import Sandbox
from desktop_app.server import RecordingServer
from desktop_app.sync import history as h
from desktop_app.sync.pipeline import CallDetails, RetryPolicy
from desktop_app.sync.transcripts import (
    AutoTranscriber,
    ClientTranscripts,
    PostRefused,
    TranscriptPoster,
    wants_transcript,
)
from desktop_app.testing import CRASH_ENV
from desktop_app.transcribe import Transcript, Utterance

FAST = RetryPolicy(base_s=0.01, cap_s=0.05, search_lag_s=0.05, in_flight_s=0.5, ready_evidence_wait_s=2.0,
                   transcript_first_check_s=0.05, transcript_cap_s=0.1, transcript_deadline_s=30)
SCOPES = ["crm.extensions_calling_transcripts.write", "crm.extensions_calling_transcripts.read",
          "crm.objects.contacts.read", "crm.objects.contacts.write", "crm.objects.owners.read", "oauth"]
WORDS = Transcript("en", (Utterance(2, 1200, 3000, "Hi Alice, my order is late."),
                          Utterance(1, 0, 1400, "Hello, this is Carol from Acme.")))
CORRECTED = Transcript("en", (Utterance(1, 0, 1400, "Hello, this is Carol from Acme."),
                              Utterance(2, 1200, 3000, "Hi Carol, my order is late.")))
UNPAID = "71000003"  # the sandbox's owner without a paid seat


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    rt = Runtime(settings_mod.Settings(), sandbox=True, policy=FAST)
    rt.start()
    yield rt
    rt.stop()


def oauth_token(sb: Sandbox) -> str:
    token = sb.issue_token(SCOPES)
    assert isinstance(token, str)
    return token


@pytest.fixture
def poster(runtime: Runtime) -> Iterator[TranscriptPoster]:
    assert runtime.config is not None
    config = dataclasses.replace(runtime.config, access_token=oauth_token(runtime.sandbox))
    with HubSpotClient(config, limiter=RateLimiter()) as client:
        yield TranscriptPoster(runtime.history, ClientTranscripts(client), FAST, sleep=lambda s: None)


def not_transcribed(rt: Runtime, tmp_path: Path, *, seed: int = 0) -> h.Submission:
    contact = str(rt.sandbox.contacts()[0]["id"])
    sid = rt.submit(write_call(tmp_path / f"c{seed}.wav", seed=seed), CallDetails(
        title="Late order", duration_ms=3000, owner_id=UNPAID, contact_id=contact, direction="OUTBOUND"))
    sub = rt.run_submission(sid)
    assert sub.status == h.READY and sub.call_id, sub.error
    rt.sandbox.wait_for_fetch(sub.call_id, timeout=30)
    out = rt.check_transcript(sid).submission
    assert out.status == h.NOT_TRANSCRIBED and "paid Sales Hub or Service Hub seat" in (out.error or "")
    return out


def of_call(sb: Sandbox, call_id: str | None) -> list[dict[str, object]]:
    return [t for t in sb.transcripts() if str(t["engagementId"]) == str(call_id)]


def test_a_not_transcribed_call_gets_its_transcript_posted_once(runtime: Runtime, poster: TranscriptPoster,
                                                                tmp_path: Path) -> None:
    sub = not_transcribed(runtime, tmp_path)
    assert wants_transcript(sub, "not-transcribed") and not wants_transcript(sub, "never")
    posted = poster.post(sub.id, WORDS)
    assert posted.transcript_id and not posted.adopted and posted.error is None
    [stored] = of_call(runtime.sandbox, sub.call_id)
    assert stored["id"] == posted.transcript_id and stored["transcriptSource"] == "INTEGRATOR_GENERATED"
    contact = sub.details["contact_id"]
    # time order; an OUTBOUND call: the agent (the owner) is the caller on channel 1, the contact on channel 2
    assert [(u["speaker"]["id"], u["text"], u["startTimeMillis"], u["languageCode"])  # type: ignore[index]
            for u in stored["transcriptUtterances"]] == [  # type: ignore[attr-defined]
        (UNPAID, "Hello, this is Carol from Acme.", 0, "en"), (contact, "Hi Alice, my order is late.", 1200, "en")]
    person = runtime.sandbox.contacts()[0]["properties"]
    assert [(u["speaker"]["name"], u["speaker"].get("email"))  # type: ignore[index]
            for u in stored["transcriptUtterances"]] == [  # type: ignore[attr-defined]
        ("Carol Viewer", "carol.viewer@example.com"),
        (f"{person['firstname']} {person['lastname']}", person["email"])]
    assert runtime.sandbox.call_transcript(str(sub.call_id))["id"] == posted.transcript_id  # type: ignore[index]
    after = runtime.history.get(sub.id)
    assert after is not None
    assert after.status == h.TRANSCRIBED and after.transcript_source == h.SOURCE_CALLRELAY
    assert after.transcript_id == posted.transcript_id and after.state == "transcript_posted"
    step = after.steps[-1]
    assert (step.step, step.outcome, step.message) == ("transcript_posted", h.OK, f"transcript {posted.transcript_id}")
    assert after.to_dict()["transcript_source"] == "callrelay"
    assert not wants_transcript(after, "always")
    with pytest.raises(PostRefused, match="already has a transcript"):
        poster.post(sub.id, WORDS)
    assert len(of_call(runtime.sandbox, sub.call_id)) == 1


def test_a_call_not_logged_or_failed_is_refused_in_one_sentence(runtime: Runtime, poster: TranscriptPoster,
                                                                tmp_path: Path) -> None:
    sid = runtime.submit(write_call(tmp_path / "q.wav"), CallDetails(title="x", duration_ms=3000))
    with pytest.raises(PostRefused, match="has no HubSpot call yet"):
        poster.post(sid, WORDS)
    sub = not_transcribed(runtime, tmp_path, seed=7)
    runtime.history.update(sub.id, status=h.FAILED, error="something else failed")
    with pytest.raises(PostRefused, match="is failed; its transcript can be posted once"):
        poster.post(sub.id, WORDS)
    with pytest.raises(PostRefused, match="There is no submission 999"):
        poster.post(999, WORDS)
    assert runtime.sandbox.transcripts() == []
    assert [s.step for s in runtime.history.steps(sub.id) if s.step.startswith("transcript_")] == []


def test_hubspots_own_transcript_is_recorded_as_hubspots(runtime: Runtime, poster: TranscriptPoster,
                                                         tmp_path: Path) -> None:
    sid = runtime.submit(write_call(tmp_path / "p.wav"), CallDetails(title="x", duration_ms=3000, owner_id="71000001"))
    sub = runtime.run_submission(sid)
    runtime.sandbox.wait_for_fetch(str(sub.call_id), timeout=30)
    done = runtime.check_transcript(sid).submission
    assert done.status == h.TRANSCRIBED and done.transcribed_by == h.SOURCE_HUBSPOT
    assert done.to_dict()["transcript_source"] == "hubspot"
    assert not wants_transcript(done, "always")
    with pytest.raises(PostRefused, match="HubSpot already transcribed"):
        poster.post(sid, WORDS)
    assert [t["transcriptSource"] for t in of_call(runtime.sandbox, sub.call_id)] == ["HUBSPOT_GENERATED"]


def test_a_lost_answer_is_looked_for_not_posted_twice(runtime: Runtime, poster: TranscriptPoster,
                                                      tmp_path: Path) -> None:
    sub = not_transcribed(runtime, tmp_path)
    runtime.sandbox.faults.add_spec("transcripts.create:lost")
    posted = poster.post(sub.id, WORDS)
    assert posted.adopted and posted.transcript_id
    assert [t["id"] for t in of_call(runtime.sandbox, sub.call_id)] == [posted.transcript_id]
    steps = [(s.step, s.outcome) for s in runtime.history.steps(sub.id) if s.step == "transcript_posted"]
    assert steps == [("transcript_posted", h.RETRY), ("transcript_posted", h.ADOPTED)]


def test_a_correction_deletes_and_posts_again_and_the_history_keeps_both(runtime: Runtime, poster: TranscriptPoster,
                                                                         tmp_path: Path) -> None:
    sub = not_transcribed(runtime, tmp_path)
    first = poster.post(sub.id, WORDS).transcript_id
    second = poster.post(sub.id, CORRECTED, replace=True).transcript_id
    assert first and second and first != second
    [stored] = of_call(runtime.sandbox, sub.call_id)
    assert stored["id"] == second
    assert "Hi Carol" in str(stored["transcriptUtterances"])
    steps = [(s.step, s.outcome, s.message) for s in runtime.history.steps(sub.id) if s.step.startswith("transcript_")]
    assert steps == [("transcript_posted", h.OK, f"transcript {first}"),
                     ("transcript_deleted", h.OK, f"transcript {first}"),
                     ("transcript_posted", h.OK, f"transcript {second}")]
    after = runtime.history.get(sub.id)
    assert after is not None and after.transcript_id == second and after.status == h.TRANSCRIBED


def test_the_desk_transcribes_one_at_a_time_and_posts(runtime: Runtime, poster: TranscriptPoster,
                                                      tmp_path: Path) -> None:
    import threading

    subs = [not_transcribed(runtime, tmp_path, seed=i) for i in range(2)]
    busy, most, lock = [0], [0], threading.Lock()
    threads: set[str] = set()

    def transcribe(path: Path) -> Transcript:
        with lock:
            busy[0] += 1
            most[0] = max(most[0], busy[0])
            threads.add(threading.current_thread().name)
        threading.Event().wait(0.2)
        with lock:
            busy[0] -= 1
        assert path.exists()
        return WORDS

    auto = AutoTranscriber(poster, transcribe, lambda: "not-transcribed")
    try:
        assert all(auto.offer(s) for s in subs)
        assert not auto.offer(subs[0])  # already queued
        deadline = __import__("time").monotonic() + 60
        while any(runtime.history.get(s.id).status != h.TRANSCRIBED for s in subs):  # type: ignore[union-attr]
            assert __import__("time").monotonic() < deadline
            threading.Event().wait(0.05)
    finally:
        auto.stop()
    assert most[0] == 1 and threads == {"callrelay-transcriber"}
    for s in subs:
        assert len(of_call(runtime.sandbox, s.call_id)) == 1


def test_the_desk_follows_the_runtime_and_takes_what_an_earlier_run_left(runtime: Runtime, tmp_path: Path) -> None:
    import threading
    import time

    from desktop_app.sync import transcripts

    left = not_transcribed(runtime, tmp_path, seed=11)  # a run killed while transcribing it posted nothing
    assert transcripts.when_setting(runtime.settings) in transcripts.WHEN_CHOICES
    seen: list[str] = []
    assert runtime.config is not None
    config = dataclasses.replace(runtime.config, access_token=oauth_token(runtime.sandbox))
    with HubSpotClient(config, limiter=RateLimiter()) as client:
        auto = transcripts.start_for(runtime, client=client, when=lambda: "not-transcribed",
                                     transcribe=lambda path: seen.append(threading.current_thread().name) or WORDS)
        try:
            fresh = not_transcribed(runtime, tmp_path, seed=12)  # reaches not-transcribed while it runs
            deadline = time.monotonic() + 60
            while any(runtime.history.get(s.id).status != h.TRANSCRIBED  # type: ignore[union-attr]
                      for s in (left, fresh)):
                assert time.monotonic() < deadline, [runtime.history.get(s.id) for s in (left, fresh)]
                time.sleep(0.05)
        finally:
            auto.stop()
    assert seen == ["callrelay-transcriber"] * 2
    for s in (left, fresh):
        assert len(of_call(runtime.sandbox, s.call_id)) == 1


POST = ("import argparse, sys\n"
        "from desktop_app.sync.transcripts import post_from_command\n"
        "sys.exit(post_from_command(argparse.Namespace(target=sys.argv[1], from_file=sys.argv[2], json=True,"
        " replace=False)))\n")


def post_in_subprocess(env: dict[str, str], target: str, words: Path,
                       crash: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**env, CRASH_ENV: crash} if crash else env
    return subprocess.run([sys.executable, "-c", POST, target, str(words)], env=env, capture_output=True, text=True,
                          timeout=180)


@pytest.mark.parametrize("boundary", ["transcript_posted:before", "transcript_posted:after"])
def test_killed_while_posting_leaves_exactly_one_transcript(
        world: tuple[Sandbox, RecordingServer, dict[str, str]], tmp_path: Path, boundary: str) -> None:
    sb, _server, env = world
    contact = str(sb.contacts()[0]["id"])
    rec = write_call(tmp_path / "call.wav", seed=3)
    up = callrelay(env, "upload", str(rec), "--contact", contact, "--owner", UNPAID, "--direction", "INBOUND")
    assert up.returncode == 0, (up.stdout, up.stderr)
    [sub] = history(env)
    sb.wait_for_fetch(str(sub["call_id"]), timeout=30)
    resumed = callrelay(env, "resume")
    assert resumed.returncode == 0, resumed.stderr
    [sub] = history(env)
    assert sub["status"] == "not-transcribed", sub
    words = tmp_path / "words.jsonl"  # `callrelay transcribe --json`'s form: one utterance a line
    words.write_text("".join(json.dumps({**u.to_dict(), "language": "en"}) + "\n" for u in WORDS.utterances))
    poster_env = {**env, "HUBSPOT_ACCESS_TOKEN": oauth_token(sb)}

    killed = post_in_subprocess(poster_env, str(rec), words, crash=boundary)  # the FILE: found by its SHA-256
    assert killed.returncode == 137, (killed.stdout, killed.stderr)
    [sub] = history(env)
    assert sub["status"] == "not-transcribed"
    assert [s["outcome"] for s in sub["steps"] if s["step"] == "transcript_posted"] == ["started"]  # type: ignore[union-attr,index]

    rerun = post_in_subprocess(poster_env, str(sub["id"]), words)
    assert rerun.returncode == 0, (rerun.stdout, rerun.stderr)
    said = json.loads(rerun.stdout)
    stored = of_call(sb, sub["call_id"])
    assert [t["id"] for t in stored] == [said["transcript_id"]], stored
    assert said["adopted"] is (boundary.endswith("after"))
    [sub] = history(env)
    assert sub["status"] == "transcribed" and sub["transcript_source"] == "callrelay"
    assert sub["transcript_id"] == said["transcript_id"]
    # an INBOUND call: the contact called (channel 1), the agent answered (channel 2)
    assert [u["speaker"]["id"] for u in stored[0]["transcriptUtterances"]] == [contact, UNPAID]  # type: ignore[attr-defined,index]

    again = post_in_subprocess(poster_env, str(rec), words)
    assert again.returncode == 1 and "already has a transcript" in again.stderr
    assert len(of_call(sb, sub["call_id"])) == 1


def test_a_private_app_token_is_told_to_use_oauth_and_nothing_changes(
        world: tuple[Sandbox, RecordingServer, dict[str, str]], tmp_path: Path) -> None:
    sb, _server, env = world
    rec = write_call(tmp_path / "call.wav", seed=4)
    assert callrelay(env, "upload", str(rec), "--owner", UNPAID).returncode == 0
    [sub] = history(env)
    words = tmp_path / "words.json"
    words.write_text(json.dumps(WORDS.to_dict()))
    out = post_in_subprocess(env, str(sub["id"]), words)
    assert out.returncode == 1
    assert "OAuth" in out.stderr and "private-app token cannot hold" in out.stderr and "Traceback" not in out.stderr
    assert sb.transcripts() == []
    damaged = tmp_path / "damaged.json"
    damaged.write_text("{not json")
    bad = post_in_subprocess({**env, "HUBSPOT_ACCESS_TOKEN": oauth_token(sb)}, str(sub["id"]), damaged)
    assert bad.returncode == 2 and "is not a transcript Call Relay can read" in bad.stderr
    assert "Traceback" not in bad.stderr and sb.transcripts() == []


def test_speakers_by_direction_and_times_hubspot_takes() -> None:
    from desktop_app.sync.transcripts import utterances_for

    def sub(direction: str) -> h.Submission:
        return h.Submission(1, "", "", "ann", "/r.wav", "r.wav", None, "callrelay-x", {
            "direction": direction, "owner_id": "71000001", "contact_id": "51"}, "not_transcribed",
            h.NOT_TRANSCRIBED, "9001", "1", "51", "71000001", None, None, None, None, None, 0)

    words = Transcript("de", (Utterance(2, 500, 500, "Hm."), Utterance(1, -20, 400, " Guten Tag. "),
                              Utterance(2, 450, 900, "   ")))
    people = {"owner:71000001": ("Alice Agent", "alice.agent@example.com"), "contact:51": ("Jane Doe", "")}
    out = utterances_for(sub("OUTBOUND"), words, people)
    assert [(u.speaker_id, u.speaker_name, u.speaker_email, u.text, u.start_ms, u.end_ms, u.language) for u in out] == [
        ("71000001", "Alice Agent", "alice.agent@example.com", "Guten Tag.", 0, 400, "de"),
        ("51", "Jane Doe", "", "Hm.", 500, 501, "de")]  # blank text left out; a zero-length word gets 1 ms
    assert [u.speaker_id for u in utterances_for(sub("INBOUND"), words, people)] == ["51", "71000001"]
    assert [u.speaker_name for u in utterances_for(sub(""), words, people)] == ["Caller", "Recipient"]
    with pytest.raises(PostRefused, match="channel 3"):
        utterances_for(sub("INBOUND"), Transcript("en", (Utterance(3, 0, 10, "x"),)))
    with pytest.raises(PostRefused, match="no words"):
        utterances_for(sub("INBOUND"), Transcript("en", (Utterance(1, 0, 10, " "),)))


def test_with_json_after_the_utterances_the_posting_is_said_on_stderr(
        world: tuple[Sandbox, RecordingServer, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from desktop_app.sync.transcripts import post_from_command

    sb, _server, env = world
    rec = write_call(tmp_path / "call.wav", seed=5)
    assert callrelay(env, "upload", str(rec), "--owner", UNPAID).returncode == 0
    for name, value in {**sb.env(), "HUBSPOT_ACCESS_TOKEN": oauth_token(sb)}.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    code = post_from_command(argparse.Namespace(target=str(rec), json=True, transcript=WORDS, replace=False))
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out == ""  # `callrelay transcribe --json` printed the utterances there: one a line, nothing else
    [stored] = sb.transcripts()
    assert f"transcript posted as {stored['id']}" in err
