"""The history and the recording catalogue as files that can be damaged, read-only or on a full disk
(issue 15): one sentence naming the file and what to do, the damaged file left as it is, and the
history still readable where it cannot be written. The kinds of damage are the attack class's
(``tests/attacks/corrupted_datadirs.py``).

As root, permission bits stop nothing: read-only files and folders are met by a ``callrelay`` without
root's file-access capabilities (``setpriv``). A full disk is a real small tmpfs (skipped where
mounting is refused), and a read-only file system a tmpfs remounted read-only.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from desktop_app.server.recordings import RecordingStore, StoreError
from desktop_app.sync import history as h
from tests.attacks import corrupted_datadirs as cd

HISTORY_KINDS = [k for k in cd.KINDS if k.name.startswith("history:") and not (k.restricted or k.full_disk)]
CATALOGUE_KINDS = [k for k in cd.KINDS if k.name.startswith("catalogue:") and not k.restricted]


@pytest.fixture
def home(callrelay_home: Path) -> Path:
    """The attack's valid data directory (settings, a history, a catalogue) in this test's CALLRELAY_HOME."""
    shutil.rmtree(callrelay_home)
    return cd.make_template(callrelay_home)


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    return cd.write_wav(tmp_path / "call.wav")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A folder on a real 1 MB tmpfs (unmounted after the test)."""
    with cd.full_disk(tmp_path / "disk") as fsize:
        if fsize is not None:
            pytest.skip("mounting a tmpfs is refused here (not root, or no CAP_SYS_ADMIN)")
        yield tmp_path / "disk"


def digests(*paths: Path) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths if p.is_file()}


def read_everything(readonly: bool) -> None:
    with h.History(readonly=readonly) as hist:
        hist.search(limit=None, with_steps=True)
        hist.count()
        hist.unfinished()
        hist.events()
        hist.export_csv()


@pytest.mark.parametrize("readonly", [False, True], ids=["read-write", "read-only"])
@pytest.mark.parametrize("variant", [0, 1, 2])
@pytest.mark.parametrize("kind", HISTORY_KINDS, ids=lambda k: k.name[9:])
def test_a_damaged_history_is_one_sentence_naming_it_and_is_left_as_it_is(home: Path, kind: cd.Kind, variant: int,
                                                                         readonly: bool) -> None:
    damaged = kind.make(home, variant)
    assert damaged is not None
    before = digests(damaged)
    try:
        read_everything(readonly)
    except h.HistoryError as exc:
        message = str(exc)
        assert message.startswith(f"The history file {damaged} ") and "\n" not in message
        assert message.endswith(".")
    else:  # damage may fall where nothing reads it (a garbled page of free space): then it reads
        assert not kind.refused_by, f"{kind.name} was read without a word"
    assert digests(damaged) == before


@pytest.mark.parametrize("variant", [0, 1, 2])
@pytest.mark.parametrize("kind", CATALOGUE_KINDS, ids=lambda k: k.name[11:])
def test_a_damaged_catalogue_is_one_sentence_naming_it_and_is_left_as_it_is(home: Path, kind: cd.Kind,
                                                                           variant: int) -> None:
    damaged = kind.make(home, variant)
    assert damaged is not None
    before = digests(damaged)
    try:
        store = RecordingStore()
        [recording] = store.all()
        store.lookup("ext-0")
    except StoreError as exc:
        message = str(exc)
        assert message.startswith(f"The recording catalogue {damaged} ") and "\n" not in message
    else:
        assert not kind.refused_by, f"{kind.name} was read without a word"
    assert digests(damaged) == before


