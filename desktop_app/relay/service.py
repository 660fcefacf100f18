"""``callrelay relay serve``: the relay's HTTP service (headless, Qt-free), on the stdlib's
``ThreadingHTTPServer`` (one thread per connection; every answer is a small JSON document or, with a
``file:`` store only, a recording read from disk, so a thread per connection is plenty and keeps each
request's database and store calls plainly blocking).

Routes:

- ``GET {prefix}/{externalId}?externalAccountId&appId`` — the endpoint HubSpot calls. HubSpot's v3
  signature is checked with the app's client secret (`desktop_app.server.signature`) when the relay
  has one (then an unsigned or wrongly signed request gets 401); an unknown externalId gets 404, another
  appId or account 403; else ``{"authenticatedUrl"}``: a presigned GET link to the object (S3: the store
  answers it, Range and 206 included, as ``application/octet-stream``) or, with a ``file:`` store, a
  signed link to ``/recordings/{token}`` on this relay (`desktop_app.server.links`, the desk's link
  format; Range per `desktop_app.server.ranges`).
- The agents' API, each call with ``Authorization: Bearer <token>`` (unknown or revoked: 401), but
  ``POST /api/join {code}`` which redeems an invite for that token. ``POST /api/uploads {sha256, size,
  filename}`` starts (or resumes: the agent's unfinished upload of the same recording) a multipart
  upload and answers the part links still needed; ``GET /api/uploads/{id}`` the same, again;
  ``PUT /api/uploads/{id}/parts/{n}`` takes a part (``file:`` store only); ``POST
  /api/uploads/{id}/complete {parts, call}`` joins the parts, checks the stored object's size and
  SHA-256, and writes the submission, queued; ``GET /api/submissions`` (an agent's own; a supervisor's:
  everyone's), ``GET /api/submissions/{externalId}`` and ``…/recording`` (a link to the recording).
  Another agent's upload, submission or recording is answered as unknown (404). The team's history
  (`desktop_app.relay.queries`): ``GET /api/history`` (a page and the total), ``GET
  /api/history/totals?by=day|agent|team`` and ``GET /api/history.csv``, filtered by query parameters;
  an agent's own submissions, a supervisor's everyone's.
- ``GET /healthz``.

The relay's log (stderr) has one line per request, with the path only (a link's token shortened as the
desk's access log does), never a header or a body: no token, invite code or presigned link lands there.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import secrets
import signal
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

from desktop_app import __version__
from desktop_app.relay.db import Agent, ConflictError, DatabaseError, InviteError, TeamDB, Upload
from desktop_app.relay.storage import (
    MAX_PARTS,
    MIN_PART_SIZE,
    OCTET_STREAM,
    FileStore,
    Part,
    S3Store,
    StorageError,
    UploadGone,
    part_ranges,
)
from desktop_app.server import ranges
from desktop_app.server.links import LinkSigner, redact
from desktop_app.server.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_v3

log = logging.getLogger("desktop_app.relay")

ENDPOINT_PREFIX = "/retrieve/authenticated/recordings"
RECORDINGS_PATH = "/recordings/"
MAX_JSON = 1 << 20  # a JSON request body
MAX_RECORDING = 4 << 30  # the largest recording a desk may upload
PART_LINK_TTL_S = 24 * 3600
_SHA256 = re.compile(r"[0-9a-f]{64}")
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
_EXTERNAL_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")
HISTORY_ROUTES = ("/api/history", "/api/history/totals", "/api/history.csv")  # GET, see _Handler._history
_CALL_TEXT = ("title", "owner_id", "contact_id", "from_number", "to_number")
# the rest of the call's details the pipeline logs (`sync.pipeline.CallDetails`), kept in ``details`` only
_CALL_EXTRA = ("direction", "status", "disposition", "notes", "company_id", "deal_id", "ticket_id")


class ApiError(Exception):
    """An answer other than 200: its status and one sentence."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def _clean_base(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"A public URL must look like https://host[/path], not {url!r}.")
    return url.strip().rstrip("/")


@dataclass
class RelayOptions:
    app_id: str
    account_id: str
    client_secret: str | None = None
    link_key: str | None = None
    link_ttl_s: int = 3600
    public_url: str | None = None
    part_size: int = MIN_PART_SIZE
    name: str = "relay"  # this relay in the fetch log (several relays share one database)


