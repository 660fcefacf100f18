"""The sandbox: a local HubSpot on loopback, strict like HubSpot. This module is its front door and the
request pipeline; the parts are in their own modules (docs/ARCHITECTURE.md, "Sandbox"):

- ``front.py``: the HTTP server (reads requests, writes answers, drops connections for faults);
- ``auth.py``: credentials, tokens, and each request's authentication and scopes;
- ``limits.py``: HubSpot's rate limits and their headers; ``faults.py``: test hooks (fault rules);
- ``handlers.py``: one function per operation; ``records.py``: the CRM records they change, on the store
  (``state.py``), with HubSpot's property rules and search in ``crm.py``;
- ``fetcher.py``: what HubSpot does after "recording ready" (fetch, ``judge.py``, transcript);
- ``desktop_app.openapi``: the checker of requests and answers against HubSpot's descriptions
  (the trimmed copy in ``desktop_app/hubspot/spec``), shared with the client's contract test.

Each request is matched to an operation of the trimmed copy, then: fault rules, authentication and
scopes, rate limits, the request checked against the description (parameters, body, required fields,
types, enums), and only then the operation. Every answer has HubSpot's shape; errors are HubSpot's
``Error``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from desktop_app import openapi
from desktop_app.hubspot import versions
from desktop_app.sandbox import fetcher, transcripts
from desktop_app.sandbox.auth import (
    ANY_TOKEN_SCOPE,
    DEVELOPER_KEY_SCHEME,
    DEVELOPER_SCOPES,
    PRIVATE_APP_SCOPES,
    Auth,
    Credentials,
)
from desktop_app.sandbox.errors import ApiError, not_found, validation
from desktop_app.sandbox.faults import Fault, Faults, alias_of, fault_error, parse_spec
from desktop_app.sandbox.front import FrontServer
from desktop_app.sandbox.handlers import HANDLERS
from desktop_app.sandbox.limits import SEARCH, Limiter, RateLimits, limit_kind, rate_limit_error
from desktop_app.sandbox.operation import Context, Outcome
from desktop_app.sandbox.records import Records
from desktop_app.sandbox.state import Store

log = logging.getLogger(__name__)

MAX_RESPONSE_PROBLEMS = 1000
# HubSpot's search index trails a create or update by a few seconds ("it may take a few moments for
# newly created or updated objects to appear in search results": developers.hubspot.com/docs/api/crm/
# search); the sandbox's search does too unless told otherwise (``search_lag_s``, ``--search-lag``).
DEFAULT_SEARCH_LAG_S = 2.0

__all__ = [
    "ANY_TOKEN_SCOPE",
    "DEFAULT_SEARCH_LAG_S",
    "DEVELOPER_KEY_SCHEME",
    "DEVELOPER_SCOPES",
    "MAX_RESPONSE_PROBLEMS",
    "PRIVATE_APP_SCOPES",
    "Credentials",
    "RequestRecord",
    "Sandbox",
]


@dataclass
class RequestRecord:
    """One request as the sandbox saw it (secrets redacted)."""

    method: str
    path: str
    query: dict[str, list[str]]
    status: int
    alias: str = ""
    operation_id: str = ""
    auth: str = ""  # private-app, oauth, developer-api-key, none
    content_type: str = ""
    body: bytes = b""
    json: Any = None
    correlation_id: str = ""
    fault: str = ""
    error_category: str = ""
    time: float = 0.0
    duration_ms: float = 0.0


def _as_dated(op: openapi.Operation, outcome: Outcome) -> Outcome:
    """A v3 handler's answer as the dated operation ``op`` gives it: the dated files have no 207 (a batch
    with failures answers its one success status, the errors and ``numErrors`` beside the results) and
    answer an association batch create with 200 where v3 says 201."""
    described = [int(code) for code in op.raw.get("responses", {}) if code.isdigit() and code.startswith("2")]
    if 200 <= outcome.status < 300 and described and outcome.status not in described:
        outcome.status = described[0]
    if isinstance(outcome.payload, dict) and isinstance(outcome.payload.get("errors"), list):
        outcome.payload["numErrors"] = len(outcome.payload["errors"])
    return outcome


def _redact_query(query: dict[str, list[str]]) -> dict[str, list[str]]:
    return {k: (["<redacted>"] if k in ("hapikey", "client_secret", "refresh_token", "code") else v)
            for k, v in query.items()}


class Sandbox:
    """A local HubSpot. ``start()`` returns once it listens; ``stop()`` ends it. A context manager too.

    ``faults``: a ``Faults`` object, or a text spec (see ``desktop_app.sandbox.faults``).
    ``limits``: the rate limits (``RateLimits``). ``analysis_limit``: transcriptions a month before
    HubSpot's account-wide cap stops them (None: no cap). ``state_file``: SQLite file to keep the
    objects and credentials in across restarts (None: memory only).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, state_file: str | Path | None = None,
                 faults: Faults | str | None = None, *, limits: RateLimits | None = None,
                 analysis_limit: int | None = None, token_ttl_s: int = 1800, rotate_refresh_tokens: bool = True,
                 seed: bool = True, check_responses: bool = True, fetch_chunk: int = 256 * 1024,
                 fetch_timeout_s: float = 30.0, max_logged_requests: int | None = 10_000,
                 search_lag_s: float = DEFAULT_SEARCH_LAG_S) -> None:
        self.host = host
        self.port = port
        self.store = Store(Path(state_file) if state_file is not None else None)
        if isinstance(faults, str):
            self.faults = Faults(parse_spec(faults))
        else:
            self.faults = faults if faults is not None else Faults()
        self.limiter = Limiter(limits or RateLimits())
        self.auth = Auth(self.store, token_ttl_s)
        self.credentials: Credentials = self.auth.credentials
        # HubSpot's search index trails creates by ``search_lag_s``; 0: found at once
        self.records = Records(self.store, self.credentials.portal_id, search_lag_s)
        self.fetches = fetcher.Fetches(self.records, self.credentials.client_secret, analysis_limit=analysis_limit,
                                       chunk=fetch_chunk, timeout_s=fetch_timeout_s)
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.check_responses = check_responses
        self.requests: list[RequestRecord] = []
        self.max_logged_requests = max_logged_requests  # the latest requests kept in ``requests`` (None: all)
        # Distinct ways answers departed from HubSpot's response schemas (bounded: memory stays flat
        # however long the sandbox runs), and how many times any was seen.
        self._response_problems: dict[str, None] = {}
        self._problems_lock = threading.Lock()
        self.response_problem_count = 0
        self._stopping = threading.Event()
        self._server: FrontServer | None = None
        self._thread: threading.Thread | None = None
        if seed and not self.store.get("meta", "seeded"):
            self.records.seed()

    @property
    def search_lag_s(self) -> float:
        return self.records.search_lag_s

    @search_lag_s.setter
    def search_lag_s(self, value: float) -> None:
        self.records.search_lag_s = value

    @property
    def token_ttl_s(self) -> int:
        return self.auth.token_ttl_s

    @property
    def fetch_log(self) -> list[fetcher.FetchRecord]:
        """Every recording fetch, in the order the calls were marked ready."""
        return self.fetches.history

    @property
    def response_problems(self) -> list[str]:
        """Each distinct way an answer departed from HubSpot's response schema, first seen first (at most
        ``MAX_RESPONSE_PROBLEMS``; ``response_problem_count`` counts every occurrence)."""
        return list(self._response_problems)

    def _note_response_problem(self, text: str) -> None:
        with self._problems_lock:
            self.response_problem_count += 1
            if len(self._response_problems) < MAX_RESPONSE_PROBLEMS:
                self._response_problems[text] = None

    # ----------------------------------------------------------------------------------- lifecycle
    def start(self) -> Sandbox:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = FrontServer((self.host, self.port), self.process, self._stopping)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name=f"sandbox:{self.port}", daemon=True)
        self._thread.start()
        log.info("sandbox listening on %s", self.url)
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.close_connections()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.fetches.join()
        self.store.close()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def env(self) -> dict[str, str]:
        """The ``HUBSPOT_*`` variables every ``callrelay`` command reads when set."""
        c = self.credentials
        return {
            "HUBSPOT_URL": self.url,
            "HUBSPOT_ACCESS_TOKEN": c.access_token,
            "HUBSPOT_APP_ID": str(c.app_id),
            "HUBSPOT_DEVELOPER_API_KEY": c.developer_api_key,
            "HUBSPOT_CLIENT_SECRET": c.client_secret,
            "HUBSPOT_PORTAL_ID": str(c.portal_id),
        }

    def set_limits(self, limits: RateLimits) -> None:
        self.limiter = Limiter(limits)

    # --------------------------------------------------------------------------- test accessors
    def _objects(self, kind: str) -> list[dict[str, Any]]:
        return [{k: v for k, v in o.items() if k not in ("kind", "searchable_at")} for o in self.records.objects_stored(kind)]

    def calls(self) -> list[dict[str, Any]]:
        """Every call: ``{"id", "properties", "createdAt", "updatedAt"}``, oldest first."""
        return self._objects("calls")

    def call(self, call_id: str) -> dict[str, Any] | None:
        obj = self.store.get("calls", str(call_id))
        return None if obj is None else {k: v for k, v in obj.items() if k not in ("kind", "searchable_at")}

    def contacts(self) -> list[dict[str, Any]]:
        return self._objects("contacts")

    def owners(self) -> list[dict[str, Any]]:
        """Owners with the sandbox-only ``paid_seat`` flag."""
        return sorted(self.store.values("owners"), key=lambda o: o["id"])

    def companies(self) -> list[dict[str, Any]]:
        return self.store.values("companies")

    def deals(self) -> list[dict[str, Any]]:
        return self.store.values("deals")

    def tickets(self) -> list[dict[str, Any]]:
        return self.store.values("tickets")

    def associations(self) -> list[dict[str, Any]]:
        """Every association: ``{"fromType", "fromId", "toType", "toId", "types": [{category, typeId}]}``
        (both directions are listed, as HubSpot keeps both)."""
        return sorted(self.store.values("associations"), key=lambda a: (a["fromType"], a["fromId"], a["toType"],
                                                                        a["toId"]))

    def recording_setting(self, app_id: int | None = None) -> dict[str, Any] | None:
        value = self.store.get("settings", str(app_id if app_id is not None else self.credentials.app_id))
        return None if value is None else dict(value)

    def ready_marked(self) -> list[str]:
        """Ids of the calls marked "recording ready", in order."""
        marks = self.store.get("meta", "ready") or []
        return [str(m) for m in marks]

    def transcripts(self) -> list[dict[str, Any]]:
        return self.store.values("transcripts")

    def call_transcript(self, call_id: str) -> dict[str, Any] | None:
        """The transcript the call shows (its ``hs_call_transcription_id``), as a GET returns it; None if none."""
        return transcripts.of_call(self, call_id)

    def set_owner_seat(self, owner_id: str, paid: bool) -> None:
        with self.store.lock:
            owner = self.store.get("owners", owner_id)
            if owner is None:
                raise KeyError(owner_id)
            self.store.put("owners", owner_id, {**owner, "paid_seat": paid})

    def add_contact(self, **properties: str) -> str:
        """A contact created directly (not through the API); returns its id."""
        return str(self.records.create_object("contacts", dict(properties))["id"])

    def issue_token(self, scopes: list[str] | tuple[str, ...], *, kind: str = "oauth", ttl_s: int | None = None,
                    refresh: bool = False) -> str | tuple[str, str]:
        """A token with exactly ``scopes``; ``kind`` "oauth" (expires after ``ttl_s``, default the sandbox's
        token lifetime) or "private-app". With ``refresh`` also a refresh token: ``(access, refresh)``."""
        return self.auth.issue_token(scopes, kind=kind, ttl_s=ttl_s, refresh=refresh)

    def expire_token(self, token: str) -> None:
        self.auth.expire_token(token)

    def wait_for_fetch(self, call_id: str, timeout: float = 30.0) -> fetcher.FetchRecord:
        """The fetch that followed the latest "recording ready" of a call, once finished (TimeoutError when
        it does not finish in time)."""
        return self.fetches.wait(call_id, timeout)

    def requests_for(self, alias: str) -> list[RequestRecord]:
        return [r for r in list(self.requests) if r.alias == alias]

    # ------------------------------------------------------------------------------- processing
    def process(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Outcome:
        """One request, from its method, target (path and query), headers (lower-case names) and body."""
        started = time.monotonic()
        correlation = str(uuid.uuid4())
        split = urllib.parse.urlsplit(target)
        path = split.path
        raw_query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        content_type = headers.get("content-type", "")
        record = RequestRecord(method, path, _redact_query(raw_query), 0, content_type=content_type, body=body,
                               correlation_id=correlation, time=time.time())
        if body and "json" in content_type:
            try:
                record.json = json.loads(body)
            except ValueError:
                record.json = None
        outcome: Outcome | None = None
        try:
            outcome, cut = self._answer(record, target, headers, raw_query, body)
            if cut:  # a fault drops the connection: no answer, so no correlation id either
                return outcome
        except ApiError as err:
            outcome = Outcome(err.status, err.body(correlation), list(err.headers))
            record.error_category = err.category
        except Exception as exc:  # an answer, never a dropped connection, on a sandbox bug
            log.exception("sandbox error on %s %s", method, path)
            internal = ApiError(500, "INTERNAL_ERROR", f"Sandbox error: {type(exc).__name__}: {exc}")
            outcome = Outcome(500, internal.body(correlation))
            record.error_category = internal.category
        finally:
            self._log_request(record, outcome, started)
        outcome.headers.append(("X-HubSpot-Correlation-Id", correlation))
        return outcome

    def _answer(self, record: RequestRecord, target: str, headers: dict[str, str],
                raw_query: dict[str, list[str]], body: bytes) -> tuple[Outcome, bool]:
        """The handler's answer to a request (ApiError for HubSpot's error answers), and whether a fault
        cut the connection instead: route, faults, authentication, rate limits, validation, handler."""
        method, path, content_type = record.method, record.path, record.content_type
        op, served, canonical = self._route(method, path)
        record.alias = alias_of(served.method, served.path)
        record.operation_id = op.operation_id
        fault = self._take_fault(record, op)
        if fault is not None and fault.action in ("reset", "timeout"):
            return Outcome(0, network=fault.action, seconds=fault.seconds), True
        principal = self.auth.authenticate(op, headers, raw_query)
        record.auth = principal.get("kind", "none")
        rate_headers = self._rate_headers(op, principal)
        checked = openapi.check_request(method, target, content_type=content_type or None, body=body or None)
        if checked.problems:
            problems = checked.problems
            raise validation(
                "Invalid input: " + "; ".join(p.message for p in problems),
                errors=[p.as_error_detail() for p in problems],
            )
        path_params = checked.path_params if served is op else openapi.check_request(method, canonical).path_params
        ctx = Context(served, record.alias, path_params, checked.query, checked.body, principal, raw_query,
                      path=path)
        handler = HANDLERS.get(record.alias)
        if handler is None:  # pragma: no cover - every alias has a handler
            raise ApiError(501, "NOT_IMPLEMENTED", f"{record.alias} is not implemented by the sandbox")
        outcome = handler(self, ctx)
        if served is not op:
            outcome = _as_dated(op, outcome)
        outcome.headers = rate_headers + outcome.headers
        if fault is not None and fault.action == "lost":
            outcome.network = "reset"
        if self.check_responses and outcome.payload is not None and 200 <= outcome.status < 300:
            for problem in openapi.validate_response(op, outcome.status, outcome.payload):
                self._note_response_problem(f"{record.alias} {outcome.status}: {problem}")
        return outcome, False

    @staticmethod
    def _route(method: str, path: str) -> tuple[openapi.Operation, openapi.Operation, str]:
        """The described operation (405/404 ApiError when there is none), the operation that serves it and
        the v3 path it is served on: a dated path (hubspot.api_version 2026-09) is checked against its own
        version's description and served by the v3 operation's handler, on the same state."""
        found = openapi.find_operation(method, path)
        if found is None:
            allowed = openapi.methods_for(path)
            if allowed:
                raise ApiError(405, "VALIDATION_ERROR", f"{method} is not allowed on {path}; use "
                               f"{', '.join(allowed)}", headers=[("Allow", ", ".join(allowed))])
            raise not_found(f"Unable to find a resource for {method} {path}: HubSpot describes no such "
                            "endpoint")
        op, _ = found
        served, canonical = op, versions.v3_path(path)
        if canonical != path:
            v3_found = openapi.find_operation(method, canonical)
            if v3_found is None:
                raise not_found(f"Unable to find a resource for {method} {path}: the sandbox serves no such "
                                "endpoint")
            served = v3_found[0]
        return op, served, canonical

    def _take_fault(self, record: RequestRecord, op: openapi.Operation) -> Fault | None:
        """The fault injected into this request, if any: a status raises its ApiError, "slow" waits here."""
        fault = self.faults.take(record.alias, op.operation_id, op.method, op.path)
        if fault is not None:
            record.fault = fault.action
            if fault.action == "status":
                raise fault_error(fault, self.limiter, self.credentials.portal_id)
            if fault.action == "slow":
                self._stopping.wait(fault.seconds)
        return fault

    def _rate_headers(self, op: openapi.Operation, principal: dict[str, Any]) -> list[tuple[str, str]]:
        """The rate-limit headers of an authenticated request (a 429 ApiError when it is over a limit)."""
        if principal.get("kind") in (None, "none"):
            return []
        kind = limit_kind(op)
        key = principal.get("token", principal["key"]) if kind == SEARCH else principal["key"]
        verdict = self.limiter.check(key, kind=kind, daily_headers=principal["kind"] != "oauth")
        rate_headers = list(verdict.headers)
        if not verdict.allowed:
            raise rate_limit_error(verdict.policy, verdict.retry_after_s, rate_headers,
                                   self.credentials.portal_id)
        return rate_headers

    def _log_request(self, record: RequestRecord, outcome: Outcome | None, started: float) -> None:
        if outcome is not None:
            record.status = outcome.status
        record.duration_ms = (time.monotonic() - started) * 1000
        self.requests.append(record)
        if self.max_logged_requests is not None and len(self.requests) > self.max_logged_requests:
            del self.requests[: len(self.requests) - self.max_logged_requests]
