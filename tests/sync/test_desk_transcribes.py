"""End to end with the real engine (issue 20): a call whose owner has no paid seat ends ``not-transcribed`` in the
sandbox; the desk (``transcribe.when = not-transcribed``, the runtime's worker) transcribes it with the real
Whisper model and posts it once. Killed (SIGKILL) while transcribing, it is transcribed again on the next start
and posted once. The desk runs as a real subprocess sharing the data directory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sync_helpers import callrelay, history

from desktop_app import paths
from desktop_app.sandbox import Sandbox
from desktop_app.server import RecordingServer
from tests.transcribe.conftest import Call, two_speaker_call, whisper_model, word_error_rate, write_call  # noqa: F401
from tests.transcribe.test_engine import LINES  # the engine's own call: caller and recipient taking turns

pytestmark = pytest.mark.slow

UNPAID = "71000003"  # the sandbox's owner without a paid seat
SCOPES = ["crm.extensions_calling_transcripts.write", "crm.extensions_calling_transcripts.read",
          "crm.objects.contacts.read", "crm.objects.contacts.write", "crm.objects.owners.read", "oauth"]

# The desk as the app runs it: the runtime (using this data directory's recording server) and its worker,
# until the submission is transcribed.
DESK = """
import logging, sys, time
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
from desktop_app.runtime import Runtime
from desktop_app.sync import history as h
rt = Runtime(own_server=False).start()
rt.start_worker(0.2)
sid = int(sys.argv[1])
deadline = time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    sub = rt.history.get(sid)
    if sub is not None and sub.status == h.TRANSCRIBED:
        break
    time.sleep(0.2)