class _HTTPServer(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: the SYN of a sixth new connection arriving while the
    # threads are busy was dropped and sent again by the client a second later (benchmarks/relay.py)
    request_queue_size = 1024


class Relay:
    """The relay's service: ``start()`` listens (on a background thread) and returns; ``stop()``."""

    def __init__(self, db: TeamDB, store: S3Store | FileStore, options: RelayOptions, *,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.db = db
        self.store = store
        self.options = options
        self.public_url = _clean_base(options.public_url) if options.public_url else None
        self.links = LinkSigner(options.link_key or secrets.token_urlsafe(32))
        if isinstance(store, S3Store) and options.part_size < MIN_PART_SIZE:
            raise ValueError(f"An S3 store takes parts of at least {MIN_PART_SIZE} bytes.")
        self.httpd = _HTTPServer((host, port), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.relay = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def local_url(self) -> str:
        host = str(self.httpd.server_address[0])
        host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.public_url or self.local_url

    def endpoint_template(self) -> str:
        """The URL to register with HubSpot (``urlToRetrieveAuthedRecording``)."""
        return f"{self.base_url}{ENDPOINT_PREFIX}/%s"

    def start(self) -> None:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="relay-http", daemon=True)
        self._thread.start()

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)

    # -- links ------------------------------------------------------------------------------------
    def recording_link(self, submission: dict[str, Any]) -> str:
        ttl = self.options.link_ttl_s
        if isinstance(self.store, S3Store):
            return self.store.presigned_get(submission["object_key"], ttl)
        token = self.links.make(submission["recording_sha256"], ttl, external_id=submission["external_id"])
        return f"{self.base_url}{RECORDINGS_PATH}{token}"

    def check_signature(self, method: str, target: str, host: str, body: bytes, headers: Any) -> str:
        """``valid``, ``invalid``, or ``unchecked`` (the relay has no client secret)."""
        if not self.options.client_secret:
            return "unchecked"
        sig, ts = headers.get(SIGNATURE_HEADER), headers.get(TIMESTAMP_HEADER)
        candidates = ([self.public_url + target] if self.public_url else []) + [
            f"https://{host}{target}", f"http://{host}{target}"]
        for uri in candidates:
            if verify_v3(self.options.client_secret, method, uri, body, ts, sig):
                return "valid"
        return "invalid"

    # -- the agents' API ------------------------------------------------------------------------------
    def upload_answer(self, upload: Upload) -> dict[str, Any]:
        if upload.submission_id is not None:
            with self.db.connection() as conn:
                row = conn.execute("SELECT external_id FROM submissions WHERE id = %s",
                                   (upload.submission_id,)).fetchone()
            return {"upload_id": upload.id, "size": upload.size, "part_size": upload.part_size,
                    "submission": row[0] if row else None, "done": [], "parts": []}
        try:
            done = self.store.parts_done(upload.object_key, upload.store_upload_id)
        except UploadGone:  # joined already? A relay killed after the store joined the parts, before it wrote the
            # submission down: the desk only completes again (which checks the SHA-256), nothing is sent again
            if not self.store.exists(upload.object_key) or self.store.size(upload.object_key) != upload.size:
                raise
            done = {n: Part(n, length, "") for n, _, length in part_ranges(upload.size, upload.part_size)}
        parts = []
        kept = []
        for number, _offset, length in part_ranges(upload.size, upload.part_size):
            have = done.get(number)
            if have is not None and have.size == length:
                kept.append({"number": number, "size": length})
                continue
            if isinstance(self.store, S3Store):
                url = self.store.presigned_part(upload.object_key, upload.store_upload_id, number, PART_LINK_TTL_S)
            else:
                url = f"{self.base_url}/api/uploads/{upload.id}/parts/{number}"
            parts.append({"number": number, "size": length, "url": url})
        return {"upload_id": upload.id, "size": upload.size, "part_size": upload.part_size,
                "store": "s3" if isinstance(self.store, S3Store) else "relay",
                "submission": None, "done": kept, "parts": parts}

    def begin_upload(self, agent: Agent, data: dict[str, Any]) -> dict[str, Any]:
        sha256, size, filename = data.get("sha256"), data.get("size"), data.get("filename")
        if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
            raise ApiError(400, "sha256 must be the recording's SHA-256 in 64 lower-case hex digits.")
        if not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= MAX_RECORDING:
            raise ApiError(400, f"size must be the recording's size in bytes, 1 to {MAX_RECORDING}.")
        if not isinstance(filename, str) or not filename.strip() or len(filename) > 255:
            raise ApiError(400, "filename must be the recording's file name (at most 255 characters).")
        external_id = data.get("external_id")
        if external_id is not None:
            if not isinstance(external_id, str) or not _EXTERNAL_ID.fullmatch(external_id):
                raise ApiError(400, "external_id must be 1-100 letters, digits and ._:- .")
            sub = self.db.submission(external_id)
            if sub is not None and sub["agent_id"] == agent.id and sub["recording_sha256"] == sha256:
                return {"upload_id": None, "size": size, "part_size": 0, "submission": external_id,
                        "done": [], "parts": []}
        found = self.db.open_upload(agent, sha256, size)
        if found is not None:
            try:
                return self.upload_answer(found)
            except UploadGone:  # aborted in the store (a lifecycle rule): this recording starts over
                self.db.drop_upload(found)
                found = None
        if found is None:
            upload_id = uuid.uuid4().hex
            key = f"recordings/{upload_id}"
            part_size = max(self.options.part_size, -(-size // MAX_PARTS))
            upload = Upload(upload_id, agent.id, sha256, size, filename.strip(), part_size, key,
                            self.store.begin(key), None)
            found = self.db.add_upload(upload)
            if found is not upload:  # another request of the same desk won
                self.store.abort(upload.object_key, upload.store_upload_id)
        return self.upload_answer(found)

    def own_upload(self, agent: Agent, upload_id: str) -> Upload:
        upload = self.db.get_upload(upload_id, agent) if _UPLOAD_ID.fullmatch(upload_id) else None
        if upload is None:
            raise ApiError(404, "There is no such upload.")
        return upload

    def receive_part(self, agent: Agent, upload_id: str, number: int, body: Any, length: int) -> None:
        if not isinstance(self.store, FileStore):
            raise ApiError(404, "Parts go to the object store with the links the relay gave.")
        upload = self.own_upload(agent, upload_id)
        expected = {n: size for n, _, size in part_ranges(upload.size, upload.part_size)}
        if number not in expected or length != expected[number]:
            raise ApiError(400, f"Part {number} of this upload must hold {expected.get(number, 0)} bytes.")
        self.store.write_part(upload.object_key, upload.store_upload_id, number, cast(IO[bytes], _Limited(body, length)))

    def complete_upload(self, agent: Agent, upload_id: str, data: dict[str, Any]) -> dict[str, Any]:
        upload = self.own_upload(agent, upload_id)
        call = data.get("call") or {}
        if not isinstance(call, dict):
            raise ApiError(400, "call must be an object of the call's details.")
        fields, details = _call_fields(call)
        external_id = call.get("external_id") or f"callrelay-{uuid.uuid4()}"
        if not isinstance(external_id, str) or not _EXTERNAL_ID.fullmatch(external_id):
            raise ApiError(400, "external_id must be 1-100 letters, digits and ._:- .")
        if upload.submission_id is None:
            etags: dict[int, str] = {}
            for p in data.get("parts") or []:
                if not isinstance(p, dict) or not isinstance(p.get("number"), int) \
                        or not isinstance(p.get("etag"), str):
                    raise ApiError(400, "parts must be a list of {number, etag}.")
                etags[p["number"]] = p["etag"]
            try:
                self.store.complete(upload.object_key, upload.store_upload_id, etags)
            except StorageError as exc:
                if not self.store.exists(upload.object_key):  # not completed before either (a resent complete)
                    raise ApiError(409, str(exc)) from None
            if self.store.size(upload.object_key) != upload.size \
                    or self.store.sha256(upload.object_key) != upload.sha256:
                self.store.delete(upload.object_key)
                self.db.drop_upload(upload)
                raise ApiError(422, "The recording the relay received does not match its SHA-256 or size: "
                                    "send it again.")
        try:
            _, external_id = self.db.finish_upload(
                upload, external_id=external_id, recording_name=upload.filename, details=details,
                recording_sha256=upload.sha256, recording_size=upload.size, object_key=upload.object_key,
                **fields)
        except ConflictError as exc:
            raise ApiError(409, str(exc)) from None
        return {"external_id": external_id, "status": "queued"}

    def visible_submission(self, agent: Agent, external_id: str) -> dict[str, Any]:
        sub = self.db.submission(external_id)
        if sub is None or (not agent.is_supervisor and sub["agent_id"] != agent.id):
            raise ApiError(404, "There is no such submission.")
        return sub


class _Limited:
    """The next ``length`` bytes of a request body, as a file (a part streamed to disk)."""

    def __init__(self, raw: Any, length: int) -> None:
        self.raw, self.left = raw, length

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        n = self.left if n < 0 else min(n, self.left)
        data: bytes = self.raw.read(n)
        if not data:
            raise ApiError(400, "The part ended before its Content-Length.")
        self.left -= len(data)
        return data


def _call_fields(call: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    fields: dict[str, Any] = {}
    for name in _CALL_TEXT:
        value = call.get(name, "")
        if not isinstance(value, str) or len(value) > 500:
            raise ApiError(400, f"{name} must be text of at most 500 characters.")
        fields[name] = value
    duration = call.get("duration_ms", 0)
    if not isinstance(duration, int) or isinstance(duration, bool) or not 0 <= duration < 10**10:
        raise ApiError(400, "duration_ms must be a whole number of milliseconds.")
    fields["duration_ms"] = duration
    when = call.get("timestamp")
    if when is not None:
        try:
            stamp = dt.datetime.fromisoformat(str(when))
        except ValueError:
            raise ApiError(400, "timestamp must be an ISO 8601 date and time.") from None
        fields["call_timestamp"] = stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.timezone.utc)
    for name in _CALL_EXTRA:
        value = call.get(name, "")
        if not isinstance(value, str) or len(value) > (65536 if name == "notes" else 500):
            raise ApiError(400, f"{name} must be text" + (" of at most 500 characters." if name != "notes" else "."))
    details = {k: v for k, v in call.items()
               if k in (*_CALL_TEXT, *_CALL_EXTRA, "duration_ms", "timestamp", "external_id")}
    return fields, details


def _public(sub: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in sub.items() if k not in ("id", "agent_id", "object_key")}
    return {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in out.items()}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = f"CallRelay-relay/{__version__}"
    timeout = 60
    # TCP_NODELAY: an answer's headers and body are two writes; with Nagle's algorithm the body waited for
    # the client's delayed ACK, ~40 ms per answer on a kept-alive connection (benchmarks/relay.py)
    disable_nagle_algorithm = True

    @property
    def relay(self) -> Relay:
        return self.server.relay  # type: ignore[attr-defined, no-any-return]

    # -- plumbing -----------------------------------------------------------------------------------
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = self.path.split("?", 1)[0]
        if path.startswith(RECORDINGS_PATH):
            path = RECORDINGS_PATH + redact(path[len(RECORDINGS_PATH):])
        log.info("%s %s %s %s", self.client_address[0], self.command, path[:300], code)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        log.info("%s %s", self.client_address[0], (format % args)[:300])

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(data).encode("utf-8"), "application/json", headers)

    def _body(self) -> bytes:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise ApiError(400, "Content-Length must be a number.") from None
        if not 0 <= length <= MAX_JSON:
            raise ApiError(413, f"A request body may hold at most {MAX_JSON} bytes.")
        return self.rfile.read(length) if length else b""

    def _data(self) -> dict[str, Any]:
        try:
            data = json.loads(self._body() or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "The request body must be a JSON object.") from None
        if not isinstance(data, dict):
            raise ApiError(400, "The request body must be a JSON object.")
        return data

    def _agent(self) -> Agent:
        auth = self.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        agent = self.relay.db.authenticate(token.strip()) if scheme.lower() == "bearer" else None
        if agent is None:
            raise ApiError(401, "This desk's token is unknown or revoked: ask your admin for a new invite "
                                "and run callrelay join again.", {"WWW-Authenticate": 'Bearer realm="callrelay"'})
        return agent

    def _dispatch(self, work: Callable[[], None]) -> None:
        # a refused PUT or POST may leave (part of) its body unread: the connection is closed after the
        # answer, so those bytes are never read as the next request
        close = {"Connection": "close"} if self.command in ("PUT", "POST") else {}
        try:
            work()
        except ApiError as exc:
            self._json(exc.status, {"message": exc.message}, {**exc.headers, **close})
        except (DatabaseError, StorageError) as exc:
            log.warning("%s %s: %s", self.command, self.path.split("?", 1)[0][:100], exc)
            self._json(503, {"message": str(exc)}, {"Retry-After": "5", **close})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # noqa: BLE001 - one sentence for the client, the kind of fault for the log
            log.error("%s %s failed: %s", self.command, self.path.split("?", 1)[0][:100], type(exc).__name__)
            self._json(500, {"message": "The relay met an internal error; its log says which."}, close)

    # -- verbs ------------------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self._dispatch(self._get)

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch(self._get)

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch(self._post)

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch(self._put)

    def _get(self) -> None:
        path, _, query = self.path.partition("?")
        if path.startswith(ENDPOINT_PREFIX + "/"):
            self._endpoint(path[len(ENDPOINT_PREFIX) + 1:], query)
        elif path.startswith(RECORDINGS_PATH):
            self._recording(path[len(RECORDINGS_PATH):])
        elif path == "/healthz":
            self._json(200, {"status": "ok", "app": "callrelay-relay", "version": __version__})
        elif path == "/api/submissions":
            agent = self._agent()
            rows = self.relay.db.submissions(None if agent.is_supervisor else agent)
            self._json(200, {"agent": agent.name, "role": agent.role, "submissions": [_public(r) for r in rows]})
        elif m := re.fullmatch(r"/api/submissions/([^/]+)(/recording)?", path):
            agent = self._agent()
            sub = self.relay.visible_submission(agent, unquote(m[1]))
            if m[2]:
                self._json(200, {"url": self.relay.recording_link(sub)})
            else:
                self._json(200, _public(sub))
        elif m := re.fullmatch(r"/api/uploads/([^/]+)", path):
            agent = self._agent()
            try:
                self._json(200, self.relay.upload_answer(self.relay.own_upload(agent, m[1])))
            except UploadGone as exc:
                raise ApiError(410, str(exc)) from None
        elif path in HISTORY_ROUTES:
            self._history(path, query)
        else:
            raise ApiError(404, "Not found.")

    # -- the team's history (relay/queries.py): an agent sees their own submissions, a supervisor everyone's
    def _history(self, path: str, query: str) -> None:
        from desktop_app.relay import queries

        agent = self._agent()
        params = parse_qs(query, keep_blank_values=True)
        try:
            filt = queries.query_from_params(params)
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        limit, offset = (params.get("limit") or ["200"])[-1], (params.get("offset") or ["0"])[-1]
        if not (limit.isdigit() and offset.isdigit() and int(limit) <= queries.MAX_PAGE and len(offset) < 12):
            raise ApiError(400, f"limit must be a whole number 0 to {queries.MAX_PAGE}, offset 0 or more.")
        with self.relay.db.connection() as conn:
            if path == "/api/history":
                self._json(200, {"agent": agent.name, "role": agent.role,
                                 "total": queries.count(conn, agent, filt),
                                 "submissions": queries.search(conn, agent, filt, limit=int(limit), offset=int(offset))})
            elif path == "/api/history/totals":
                by = (params.get("by") or ["day"])[-1]
                if by not in queries.TOTALS:
                    raise ApiError(400, f"by must be one of {', '.join(queries.TOTALS)}.")
                self._json(200, {"by": by, "totals": queries.totals(conn, agent, by, filt)})
            else:
                text = queries.export_csv(conn, agent, filt)
                self._send(200, text.encode("utf-8"), "text/csv; charset=utf-8",
                           {"Content-Disposition": 'attachment; filename="team-history.csv"'})

    def _post(self) -> None:
        path = self.path.partition("?")[0]
        if path == "/api/join":
            code = self._data().get("code")
            if not isinstance(code, str) or not code.strip() or len(code) > 200:
                raise ApiError(400, "code must be the invite code your admin gave.")
            try:
                token = self.relay.db.redeem_invite(code)
            except InviteError as exc:
                raise ApiError(403, str(exc)) from None
            agent = self.relay.db.authenticate(token)
            assert agent is not None
            log.info("%s joined the team as %s", agent.name, agent.role)
            self._json(200, {"token": token, "name": agent.name, "role": agent.role})
        elif path == "/api/uploads":
            agent = self._agent()
            self._json(200, self.relay.begin_upload(agent, self._data()))
        elif m := re.fullmatch(r"/api/uploads/([^/]+)/complete", path):
            agent = self._agent()
            self._json(200, self.relay.complete_upload(agent, m[1], self._data()))
        else:
            raise ApiError(404, "Not found.")

    def _put(self) -> None:
        path = self.path.partition("?")[0]
        m = re.fullmatch(r"/api/uploads/([^/]+)/parts/([0-9]{1,5})", path)
        if not m:
            raise ApiError(404, "Not found.")
        agent = self._agent()
        try:
            length = int(self.headers.get("Content-Length") or "")
        except ValueError:
            raise ApiError(411, "A part needs its Content-Length.") from None
        self.relay.receive_part(agent, m[1], int(m[2]), self.rfile, length)
        self._json(200, {"number": int(m[2]), "size": length}, {"ETag": '""'})

    # -- HubSpot's endpoint and the file: store's links -----------------------------------------------
    def _endpoint(self, raw_id: str, query: str) -> None:
        relay = self.relay
        external_id = unquote(raw_id)
        signed = relay.check_signature(self.command, self.path, self.headers.get("Host", ""), b"", self.headers)
        if signed == "invalid":
            raise ApiError(401, "Invalid or missing HubSpot signature.")
        params = parse_qs(query, keep_blank_values=True)
        account = (params.get("externalAccountId") or [""])[0]
        app_id = (params.get("appId") or [""])[0]
        missing = [n for n, v in (("externalId", external_id), ("externalAccountId", account), ("appId", app_id))
                   if not v]
        if missing:
            raise ApiError(400, f"Missing {', '.join(missing)}.")
        sub = relay.db.submission(external_id)
        if sub is None or not sub["object_key"]:
            raise ApiError(404, "Unknown externalId.")
        if app_id != relay.options.app_id or account != (sub["portal_id"] or relay.options.account_id):
            raise ApiError(403, "This call was logged for another app or account.")
        relay.db.log_fetch(external_id, relay.options.name)  # before the answer: the log never misses a fetch
        self._json(200, {"authenticatedUrl": relay.recording_link(sub)})

    def _recording(self, token: str) -> None:
        relay = self.relay
        claims = relay.links.verify(token)
        store = relay.store
        if claims is None or not isinstance(store, FileStore):
            raise ApiError(403, "This link is not valid or has expired.")
        sub = relay.db.submission(claims.external_id)
        if sub is None or sub["recording_sha256"] != claims.sha256:
            raise ApiError(404, "This recording is gone.")
        try:
            f = open(store.path(sub["object_key"]), "rb")  # noqa: SIM115 - closed below
        except OSError:
            raise ApiError(404, "This recording is gone.") from None
        with f:
            size = os.fstat(f.fileno()).st_size
            header = self.headers.get("Range")
            spans = ranges.parse_range(header, size) if header else None
            if spans == []:
                self._send(416, b"", OCTET_STREAM, {"Content-Range": f"bytes */{size}"})
                return
            first, last, status = 0, size - 1, 200
            if spans:
                (first, last), status = spans[0], 206
            self.send_response(status)
            self.send_header("Content-Type", OCTET_STREAM)
            self.send_header("Content-Length", str(last - first + 1))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", f'"{claims.sha256}"')
            if status == 206:
                self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
            self.end_headers()
            if self.command == "HEAD":
                return
            f.seek(first)
            left = last - first + 1
            while left > 0:
                chunk = f.read(min(left, 1 << 20))
                if not chunk:
                    break
                self.wfile.write(chunk)
                left -= len(chunk)


def wait_for_signals(relay: Relay, *, serving: bool = False) -> None:
    """Serve until SIGTERM or SIGINT (``serving``: ``start()`` runs it on its thread already)."""
    done = threading.Event()

    def stop(*_: object) -> None:
        done.set()
        threading.Thread(target=relay.httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    started = time.monotonic()
    if serving:
        while not done.wait(0.5):
            pass
        if relay._thread is not None:
            relay._thread.join(5)
    else:
        relay.serve_forever()
    relay.httpd.server_close()
    log.info("Relay stopped after %.0f s", time.monotonic() - started)
