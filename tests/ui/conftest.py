"""Fixtures for the UI tests."""

from __future__ import annotations

import shutil

import pytest
from ui_helpers import fill_history

from desktop_app import paths
from desktop_app.sync import history as h


@pytest.fixture
def history(callrelay_home):
    with h.History() as hist:
        yield hist


@pytest.fixture(scope="session")
def _history_100k_file(tmp_path_factory):
    """A history file with 100,000 submissions, written once per test run."""
    path = tmp_path_factory.mktemp("big") / "history.sqlite3"
    with h.History(path) as hist:
        fill_history(hist, 100_000)
    return path


@pytest.fixture
def history_100k(callrelay_home, _history_100k_file):
    """This test's own copy of the 100,000-row history, as its data directory's history."""
    shutil.copy2(_history_100k_file, paths.history_db())
    with h.History() as hist:
        yield hist
