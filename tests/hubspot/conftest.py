"""Fixtures for the HubSpot client's tests, and the contract check.

**Contract check.** Every request the client sends to a HubSpot stand-in during these tests (the
sandbox or a scripted server) is recorded at the transport (``HTTPAdapter.send``) and, when the
test ends, validated against HubSpot's OpenAPI descriptions (the trimmed copy in
``desktop_app/hubspot/spec``): path, method, parameters, media type, body schema, plus the auth
the operation accepts. A request that does not match fails the test that sent it, whatever the
server answered — so the sandbox cannot drift from HubSpot by agreeing with the client.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from hs_support import BROWSER_AGENT, Scripted, Sent, contract_problems
from requests.adapters import HTTPAdapter

from desktop_app.hubspot.client import HubSpotClient
from desktop_app.hubspot.config import config_from_env
from desktop_app.hubspot.ratelimit import RateLimiter
from desktop_app.sandbox import Sandbox


@dataclass
class ContractRecorder:
    bases: set[str] = field(default_factory=set)
    sent: list[Sent] = field(default_factory=list)
    checked: set[str] = field(default_factory=set)  # operationIds validated in this session

    def watch(self, base_url: str) -> None:
        """Treat requests to ``base_url`` as requests to HubSpot."""
        self.bases.add(base_url.rstrip("/"))

    def record(self, request: requests.PreparedRequest) -> None:
        url = request.url or ""
        if str(request.headers.get("User-Agent", "")).startswith(BROWSER_AGENT):
            return  # a test standing in for the user's browser (the OAuth sign-in page), not the client
        if any(url.startswith(b + "/") for b in self.bases):
            body = request.body.encode() if isinstance(request.body, str) else request.body
            self.sent.append(Sent(str(request.method), url, dict(request.headers), body))


_RECORDER = ContractRecorder()
_real_send = HTTPAdapter.send


def _recording_send(self: HTTPAdapter, request: requests.PreparedRequest, *args: Any,
                    **kwargs: Any) -> requests.Response:
    _RECORDER.record(request)
    return _real_send(self, request, *args, **kwargs)


@pytest.fixture(autouse=True)
def contract(monkeypatch: pytest.MonkeyPatch) -> Iterator[ContractRecorder]:
    """Records this test's requests to watched servers and validates them when the test ends."""
    monkeypatch.setattr(HTTPAdapter, "send", _recording_send)
    _RECORDER.bases.clear()
    _RECORDER.sent.clear()
    yield _RECORDER
    failures = []
    for sent in _RECORDER.sent:
        op_id, problems = contract_problems(sent)
        if op_id:
            _RECORDER.checked.add(op_id)
        failures += [f"{sent.method} {urllib.parse.urlsplit(sent.url).path}: {p}" for p in problems]
    _RECORDER.sent.clear()
    assert not failures, "requests that HubSpot's descriptions do not allow:\n" + "\n".join(failures)


@pytest.fixture
def scripted(contract: ContractRecorder) -> Iterator[Scripted]:
    server = Scripted()
    contract.watch(server.url)
    yield server
    server.stop()


@pytest.fixture
def sandbox(contract: ContractRecorder) -> Iterator[Sandbox]:
    """A running sandbox whose requests from the client are contract-checked."""
    sb = Sandbox(port=0, search_lag_s=0).start()  # searches right after creates: the lag is not tested here
    contract.watch(sb.url)
    yield sb
    sb.stop()
    assert sb.response_problems == [], "the sandbox answered outside HubSpot's descriptions"


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[HubSpotClient]:
    """A private-app client of the sandbox, with its own limiter and quick back-off."""
    with HubSpotClient(config_from_env(sandbox.env()), limiter=RateLimiter()) as c:
        yield c
