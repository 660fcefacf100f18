"""What an operation's handler works with: the request's ``Context``, the ``Outcome`` it returns, and
``SandboxParts``, the parts of the sandbox it may use (``server.Sandbox`` has them). Below the handlers
(``handlers.py``, ``transcripts.py``), the front and the pipeline (``server.py``), so that none of them
needs another's module to name these, and the pipeline is the only one that knows them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from desktop_app import openapi
from desktop_app.sandbox.auth import Auth, Credentials
from desktop_app.sandbox.fetcher import Fetches
from desktop_app.sandbox.records import Records
from desktop_app.sandbox.state import Store


@dataclass
class Outcome:
    status: int
    payload: Any = None  # JSON value, or None for an empty body
    headers: list[tuple[str, str]] = field(default_factory=list)
    network: str = ""  # "", "reset", "timeout"
    seconds: float = 0.0
    raw: bytes | None = None  # a non-JSON body


@dataclass
class Context:
    op: openapi.Operation
    alias: str
    path_params: dict[str, Any]
    query: dict[str, Any]
    body: Any
    principal: dict[str, Any]
    raw_query: dict[str, list[str]]
    path: str = ""  # the request's path (a dated one when the client uses a dated API version)


class SandboxParts(Protocol):
    """The sandbox as a handler sees it (``server.Sandbox`` is one)."""

    store: Store
    records: Records
    auth: Auth
    credentials: Credentials
    fetches: Fetches
    rotate_refresh_tokens: bool

    @property
    def url(self) -> str: ...

    @property
    def token_ttl_s(self) -> int: ...

    def associations(self) -> list[dict[str, Any]]: ...

    def owners(self) -> list[dict[str, Any]]: ...

    def recording_setting(self, app_id: int | None = None) -> dict[str, Any] | None: ...


Handler = Callable[[SandboxParts, Context], Outcome]