@pytest.mark.parametrize(("make", "said"), [
    (cd.on(cd.HISTORY, cd._random_bytes), "is damaged (file is not a database); Call Relay leaves it as it is: "
                                          "move it aside (or put back a copy) and a new one is started."),
    (cd.on(cd.HISTORY, cd._newer), "was written by a newer Call Relay (schema 99); update the app to use it (the "
                                   "file is left as it is)."),
    (cd.on(cd.HISTORY, cd._folder), "is a folder, not a file: move it aside and a new one is started."),
    (cd.on(cd.HISTORY, cd._foreign), "is not Call Relay's (it holds a table 'contacts'): move it aside and a new one "
                                     "is started."),
], ids=["random bytes", "newer", "folder", "another program's"])
def test_history_messages_say_what_to_do(home: Path, make: Callable[[Path, int], Path | None], said: str) -> None:
    make(home, 0)
    with pytest.raises(h.HistoryError) as err:
        h.History()
    assert str(err.value) == f"The history file {home / 'history.sqlite3'} {said}"


def test_a_read_only_history_of_no_file_is_empty_and_makes_nothing(tmp_path: Path) -> None:
    with h.History(tmp_path / "none.sqlite3", readonly=True) as hist:
        assert hist.search() == [] and hist.count() == 0 and hist.events() == []
    assert list(tmp_path.iterdir()) == []


def test_a_read_only_history_does_not_upgrade_an_older_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "h.sqlite3"
    monkeypatch.setattr(h, "MIGRATIONS", h.MIGRATIONS[:1])
    h.History(path).close()
    monkeypatch.undo()
    before = digests(path)
    with pytest.raises(h.HistoryError, match="written by an older Call Relay: run `callrelay resume` once"):
        h.History(path, readonly=True)
    assert digests(path) == before


def test_history_reads_a_read_only_data_directory(home: Path, wav: Path) -> None:
    cd._readonly_home(home, 0)
    try:
        for command in ("history", "history-json"):
            run = cd.run(home, command, wav, restricted=True)
            assert run.returncode == 0 and run.stderr == "", run.stderr
            assert cd.rows_listed(run) == cd.HISTORY_ROWS
        run = cd.run(home, "upload", wav, restricted=True)
        assert run.returncode == 1 and run.stderr == (
            f"callrelay upload: The history file {home / 'history.sqlite3'} cannot be written (it or its folder "
            "is read-only): make both writable.\n")
    finally:
        for folder, _dirs, _files in os.walk(home):
            Path(folder).chmod(0o755)


def test_an_unreadable_history_is_one_sentence(home: Path, wav: Path) -> None:
    (home / "history.sqlite3").chmod(0)
    for command in ("history", "resume"):
        run = cd.run(home, command, wav, restricted=True)
        assert run.returncode == 1 and run.stderr == (
            f"callrelay {command}: The history file {home / 'history.sqlite3'} cannot be opened (unable to open "
            f"database file): make sure it and its folder {home} can be read and written.\n")


def test_history_reads_a_read_only_file(home: Path, wav: Path) -> None:
    (home / "history.sqlite3").chmod(0o444)
    run = cd.run(home, "history-json", wav, restricted=True)
    assert run.returncode == 0 and run.stderr == "", run.stderr
    assert cd.rows_listed(run) == cd.HISTORY_ROWS


def test_history_reads_a_read_only_file_system(small_disk: Path, home: Path, wav: Path) -> None:
    shutil.copytree(home, small_disk / "home")
    remount = subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], capture_output=True, text=True)
    assert remount.returncode == 0, remount.stderr
    for command in ("history", "history-json"):
        run = cd.run(small_disk / "home", command, wav)
        assert run.returncode == 0 and run.stderr == "", run.stderr
        assert cd.rows_listed(run) == cd.HISTORY_ROWS


def test_history_reads_a_full_disk_and_writers_say_it_is_full(small_disk: Path, home: Path, wav: Path) -> None:
    shutil.copytree(home, small_disk / "home")
    cd.fill(small_disk)
    before = digests(small_disk / "home" / "history.sqlite3")
    for command in ("history", "history-json"):
        run = cd.run(small_disk / "home", command, wav)
        assert run.returncode == 0 and run.stderr == "", run.stderr
        assert cd.rows_listed(run) == cd.HISTORY_ROWS
    run = cd.run(small_disk / "home", "resume", wav)
    assert run.returncode == 1 and run.stderr.count("\n") == 1, run.stderr
    assert f"The history file {small_disk / 'home' / 'history.sqlite3'} cannot be written or read: the disk " \
           "holding it is full or failing (disk I/O error); free some space and try again." in run.stderr
    assert digests(small_disk / "home" / "history.sqlite3") == before


