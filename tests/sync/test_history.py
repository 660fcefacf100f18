from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from desktop_app.sync import history as h


def add(hist: h.History, n: int, **details: object) -> int:
    base = {"title": f"Call {n}", "from_number": "+15551230000", "to_number": f"+1555000{n:04d}",
            "duration_ms": 1000 * n, "owner_id": "7", "contact_id": "", "direction": "OUTBOUND"}
    base.update(details)
    return hist.add_submission(recording_path=f"/calls/{n}.wav", recording_name=f"{n}.wav",
                               external_id=f"ext-{n}", details=base, agent=str(details.get("agent", "ann")),
                               state="checked")


def test_schema_is_created_in_wal_mode_with_a_version(callrelay_home: Path) -> None:
    hist = h.History()
    assert hist.path == callrelay_home / "history.sqlite3"
    assert hist.schema_version == len(h.MIGRATIONS)
    mode = sqlite3.connect(hist.path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_submission_round_trip_with_steps_in_order(tmp_path: Path) -> None:
    hist = h.History(tmp_path / "h.sqlite3")
    sid = add(hist, 1)
    first = hist.step_started(sid, "log_call")
    hist.step_ended(first, h.RETRY, http_status=503, message="busy", correlation_id="c-1",
                    next_retry_at=h.now() + dt.timedelta(seconds=2))
    second = hist.step_started(sid, "log_call")
    hist.step_ended(second, h.OK, http_status=201)
    hist.update(sid, state="call_logged", call_id="123", portal_id="42", status=h.RUNNING)
    sub = hist.get(sid)
    assert sub is not None
    assert (sub.call_id, sub.portal_id, sub.status, sub.state) == ("123", "42", "running", "call_logged")
    assert [(s.attempt, s.outcome, s.http_status) for s in sub.steps] == [(1, "retry", 503), (2, "ok", 201)]
    assert sub.steps[0].correlation_id == "c-1" and sub.steps[0].next_retry_at
    assert h.call_url(sub) == "https://app.hubspot.com/contacts/42/record/0-48/123"
    assert sub.to_dict()["recording"] == "1.wav"


def test_open_step_finds_an_attempt_that_never_ended(tmp_path: Path) -> None:
    hist = h.History(tmp_path / "h.sqlite3")
    sid = add(hist, 1)
    done = hist.step_started(sid, "mark_ready")
    hist.step_ended(done, h.RETRY, http_status=500)
    assert hist.open_step(sid, "mark_ready") is None
    hist.step_started(sid, "mark_ready")
    # a fresh connection (a new process after a crash) sees the attempt that was started
    again = h.History(tmp_path / "h.sqlite3")
    step = again.open_step(sid, "mark_ready")
    assert step is not None and step.attempt == 2 and step.outcome == "started"


def test_external_id_is_unique(tmp_path: Path) -> None:
    hist = h.History(tmp_path / "h.sqlite3")
    add(hist, 1)
    with pytest.raises(sqlite3.IntegrityError):
        add(hist, 1)


def test_update_rejects_unknown_columns(tmp_path: Path) -> None:
    hist = h.History(tmp_path / "h.sqlite3")
    sid = add(hist, 1)
    with pytest.raises(h.HistoryError):
        hist.update(sid, external_id="other")
    with pytest.raises(h.HistoryError):
        hist.update(sid + 100, status=h.FAILED)


def test_queries_filter_by_status_agent_owner_text_and_dates(tmp_path: Path) -> None:
    hist = h.History(tmp_path / "h.sqlite3")
    ids = [add(hist, n, agent="ann" if n % 2 else "bob", owner_id=str(n % 3)) for n in range(1, 11)]
    hist.update(ids[0], status=h.FAILED, error="The token has no scope")
    hist.update(ids[1], status=h.READY)
    assert [s.id for s in hist.search(h.Query(statuses=(h.FAILED,)))] == [ids[0]]
    assert hist.count(h.Query(agent="bob")) == 5
    assert {s.owner_id for s in hist.search(h.Query(owner_id="2"))} == {"2"}
    assert [s.id for s in hist.search(h.Query(text="no scope"))] == [ids[0]]
    assert [s.id for s in hist.search(h.Query(text="Call 10"))] == [ids[9]]
    assert hist.count(h.Query(text="100%")) == 0  # LIKE wildcards in the text are taken literally
    assert hist.count(h.Query(since=h.now() + dt.timedelta(hours=1))) == 0
    assert hist.count(h.Query(until=h.now() + dt.timedelta(hours=1))) == 10
    page = hist.search(limit=3, offset=3)
    assert [s.id for s in page] == sorted(ids, reverse=True)[3:6]


def test_totals_and_csv_export(tmp_path: Path) -> None:
    hist = h.History(tmp_path / "h.sqlite3")
    a = add(hist, 1, agent="ann")
    b = add(hist, 2, agent="bob")
    add(hist, 3, agent="bob")
    hist.update(a, status=h.FAILED, error="bad, \"quoted\" message", error_correlation_id="cid-9")
    hist.update(b, status=h.READY, call_id="555", portal_id="42")
    per_agent = {row["agent"]: row for row in hist.totals_per_agent()}
    assert per_agent["bob"]["total"] == 2 and per_agent["bob"]["ready"] == 1 and per_agent["bob"]["queued"] == 1
    assert per_agent["ann"]["failed"] == 1
    day = hist.totals_per_day()
    assert len(day) == 1 and day[0]["total"] == 3
    import csv
    import io
    rows = list(csv.DictReader(io.StringIO(hist.export_csv(h.Query(agent="bob")))))
    assert sorted(r["id"] for r in rows) == [str(b), str(b + 1)]
    ready = next(r for r in rows if r["id"] == str(b))
    assert ready["call_url"] == "https://app.hubspot.com/contacts/42/record/0-48/555"
    failed = list(csv.DictReader(io.StringIO(hist.export_csv(h.Query(statuses=(h.FAILED,))))))
    assert failed[0]["error"] == 'bad, "quoted" message' and failed[0]["correlation_id"] == "cid-9"


def test_migration_keeps_a_backup_and_refuses_a_newer_schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "h.sqlite3"
    hist = h.History(path)
    add(hist, 1)
    hist.close()
    monkeypatch.setattr(h, "MIGRATIONS", (*h.MIGRATIONS, "ALTER TABLE submissions ADD COLUMN extra TEXT"))
    upgraded = h.History(path)
    assert upgraded.schema_version == len(h.MIGRATIONS)
    assert (tmp_path / f"h.sqlite3.v{len(h.MIGRATIONS) - 1}.bak").exists()
    assert upgraded.get(1) is not None
    upgraded.close()
    monkeypatch.setattr(h, "MIGRATIONS", h.MIGRATIONS[:1])
    with pytest.raises(h.HistoryError, match="newer Call Relay"):
        h.History(path)


def _schema_and_rows(path: Path) -> tuple[object, ...]:
    with sqlite3.connect(path) as db:
        return (db.execute("PRAGMA user_version").fetchone()[0],
                db.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall(),
                db.execute("SELECT id, external_id, details FROM submissions ORDER BY id").fetchall())


def test_a_migration_failing_halfway_leaves_the_history_as_it_was(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Two migrations pending, the second fails on its second statement: neither is applied (all pending
    migrations run in one transaction), the error is one sentence, and the history opens as before."""
    path, every = tmp_path / "h.sqlite3", h.MIGRATIONS
    old = h.History(path)
    add(old, 1)
    old.close()
    before = _schema_and_rows(path)
    assert before[0] == len(every)
    monkeypatch.setattr(h, "MIGRATIONS", (*every, "CREATE TABLE later (id INTEGER PRIMARY KEY)",
                                          "ALTER TABLE submissions ADD COLUMN extra TEXT; "
                                          "ALTER TABLE submissions ADD COLUMN extra TEXT"))
    with pytest.raises(h.HistoryError, match="duplicate column") as refused:
        h.History(path)
    assert "\n" not in str(refused.value)
    assert _schema_and_rows(path) == before
    monkeypatch.setattr(h, "MIGRATIONS", every)
    with h.History(path) as again:
        assert again.schema_version == len(every) and again.get(1) is not None


def test_events_are_kept(tmp_path: Path) -> None:
    hist = h.History(tmp_path / "h.sqlite3")
    hist.add_event("public-url-changed", "Public URL changed", {"old": "https://a", "new": "https://b"})
    assert hist.events("public-url-changed")[0]["data"]["new"] == "https://b"
    assert hist.events("other") == []


def test_text_search_follows_updates_and_short_texts(tmp_path: Path) -> None:
    hist = h.History(tmp_path / "h.sqlite3")
    a, b = add(hist, 1), add(hist, 2)
    hist.update(b, error="HubSpot said: property hs_call_duration is invalid")
    assert [s.id for s in hist.search(h.Query(text="call_dur"))] == [b]
    hist.update(b, error=None)
    assert hist.count(h.Query(text="call_dur")) == 0  # the index forgets the old text
    assert [s.id for s in hist.search(h.Query(text="1.w"))] == [a]  # recording name 1.wav
    assert {s.id for s in hist.search(h.Query(text="2."))} == {b}  # short texts still match (by LIKE)
    assert [s.id for s in hist.search(h.Query(text='"quoted'))] == []


def test_upgrading_a_first_version_file_indexes_what_it_holds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "h.sqlite3"
    monkeypatch.setattr(h, "MIGRATIONS", h.MIGRATIONS[:1])
    old = h.History(path)
    add(old, 7, title="Quarterly renewal")
    old.close()
    monkeypatch.undo()
    hist = h.History(path)
    assert hist.schema_version == len(h.MIGRATIONS) >= 2
    assert [s.title for s in hist.search(h.Query(text="renewal"))] == ["Quarterly renewal"]
