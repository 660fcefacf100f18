"""``callrelay upload`` of a folder with a manifest, as a user runs it."""

from __future__ import annotations

import csv
from pathlib import Path

from sync_helpers import callrelay, history, write_call

from desktop_app.sandbox import Sandbox
from desktop_app.server import RecordingServer


def test_a_folder_with_a_manifest_becomes_one_call_each(
        world: tuple[Sandbox, RecordingServer, dict[str, str]], tmp_path: Path) -> None:
    sb, _server, env = world
    folder = tmp_path / "calls"
    folder.mkdir()
    contacts = [str(c["id"]) for c in sb.contacts()]
    rows = []
    for n in range(4):
        write_call(folder / f"call{n}.wav", seconds=1.0, seed=n)
        rows.append({"file": f"call{n}.wav", "title": f"Manifest call {n}", "from": f"+1 617 555 01{n:02d}",
                     "to": "(617) 555-0199", "contact": contacts[n], "direction": "INBOUND", "notes": f"note {n}"})
    (folder / "readme.txt").write_text("not a recording")
    manifest = tmp_path / "calls.csv"
    with open(manifest, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    out = callrelay(env, "upload", "--folder", str(folder), "--manifest", str(manifest))
    assert out.returncode == 0, (out.stdout, out.stderr)
    progress = [line for line in out.stdout.splitlines() if line.startswith("[")]
    assert len(progress) == 4 and progress[-1].startswith("[4/4]")
    subs = {s["recording"]: s for s in history(env)}
    assert sorted(subs) == [f"call{n}.wav" for n in range(4)]
    for n in range(4):
        sub = subs[f"call{n}.wav"]
        assert sub["status"] == "ready"
        [call] = [c for c in sb.calls() if c["properties"].get("hs_call_external_id") == sub["external_id"]]
        props = call["properties"]
        assert props["hs_call_title"] == f"Manifest call {n}" and props["hs_call_body"] == f"note {n}"
        assert props["hs_call_from_number"] == f"+161755501{n:02d}"  # stored as E.164
        assert props["hs_call_to_number"] == "+16175550199"
        assert props["hs_call_direction"] == "INBOUND"
        assert ("calls", sub["call_id"], "contacts", contacts[n]) in [
            (a["fromType"], a["fromId"], a["toType"], a["toId"]) for a in sb.associations()]
    paths = [(r.method, r.path) for r in sb.requests]
    assert paths.count(("POST", "/crm/v3/objects/calls/batch/create")) == 1


def test_a_bad_file_is_refused_with_a_reason_and_nothing_is_sent(
        world: tuple[Sandbox, RecordingServer, dict[str, str]], tmp_path: Path) -> None:
    sb, _server, env = world
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    out = callrelay(env, "upload", str(bad))
    assert out.returncode == 1
    assert "broken.wav: refused:" in out.stderr
    assert sb.calls() == [] and history(env) == []
    usage = callrelay(env, "upload")
    assert usage.returncode == 2