rt.stop()
"""


def not_transcribed_call(sb: Sandbox, env: dict[str, str], tmp_path: Path) -> tuple[Call, str, dict[str, object]]:
    """The engine's spoken call (8 kHz µ-law, as call centres record) logged for the owner without a seat: it ends
    ``not-transcribed``. The call, its contact and its submission."""
    x, turns = two_speaker_call(tmp_path, LINES)
    call = write_call(tmp_path, x, turns, "mulaw8k")
    contact = str(sb.contacts()[0]["id"])
    up = callrelay(env, "upload", str(call.path), "--contact", contact, "--owner", UNPAID, "--direction", "INBOUND")
    assert up.returncode == 0, (up.stdout, up.stderr)
    [sub] = history(env)
    sb.wait_for_fetch(str(sub["call_id"]), timeout=30)
    assert callrelay(env, "resume").returncode == 0
    [sub] = history(env)
    assert sub["status"] == "not-transcribed" and "paid Sales Hub or Service Hub seat" in str(sub["error"])
    return call, contact, sub


def test_the_desk_transcribes_a_not_transcribed_call_and_posts_it_once_even_when_killed(
        world: tuple[Sandbox, RecordingServer, dict[str, str]], tmp_path: Path,
        whisper_model: Path) -> None:  # noqa: F811 - the fixture imported above
    sb, _server, env = world
    call, contact, sub = not_transcribed_call(sb, env, tmp_path)
    turns = call.turns

    paths.settings_file().write_text(json.dumps({"transcribe.when": "not-transcribed",
                                         "transcribe.model_dir": str(whisper_model)}))
    token = sb.issue_token(SCOPES)
    assert isinstance(token, str)
    desk_env = {**env, "HUBSPOT_ACCESS_TOKEN": token, "HF_HUB_OFFLINE": "1"}

    # killed while transcribing: its log says so first, and nothing has been posted when it dies
    desk = subprocess.Popen([sys.executable, "-c", DESK, str(sub["id"]), "120"], env=desk_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert desk.stderr is not None
    seen = []
    deadline = time.monotonic() + 120
    for line in desk.stderr:
        seen.append(line)
        if "transcribing" in line:
            break
        assert time.monotonic() < deadline, seen
    assert any("transcribing" in line for line in seen), "".join(seen)
    os.kill(desk.pid, signal.SIGKILL)
    desk.wait(timeout=30)
    assert sb.transcripts() == [], "the kill came before the post"
    [sub] = history(env)
    assert sub["status"] == "not-transcribed"

    # the next start transcribes it again and posts it once
    rerun = subprocess.run([sys.executable, "-c", DESK, str(sub["id"]), "300"], env=desk_env, capture_output=True, text=True,
                           timeout=400)
    assert rerun.returncode == 0, rerun.stderr
    [sub] = history(env)
    assert sub["status"] == "transcribed" and sub["transcript_source"] == "callrelay", sub
    [stored] = [t for t in sb.transcripts() if str(t["engagementId"]) == str(sub["call_id"])]
    assert stored["id"] == sub["transcript_id"] and stored["transcriptSource"] == "INTEGRATOR_GENERATED"
    utterances = stored["transcriptUtterances"]
    # an INBOUND call: the contact called (channel 1), the agent (the owner) answered (channel 2)
    assert [u["speaker"]["id"] for u in utterances] == [contact if t.channel == 1 else UNPAID for t in turns]
    for speaker, channel in ((contact, 1), (UNPAID, 2)):
        said = " ".join(u["text"] for u in utterances if u["speaker"]["id"] == speaker)
        wer = word_error_rate(call.spoken(channel), said)
        print(f"channel {channel}: WER {wer:.1%} ({said!r})")
        assert wer <= 0.10
    assert [s["step"] for s in sub["steps"]].count("transcript_posted") == 1  # type: ignore[union-attr]


def test_callrelay_transcribe_post_posts_once_and_a_correction_replaces_it(
        world: tuple[Sandbox, RecordingServer, dict[str, str]], tmp_path: Path,
        whisper_model: Path) -> None:  # noqa: F811 - the fixture imported above
    sb, _server, env = world
    call, contact, sub = not_transcribed_call(sb, env, tmp_path)
    token = sb.issue_token(SCOPES)
    assert isinstance(token, str)
    tx_env = {**env, "HUBSPOT_ACCESS_TOKEN": token, "HF_HUB_OFFLINE": "1"}
    model = ("--model", str(whisper_model))

    done = callrelay(tx_env, "transcribe", str(call.path), "--post", "--json", *model)  # the FILE, by its SHA-256
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines and all(set(u) == {"speaker", "channel", "start_ms", "end_ms", "text"} for u in lines)
    [first] = sb.transcripts()
    assert f"transcript posted as {first['id']}" in done.stderr
    [sub] = history(env)
    assert (sub["status"], sub["transcript_source"], sub["transcript_id"]) == ("transcribed", "callrelay", first["id"])

    again = callrelay(tx_env, "transcribe", str(sub["id"]), "--post", *model)
    assert again.returncode == 1 and "already has a transcript" in again.stderr and "Traceback" not in again.stderr
    assert [t["id"] for t in sb.transcripts()] == [first["id"]]

    corrected = tmp_path / "corrected.jsonl"  # the agent's correction of the printed lines
    corrected.write_text(done.stdout.replace("kitchen table", "kitchen chairs"))
    fixed = callrelay(tx_env, "transcribe", str(sub["id"]), "--post", "--replace", "--from", str(corrected))
    assert fixed.returncode == 0, fixed.stderr
    [second] = sb.transcripts()
    assert second["id"] != first["id"] and "kitchen chairs" in json.dumps(second["transcriptUtterances"])
    [sub] = history(env)
    steps = [(s["step"], s["outcome"], s["message"]) for s in sub["steps"]  # type: ignore[union-attr]
             if s["step"].startswith("transcript_")]  # type: ignore[index]
    assert steps == [("transcript_posted", "ok", f"transcript {first['id']}"),
                     ("transcript_deleted", "ok", f"transcript {first['id']}"),
                     ("transcript_posted", "ok", f"transcript {second['id']}")]
    assert sub["transcript_id"] == second["id"]
