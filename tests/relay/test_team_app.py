"""The app on a desk that joined a team (issue 17): the runtime starts the team's parts only (no HubSpot
secret on the desk), Upload & Log sends the recording to the relay through the same core as ``callrelay
upload`` (on a worker thread, progress shown), the background loop sends what the outbox kept, and the
History page shows the team's history from the relay. Real relay subprocess, PostgreSQL, SeaweedFS, keyring."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from services import Seaweed
from test_relay_service import RelayProcess
from test_team_desk import start_relay, write_wav

from desktop_app import settings as settings_mod
from desktop_app.relay import client as relay_client
from desktop_app.relay.db import TeamDB
from desktop_app.sync import history as h
from desktop_app.sync.pipeline import CallDetails

UI_TESTS = Path(__file__).resolve().parent.parent / "ui"


@pytest.fixture
def s3_relay(database_url: str, seaweed: Seaweed, bucket: str, tmp_path: Path) -> Iterator[RelayProcess]:
    relay = start_relay(database_url, seaweed, bucket, tmp_path)
    yield relay
    relay.stop()


def joined(relay: RelayProcess, database_url: str, name: str) -> None:
    """This test's data directory (and keyring scope) joins the team as ``name``."""
    with TeamDB(database_url) as db:
        code = db.create_invite(name)
    relay_client.join(relay.url, code)


def test_the_runtime_of_a_joined_desk_sends_to_the_relay_and_reads_the_teams_history(
    s3_relay: RelayProcess, database_url: str, tmp_path: Path
) -> None:
    from desktop_app.runtime import Runtime

    joined(s3_relay, database_url, "ida")
    rt = Runtime().start()  # no HubSpot account on this desk: the team's parts only
    try:
        assert rt.team is not None and rt.client is None and rt.server is None
        progress: list[int] = []
        sent = rt.submit_to_team(write_wav(tmp_path / "a.wav"), CallDetails(title="from the app", duration_ms=2000),
                                 on_progress=lambda _e, done, size: progress.append(done))
        assert sent.state == "sent" and sent.status == "queued"
        assert progress and progress[-1] == (tmp_path / "a.wav").stat().st_size
        team = rt.team_history()
        [sub] = team.search(h.Query())
        assert (sub.agent, sub.recording_name, sub.title, sub.external_id) == ("ida", "a.wav", "from the app",
                                                                             sent.external_id)
        assert team.count(h.Query()) == 1 and team.count(h.Query(statuses=("failed",))) == 0
        assert team.totals_per_agent(h.Query())[0]["agent"] == "ida"

        # the relay out of reach: the outbox keeps it, and the background loop sends it when it answers
        good = rt.team.client.url
        rt.team.client.url = "http://127.0.0.1:9"
        kept = rt.submit_to_team(write_wav(tmp_path / "b.wav", seconds=3), CallDetails(title="later"))
        assert kept.state == "pending" and "cannot be reached" in (kept.error or "")
        assert rt.work_once() == 0
        rt.team.client.url = good
        assert rt.work_once() == 1 and rt.work_once() == 0
        assert team.count(h.Query()) == 2
    finally:
        rt.stop()
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM submissions").fetchone() == (2,)


def test_a_joined_desk_without_its_token_does_not_start_and_says_why(s3_relay: RelayProcess) -> None:
    from desktop_app.runtime import Runtime, SetupError

    conf = settings_mod.load()
    conf.set("team.relay_url", s3_relay.url)
    conf.save()
    with pytest.raises(SetupError, match="run callrelay join again"):
        Runtime().start()


def test_upload_and_log_on_a_joined_desk_sends_to_the_relay_and_the_history_page_shows_the_team(
    qtbot: object, s3_relay: RelayProcess, database_url: str, tmp_path: Path
) -> None:
    from PySide6.QtCore import Qt

    from desktop_app.runtime import Runtime
    from desktop_app.ui.history_page import HistoryPage
    from desktop_app.ui.upload_page import UploadPage

    if str(UI_TESTS) not in sys.path:
        sys.path.insert(0, str(UI_TESTS))
    from ui_helpers import speech
    from ui_helpers import write_wav as write_speech

    joined(s3_relay, database_url, "jo")
    other = TeamDB(database_url)
    rt = Runtime().start()
    try:
        page = UploadPage()
        qtbot.addWidget(page)  # type: ignore[attr-defined]
        page.set_runtime(rt, "US")
        rec = write_speech(tmp_path / "out-2025550199-2025550142-20261120-100000-1700000000.42.wav",
                           [speech(4, start=0.2, freq=220), speech(4, start=1.1, freq=340, level=0.4)])
        page.add_paths([str(rec)])
        qtbot.waitUntil(lambda: bool(page.panels), timeout=10000)  # type: ignore[attr-defined]
        # the relay has no contact search yet (no HubSpot on this desk): the contact is chosen by its id
        from desktop_app.ui.contacts import Found

        page.panels[0].form.choose_contact(Found("501", "Jane Doe", "", "", "search"))
        def ready() -> None:
            assert page.panels and page.panels[0].upload_button.isEnabled(), page.panels and page.panels[0].blockers()

        qtbot.waitUntil(ready, timeout=30000)  # type: ignore[attr-defined]
        panel = page.panels[0]
        qtbot.mouseClick(panel.upload_button, Qt.MouseButton.LeftButton)  # type: ignore[attr-defined]
        qtbot.waitUntil(lambda: "Sent to the team relay" in panel.message.text(), timeout=60000)  # type: ignore[attr-defined]
        assert "queued on the relay" == panel.status_text
        with psycopg.connect(database_url) as conn:
            row = conn.execute("SELECT a.name, s.recording_name, s.from_number || ' ' || s.to_number FROM submissions s"
                               " JOIN agents a ON a.id = s.agent_id").fetchone()
        assert row == ("jo", rec.name, "+12025550142 +12025550199")  # the numbers the form took from the name
        with psycopg.connect(database_url) as conn:
            assert conn.execute("SELECT contact_id FROM submissions").fetchone() == ("501",)

        history = HistoryPage(h.History())
        qtbot.addWidget(history)  # type: ignore[attr-defined]
        history.set_runtime(rt)
        qtbot.waitUntil(lambda: history.model.total == 1 and history.model.rowCount() == 1,  # type: ignore[attr-defined]
                        timeout=20000)
        sub = history.model._rows[0]
        assert (sub.agent, sub.recording_name) == ("jo", rec.name)
    finally:
        rt.stop()
        other.close()
