"""`callrelay transcribe SUBMISSION|FILE [--post] [--json]`, run as the user runs it: a real subprocess, the
real model, real espeak-ng speech, the real history in the test's data directory."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from desktop_app.sync import history as h
from tests.audio import gen
from tests.conftest import ROOT
from tests.transcribe.conftest import SPEECH_RATE, Call, two_speaker_call, word_error_rate, write_call

LINES = [(1, "Hello, I would like to change my address please."), (2, "Of course, what is the new street name?")]


def callrelay(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "desktop_app", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=600)


@pytest.fixture(scope="module")
def call(tmp_path_factory: pytest.TempPathFactory) -> Call:
    folder = tmp_path_factory.mktemp("cli")
    x, turns = two_speaker_call(folder, LINES)
    return write_call(folder, x, turns, "mulaw8k")


def test_prints_time_speaker_and_text_lines(call: Call, whisper_model: Path) -> None:
    out = callrelay("transcribe", str(call.path), "--model", str(whisper_model))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 2
    for line, turn, side in zip(lines, call.turns, ("caller", "recipient"), strict=True):
        m = re.fullmatch(r"\[(\d\d):(\d\d)\] (caller|recipient): (.+)", line)
        assert m, line
        assert m.group(3) == side
        assert abs(int(m.group(1)) * 60 + int(m.group(2)) - turn.start_s) <= 1.5  # whole seconds shown
        assert word_error_rate(turn.text, m.group(4)) <= 0.2
    assert "transcribing" not in out.stderr  # a short call shows no progress


def test_json_is_one_utterance_a_line(call: Call, whisper_model: Path) -> None:
    out = callrelay("transcribe", str(call.path), "--json", "--model", str(whisper_model))
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [set(r) for r in rows] == [{"speaker", "channel", "start_ms", "end_ms", "text"}] * 2
    assert [(r["speaker"], r["channel"]) for r in rows] == [("caller", 1), ("recipient", 2)]
    assert all(r["start_ms"] < r["end_ms"] for r in rows) and rows[0]["start_ms"] < rows[1]["start_ms"]


def test_a_submission_id_reads_its_recording_and_names_the_speakers(call: Call, whisper_model: Path,
                                                                     callrelay_home: Path) -> None:
    with h.History() as hist:
        sid = hist.add_submission(recording_path=str(call.path), recording_name=call.path.name, external_id="e-1",
                                  details={"direction": "OUTBOUND", "contact_id": "501"}, agent="Dana",
                                  state="checked")
        hist.set_labels("contact", [("501", "Sam Ortiz")])
        other = hist.add_submission(recording_path=str(call.path.parent / "gone.wav"), recording_name="gone.wav",
                                    external_id="e-2", details={}, agent="Dana", state="checked")
    settings = callrelay_home / "settings.json"
    settings.write_text(json.dumps({"transcribe.model_dir": str(whisper_model)}))
    out = callrelay("transcribe", str(sid), "--json")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(r["speaker"], r["channel"]) for r in rows] == [("Dana", 1), ("Sam Ortiz", 2)]

    gone = callrelay("transcribe", str(other))
    assert gone.returncode == 1 and gone.stdout == ""
    assert gone.stderr.strip() == (f"callrelay transcribe: The recording of submission {other} is no longer at "
                                   f"{call.path.parent / 'gone.wav'}: transcribe the file itself if it was moved.")
    missing = callrelay("transcribe", "999")
    assert missing.returncode == 1 and "no submission 999" in missing.stderr and "Traceback" not in missing.stderr


def test_bad_input_is_one_sentence(tmp_path: Path, call: Call, whisper_model: Path) -> None:
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio at all" * 10)
    for args in (["transcribe", str(junk), "--model", str(whisper_model)],
                 ["transcribe", str(call.path), "--model", str(tmp_path)],  # not a model folder
                 ["transcribe", "no-such-file.wav", "--model", str(whisper_model)]):
        out = callrelay(*args)
        assert out.returncode == 1, args
        assert out.stdout == "" and "Traceback" not in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1 and out.stderr.startswith("callrelay transcribe: ")


@pytest.mark.slow
def test_progress_on_stderr_and_ctrl_c_cancels_cleanly(tmp_path: Path, whisper_model: Path) -> None:
    lines = [(1 + i % 2, text) for i, text in enumerate(
        ["Good morning, I am calling about the delivery of my new kitchen table."] * 10)]
    x, turns = two_speaker_call(tmp_path, lines, overlap_s=-1.0)
    if x.shape[1] < 65 * SPEECH_RATE:
        x = np.concatenate([x, np.zeros((2, 65 * SPEECH_RATE - x.shape[1]), dtype=np.float32)], axis=1)
    path = gen.write_wav(tmp_path / "long.wav", x, rate=SPEECH_RATE)
    proc = subprocess.Popen([sys.executable, "-m", "desktop_app", "transcribe", str(path), "--model",
                             str(whisper_model)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    seen = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        seen.append(line)
        m = re.fullmatch(r"transcribing long\.wav: (\d+)%\n", line)
        if m and int(m.group(1)) >= 10:  # the model is at work: interrupt it
            break
        assert line, f"no progress shown: {seen}"
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert stdout == "" and "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == ("callrelay transcribe: The transcription was cancelled; "
                                               "nothing was kept.")
