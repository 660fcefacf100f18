"""The recording store and its catalogue.

A recording is copied once into the store directory (``paths.recordings_dir()``), named by the
SHA-256 of its content plus the original extension, written to a temporary file, fsynced, made
read-only and renamed into place, so a reader never sees a partial file and adding the same content
twice is a no-op. The catalogue (``catalog.sqlite3`` in the store directory, WAL mode) lists the
stored recordings and which call (HubSpot ``externalId``) plays which recording.

Several processes use one store at once (the GUI, ``callrelay upload``, ``callrelay serve``): every
method reads the catalogue afresh, so what one process adds the others see at once. Each thread gets
its own SQLite connection. The catalogue's schema has numbered ``MIGRATIONS`` and ``PRAGMA user_version``,
applied by ``dbfile.upgrade`` as the history's are (an older file copied aside first, all in one transaction).
A damaged, read-only or newer catalogue, or a full disk, raises ``StoreError`` with one sentence naming the
file (``dbfile``), and a damaged catalogue is never written.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import sqlite3
import stat
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from desktop_app import dbfile, paths
from desktop_app.errors import UserError

CATALOG_NAME = "catalog.sqlite3"
# Kept free on the disk beyond the recording itself, so the store never fills a disk to the brim.
DEFAULT_MIN_FREE_BYTES = 16 * 1024 * 1024
_CHUNK = 1024 * 1024
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_EXTENSION = re.compile(r"^\.[A-Za-z0-9]{1,10}$")


class StoreError(UserError, RuntimeError):
    """A recording could not be stored or found; the message says why in words a user can act on."""


@dataclass(frozen=True)
class StoredRecording:
    sha256: str
    path: Path
    filename: str  # the original file name (shown in Content-Disposition and the history)
    size: int
    mtime: float  # when the stored copy was written (the server's Last-Modified)


@dataclass(frozen=True)
class Share:
    """The call logged in HubSpot with ``external_id`` plays the recording ``sha256``."""

    external_id: str
    sha256: str
    app_id: str
    external_account_id: str
    created_at: float


MIGRATIONS: tuple[str, ...] = (
    # 1: the first schema ("IF NOT EXISTS": a file whose tables were made before its version was written)
    """
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
    """,
)


def sha256_of(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file's content: what the store names a recording by (OSError when unreadable)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def is_sha256(value: str) -> bool:
    return bool(_SHA256.match(value))


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class RecordingStore:
    """Content-addressed, read-only copies of recordings plus the catalogue that lists them."""

    def __init__(self, root: Path | None = None, *, min_free_bytes: int = DEFAULT_MIN_FREE_BYTES) -> None:
        self.root = Path(root) if root is not None else paths.recordings_dir()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"The recording store {self.root} cannot be created ({exc.strerror or exc}): "
                             "make it a writable folder.") from None
        self.catalog_path = self.root / CATALOG_NAME
        self.min_free_bytes = min_free_bytes
        self._local = threading.local()
        self._conn()  # create the schema now, so that errors show at start-up

    # -- catalogue -------------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = dbfile.connect(self.catalog_path, what="recording catalogue", error=StoreError)
            try:
                version = dbfile.check_version(conn, len(MIGRATIONS), own_tables=("recordings", "shares"))
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA foreign_keys=ON")
                if version < len(MIGRATIONS):
                    dbfile.upgrade(conn, MIGRATIONS, version)
            except BaseException:
                conn.close()
                raise
            self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close this thread's connection (other threads' close when they end)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _row_to_recording(self, row: tuple[str, str, str, int, float]) -> StoredRecording:
        sha, name, filename, size, mtime = row
        return StoredRecording(sha256=sha, path=self.root / name, filename=filename, size=size, mtime=mtime)

    def get(self, sha256: str) -> StoredRecording | None:
        if not is_sha256(sha256):
            return None
        row = self._conn().execute(
            "SELECT sha256, name, filename, size, mtime FROM recordings WHERE sha256 = ?", (sha256,)
        ).fetchone()
        return self._row_to_recording(row) if row else None

    def all(self) -> list[StoredRecording]:
        rows = self._conn().execute(
            "SELECT sha256, name, filename, size, mtime FROM recordings ORDER BY added_at"
        ).fetchall()
        return [self._row_to_recording(r) for r in rows]

    # -- adding ----------------------------------------------------------------------------------
    def add(self, path: Path | str, *, filename: str | None = None) -> StoredRecording:
        """Copy ``path`` into the store (never touching the original) and list it.

        Idempotent: the same content added again returns the stored recording. Raises StoreError
        when the file cannot be read, is empty, or the disk has no room for it; no partial file is
        left behind in any case.
        """
        source = Path(path)
        try:
            size = source.stat().st_size
        except OSError as exc:
            raise StoreError(f"Cannot read the recording {source}: {exc.strerror or exc}") from None
        if not source.is_file():
            raise StoreError(f"{source} is not a file")
        if size == 0:
            raise StoreError(f"The recording {source} is empty")
        ext = source.suffix.lower() if _EXTENSION.match(source.suffix) else ""
        name_shown = filename or source.name
        self._check_room(size, source)

        fd_tmp, tmp_name = tempfile.mkstemp(dir=self.root, prefix=".incoming-", suffix=".part")
        tmp = Path(tmp_name)
        digest = hashlib.sha256()
        try:
            with open(source, "rb") as src, os.fdopen(fd_tmp, "wb") as dst:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    dst.write(chunk)
                dst.flush()
                os.fsync(dst.fileno())
            os.chmod(tmp, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
            sha = digest.hexdigest()
            existing = self.get(sha)
            if existing is not None and existing.path.exists():
                tmp.unlink()
                return existing
            final = self.root / f"{sha}{ext}"
            os.replace(tmp, final)
            _fsync_dir(self.root)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                raise StoreError(
                    f"The disk holding the recording store ({self.root}) is full: {source.name} "
                    f"({size:,} bytes) was not stored. Free some space and try again."
                ) from None
            raise StoreError(f"Cannot store the recording {source}: {exc.strerror or exc}") from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        mtime = final.stat().st_mtime
        self._conn().execute(
            "INSERT INTO recordings(sha256, name, filename, size, mtime, added_at) VALUES (?,?,?,?,?,?) "
            "ON CONFLICT(sha256) DO UPDATE SET name=excluded.name, size=excluded.size, mtime=excluded.mtime",
            (sha, final.name, name_shown, size, mtime, time.time()),
        )
        return StoredRecording(sha256=sha, path=final, filename=name_shown, size=size, mtime=mtime)

    def _check_room(self, size: int, source: Path) -> None:
        free = shutil.disk_usage(self.root).free
        if free < size + self.min_free_bytes:
            raise StoreError(
                f"Not enough free disk space for {source.name}: it needs {size:,} bytes plus "
                f"{self.min_free_bytes:,} kept free, and the disk holding {self.root} has {free:,} bytes "
                "free. Free some space and try again."
            )

    # -- sharing ---------------------------------------------------------------------------------
    def share(self, external_id: str, sha256: str, *, app_id: str, external_account_id: str) -> None:
        """Record that the call logged with ``external_id`` plays recording ``sha256``.

        Idempotent; sharing an ``external_id`` again with other values replaces them (the call's
        recording was re-submitted).
        """
        if not external_id:
            raise StoreError("An externalId is needed to share a recording")
        if self.get(sha256) is None:
            raise StoreError(f"No stored recording has the hash {sha256!r}")
        self._conn().execute(
            "INSERT INTO shares(external_id, sha256, app_id, external_account_id, created_at) "
            "VALUES (?,?,?,?,?) ON CONFLICT(external_id) DO UPDATE SET sha256=excluded.sha256, "
            "app_id=excluded.app_id, external_account_id=excluded.external_account_id "
            "WHERE shares.sha256 IS NOT excluded.sha256 OR shares.app_id IS NOT excluded.app_id "
            "OR shares.external_account_id IS NOT excluded.external_account_id",
            (external_id, sha256, str(app_id), str(external_account_id), time.time()),
        )

    def lookup(self, external_id: str) -> Share | None:
        row = self._conn().execute(
            "SELECT external_id, sha256, app_id, external_account_id, created_at FROM shares "
            "WHERE external_id = ?",
            (external_id,),
        ).fetchone()
        return Share(*row) if row else None

    # -- removing --------------------------------------------------------------------------------
    def remove(self, sha256: str) -> bool:
        """Delete a recording and its shares (retention). Returns whether it was there."""
        rec = self.get(sha256)
        if rec is None:
            return False
        conn = self._conn()
        conn.execute("DELETE FROM shares WHERE sha256 = ?", (sha256,))
        conn.execute("DELETE FROM recordings WHERE sha256 = ?", (sha256,))
        try:
            rec.path.unlink()
        except FileNotFoundError:
            pass
        except PermissionError:  # read-only file on Windows
            os.chmod(rec.path, stat.S_IWUSR | stat.S_IRUSR)
            rec.path.unlink()
        return True

