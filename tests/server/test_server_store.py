"""The recording store and catalogue, on real files and a real SQLite catalogue."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from server_helpers import random_file

from desktop_app import paths
from desktop_app.server.recordings import RecordingStore, StoreError


def test_add_copies_by_content_hash_read_only_and_leaves_the_original(store: RecordingStore, blob: Path) -> None:
    before = (blob.read_bytes(), blob.stat().st_mtime_ns, stat.S_IMODE(blob.stat().st_mode))
    rec = store.add(blob)
    digest = hashlib.sha256(blob.read_bytes()).hexdigest()
    assert rec.sha256 == digest
    assert rec.path == paths.recordings_dir() / f"{digest}.wav"
    assert rec.path.read_bytes() == blob.read_bytes()
    assert rec.filename == blob.name and rec.size == blob.stat().st_size
    assert stat.S_IMODE(rec.path.stat().st_mode) & 0o222 == 0
    assert (blob.read_bytes(), blob.stat().st_mtime_ns, stat.S_IMODE(blob.stat().st_mode)) == before
    assert store.get(digest) == rec
    assert not list(store.root.glob(".incoming-*"))


def test_adding_the_same_content_again_is_a_no_op(store: RecordingStore, blob: Path, tmp_path: Path) -> None:
    first = store.add(blob)
    copy = tmp_path / "other-name.wav"
    copy.write_bytes(blob.read_bytes())
    again = store.add(copy, filename="shown.wav")
    assert again == first
    assert [r.sha256 for r in store.all()] == [first.sha256]
    assert len([p for p in store.root.iterdir() if p.suffix == ".wav"]) == 1


def test_filename_overrides_the_name_shown(store: RecordingStore, blob: Path) -> None:
    assert store.add(blob, filename="Call with Ann.wav").filename == "Call with Ann.wav"


def test_unreadable_empty_and_missing_files_are_refused(store: RecordingStore, tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(StoreError, match="empty"):
        store.add(empty)
    with pytest.raises(StoreError, match="Cannot read"):
        store.add(tmp_path / "missing.wav")
    with pytest.raises(StoreError, match="not a file"):
        store.add(tmp_path)
    assert store.all() == []


def test_a_full_disk_is_refused_before_copying(blob: Path) -> None:
    import shutil

    free = shutil.disk_usage(paths.recordings_dir()).free
    store = RecordingStore(min_free_bytes=free)  # this disk, with less room than the file needs
    with pytest.raises(StoreError, match="Not enough free disk space") as err:
        store.add(blob)
    assert blob.name in str(err.value)
    assert [p.name for p in store.root.iterdir() if not p.name.startswith("catalog")] == []
    assert store.all() == []


def test_a_write_that_fails_midway_leaves_no_partial_file(blob: Path, tmp_path: Path) -> None:
    """A real failing write: the process may write at most 100 KB per file (RLIMIT_FSIZE), as a disk
    filling up during the copy would; the 300 KB recording cannot be stored."""
    root = tmp_path / "store"
    code = textwrap.dedent(f"""
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        from desktop_app.server.recordings import RecordingStore, StoreError
        store = RecordingStore({str(root)!r}, min_free_bytes=0)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
        try:
            store.add({str(blob)!r})
        except StoreError as exc:
            print(exc)
            sys.exit(3)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3, proc.stderr
    assert "full" in proc.stdout
    assert [p.name for p in root.iterdir() if not p.name.startswith("catalog")] == []
    assert RecordingStore(root).all() == []


def test_share_lookup_and_idempotence(store: RecordingStore, blob: Path, tmp_path: Path) -> None:
    rec = store.add(blob)
    store.share("call-1", rec.sha256, app_id="123", external_account_id="acct")
    store.share("call-1", rec.sha256, app_id="123", external_account_id="acct")
    share = store.lookup("call-1")
    assert share is not None
    assert (share.external_id, share.sha256, share.app_id, share.external_account_id) == ("call-1", rec.sha256,
                                                                                        "123", "acct")
    other = store.add(random_file(tmp_path / "b.flac", 1000, seed=2))
    store.share("call-1", other.sha256, app_id="123", external_account_id="acct")  # re-submitted
    assert store.lookup("call-1").sha256 == other.sha256  # type: ignore[union-attr]
    assert store.lookup("call-2") is None
    with pytest.raises(StoreError):
        store.share("call-3", "0" * 64, app_id="1", external_account_id="2")


def test_remove_deletes_the_file_its_row_and_its_shares(store: RecordingStore, blob: Path) -> None:
    rec = store.add(blob)
    store.share("call-1", rec.sha256, app_id="1", external_account_id="2")
    assert store.remove(rec.sha256) is True
    assert not rec.path.exists() and store.get(rec.sha256) is None and store.lookup("call-1") is None
    assert store.remove(rec.sha256) is False
    assert blob.exists()


def test_get_never_turns_its_argument_into_a_path(store: RecordingStore, blob: Path) -> None:
    store.add(blob)
    for bad in ("../catalog.sqlite3", "", "x" * 64, str(blob)):
        assert store.get(bad) is None


