"""Fixtures of the team-mode tests: one PostgreSQL cluster and one SeaweedFS per test session (started on
first use, stopped and removed at the end), a fresh database and a fresh bucket per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from services import Postgres, Seaweed


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    pg = Postgres()
    try:
        pg.start()
        yield pg
    finally:
        pg.stop()


@pytest.fixture(scope="session")
def seaweed() -> Iterator[Seaweed]:
    s3 = Seaweed()
    try:
        s3.start()
        yield s3
    finally:
        s3.stop()


@pytest.fixture
def database_url(postgres: Postgres) -> str:
    """The URL (with its password) of a new, empty database of the session's cluster."""
    return postgres.create_database()


@pytest.fixture
def bucket(seaweed: Seaweed, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new bucket; the standard AWS_* variables hold the gateway's keys for the test."""
    for name, value in seaweed.env().items():
        monkeypatch.setenv(name, value)
    return seaweed.make_bucket()
