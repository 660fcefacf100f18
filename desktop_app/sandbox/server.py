"""The sandbox: a local HubSpot on loopback, strict like HubSpot.

Each request is matched to an operation of the trimmed OpenAPI copy (``desktop_app.openapi`` over ``desktop_app/hubspot/spec``),
then: fault rules, authentication and scopes, rate limits, the request checked against the
description (parameters, body, required fields, types, enums), and only then the operation. Every
answer has HubSpot's shape; errors are HubSpot's ``Error``. See docs/ARCHITECTURE.md ("Sandbox").
"""

from __future__ import annotations

import http.server
import io
import json
import logging
import secrets
import socket
import struct
import threading
import time
import urllib.parse
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from desktop_app import openapi
from desktop_app.hubspot import versions
from desktop_app.sandbox import crm, fetcher, judge
from desktop_app.sandbox.errors import ApiError, not_found, validation
from desktop_app.sandbox.faults import Fault, Faults, alias_of, parse_spec
from desktop_app.sandbox.handlers import HANDLERS, Context, Outcome
from desktop_app.sandbox.limits import SEARCH, Limiter, RateLimits, limit_kind
from desktop_app.sandbox.seeds import CONTACT_SEEDS, OWNER_SEEDS
from desktop_app.sandbox.state import Store

log = logging.getLogger(__name__)

# Scopes of the private-app token the sandbox hands out: what the app needs, nothing more.
PRIVATE_APP_SCOPES = (
    "crm.objects.contacts.read", "crm.objects.contacts.write", "crm.objects.owners.read",
    "crm.objects.companies.read", "crm.objects.deals.read", "tickets", "crm.objects.calls.read",
)
DEVELOPER_SCOPES = ("developers-read", "developers-write")
DEVELOPER_KEY_SCHEME = "developer_hapikey"  # the dated files' name for the developer API key
ANY_TOKEN_SCOPE = "oauth"  # granted to every token (HubSpot lists it for endpoints any token may call)
MAX_RESPONSE_PROBLEMS = 1000
# HubSpot's search index trails a create or update by a few seconds ("it may take a few moments for
# newly created or updated objects to appear in search results": developers.hubspot.com/docs/api/crm/
# search); the sandbox's search does too unless told otherwise (``search_lag_s``, ``--search-lag``).
DEFAULT_SEARCH_LAG_S = 2.0