def test_a_disk_filling_during_a_step_is_one_sentence_and_the_history_stays_whole(small_disk: Path) -> None:
    path = small_disk / "h.sqlite3"
    hist = h.History(path)
    sid = hist.add_submission(recording_path="/calls/1.wav", recording_name="1.wav", external_id="ext-1",
                              details={"title": "Call"}, agent="ann", state="checked")
    step = hist.step_started(sid, "log_call")
    cd.fill(small_disk)
    with pytest.raises(h.HistoryError) as err:  # not "cannot rollback - no transaction is active"
        hist.step_ended(step, h.OK, message="x" * 300_000, submission={"status": h.RUNNING, "error": "y" * 100_000})
    assert str(err.value) == (f"The history file {path} cannot be written or read: the disk holding it is full or "
                              "failing (database or disk is full); free some space and try again.")
    hist.close()
    (small_disk / "filler").unlink()
    with h.History(path) as again:  # the step and the submission changed together, or not at all
        sub = again.get(sid)
        assert sub is not None and sub.status == h.QUEUED and [s.outcome for s in sub.steps] == [h.STARTED]
        again.step_ended(step, h.OK, submission={"status": h.RUNNING})
        sub = again.get(sid)
        assert sub is not None and sub.status == h.RUNNING


def test_a_full_database_keeps_the_error_that_ended_the_transaction(tmp_path: Path) -> None:
    """Without a mount: SQLite's own page limit makes the same SQLITE_FULL."""
    hist = h.History(tmp_path / "h.sqlite3")
    sid = hist.add_submission(recording_path="/calls/1.wav", recording_name="1.wav", external_id="ext-1",
                              details={"title": "Call"}, agent="ann", state="checked")
    step = hist.step_started(sid, "log_call")
    pages = hist._db.execute("PRAGMA page_count").fetchone()[0]
    hist._db.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(h.HistoryError, match="full"):
        hist.step_ended(step, h.OK, message="x" * 300_000, submission={"status": h.RUNNING})
    assert not hist._db.in_transaction
    sub = hist.get(sid)
    assert sub is not None and sub.status == h.QUEUED and sub.steps[0].outcome == h.STARTED


def test_constraint_errors_stay_what_they_are(tmp_path: Path) -> None:
    hist = h.History(tmp_path / "h.sqlite3")
    details = {"title": "Call"}
    hist.add_submission(recording_path="/a", recording_name="a", external_id="same", details=details, agent="a",
                        state="checked")
    with pytest.raises(sqlite3.IntegrityError):
        hist.add_submission(recording_path="/a", recording_name="a", external_id="same", details=details,
                            agent="a", state="checked")


def test_history_brings_an_older_file_up_to_date_where_it_can_write(home: Path, wav: Path) -> None:
    """After an upgrade of the app, `callrelay history` (which only reads) must not send supervisors to run
    another command first: where the file can be written it is migrated (a copy kept), then read."""
    path = home / "history.sqlite3"
    with h.History(path) as hist:
        hist.add_submission(recording_path=str(wav), recording_name="call.wav", external_id="callrelay-x",
                            details={"title": "before the upgrade"}, agent="ann", state="checked")
        rows = hist.count()
    with sqlite3.connect(path) as db:  # as the release before the `labels` table (migration 4) wrote it
        db.execute("DROP TABLE labels")
        db.execute("ALTER TABLE submissions DROP COLUMN transcript_source")  # migration 5's (issue 20)
        db.execute("ALTER TABLE submissions DROP COLUMN transcript_id")
        db.execute("PRAGMA user_version = 3")
    run = cd.run(home, "history-json", wav)
    assert run.returncode == 0 and run.stderr == "", run.stderr
    assert cd.rows_listed(run) == rows
    assert (home / "history.sqlite3.v3.bak").exists()
    with h.History(path, readonly=True) as hist:
        assert hist.schema_version == len(h.MIGRATIONS)
