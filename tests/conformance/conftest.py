"""Conformance: clients and tools the project did not write drive the sandbox.

HubSpot's official Python SDK (``hubspot-api-client``) does what an integration does, used as its
README and HubSpot's guides show; schemathesis generates requests from HubSpot's own OpenAPI files.
Whatever HubSpot documents as valid must succeed, and what it documents as refused must be refused
in HubSpot's error shape. Neither tool knows anything about the sandbox or the app's client.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from desktop_app.sandbox import RateLimits, Sandbox


@pytest.fixture(autouse=True)
def _sdk_leaves_logging_as_it_was() -> Iterator[None]:
    """HubSpot's SDK sets the ``urllib3`` and its own loggers' levels when it builds a ``Configuration``
    (WARNING unless debug): put them back, so a later test that reads urllib3's log (the client's
    secret scrubbing, ``test_secrets_never_reach_errors_or_logs``) sees what it would alone."""
    loggers = [logging.getLogger(name) for name in ("urllib3", "hubspot", "")]
    levels = [lg.level for lg in loggers]
    yield
    for lg, level in zip(loggers, levels, strict=True):
        lg.setLevel(level)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    # No search lag: these tests check what is accepted, not how soon a search sees a create.
    sb = Sandbox(limits=RateLimits(per_interval=10_000, daily=1_000_000, search_per_second=1000), search_lag_s=0)
    sb.start()
    try:
        yield sb
    finally:
        sb.stop()