def test_another_process_sees_what_one_adds(store: RecordingStore, blob: Path) -> None:
    code = textwrap.dedent(f"""
        from desktop_app.server.recordings import RecordingStore
        s = RecordingStore()
        r = s.add({str(blob)!r})
        s.share("from-child", r.sha256, app_id="9", external_account_id="8")
        print(r.sha256)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ), check=True).stdout.strip()
    assert store.get(out) is not None
    assert store.lookup("from-child").sha256 == out  # type: ignore[union-attr]


def test_catalogue_uses_wal(store: RecordingStore) -> None:
    import sqlite3

    with sqlite3.connect(store.catalog_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# The catalogue's schema as the release before numbered migrations wrote it (executescript, then its version).
TODAYS_CATALOGUE = """
CREATE TABLE IF NOT EXISTS recordings (
    sha256 TEXT PRIMARY KEY,
    name TEXT NOT NULL,          -- file name inside the store: <sha256><ext>
    filename TEXT NOT NULL,      -- original file name
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    added_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS shares (
    external_id TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL REFERENCES recordings(sha256) ON DELETE CASCADE,
    app_id TEXT NOT NULL,
    external_account_id TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS shares_by_sha256 ON shares(sha256);
PRAGMA user_version=1;
"""


def _old_catalogue(root: Path, blob: Path) -> str:
    """A store whose catalogue was written by today's schema SQL, holding ``blob`` and one share of it."""
    import sqlite3

    root.mkdir(parents=True)
    sha = hashlib.sha256(blob.read_bytes()).hexdigest()
    (root / f"{sha}.wav").write_bytes(blob.read_bytes())
    with sqlite3.connect(root / "catalog.sqlite3") as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(TODAYS_CATALOGUE)
        db.execute("INSERT INTO recordings VALUES (?,?,?,?,?,?)",
                   (sha, f"{sha}.wav", "first call.wav", blob.stat().st_size, 1700000000.5, 1700000001.0))
        db.execute("INSERT INTO shares VALUES (?,?,?,?,?)", ("ext-1", sha, "9", "8", 1700000002.0))
    return sha


def _catalogue_state(path: Path) -> tuple[object, ...]:
    import sqlite3

    with sqlite3.connect(path) as db:
        return (db.execute("PRAGMA user_version").fetchone()[0],
                db.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall(),
                db.execute("SELECT * FROM recordings").fetchall(), db.execute("SELECT * FROM shares").fetchall())


def test_a_catalogue_written_by_todays_schema_opens_and_is_upgraded_with_its_data(
        tmp_path: Path, blob: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from desktop_app.server import recordings

    root = tmp_path / "store"
    sha = _old_catalogue(root, blob)
    with_today = RecordingStore(root)
    rec, share = with_today.get(sha), with_today.lookup("ext-1")
    assert rec is not None and (rec.filename, rec.size, rec.mtime) == ("first call.wav", blob.stat().st_size, 1700000000.5)
    assert share is not None and (share.sha256, share.app_id, share.external_account_id) == (sha, "9", "8")
    with_today.close()
    assert _catalogue_state(root / "catalog.sqlite3")[0] == len(recordings.MIGRATIONS) == 1

    # a later release adds migration 2: the file is copied aside, upgraded, and keeps what it held
    monkeypatch.setattr(recordings, "MIGRATIONS", (*recordings.MIGRATIONS,
                                                   "ALTER TABLE recordings ADD COLUMN note TEXT"))
    upgraded = RecordingStore(root)
    assert upgraded.get(sha) == rec and upgraded.lookup("ext-1") == share
    assert [r.sha256 for r in upgraded.all()] == [sha]
    upgraded.close()
    assert _catalogue_state(root / "catalog.sqlite3")[0] == 2
    assert (root / "catalog.sqlite3.v1.bak").is_file()
    monkeypatch.undo()
    with pytest.raises(StoreError, match=r"was written by a newer Call Relay \(schema 2\); update the app") as newer:
        RecordingStore(root)
    assert "\n" not in str(newer.value)


def test_a_catalogue_migration_failing_halfway_leaves_the_file_as_it_was(
        tmp_path: Path, blob: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from desktop_app.server import recordings

    root = tmp_path / "store"
    sha = _old_catalogue(root, blob)
    before = _catalogue_state(root / "catalog.sqlite3")
    monkeypatch.setattr(recordings, "MIGRATIONS", (*recordings.MIGRATIONS, "CREATE TABLE later (id INTEGER);",
                                                   "ALTER TABLE recordings ADD COLUMN note TEXT; "
                                                   "ALTER TABLE recordings ADD COLUMN note TEXT"))
    with pytest.raises(StoreError, match="duplicate column") as failed:
        RecordingStore(root)
    assert str(failed.value).startswith(f"The recording catalogue {root / 'catalog.sqlite3'} ")
    assert "\n" not in str(failed.value)
    assert _catalogue_state(root / "catalog.sqlite3") == before
    monkeypatch.undo()
    again = RecordingStore(root)
    assert again.lookup("ext-1") is not None and again.get(sha) is not None
    again.close()
