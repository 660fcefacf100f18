"""Post transcript in the recording's pane (issue 20), against the real sandbox: the agent's corrected lines
are posted for the recording's logged call on a worker; Replace asks first, deletes HubSpot's copy and posts
the corrected one; a post HubSpot refuses (a private-app token cannot hold the transcripts scope) is said in
one sentence and nothing is posted."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from desktop_app import settings as settings_mod
from desktop_app.hubspot.client import HubSpotClient
from desktop_app.hubspot.ratelimit import RateLimiter
from desktop_app.runtime import Runtime
from desktop_app.sync import history as h
from desktop_app.sync.pipeline import CallDetails, RetryPolicy
from desktop_app.transcribe import Transcript, Utterance
from desktop_app.ui.history_model import ROW_ROLE, Column, HistoryModel
from desktop_app.ui.history_page import detail_html
from desktop_app.ui.recording_panel import RecordingPanel
from desktop_app.ui.transcript_pane import TEXT
from tests.sync.sync_helpers import write_call
from tests.transcribe.conftest import whisper_model  # noqa: F401
from tests.ui.ui_helpers import fill_history

FAST = RetryPolicy(base_s=0.01, cap_s=0.05, search_lag_s=0.05, in_flight_s=0.5, ready_evidence_wait_s=2.0,
                   transcript_first_check_s=0.05, transcript_cap_s=0.1, transcript_deadline_s=30, max_attempts=2)
SCOPES = ["crm.extensions_calling_transcripts.write", "crm.extensions_calling_transcripts.read",
          "crm.objects.contacts.read", "crm.objects.contacts.write", "crm.objects.owners.read", "oauth"]
UNPAID = "71000003"  # the sandbox's owner without a paid seat
WORDS = Transcript("en", (Utterance(1, 0, 1400, "Hello, this is Carol from Acme."),
                          Utterance(2, 1200, 3000, "Hi Alice, my order is late.")))


@pytest.fixture
def runtime(callrelay_home: Path) -> Iterator[Runtime]:
    rt = Runtime(settings_mod.Settings(), sandbox=True, policy=FAST)
    rt.start()
    yield rt
    rt.stop()


def logged_call(rt: Runtime, tmp_path: Path) -> tuple[Path, h.Submission]:
    """A recording logged as a call HubSpot did not transcribe (its owner has no paid seat)."""
    contact = str(rt.sandbox.contacts()[0]["id"])
    rec = write_call(tmp_path / "call.wav", seed=3)
    sid = rt.submit(rec, CallDetails(title="Late order", duration_ms=3000, owner_id=UNPAID, contact_id=contact,
                                     direction="OUTBOUND"))
    sub = rt.run_submission(sid)
    assert sub.status == h.READY and sub.call_id, sub.error
    rt.sandbox.wait_for_fetch(sub.call_id, timeout=30)
    out = rt.check_transcript(sid).submission
    assert out.status == h.NOT_TRANSCRIBED
    return rec, out


def of_call(rt: Runtime, call_id: str | None) -> list[dict[str, object]]:
    return [t for t in rt.sandbox.transcripts() if str(t["engagementId"]) == str(call_id)]


def texts(stored: dict[str, object]) -> list[str]:
    return [u["text"] for u in stored["transcriptUtterances"]]  # type: ignore[attr-defined,index]


@pytest.fixture
def panel(qtbot, runtime: Runtime, tmp_path: Path):
    rec, sub = logged_call(runtime, tmp_path)
    p = RecordingPanel(str(rec))
    qtbot.addWidget(p)
    p.resize(1280, 720)
    p.show()
    qtbot.waitUntil(lambda: p.inspection is not None, timeout=30000)
    p.set_runtime(runtime, "US")
    pane = p.transcript_pane
    qtbot.waitUntil(lambda: pane.submission is not None and pane.submission.id == sub.id, timeout=30000)
    assert not pane.post_button.isVisible(), "no transcript shown: nothing to post"
    pane.show_transcript(WORDS)
    return p, sub


def use_oauth(runtime: Runtime) -> None:
    """The desk connected with OAuth (the only token that can hold the transcripts scope)."""
    assert runtime.config is not None
    config = dataclasses.replace(runtime.config, access_token=runtime.sandbox.issue_token(SCOPES))
    runtime.client = HubSpotClient(config, limiter=RateLimiter())


def correct(pane, row: int, text: str) -> None:
    item = pane.table.item(row, TEXT)
    item.setText(text)  # what a double-click and typing leave in the line


def click_post(qtbot, pane, timeout: int = 30000):
    with qtbot.waitSignal(pane.postDone, timeout=timeout) as blocker:
        qtbot.mouseClick(pane.post_button, Qt.MouseButton.LeftButton)
    return blocker.args


def test_post_then_replace_the_corrected_transcript(qtbot, monkeypatch, runtime: Runtime, panel) -> None:
    p, sub = panel
    pane = p.transcript_pane
    use_oauth(runtime)
    assert pane.post_button.isVisible() and pane.post_button.isEnabled()
    assert pane.post_button.text().replace("&", "") == "Post transcript"
    correct(pane, 1, "Hi Carol, my order is late.")
    tid, said = click_post(qtbot, pane)
    [stored] = of_call(runtime, sub.call_id)
    assert tid and stored["id"] == tid
    assert texts(stored) == ["Hello, this is Carol from Acme.", "Hi Carol, my order is late."]
    assert tid in pane.status.text() and "posted" in pane.status.text()
    after = runtime.history.get(sub.id)
    assert after is not None and after.status == h.TRANSCRIBED and after.transcript_source == h.SOURCE_CALLRELAY
    qtbot.waitUntil(lambda: pane.post_button.text().replace("&", "") == "Replace posted transcript", timeout=5000)

    # Replace asks first: No changes nothing
    asked: list[str] = []
    answer = [QMessageBox.StandardButton.No]

    def question(_parent, title, text, *_a, **_k):
        asked.append(text)
        return answer[0]

    monkeypatch.setattr(QMessageBox, "question", question)
    correct(pane, 0, "Hello, this is Carol from Acme Parcels.")
    qtbot.mouseClick(pane.post_button, Qt.MouseButton.LeftButton)
    assert len(asked) == 1 and tid in asked[0] and "deleted" in asked[0]
    assert pane.post_button.isEnabled()
    [same] = of_call(runtime, sub.call_id)
    assert same["id"] == tid and texts(same) == texts(stored)

    # Yes: HubSpot's copy is deleted, the corrected one posted: still one transcript, the new text
    answer[0] = QMessageBox.StandardButton.Yes
    new_tid, _said = click_post(qtbot, pane)
    assert new_tid and new_tid != tid
    [replaced] = of_call(runtime, sub.call_id)
    assert replaced["id"] == new_tid
    assert texts(replaced) == ["Hello, this is Carol from Acme Parcels.", "Hi Carol, my order is late."]
    assert new_tid in pane.status.text()
    steps = [s.step for s in runtime.history.get(sub.id).steps]  # type: ignore[union-attr]
    assert steps[-2:] == ["transcript_deleted", "transcript_posted"]


def test_a_refused_post_is_said_in_one_sentence_and_nothing_is_posted(qtbot, runtime: Runtime, panel) -> None:
    p, sub = panel
    pane = p.transcript_pane
    assert pane.post_button.isEnabled()  # the runtime's own token: a private app's, without the scope
    tid, said = click_post(qtbot, pane)
    assert tid is None
    text = pane.status.text()
    assert "OAuth" in text and "private-app token cannot hold" in text and "Traceback" not in text
    assert text == said and text.count("\n") == 0
    assert of_call(runtime, sub.call_id) == []
    after = runtime.history.get(sub.id)
    assert after is not None and after.status == h.NOT_TRANSCRIBED and after.transcript_id is None
    assert pane.post_button.isEnabled() and pane.post_button.text().replace("&", "") == "Post transcript"


def test_post_waits_for_a_logged_call_and_a_transcript(qtbot, runtime: Runtime, tmp_path: Path) -> None:
    rec = write_call(tmp_path / "new.wav", seed=9)
    p = RecordingPanel(str(rec))
    qtbot.addWidget(p)
    p.show()
    qtbot.waitUntil(lambda: p.inspection is not None, timeout=30000)
    p.set_runtime(runtime, "US")
    pane = p.transcript_pane
    pane.show_transcript(WORDS)
    assert pane.post_button.isVisible() and not pane.post_button.isEnabled()  # no call logged yet
    assert pane.post() is None and runtime.sandbox.transcripts() == []


def test_the_history_names_the_transcript_steps_and_who_transcribed(qtbot, history: h.History) -> None:
    fill_history(history, 3, statuses=(h.TRANSCRIBED, h.TRANSCRIBED, h.READY))
    ours, theirs, ready = sorted(s.id for s in history.search(h.Query(), limit=None))
    history.update(ours, transcript_source=h.SOURCE_CALLRELAY, transcript_id="t-1")
    for step in ("transcript_posted", "transcript_deleted", "transcript_posted"):
        history.step_ended(history.step_started(ours, step), h.OK, message="transcript t-1")
    model = HistoryModel(history)
    with qtbot.waitSignal(model.loaded, timeout=10000):
        model.set_query(h.Query())
    shown = {model.index(r, Column.STATUS).data(ROW_ROLE).id: model.index(r, Column.STATUS).data()
             for r in range(model.rowCount())}
    assert shown == {ours: "transcribed · Call Relay", theirs: "transcribed · HubSpot", ready: "ready"}
    sub = history.get(ours)
    assert sub is not None
    html = detail_html(sub)
    assert "Post the transcript" in html and "Delete the posted transcript" in html
    assert "transcript_posted" not in html and "transcript_deleted" not in html


def test_post_waits_while_a_new_transcription_runs(qtbot, runtime: Runtime, panel, callrelay_home: Path,
                                                   whisper_model: Path) -> None:  # noqa: F811
    settings_file = callrelay_home / "settings.json"
    conf = json.loads(settings_file.read_text()) if settings_file.exists() else {}
    settings_file.write_text(json.dumps({**conf, "transcribe.model_dir": str(whisper_model)}))
    p, sub = panel
    pane = p.transcript_pane
    use_oauth(runtime)
    assert pane.post_button.isEnabled()
    qtbot.mouseClick(pane.transcribe_button, Qt.MouseButton.LeftButton)
    assert pane.running
    assert not pane.post_button.isEnabled(), "the lines shown are about to be replaced: nothing to post yet"
    assert pane.post() is None
    with qtbot.waitSignal(pane.transcribed, timeout=180000):
        pass
    assert pane.post_button.isEnabled() == bool(pane.transcript().utterances)
    assert of_call(runtime, sub.call_id) == []