@dataclass(frozen=True)
class Credentials:
    access_token: str  # a private-app token with PRIVATE_APP_SCOPES
    app_id: int
    developer_api_key: str  # hapikey of the developer account that owns the app
    client_id: str  # OAuth client id of the app
    client_secret: str  # OAuth client secret (also signs the recording fetch, v3)
    portal_id: int

    @classmethod
    def generate(cls) -> Credentials:
        return cls(
            access_token=f"pat-na1-{uuid.uuid4()}",
            app_id=1_000_000 + secrets.randbelow(8_999_999),
            developer_api_key=str(uuid.uuid4()),
            client_id=str(uuid.uuid4()),
            client_secret=str(uuid.uuid4()),
            portal_id=10_000_000 + secrets.randbelow(89_999_999),
        )


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
        self.analysis_limit = analysis_limit
        self.token_ttl_s = token_ttl_s
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.check_responses = check_responses
        self.fetch_chunk = fetch_chunk
        self.fetch_timeout_s = fetch_timeout_s
        self.requests: list[RequestRecord] = []
        self.max_logged_requests = max_logged_requests  # the latest requests kept in ``requests`` (None: all)
        self.search_lag_s = search_lag_s  # HubSpot's search index trails creates; 0: found at once
        # Distinct ways answers departed from HubSpot's response schemas (bounded: memory stays flat
        # however long the sandbox runs), and how many times any was seen.
        self._response_problems: dict[str, None] = {}
        self._problems_lock = threading.Lock()
        self.response_problem_count = 0
        self.fetch_log: list[fetcher.FetchRecord] = []
        self._fetch_done = threading.Condition()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._workers: list[threading.Thread] = []
        self.credentials = self._load_credentials()
        if seed and not self.store.get("meta", "seeded"):
            self._seed()

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
        self._server = _Server((self.host, self.port), _Handler, self)
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
        for worker in list(self._workers):
            worker.join(timeout=self.fetch_timeout_s + 5)
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

    # ------------------------------------------------------------------------------ seeds, creds
    def _load_credentials(self) -> Credentials:
        saved = self.store.get("meta", "credentials")
        if saved:
            creds = Credentials(**saved)
        else:
            creds = Credentials.generate()
            self.store.put("meta", "credentials", asdict(creds))
        if not self.store.get("tokens", creds.access_token):
            self.store.put("tokens", creds.access_token, {"kind": "private-app", "scopes": list(PRIVATE_APP_SCOPES),
                                                          "expires_at": None, "user_id": OWNER_SEEDS[0][4]})
        return creds

    def _seed(self) -> None:
        stamp = crm.now_iso()
        for oid, email, first, last, user_id, paid in OWNER_SEEDS:
            self.store.put("owners", oid, {"id": oid, "email": email, "firstName": first, "lastName": last,
                                           "userId": user_id, "userIdIncludingInactive": user_id, "type": "PERSON",
                                           "createdAt": stamp, "updatedAt": stamp, "archived": False,
                                           "teams": [], "paid_seat": paid})
        for first, last, email, phone, mobile, company in CONTACT_SEEDS:
            props = {"firstname": first, "lastname": last, "email": email, "company": company}
            if phone:
                props["phone"] = phone
            if mobile:
                props["mobilephone"] = mobile
            self._create_object("contacts", {k: v for k, v in props.items() if v})
        for kind, name in (("companies", "Acme Corp"), ("deals", "Acme renewal"), ("tickets", "Acme support")):
            oid = str(self.store.next_id(kind, 3001))
            self.store.put(kind, oid, {"id": oid, "kind": kind, "properties": {"name": name, "hs_object_id": oid},
                                       "createdAt": stamp, "updatedAt": stamp})
        self.store.put("meta", "seeded", True)

    # --------------------------------------------------------------------------- test accessors
    def _objects(self, kind: str) -> list[dict[str, Any]]:
        return [{k: v for k, v in o.items() if k not in ("kind", "searchable_at")} for o in self._objects_stored(kind)]

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

    def set_owner_seat(self, owner_id: str, paid: bool) -> None:
        with self.store.lock:
            owner = self.store.get("owners", owner_id)
            if owner is None:
                raise KeyError(owner_id)
            self.store.put("owners", owner_id, {**owner, "paid_seat": paid})

    def add_contact(self, **properties: str) -> str:
        """A contact created directly (not through the API); returns its id."""
        return str(self._create_object("contacts", dict(properties))["id"])

    def issue_token(self, scopes: list[str] | tuple[str, ...], *, kind: str = "oauth", ttl_s: int | None = None,
                    refresh: bool = False) -> str | tuple[str, str]:
        """A token with exactly ``scopes``; ``kind`` "oauth" (expires after ``ttl_s``, default the sandbox's
        token lifetime) or "private-app". With ``refresh`` also a refresh token: ``(access, refresh)``."""
        if kind == "private-app":
            token = f"pat-na1-{uuid.uuid4()}"
            self.store.put("tokens", token, {"kind": kind, "scopes": list(scopes), "expires_at": None,
                                             "user_id": OWNER_SEEDS[0][4]})
            return token
        access, refresh_token = self._issue_oauth(list(scopes), ttl_s)
        return (access, refresh_token) if refresh else access

    def expire_token(self, token: str) -> None:
        with self.store.lock:
            rec = self.store.get("tokens", token)
            if rec is not None:
                self.store.put("tokens", token, {**rec, "expires_at": time.time() - 1})

    def wait_for_fetch(self, call_id: str, timeout: float = 30.0) -> fetcher.FetchRecord:
        """The fetch that followed the latest "recording ready" of a call, once finished (TimeoutError when
        it does not finish in time)."""
        deadline = time.monotonic() + timeout
        with self._fetch_done:
            while True:
                mine = [r for r in self.fetch_log if r.call_id == str(call_id)]
                if mine and mine[-1].done:  # the latest "ready" of that call, finished
                    return mine[-1]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no recording fetch of call {call_id} finished within {timeout} s")
                self._fetch_done.wait(left)

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
        outcome: Outcome
        fault: Fault | None = None
        try:
            found = openapi.find_operation(method, path)
            if found is None:
                allowed = openapi.methods_for(path)
                if allowed:
                    raise ApiError(405, "VALIDATION_ERROR", f"{method} is not allowed on {path}; use "
                                   f"{', '.join(allowed)}", headers=[("Allow", ", ".join(allowed))])
                raise not_found(f"Unable to find a resource for {method} {path}: HubSpot describes no such "
                                "endpoint")
            op, _ = found
            # A dated path (hubspot.api_version 2026-09) is checked against its own version's description
            # and served by the v3 operation's handler, on the same state.
            served, canonical = op, versions.v3_path(path)
            if canonical != path:
                v3_found = openapi.find_operation(method, canonical)
                if v3_found is None:
                    raise not_found(f"Unable to find a resource for {method} {path}: the sandbox serves no such "
                                    "endpoint")
                served = v3_found[0]
            record.alias = alias_of(served.method, served.path)
            record.operation_id = op.operation_id
            fault = self.faults.take(record.alias, op.operation_id, op.method, op.path)
            if fault is not None:
                record.fault = fault.action
                if fault.action == "status":
                    raise self._fault_error(fault)
                if fault.action in ("reset", "timeout"):
                    outcome = Outcome(0, network=fault.action, seconds=fault.seconds)
                    return outcome
                if fault.action == "slow":
                    self._stopping.wait(fault.seconds)
            principal = self._authenticate(op, headers, raw_query)
            record.auth = principal.get("kind", "none")
            rate_headers: list[tuple[str, str]] = []
            if principal.get("kind") not in (None, "none"):
                kind = limit_kind(op)
                key = principal.get("token", principal["key"]) if kind == SEARCH else principal["key"]
                verdict = self.limiter.check(key, kind=kind, daily_headers=principal["kind"] != "oauth")
                rate_headers = list(verdict.headers)
                if not verdict.allowed:
                    raise self._rate_limit_error(verdict.policy, verdict.retry_after_s, rate_headers)
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
        except ApiError as err:
            outcome = Outcome(err.status, err.body(correlation), list(err.headers))
            record.error_category = err.category
        except Exception as exc:  # an answer, never a dropped connection, on a sandbox bug
            log.exception("sandbox error on %s %s", method, path)
            internal = ApiError(500, "INTERNAL_ERROR", f"Sandbox error: {type(exc).__name__}: {exc}")
            outcome = Outcome(500, internal.body(correlation))
            record.error_category = internal.category
        finally:
            if "outcome" in locals():
                record.status = outcome.status
            record.duration_ms = (time.monotonic() - started) * 1000
            self.requests.append(record)
            if self.max_logged_requests is not None and len(self.requests) > self.max_logged_requests:
                del self.requests[: len(self.requests) - self.max_logged_requests]
        outcome.headers.append(("X-HubSpot-Correlation-Id", correlation))
        return outcome

    def _fault_error(self, fault: Fault) -> ApiError:
        if fault.status == 429:
            daily = fault.policy == "DAILY"
            headers = self.limiter.headers(remaining=None if daily else 0, daily_remaining=0 if daily else None)
            return self._rate_limit_error(fault.policy, 3600 if daily else 1, list(headers))
        category = "INTERNAL_ERROR" if fault.status >= 500 else "VALIDATION_ERROR"
        return ApiError(fault.status, category, f"Injected fault: HTTP {fault.status}")

    def _rate_limit_error(self, policy: str, retry_after: int, headers: list[tuple[str, str]]) -> ApiError:
        which = "daily" if policy == "DAILY" else "secondly"
        return ApiError(429, "RATE_LIMITS", f"You have reached your {which} limit.", headers=[
            *headers, ("Retry-After", str(retry_after))],
            extra={"errorType": "RATE_LIMIT", "policyName": policy,
                   "groupName": f"publicapi:{'daily' if policy == 'DAILY' else 'ten-secondly'}:"
                                f"{self.credentials.portal_id}"})

    # --------------------------------------------------------------------------------- auth
    def _authenticate(self, op: openapi.Operation, headers: dict[str, str],
                      query: dict[str, list[str]]) -> dict[str, Any]:
        security = op.security
        if not security:
            return {"kind": "none"}
        wanted = op.scopes
        hapikey = query["hapikey"][-1] if query.get("hapikey") else None
        auth = headers.get("authorization", "")
        # v3 lists the developer key's scopes under oauth2; the dated files name its scheme (developer_hapikey),
        # and some of them accept nothing else.
        takes_key = any(s in DEVELOPER_SCOPES for s in wanted) or any(DEVELOPER_KEY_SCHEME in alt for alt in security)
        takes_token = any(scheme != DEVELOPER_KEY_SCHEME for alt in security for scheme in alt)
        if hapikey is not None:
            if hapikey != self.credentials.developer_api_key:
                raise ApiError(401, "INVALID_AUTHENTICATION", "The API key provided is invalid. View or manage your "
                               "API key here: https://app.hubspot.com/l/api-key/")
            if not takes_key:
                raise ApiError(401, "INVALID_AUTHENTICATION", "This endpoint does not accept a developer API key "
                               "(hapikey); use an access token.")
            return {"kind": "developer-api-key", "key": "developer", "scopes": list(DEVELOPER_SCOPES)}
        if not takes_token:
            raise ApiError(401, "INVALID_AUTHENTICATION", "This endpoint accepts only the app's developer API key "
                           "(hapikey); an access token cannot call it.")
        if not auth:
            raise ApiError(401, "INVALID_AUTHENTICATION", "Authentication credentials not found. This API supports "
                           "OAuth 2.0 authentication and you can find more details at "
                           "https://developers.hubspot.com/docs/methods/auth/oauth-overview")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "INVALID_AUTHENTICATION", "Authentication credentials not found: the Authorization "
                           "header must be 'Bearer <token>'.")
        rec = self.store.get("tokens", token.strip())
        if rec is None:
            raise ApiError(401, "INVALID_AUTHENTICATION", "Authentication credentials not found. The access token "
                           "is not known to this account.")
        if rec.get("expires_at") is not None and rec["expires_at"] <= time.time():
            ago = max(0, int(time.time() - rec["expires_at"]))
            raise ApiError(401, "EXPIRED_AUTHENTICATION", f"The OAuth token used to make this call expired {ago} "
                           "second(s) ago.", context={"expiredAt": [str(int(rec["expires_at"] * 1000))]})
        have = set(rec.get("scopes", [])) | {ANY_TOKEN_SCOPE}
        if wanted and not have.intersection(wanted):
            raise ApiError(403, "MISSING_SCOPES", "This app hasn't been granted all required scopes to make this "
                           "call. Read more about required scopes here: https://developers.hubspot.com/scopes.",
                           errors=[{"message": "One or more of the following scopes are required.",
                                    "context": {"requiredGranularScopes": sorted(set(wanted))[:20]}}],
                           links={"scopes": "https://developers.hubspot.com/scopes"})
        return {"kind": rec["kind"], "key": "app", "scopes": sorted(have), "token": token.strip(),
                "user_id": rec.get("user_id")}

    def _issue_oauth(self, scopes: list[str], ttl_s: int | None = None) -> tuple[str, str]:
        access = f"sbx-oauth-{secrets.token_urlsafe(24)}"
        refresh = f"sbx-refresh-{uuid.uuid4()}"
        ttl = self.token_ttl_s if ttl_s is None else ttl_s
        self.store.put("tokens", access, {"kind": "oauth", "scopes": scopes, "expires_at": time.time() + ttl,
                                          "user_id": OWNER_SEEDS[0][4], "refresh": refresh})
        self.store.put("refresh_tokens", refresh, {"scopes": scopes, "user_id": OWNER_SEEDS[0][4], "valid": True})
        return access, refresh

    # ----------------------------------------------------------------------------- objects
    def _owner_ids(self) -> set[str]:
        return {o["id"] for o in self.store.values("owners") if not o.get("archived")}

    def _create_object(self, kind: str, properties: dict[str, str], *, lag: bool = False) -> dict[str, Any]:
        """A new object; with ``lag`` (a create through the API) it enters the search index only after
        ``search_lag_s`` (seeds and test-made records are found at once)."""
        with self.store.lock:
            oid = str(self.store.next_id(kind, 40_000_000_001 if kind == "calls" else 101))
            stamp = crm.now_iso()
            props = dict(properties)
            props.update({"hs_object_id": oid, crm.CREATED_PROP[kind]: stamp, crm.MODIFIED_PROP[kind]: stamp})
            obj = {"id": oid, "kind": kind, "properties": props, "createdAt": stamp, "updatedAt": stamp,
                   "searchable_at": time.time() + (self.search_lag_s if lag else 0.0)}
            self.store.put(kind, oid, obj)
            return obj

    def _update_object(self, kind: str, oid: str, properties: dict[str, str]) -> dict[str, Any]:
        with self.store.lock:
            obj = self.store.get(kind, oid)
            if obj is None:
                raise not_found(f"Object {kind} {oid} not found")
            stamp = crm.now_iso()
            props = {**obj["properties"], **properties, crm.MODIFIED_PROP[kind]: stamp}
            obj = {**obj, "properties": props, "updatedAt": stamp}
            self.store.put(kind, oid, obj)
            return obj

    def _set_call_properties(self, call_id: str, properties: dict[str, str]) -> None:
        """Internal writes (read-only properties included), as HubSpot's own processes do."""
        self._update_object("calls", call_id, properties)

    def _exists(self, kind: str, oid: str) -> bool:
        return self.store.get(kind, str(oid)) is not None

    def _objects_stored(self, kind: str) -> list[dict[str, Any]]:
        """The stored objects of ``kind`` (with their ``kind``), oldest first."""
        return sorted(self.store.values(kind), key=lambda o: int(o["id"]))

    def _archive_object(self, kind: str, oid: str) -> None:
        """Delete an object and every association from or to it."""
        with self.store.lock:
            self.store.delete(kind, oid)
            for key, link in self.store.items("associations"):
                if (link["fromType"], link["fromId"]) == (kind, oid) or (link["toType"], link["toId"]) == (kind, oid):
                    self.store.delete("associations", key)

    def _dissociate(self, from_kind: str, from_id: str, to_kind: str, to_id: str) -> None:
        """Remove every association type between two records, in both directions."""
        with self.store.lock:
            self.store.delete("associations", f"{from_kind}:{from_id}:{to_kind}:{to_id}")
            self.store.delete("associations", f"{to_kind}:{to_id}:{from_kind}:{from_id}")

    @staticmethod
    def _check_association_types(from_kind: str, to_kind: str, types: list[dict[str, Any]]) -> None:
        for spec_ in types:
            type_id = int(spec_["associationTypeId"])
            category = spec_["associationCategory"]
            if category != "HUBSPOT_DEFINED" or crm.ASSOCIATION_TYPES.get((from_kind, to_kind)) != type_id:
                raise validation(f"{category} association type {type_id} is not valid from {from_kind} to {to_kind}"
                                 f" (GET /crm/v4/associations/{from_kind}/{to_kind}/labels lists the valid ones)",
                                 context={"associationTypeId": [str(type_id)]})

    def _associate(self, from_kind: str, from_id: str, to_kind: str, to_id: str,
                   types: list[dict[str, Any]]) -> None:
        for kind, oid in ((from_kind, from_id), (to_kind, to_id)):
            if not self._exists(kind, oid):
                raise not_found(f"No {kind} with id {oid}")
        self._check_association_types(from_kind, to_kind, types)
        with self.store.lock:
            for a_kind, a_id, b_kind, b_id, inverse in ((from_kind, from_id, to_kind, to_id, False),
                                                        (to_kind, to_id, from_kind, from_id, True)):
                key = f"{a_kind}:{a_id}:{b_kind}:{b_id}"
                current = self.store.get("associations", key) or {"fromType": a_kind, "fromId": str(a_id),
                                                                  "toType": b_kind, "toId": str(b_id), "types": []}
                for spec_ in types:
                    tid = int(spec_["associationTypeId"])
                    tid = crm.INVERSE_TYPE[tid] if inverse else tid
                    entry = {"category": spec_["associationCategory"], "typeId": tid}
                    if entry not in current["types"]:
                        current["types"].append(entry)
                self.store.put("associations", key, current)

    def _check_create_associations(self, kind: str, associations: list[dict[str, Any]]) -> None:
        for assoc in associations:
            to_id = str(assoc["to"]["id"])
            to_kind = crm.association_target(kind, [t["associationTypeId"] for t in assoc["types"]])
            if to_kind is None:
                raise validation(f"Association type(s) {[t['associationTypeId'] for t in assoc['types']]} are not "
                                 f"valid from {kind}")
            if not self._exists(to_kind, to_id):
                raise validation(f"No {to_kind[:-1]} with id {to_id} to associate with",
                                 context={"id": [to_id]})

    def _create_with_associations(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        props = crm.check_properties(kind, body.get("properties", {}), creating=True, owners=self._owner_ids(),
                                     portal_id=self.credentials.portal_id)
        associations = body.get("associations") or []
        self._check_create_associations(kind, associations)
        with self.store.lock:  # the uniqueness check and the create are one step
            if kind == "contacts" and props.get("email"):
                email = props["email"].lower()
                for other in self.store.values("contacts"):
                    if (other["properties"].get("email") or "").lower() == email:
                        raise ApiError(409, "CONFLICT", f"Contact already exists. Existing ID: {other['id']}",
                                       context={"existingId": [other["id"]]})
            obj = self._create_object(kind, props, lag=True)
            for assoc in associations:
                types = assoc["types"]
                to_kind = crm.association_target(kind, [t["associationTypeId"] for t in types])
                assert to_kind is not None  # checked above
                self._associate(kind, obj["id"], to_kind, str(assoc["to"]["id"]), types)
            return obj

    # ---------------------------------------------------------------------- recording fetch
    def _start_fetch(self, call_id: str) -> None:
        record = fetcher.FetchRecord(call_id=call_id)
        with self._fetch_done:
            self.fetch_log.append(record)
        worker = threading.Thread(target=self._run_fetch, args=(record,), name=f"sandbox-fetch:{call_id}",
                                  daemon=True)
        self._workers = [w for w in self._workers if w.is_alive()] + [worker]
        worker.start()

    def _run_fetch(self, record: fetcher.FetchRecord) -> None:
        path: Path | None = None
        try:
            call = self.store.get("calls", record.call_id)
            props = call["properties"] if call else {}
            record.external_id = props.get("hs_call_external_id") or ""
            app_id = props.get("hs_call_app_id") or ""
            account = props.get("hs_call_external_account_id") or ""
            if not (record.external_id and app_id and account and props.get("hs_call_source") ==
                    "INTEGRATIONS_PLATFORM"):
                raise fetcher.FetchFailed("missing_properties")
            try:
                app_number = int(float(app_id))
            except ValueError:
                raise fetcher.FetchFailed("no_recording_setting", f"hs_call_app_id {app_id!r} is no app id") from None
            setting = self.recording_setting(app_number)
            if not setting:
                raise fetcher.FetchFailed("no_recording_setting", f"No recording URL is registered for app {app_number}")
            path = fetcher.fetch(setting["urlToRetrieveAuthedRecording"], record.external_id, account,
                                 str(app_number), self.credentials.client_secret, record, chunk=self.fetch_chunk,
                                 timeout=self.fetch_timeout_s)
            verdict = judge.judge(path)  # PyAV and HubSpot's rules, never the app's own inspector
            record.container, record.channels = verdict.container, verdict.channels
            if verdict.reason:
                raise fetcher.FetchFailed(verdict.reason, verdict.detail)
            channels = verdict.channels or 2
            owner_id = props.get("hubspot_owner_id") or ""
            owner = self.store.get("owners", owner_id) if owner_id else None
            if owner is None:
                raise fetcher.FetchFailed("no_owner")
            if not owner.get("paid_seat"):
                raise fetcher.FetchFailed("owner_without_paid_seat",
                                          f"Owner {owner_id} ({owner.get('email')}) has no paid Sales or Service seat")
            month_key = "analysed:" + time.strftime("%Y-%m", time.gmtime())
            with self.store.lock:
                used = int(self.store.get("meta", month_key) or 0)
                if self.analysis_limit is not None and used >= self.analysis_limit:
                    raise fetcher.FetchFailed("analysis_limit_reached",
                                              f"{used} of {self.analysis_limit} analyses used this month")
                self.store.put("meta", month_key, used + 1)
            transcript_id = self._make_transcript(record.call_id, channels, "HUBSPOT_GENERATED")
            record.transcript_id = transcript_id
            record.status = "transcribed"
            self._set_call_properties(record.call_id, {
                "hs_call_has_transcript": "true", "hs_call_transcription_id": transcript_id,
                "sandbox_transcript_status": "TRANSCRIBED", "sandbox_transcript_reason": ""})
        except fetcher.FetchFailed as failed:
            record.status, record.reason, record.detail = "not_transcribed", failed.reason, failed.detail
            if self.store.get("calls", record.call_id) is not None:
                self._set_call_properties(record.call_id, {
                    "hs_call_has_transcript": "false", "sandbox_transcript_status": "NOT_TRANSCRIBED",
                    "sandbox_transcript_reason": failed.reason})
        except Exception as exc:  # pragma: no cover - logged, and visible in the record
            log.exception("sandbox recording fetch of call %s", record.call_id)
            record.status, record.reason, record.detail = "not_transcribed", "download_failed", repr(exc)
        finally:
            if path is not None:
                path.unlink(missing_ok=True)
            record.finished_at = time.time()
            with self._fetch_done:
                self._fetch_done.notify_all()

    def _make_transcript(self, call_id: str, channels: int, source: str,
                         utterances: list[dict[str, Any]] | None = None) -> str:
        tid = str(self.store.next_id("transcripts", 880_000_001))
        stamp = crm.now_iso()
        if utterances is None:
            utterances = [{"speaker": {"id": str(ch), "name": f"Channel {ch}"},
                           "text": f"(sandbox transcript: speaker on channel {ch})", "languageCode": "en-US",
                           "startTimeMillis": 1000 * (ch - 1), "endTimeMillis": 1000 * ch} for ch in range(1, channels + 1)]
        self.store.put("transcripts", tid, {
            "id": tid, "engagementId": int(call_id), "transcriptSource": source, "createdAt": stamp, "updatedAt": stamp,
            "transcriptUtterances": [{**u, "id": f"{tid}-{i}"} for i, u in enumerate(utterances)]})
        return tid


# ---------------------------------------------------------------------------------------- HTTP
class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[http.server.BaseHTTPRequestHandler],
                 sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End kept-alive connections, so that no pooled client connection outlives the sandbox."""
        with self.sockets_lock:
            sockets = list(self.open_sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("sandbox: connection from %s ended with an error", client_address, exc_info=True)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "HubSpot-sandbox"
    sys_version = ""
    timeout = 120  # an idle kept-alive connection is closed after this many seconds
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        log.debug("sandbox %s - " + format, self.address_string(), *args)

    def _dispatch(self) -> None:
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self._read_chunked()
        else:
            body = self.rfile.read(int(length)) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        outcome = self.server.sandbox.process(self.command, self.path, headers, body)
        if outcome.network == "timeout":
            self.server.sandbox._stopping.wait(outcome.seconds)
            self._drop(reset=False)
            return
        if outcome.network == "reset":
            self._drop(reset=True)
            return
        data = outcome.raw if outcome.raw is not None else (
            b"" if outcome.payload is None else json.dumps(outcome.payload).encode("utf-8"))
        self.send_response(outcome.status)
        sent = {name.lower() for name, _ in outcome.headers}
        for name, value in outcome.headers:
            self.send_header(name, value)
        if data and "content-type" not in sent:
            self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        body = data if self.command != "HEAD" else b""
        # Headers and body in one write where the stdlib lets us (with TCP_NODELAY set in setup()):
        # separate small writes meet delayed ACKs, 40 ms a request.
        buffer: list[bytes] | None = getattr(self, "_headers_buffer", None)
        if buffer is not None:
            buffer.append(b"\r\n")
            if body:
                buffer.append(body)
            self.flush_headers()
        else:  # pragma: no cover - another Python's http.server
            self.end_headers()
            if body:
                self.wfile.write(body)

    def _read_chunked(self) -> bytes:
        out = bytearray()
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return bytes(out)
            out += self.rfile.read(size)
            self.rfile.readline()

    def _drop(self, *, reset: bool) -> None:
        """End the connection without an answer: a TCP reset, or a plain close after a stall."""
        try:
            if reset:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass
        self.close_connection = True
        self.wfile = io.BytesIO()  # nothing left to flush to the closed socket

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch  # noqa: N815

    def __getattr__(self, name: str) -> Any:
        """Any other method (TRACE, OPTIONS, PROPFIND…) goes through the same path: a HubSpot-shaped JSON
        404 or 405, never the standard library's HTML 501."""
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

