"""Fixtures of the recording-server tests: a store in the test's data directory and a running server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from server_helpers import CLIENT_SECRET, SIGNING_KEY, random_file

from desktop_app.server import RecordingServer
from desktop_app.server.recordings import RecordingStore, StoredRecording


@pytest.fixture
def store() -> Iterator[RecordingStore]:
    s = RecordingStore()
    yield s
    s.close()


@pytest.fixture
def blob(tmp_path: Path) -> Path:
    """A 300 KB file of random bytes (ranges are checked against it byte for byte)."""
    return random_file(tmp_path / "call 1 é.wav", 300_000)


@pytest.fixture
def stored(store: RecordingStore, blob: Path) -> StoredRecording:
    return store.add(blob)


@pytest.fixture
def server(store: RecordingStore) -> Iterator[RecordingServer]:
    srv = RecordingServer(store, signing_key=SIGNING_KEY, client_secret=CLIENT_SECRET)
    srv.start()
    yield srv
    srv.stop()
