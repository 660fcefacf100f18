"""Fixtures of the tunnel tests: a loopback origin server, a real sshd, a port that never answers."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from tunnel_helpers import BlackHole, Origin, Sshd


@pytest.fixture
def origin() -> Iterator[Origin]:
    server = Origin()
    yield server
    server.close()


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    hole = BlackHole()
    yield hole
    hole.close()


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    if shutil.which("sshd") is None and not Path("/usr/sbin/sshd").exists():
        pytest.fail("sshd is needed (Debian: openssh-server; scripts/system-deps test installs it)")
    server = Sshd(tmp_path / "sshd")
    server.start()
    yield server
    server.kill()
