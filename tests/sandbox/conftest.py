"""Fixtures for the sandbox tests: a running sandbox, an HTTP session, a recording server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sandbox_helpers import TinyRecordingServer, write_wav

from desktop_app.sandbox import RateLimits, Sandbox


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    sb = Sandbox(limits=RateLimits(per_interval=1000, daily=100_000, search_per_second=1000), fetch_chunk=16 * 1024,
                 search_lag_s=0)  # the lag has tests of its own
    sb.start()
    try:
        yield sb
    finally:
        sb.stop()


@pytest.fixture
def http() -> Iterator[requests.Session]:
    session = requests.Session()
    session.trust_env = False
    yield session
    session.close()


@pytest.fixture
def recording_server(tmp_path: Path) -> Iterator[TinyRecordingServer]:
    files = {
        "stereo.wav": write_wav(tmp_path / "stereo.wav", seconds=3.0),
        "mono.wav": write_wav(tmp_path / "mono.wav", channels=1),
        "same.wav": write_wav(tmp_path / "same.wav", identical=True),
    }
    silent = write_wav(tmp_path / "silent.wav")
    with open(silent, "r+b") as fh:  # keep the header, zero the samples: digital silence
        fh.seek(44)
        fh.write(bytes(silent.stat().st_size - 44))
    files["silent.wav"] = silent
    cut = tmp_path / "cut.wav"
    cut.write_bytes(files["stereo.wav"].read_bytes()[: files["stereo.wav"].stat().st_size // 2])
    files["cut.wav"] = cut
    notaudio = tmp_path / "notes.txt"
    notaudio.write_bytes(b"this is not audio at all\n" * 100)
    files["notes.txt"] = notaudio
    with TinyRecordingServer(files) as server:
        yield server
