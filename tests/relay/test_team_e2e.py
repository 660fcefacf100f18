"""End to end on a joined desk (issue 17): ``callrelay upload --wait`` sends the recording to a relay that runs
the pipeline with the sandbox's credentials (real relay subprocess, PostgreSQL, SeaweedFS, the sandbox), and
waits until the relay logged the call: ``ready`` (or transcribed), one call in the sandbox for the external
id the desk's outbox made, and ``callrelay history --json`` on the desk shows it with its call."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from services import Seaweed
from test_relay_pipeline import PAID, call_wav, calls_per_external_id
from test_relay_pipeline import start_relay as start_pipeline_relay
from test_relay_service import callrelay
from test_team_desk import join

from desktop_app.sandbox.server import Sandbox


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    sb = Sandbox(port=0, search_lag_s=0.5, fetch_chunk=16 * 1024).start()
    try:
        yield sb
    finally:
        sb.stop()


def test_upload_wait_on_a_joined_desk_reaches_ready_through_the_relays_pipeline(
        sandbox: Sandbox, database_url: str, seaweed: Seaweed, bucket: str, tmp_path: Path) -> None:
    relay = start_pipeline_relay(sandbox, database_url, seaweed, bucket, tmp_path / "relay.log")
    try:
        home = tmp_path / "desk"
        env = join(relay, database_url, "Ana Silva", home)
        contact = str(sandbox.contacts()[0]["id"])
        rec = call_wav(tmp_path / "renewal.wav", 7, seconds=3)
        out = callrelay("upload", str(rec), "--title", "Renewal", "--owner", PAID, "--contact", contact,
                        "--direction", "OUTBOUND", "--wait", "--wait-timeout", "120", env=env)
        print(out.stdout, out.stderr)
        assert out.returncode == 0, out.stdout + out.stderr + relay.log[-3000:]
        with sqlite3.connect(home / "team-outbox.sqlite3") as db:
            [(external_id, state)] = list(db.execute("SELECT external_id, state FROM outbox"))
        assert state == "sent"
        assert calls_per_external_id(sandbox) == Counter({external_id: 1})  # one call, the desk's external id
        call = next(c for c in sandbox.calls() if c["properties"]["hs_call_external_id"] == external_id)
        assert call["properties"]["hs_call_title"] == "Renewal"
        assert call["properties"]["hubspot_owner_id"] == PAID
        assert call["properties"]["hs_call_direction"] == "OUTBOUND"
        last = [line for line in out.stdout.splitlines() if line.startswith("[1/1]")][-1]
        assert last.startswith(("[1/1] renewal.wav: ready, call ", "[1/1] renewal.wav: transcribed, call ")), last
        assert f"call {call['id']}  https://app.hubspot.com/contacts/" in last

        history = callrelay("history", "--json", env=env)
        [sub] = [json.loads(line) for line in history.stdout.splitlines()]
        assert (sub["external_id"], sub["agent"], sub["call_id"]) == (external_id, "Ana Silva", str(call["id"]))
        assert sub["status"] in ("ready", "transcribed")
    finally:
        relay.stop()
