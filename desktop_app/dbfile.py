"""The app's SQLite files (the history, the recording catalogue), opened so that trouble with a file
becomes one sentence naming it and what to do, and a damaged file is never written to.

``connect`` returns a ``Connection`` whose every statement and fetch turns SQLite's errors about the
file — damaged, a folder, read-only, a full or failing disk, busy, text that is not UTF-8 — into the
caller's ``UserError`` class with that sentence. A broken constraint or a misuse of the API stays the
sqlite3 error it is: that is the program's business, not the user's. ``readonly=True`` changes nothing
on disk and still reads a file whose folder cannot be written (or whose disk is full).
``check_version`` refuses a file written by a newer Call Relay or by another program before anything
is written to it; ``upgrade`` applies a file's numbered migrations (a copy of an older file kept first)
in one transaction, so a migration that fails halfway leaves the file as it was; ``transaction`` keeps the error that ended a transaction when SQLite has already
rolled it back (a full disk does that) instead of a second one from ROLLBACK.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from desktop_app.errors import UserError

# Errors that are the program's (a constraint, the API misused), not the file's.
_NOT_THE_FILE = (sqlite3.IntegrityError, sqlite3.ProgrammingError)
# What SQLite says when the file is the trouble, by the name of its error code.
_DAMAGED = ("SQLITE_CORRUPT", "SQLITE_NOTADB")
_READONLY = ("SQLITE_READONLY", "SQLITE_PERM", "SQLITE_AUTH")
_DISK = ("SQLITE_FULL", "SQLITE_IOERR")
_BUSY = ("SQLITE_BUSY", "SQLITE_LOCKED")
# ... and where it gives no code name: text that is not UTF-8, details that are not JSON.
_DAMAGED_TEXT = ("Could not decode to UTF-8", "malformed JSON")


def problem(exc: BaseException, path: Path, what: str) -> str:
    """One sentence for an error met while using the SQLite file ``path`` (``what`` it is for the user)."""
    name = getattr(exc, "sqlite_errorname", None) or ""
    said = str(exc)
    if name.startswith(_DAMAGED) or said.startswith(_DAMAGED_TEXT):
        return (f"The {what} {path} is damaged ({said}); Call Relay leaves it as it is: move it aside (or put "
                "back a copy) and a new one is started.")
    if name.startswith("SQLITE_CANTOPEN"):
        if path.is_dir():
            return f"The {what} {path} is a folder, not a file: move it aside and a new one is started."
        return (f"The {what} {path} cannot be opened ({said}): make sure it and its folder {path.parent} can be "
                "read and written.")
    if name.startswith(_READONLY):
        return f"The {what} {path} cannot be written (it or its folder is read-only): make both writable."
    if name.startswith(_DISK):
        return (f"The {what} {path} cannot be written or read: the disk holding it is full or failing ({said}); "
                "free some space and try again.")
    if name.startswith(_BUSY):
        return f"The {what} {path} is busy (another Call Relay process is writing it): try again in a moment."
    return f"The {what} {path} cannot be used ({said}): move it aside and a new one is started."


class Cursor(sqlite3.Cursor):
    """A cursor whose statements and fetches turn the file's errors into the connection's ``error``."""

    connection: Connection

    def _raise(self, exc: sqlite3.Error) -> NoReturn:
        if not isinstance(exc, _NOT_THE_FILE):
            raise self.connection.user_error(exc) from exc
        raise exc

    def execute(self, sql: str, parameters: Any = (), /) -> Cursor:
        try:
            super().execute(sql, parameters)
        except sqlite3.Error as exc:
            self._raise(exc)
        return self

    def executemany(self, sql: str, seq_of_parameters: Iterable[Any], /) -> Cursor:
        try:
            super().executemany(sql, seq_of_parameters)
        except sqlite3.Error as exc:
            self._raise(exc)
        return self

    def executescript(self, sql_script: str, /) -> Cursor:
        try:
            super().executescript(sql_script)
        except sqlite3.Error as exc:
            self._raise(exc)
        return self

    def fetchone(self) -> Any:
        try:
            return super().fetchone()
        except sqlite3.Error as exc:
            self._raise(exc)

    def fetchmany(self, size: int | None = 1) -> list[Any]:
        try:
            return super().fetchmany(size if size is not None else self.arraysize)
        except sqlite3.Error as exc:
            self._raise(exc)

    def fetchall(self) -> list[Any]:
        try:
            return super().fetchall()
        except sqlite3.Error as exc:
            self._raise(exc)

    def __next__(self) -> Any:
        try:
            return super().__next__()
        except sqlite3.Error as exc:
            self._raise(exc)


class Connection(sqlite3.Connection):
    """A connection to one of the app's files; see the module's docstring."""

    path: Path
    what: str
    error: type[UserError]

    def user_error(self, exc: BaseException) -> UserError:
        return self.error(problem(exc, self.path, self.what))

    def cursor(self, factory: Any = None) -> Cursor:  # type: ignore[override]
        cur: Cursor = super().cursor(factory or Cursor)
        return cur

    def execute(self, sql: str, parameters: Any = (), /) -> Cursor:
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> Cursor:
        return self.cursor().executemany(sql, parameters)

    def executescript(self, sql_script: str, /) -> Cursor:
        return self.cursor().executescript(sql_script)


def connect(path: Path | None, *, what: str, error: type[UserError], readonly: bool = False,
            timeout: float = 30.0) -> Connection:
    """Open ``path`` (None: an empty database in memory) in autocommit mode, for use from any thread.

    ``readonly`` opens it without writing anything, not even the journal files when its folder or disk
    does not allow them (SQLite then reads the file as it stands on disk).
    """
    if path is None:
        return _open(":memory:", Path(":memory:"), what, error, timeout)
    if not readonly:
        return _open(str(path), path, what, error, timeout)
    conn = _open(path.absolute().as_uri() + "?mode=ro", path, what, error, timeout, uri=True)
    try:
        conn.execute("PRAGMA user_version").fetchone()  # reading a WAL file needs its -shm beside it
    except UserError as exc:
        conn.close()
        code = getattr(exc.__cause__, "sqlite_errorname", None) or ""
        if path.is_dir() or not code.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", *_DISK)):
            raise
        # a folder that cannot be written, or a full disk: read the file as it stands (changes a crashed
        # writer left in its -wal stay unseen until it can be opened for writing)
        conn = _open(path.absolute().as_uri() + "?mode=ro&immutable=1", path, what, error, timeout, uri=True)
    return conn


def _open(target: str, path: Path, what: str, error: type[UserError], timeout: float, *,
          uri: bool = False) -> Connection:
    try:
        conn = sqlite3.connect(target, timeout=timeout, isolation_level=None, check_same_thread=False,
                               factory=Connection, uri=uri)
    except sqlite3.Error as exc:
        raise error(problem(exc, path, what)) from exc
    assert isinstance(conn, Connection)
    conn.path, conn.what, conn.error = path, what, error
    return conn


def check_version(conn: Connection, supported: int, own_tables: Iterable[str] = ()) -> int:
    """The file's schema version (``PRAGMA user_version``), read before anything is written to it.

    Refuses a file written by a newer Call Relay (``supported`` is this one's version) and a file of
    version 0 that holds tables other than ``own_tables`` (another program's database).
    """
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > supported:
        raise conn.error(f"The {conn.what} {conn.path} was written by a newer Call Relay (schema {version}); "
                         "update the app to use it (the file is left as it is).")
    if version == 0:
        own = set(own_tables)
        other = [name for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        ).fetchall() if name not in own]
        if other:
            raise conn.error(f"The {conn.what} {conn.path} is not Call Relay's (it holds a table {other[0]!r}): "
                             "move it aside and a new one is started.")
    return version


@contextmanager
def transaction(conn: Connection, mode: str = "IMMEDIATE") -> Iterator[None]:
    """``BEGIN mode`` … ``COMMIT``; on an error, ROLLBACK unless SQLite already rolled back, and the
    error that ended the transaction is the one raised."""
    conn.execute(f"BEGIN {mode}")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except (sqlite3.Error, UserError):
                pass  # the first error says what happened
        raise



def statements(script: str) -> list[str]:
    """Split a migration into whole statements (a trigger's body holds semicolons of its own)."""
    out: list[str] = []
    current = ""
    for piece in script.split(";"):
        current += piece + ";"
        if sqlite3.complete_statement(current):
            if current.strip(" \n;"):
                out.append(current.strip())
            current = ""
    return out


def upgrade(conn: Connection, migrations: Sequence[str], version: int) -> None:
    """Bring a file of schema ``version`` (``check_version``'s answer) up to ``len(migrations)``: migration
    ``n`` (numbered from 1) is ``migrations[n - 1]``, and ``PRAGMA user_version`` says how many are applied.

    A file that had a schema already is copied aside first (``<name>.v<version>.bak``). Every pending
    migration runs in one transaction, so one that fails halfway leaves the file as it was; a process
    that upgraded the file meanwhile (the transaction waits for it) leaves nothing to do.
    """
    if version > 0 and conn.path.is_file():  # keep a copy of the file as it was before changing it
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        backup = conn.path.with_name(f"{conn.path.name}.v{version}.bak")
        try:
            shutil.copy2(conn.path, backup)
        except OSError as exc:
            raise conn.error(f"The {conn.what} {conn.path} cannot be brought up to date: its copy {backup} cannot "
                             f"be written ({exc.strerror or exc}); free some space or make the folder "
                             "writable.") from None
    with transaction(conn):
        current = int(conn.execute("PRAGMA user_version").fetchone()[0])
        for number in range(current, len(migrations)):
            for statement in statements(migrations[number]):
                conn.execute(statement)
        if current < len(migrations):
            conn.execute(f"PRAGMA user_version = {len(migrations)}")
