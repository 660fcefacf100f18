"""What ``callrelay upload`` refuses, and that a refusal never ends a batch nor leaves a call behind.

An unknown contact is refused before anything is created (no call without its contact); a file whose
inspection fails is refused with one sentence and the rest of the batch goes on.
"""

from __future__ import annotations

import csv
import struct
from pathlib import Path

import pytest
from sync_helpers import callrelay, history, write_call

from desktop_app import audio
from desktop_app.cli import main
from desktop_app.sandbox import Sandbox
from desktop_app.server import RecordingServer

World = tuple[Sandbox, RecordingServer, dict[str, str]]


def links(sb: Sandbox) -> set[tuple[str, str]]:
    return {(a["fromId"], a["toId"]) for a in sb.associations() if (a["fromType"], a["toType"]) == ("calls", "contacts")}


@pytest.mark.parametrize("unknown", ["99999999", "nobody@example.invalid", "+1 617 555 0000", "Jane Doe"])
def test_an_unknown_contact_is_refused_before_anything_is_created(world: World, tmp_path: Path, unknown: str) -> None:
    sb, _server, env = world
    rec = write_call(tmp_path / "call.wav")
    out = callrelay(env, "upload", str(rec), "--contact", unknown)
    assert out.returncode == 1, (out.stdout, out.stderr)
    [line] = out.stderr.strip().splitlines()  # one sentence, naming the contact
    assert repr(unknown) in line and "Traceback" not in line, line
    assert sb.calls() == [] and history(env) == []

    # uploading again with the right contact makes the one call, associated
    contact = str(sb.contacts()[0]["id"])
    right = callrelay(env, "upload", str(rec), "--contact", contact)
    assert right.returncode == 0, (right.stdout, right.stderr)
    [call] = sb.calls()
    assert links(sb) == {(str(call["id"]), contact)}


def test_a_manifest_row_with_an_unknown_contact_is_refused_and_the_rest_go_on(world: World, tmp_path: Path) -> None:
    sb, _server, env = world
    folder = tmp_path / "calls"
    folder.mkdir()
    known = [str(c["id"]) for c in sb.contacts()[:2]]
    contacts = {"call0.wav": known[0], "call1.wav": "99999999", "call2.wav": known[1],
                "call3.wav": "nobody@example.invalid"}
    for n, name in enumerate(contacts):
        write_call(folder / name, seed=n)
    manifest = tmp_path / "calls.csv"
    with open(manifest, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "contact"])
        writer.writerows(contacts.items())

    out = callrelay(env, "upload", "--folder", str(folder), "--manifest", str(manifest))
    assert out.returncode == 1, (out.stdout, out.stderr)
    refusals = [line for line in out.stderr.splitlines() if ": refused: " in line]
    assert len(refusals) == 2
    assert any("call1.wav" in r and "'99999999'" in r for r in refusals)
    assert any("call3.wav" in r and "'nobody@example.invalid'" in r for r in refusals)
    subs = {s["recording"]: s for s in history(env)}
    assert sorted(subs) == ["call0.wav", "call2.wav"] and {s["status"] for s in subs.values()} == {"ready"}
    assert len(sb.calls()) == 2
    assert links(sb) == {(str(subs["call0.wav"]["call_id"]), known[0]), (str(subs["call2.wav"]["call_id"]), known[1])}


def test_one_contact_for_a_folder_is_looked_up_once(world: World, tmp_path: Path) -> None:
    sb, _server, env = world
    folder = tmp_path / "calls"
    folder.mkdir()
    for n in range(3):
        write_call(folder / f"call{n}.wav", seconds=1.0, seed=n)
    email = next(str(c["properties"]["email"]) for c in sb.contacts() if c["properties"].get("email"))
    out = callrelay(env, "upload", "--folder", str(folder), "--contact", email)
    assert out.returncode == 0, (out.stdout, out.stderr)
    assert len(sb.requests_for("contacts.search")) == 1
    assert len(links(sb)) == 3


def damaged_wav(path: Path, format_tag: int = 0) -> Path:
    """A stereo 16-bit WAV whose fmt chunk names format ``format_tag`` (0: none, which no decoder knows)."""
    data = bytes(8000 * 4)
    fmt = struct.pack("<HHIIHH", format_tag, 2, 8000, 8000 * 4, 4, 16)
    body = b"WAVEfmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def test_a_damaged_wav_is_refused_and_the_batch_goes_on(world: World, tmp_path: Path) -> None:
    sb, _server, env = world
    folder = tmp_path / "calls"
    folder.mkdir()
    for n in range(3):
        write_call(folder / f"call{n}.wav", seed=n)
    damaged_wav(folder / "damaged.wav")
    out = callrelay(env, "upload", "--folder", str(folder))
    assert out.returncode == 1, (out.stdout, out.stderr)
    assert "Traceback" not in out.stderr
    [refusal] = [line for line in out.stderr.splitlines() if ": refused: " in line]
    assert refusal.startswith(f"{folder / 'damaged.wav'}: refused: ")
    assert sorted(s["recording"] for s in history(env) if s["status"] == "ready") == [f"call{n}.wav" for n in range(3)]
    assert len(sb.calls()) == 3


def test_a_file_whose_inspection_raises_is_refused_in_one_sentence_and_the_batch_goes_on(
        world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    sb, _server, env = world
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    folder = tmp_path / "calls"
    folder.mkdir()
    for n in range(3):
        write_call(folder / f"call{n}.wav", seed=n)
    inspect = audio.inspect

    def failing(path: str | Path, **kwargs: object) -> audio.Inspection:
        if Path(path).name == "call1.wav":
            raise AttributeError("'NoneType' object has no attribute 'sample_rate'")
        return inspect(path, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(audio, "inspect", failing)
    assert main(["upload", "--folder", str(folder)]) == 1
    out, err = capsys.readouterr()
    [refusal] = [line for line in err.splitlines() if ": refused: " in line]
    assert refusal == (f"{folder / 'call1.wav'}: refused: It could not be inspected, so it was not sent "
                       "('NoneType' object has no attribute 'sample_rate').")
    assert out.count(": ready, call ") == 2 and len(sb.calls()) == 2


@pytest.mark.parametrize("when", ["yesterday", "2026-13-45T10:00:00"])
def test_a_start_time_that_is_not_a_date_is_refused_before_anything_is_created(world: World, tmp_path: Path,
                                                                                 when: str) -> None:
    sb, _server, env = world
    rec = write_call(tmp_path / "call.wav")
    out = callrelay(env, "upload", str(rec), "--timestamp", when)
    assert out.returncode == 1, (out.stdout, out.stderr)
    [line] = out.stderr.strip().splitlines()  # one sentence, naming the value and the form wanted
    assert repr(when) in line and "ISO 8601" in line and "Traceback" not in line, line
    assert sb.calls() == [] and history(env) == []
    right = callrelay(env, "upload", str(rec), "--timestamp", "2026-11-20T10:00:00+01:00")
    assert right.returncode == 0, (right.stdout, right.stderr)
    [call] = sb.calls()
    assert call["properties"]["hs_timestamp"].startswith("2026-11-20T09:00:00"), call["properties"]
