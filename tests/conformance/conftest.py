"""Conformance: clients and tools the project did not write drive the sandbox.

HubSpot's official Python SDK (``hubspot-api-client``) does what an integration does, used as its
README and HubSpot's guides show; schemathesis generates requests from HubSpot's own OpenAPI files.
Whatever HubSpot documents as valid must succeed, and what it documents as refused must be refused
in HubSpot's error shape. Neither tool knows anything about the sandbox or the app's client.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from desktop_app.sandbox import RateLimits, Sandbox


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    # No search lag: these tests check what is accepted, not how soon a search sees a create.
    sb = Sandbox(limits=RateLimits(per_interval=10_000, daily=1_000_000, search_per_second=1000), search_lag_s=0)
    sb.start()
    try:
        yield sb
    finally:
        sb.stop()
