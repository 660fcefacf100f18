from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from desktop_app.sandbox import Sandbox
from desktop_app.server import RecordingServer
from desktop_app.server.recordings import RecordingStore
from desktop_app.testing import CRASH_ENV


@pytest.fixture
def world(callrelay_home: Path) -> Iterator[tuple[Sandbox, RecordingServer, dict[str, str]]]:
    """The sandbox and this data directory's recording server, running in the test's process (as HubSpot
    and the app would), and the environment a ``callrelay`` subprocess needs to use them."""
    sb = Sandbox(port=0).start()
    server = RecordingServer(RecordingStore(), port=0, client_secret=sb.credentials.client_secret)
    server.start()
    server.set_public_url(server.local_url)
    env = {**os.environ, **sb.env(), "CALLRELAY_HOME": str(callrelay_home)}
    env.pop(CRASH_ENV, None)
    yield sb, server, env
    server.stop()
    sb.stop()
