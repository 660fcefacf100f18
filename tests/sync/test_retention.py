from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

from sync_helpers import write_call

from desktop_app.server.recordings import RecordingStore
from desktop_app.sync import history as h
from desktop_app.sync.retention import apply_retention


def submission(hist: h.History, store: RecordingStore, path: Path, status: str, ext: str) -> tuple[int, str]:
    sha = store.add(path).sha256
    sid = hist.add_submission(recording_path=str(path), recording_name=path.name, external_id=ext,
                              details={"title": ext}, agent="ann", state="ready_marked", recording_sha256=sha)
    hist.update(sid, status=status)
    return sid, sha


def age(hist: h.History, sid: int, days: float) -> None:
    stamp = h.iso(h.now() - dt.timedelta(days=days))
    with sqlite3.connect(hist.path) as db:
        db.execute("UPDATE submissions SET updated_at = ? WHERE id = ?", (stamp, sid))


def test_only_long_transcribed_recordings_are_removed(tmp_path: Path) -> None:
    hist, store = h.History(), RecordingStore()
    old_done, old_sha = submission(hist, store, write_call(tmp_path / "a.wav", seed=1), h.TRANSCRIBED, "a")
    new_done, new_sha = submission(hist, store, write_call(tmp_path / "b.wav", seed=2), h.TRANSCRIBED, "b")
    ready, ready_sha = submission(hist, store, write_call(tmp_path / "c.wav", seed=3), h.READY, "c")
    failed, failed_sha = submission(hist, store, write_call(tmp_path / "d.wav", seed=4), h.FAILED, "d")
    # the same recording as an old transcribed call, used again by a call HubSpot may still fetch
    shared = write_call(tmp_path / "e.wav", seed=5)
    s1, shared_sha = submission(hist, store, shared, h.TRANSCRIBED, "e1")
    s2, _ = submission(hist, store, shared, h.READY, "e2")
    for sid in (old_done, ready, failed, s1, s2):
        age(hist, sid, 40)
    age(hist, new_done, 5)

    assert apply_retention(hist, store, 0) == []  # the default keeps everything
    removed = apply_retention(hist, store, 30)
    assert [r.sha256 for r in removed] == [old_sha]
    assert store.get(old_sha) is None and not any(store.root.glob(old_sha + "*"))
    for kept in (new_sha, ready_sha, failed_sha, shared_sha):
        rec = store.get(kept)
        assert rec is not None and rec.path.exists()
    assert hist.events("recording-removed")[0]["data"]["submissions"] == [old_done]
    assert apply_retention(hist, store, 30) == []  # nothing twice
