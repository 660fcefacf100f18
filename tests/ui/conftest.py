"""Fixtures for the UI tests."""

from __future__ import annotations

import pytest

from desktop_app.sync import history as h


@pytest.fixture
def history(callrelay_home):
    with h.History() as hist:
        yield hist
