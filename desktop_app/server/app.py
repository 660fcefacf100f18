"""The recording server: HubSpot's recording endpoint, signed links, Range serving, health check.

``RecordingServer(store).start()`` binds (127.0.0.1 by default), runs its own event loop on a
background thread and returns once it listens; ``stop()`` closes it. The GUI embeds it; ``callrelay
serve`` runs it alone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import secrets
import socket
import threading
import time
import types
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from desktop_app import __version__, keystore
from desktop_app.server import fastpath, ranges, runinfo
from desktop_app.server import workers as workers_mod
from desktop_app.server.accesslog import AccessLog, encode_line
from desktop_app.server.core import (
    MAX_PIPELINED,
    Connection,
    End,
    FileSegment,
    HttpServer,
    Request,
    default_per_client,
)
from desktop_app.server.links import LinkClaims, LinkSigner, redact
from desktop_app.server.recordings import RecordingStore, StoredRecording
from desktop_app.server.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_v3

# the C fast path, built on Linux (setup.py); where it is not, the general path answers (fastpath says why)
_fastserve: types.ModuleType | None = fastpath.module

log = logging.getLogger("desktop_app.server")

SIGNATURE_MODES = ("off", "if-present", "required")
DEFAULT_PREFIX = "/retrieve/authenticated/recordings"
RECORDINGS_PATH = "/recordings/"
_O_BINARY = getattr(os, "O_BINARY", 0)
_CORS = [
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Expose-Headers", "Content-Range, Content-Length, Accept-Ranges, ETag, Last-Modified"),
    ("Cross-Origin-Resource-Policy", "cross-origin"),
]
_FORBIDDEN = b"Forbidden\n"
_CONDITIONAL = frozenset(("if-match", "if-none-match", "if-modified-since", "if-unmodified-since"))
_OCTET = "Content-Type: application/octet-stream\r\n"


_MAX_OPEN = 64  # recordings kept open at once (beyond it, the idle ones are closed)
_LINKS_OPEN = 4096  # links kept ready for the C fast path to answer (see _fast_raw)


class _OpenRecording:
    """A stored recording, open for serving, with the header lines its answers carry."""

    __slots__ = ("rec", "head", "fd", "size", "ino", "mtime_ns", "path", "etag", "users", "retired")

    def __init__(self, rec: StoredRecording, head: str, fd: int, st: os.stat_result) -> None:
        self.rec = rec
        self.head = head
        self.fd = fd
        self.size = st.st_size
        self.ino = st.st_ino
        self.mtime_ns = st.st_mtime_ns
        self.path = str(rec.path)
        self.etag = f'"{rec.sha256}"'
        self.users = 0  # responses reading the fd now
        self.retired = False

    def unchanged(self) -> bool:
        """Whether the open file is still the one opened, as it was: not shortened or rewritten in
        place (size, modification time) nor replaced or removed under the store (no name left). One
        ``fstat`` on the open fd, before each answer (the C fast path makes the same check)."""
        st = os.fstat(self.fd)
        return st.st_size == self.size and st.st_mtime_ns == self.mtime_ns and st.st_nlink > 0

    def release(self) -> None:
        self.users -= 1
        if self.retired and self.users == 0:
            os.close(self.fd)


class _Link:
    """A verified link to an open recording, as answering it needs: the recording, the link's expiry,
    and the start of the access-log line of every answer (its fields encoded once, see ``_log_request``)."""

    __slots__ = ("entry", "expires", "log_head", "head206", "c")

    def __init__(self, entry: _OpenRecording, expires: int, log_head: str, server_name: str) -> None:
        self.entry = entry
        self.expires = expires
        self.log_head = log_head
        # what a 206 answer's head has after its Date line, up to the range (for the C fast path, which
        # writes the head as Connection.head does)
        self.head206 = f"Server: {server_name}\r\n{_OCTET}{entry.head}Content-Range: bytes "
        self.c = (entry, expires, self.head206, log_head)  # what the C fast path reads of it

    def log_record(self, range_header: str | None) -> str:
        return f'{self.log_head},"range":{"null" if range_header is None else encode_basestring(range_header)}'


def _sha256_of(fd: int) -> str:
    digest = hashlib.sha256()
    os.lseek(fd, 0, os.SEEK_SET)  # the position is the fd's own (sendfile reads at an offset)
    while chunk := os.read(fd, 1 << 20):
        digest.update(chunk)
    return digest.hexdigest()


def _ascii_filename(name: str) -> str:
    return "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name) or "recording"


def content_disposition(filename: str) -> str:
    return f"attachment; filename=\"{_ascii_filename(filename)}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _clean_base(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"A public URL must look like https://host[/path]; got {url!r}")
    return url.strip().rstrip("/")


class RecordingServer:
    def __init__(
        self,
        store: RecordingStore,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        public_url: str | None = None,
        signing_key: str | None = None,
        client_secret: str | None = None,
        signature_mode: str = "if-present",
        link_ttl_s: float = 3600,
        endpoint_prefix: str = DEFAULT_PREFIX,
        max_connections: int = 256,
        max_per_client: int | None = None,
        idle_timeout_s: float = 30.0,
        workers: int = 1,
        steer_by_cpu: bool = True,
    ) -> None:
        if signature_mode not in SIGNATURE_MODES:
            raise ValueError(f"signature_mode must be one of {', '.join(SIGNATURE_MODES)}")
        prefix = "/" + endpoint_prefix.strip("/")
        if prefix in ("/", RECORDINGS_PATH.rstrip("/"), "/healthz"):
            raise ValueError(f"The endpoint prefix {endpoint_prefix!r} clashes with the server's own paths")
        self.store = store
        self.host = host
        self._requested_port = port
        self._public_url = _clean_base(public_url) if public_url else None
        self.links = LinkSigner(signing_key or keystore.get_or_create(keystore.LINK_SIGNING_KEY))
        self.client_secret = client_secret or None
        self.signature_mode = signature_mode
        self.link_ttl_s = link_ttl_s
        self.endpoint_prefix = prefix
        self.max_connections = max_connections
        # connections one client address may hold (None: all but a quarter of max_connections), per process
        self.max_per_client = max_per_client or default_per_client(max_connections)
        self.idle_timeout_s = idle_timeout_s
        self.access_log = AccessLog()
        self.instance = secrets.token_hex(8)
        self._port = 0
        # serving processes: this one's loop thread plus workers-1 children. POSIX only: elsewhere (Windows)
        # a child's control pipe can't join its event loop, so one process serves.
        self.workers = max(1, workers) if os.name == "posix" else 1
        if workers > 1 and self.workers == 1:
            log.info("Worker processes are used on Linux and macOS only; one process serves here")
        # With workers on Linux, each process listens on its own socket and a connection goes to the
        # one for the CPU it came in on (workers.steered_listeners); False: they share one socket.
        self.steer_by_cpu = steer_by_cpu
        self.steered = False  # whether this server's processes are steered so (known once started)
        self._http: HttpServer | None = None
        self._thread: threading.Thread | None = None
        self._children: list[workers_mod.WorkerProcess] = []
        self._counts: Any = None
        self._lost: Any = None  # with workers: each process's access log's lost_since (0: none), shared
        self._listener: socket.socket | None = None
        self._is_worker = False  # a child process serving for another RecordingServer
        self._pid = os.getpid()
        self._started_at = 0.0
        self.started_mono = 0.0
        self._recordings: dict[str, _OpenRecording] = {}
        self._server_name = f"CallRelay/{__version__}"
        self._links_open: dict[bytes, _Link] = {}  # request-target → a verified link to an open recording
        # stored files whose size or time differs from the catalogue's, checked once each as they are:
        # sha256 → ((device, inode, size, mtime_ns), whether it is the stored recording all the same)
        self._checked: dict[str, tuple[tuple[int, int, int, int], bool]] = {}

    # -- public state ---------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._port

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def local_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if host in ("0.0.0.0", "[::]"):
            host = "127.0.0.1"
        return f"http://{host}:{self._port}"

    @property
    def public_url(self) -> str | None:
        return self._public_url

    @public_url.setter
    def public_url(self, url: str | None) -> None:
        self.set_public_url(url)

    def set_public_url(self, url: str | None) -> None:
        """The base URL HubSpot reaches this server at (the tunnel's); None: links use the local URL."""
        self._public_url = _clean_base(url) if url else None
        for child in self._children:
            child.send(("public_url", self._public_url))
        if self.running and not self._is_worker:
            self._write_runinfo()

    @property
    def base_url(self) -> str:
        return self._public_url or self.local_url

    def make_link(self, sha256: str, ttl_s: float | None = None, *, external_id: str = "") -> str:
        """A signed link to the stored recording ``sha256``, valid for ``ttl_s`` (default link_ttl_s)."""
        if self.store.get(sha256) is None:
            raise KeyError(f"No stored recording has the hash {sha256!r}")
        token = self.links.make(sha256, self.link_ttl_s if ttl_s is None else ttl_s, external_id=external_id)
        return f"{self.base_url}{RECORDINGS_PATH}{token}"

    def recording_endpoint_template(self) -> str:
        """The URL to register with HubSpot (``urlToRetrieveAuthedRecording``)."""
        return f"{self.base_url}{self.endpoint_prefix}/%s"

    # -- start / stop ---------------------------------------------------------------------------
    def start(self) -> None:
        """Listen and serve: on a background thread of this process, and in ``workers - 1`` child
        processes on the same port (see ``server.workers``); returns once all serve. Raises OSError
        when the address cannot be bound (port taken)."""
        if self.running:
            return
        http = self._new_http()
        try:
            _, self._port = http.bind(self.host, self._requested_port)
        except OSError:
            http.loop.close()
            raise
        assert http.listener is not None
        self._listener = http.listener
        self._started_at = time.time()
        self.started_mono = time.monotonic()
        own: list[socket.socket] | None = None
        if self.workers > 1:
            ctx = multiprocessing.get_context("spawn")
            self._counts = ctx.RawArray("l", self.workers)
            http.counts = self._counts
            self._lost = ctx.RawArray("d", self.workers)
            self.access_log.share_loss(self._lost, 0)
            # each child its own socket, connections handed out by CPU; or all share this one
            own = workers_mod.steered_listeners(http.listener, self.workers) if self.steer_by_cpu else None
            http.balance = own is None
        self.steered = own is not None
        ready = threading.Event()
        self._http = http
        self._thread = threading.Thread(target=self._run, args=(http, ready), name="recording-server", daemon=True)
        self._thread.start()
        ready.wait()
        if self.workers > 1:
            children = own if own is not None else [self._listener] * (self.workers - 1)
            self._children = workers_mod.spawn(serve_in_child, self._child_config(), children, self._counts,
                                               self._lost, balance=own is None)
            for sock in own or ():  # the children hold them now; one whose child failed is gone with it
                sock.close()
        self._write_runinfo()
        log.info("Recording server listening on %s (%d process%s)", self.local_url, 1 + len(self._children),
                 "" if not self._children else "es")

    def _child_config(self) -> dict[str, Any]:
        """What a worker process needs to serve exactly as this server does (``serve_in_child``)."""
        return {
            "store_root": str(self.store.root),
            "access_log": str(self.access_log.path),
            "host": self.host,
            "public_url": self.public_url,
            "signing_key": self.links.key,
            "client_secret": self.client_secret,
            "signature_mode": self.signature_mode,
            "link_ttl_s": self.link_ttl_s,
            "endpoint_prefix": self.endpoint_prefix,
            "max_connections": self.max_connections,
            "max_per_client": self.max_per_client,
            "idle_timeout_s": self.idle_timeout_s,
            "instance": self.instance,
            "started_mono": self.started_mono,
            "port": self.port,
        }

    def _new_http(self) -> HttpServer:
        http = HttpServer(self._handle, self._log_request, max_connections=self.max_connections,
                          max_per_client=self.max_per_client, idle_timeout_s=self.idle_timeout_s,
                          server_name=self._server_name)
        http.on_tick = self._tick
        if _fastserve is not None:
            http.fast_raw = self._fast_raw
        return http

    def _run(self, http: HttpServer, ready: threading.Event) -> None:
        http.start_serving()
        http.loop.call_soon(ready.set)
        try:
            http.loop.run_forever()
        finally:
            http.close()
            self._close_recordings()
            self.store.close()  # this thread's catalogue connection
            http.loop.close()

    def serve_as_worker(self, listener: socket.socket, control: Any, counts: Any, lost: Any, slot: int, *,
                        balance: bool) -> None:
        """Serve on a listening socket from the parent until ``control`` says stop or closes (the body
        of a worker process; see ``desktop_app.server.workers``)."""
        self._is_worker = True
        http = self._new_http()
        http.listener = listener
        self._port = int(listener.getsockname()[1])
        http.counts, http.slot, http.balance = counts, slot, balance
        self._lost = lost
        self.access_log.share_loss(lost, slot)
        self.steered = not balance
        http.loop.add_reader(control.fileno(), workers_mod.listen_to_parent(self.set_public_url, control,
                                                                            http.loop.stop))
        http.start_serving()
        control.send(("ready", os.getpid()))
        try:
            http.loop.run_forever()
        finally:
            http.loop.remove_reader(control.fileno())
            http.close()
            counts[slot] = 0
            self._close_recordings()
            self.access_log.close()
            self.store.close()
            http.loop.close()
            listener.close()

    def connections(self) -> int:
        """Connections open now, over every serving process."""
        if self._counts is not None:
            return int(sum(self._counts))
        return len(self._http.conns) if self._http is not None else 0

    def connections_per_process(self) -> list[int]:
        """Connections open now in each serving process (this one first)."""
        if self._counts is not None:
            return list(self._counts)
        return [self.connections()]

    def access_log_lost_since(self) -> float | None:
        """Since when some serving process cannot write the access log (its lines are lost), or None.
        While it is so, whether HubSpot fetched a recording cannot be told from the log."""
        if self._lost is not None:
            lost = [since for since in self._lost if since]
            return min(lost) if lost else None
        return self.access_log.lost_since

    @property
    def processes(self) -> list[int]:
        """The ids of the processes serving now (this one first)."""
        return [os.getpid()] + [c.pid for c in self._children if c.pid is not None and not c.lost]

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving (closes every connection, stops the worker processes) and remove run/server.json."""
        if self._thread is None:
            return
        for child in self._children:
            child.send(("stop",))
        http, thread = self._http, self._thread
        if thread.is_alive() and http is not None:
            http.loop.call_soon_threadsafe(http.loop.stop)
        thread.join(timeout)
        for child in self._children:
            child.stop(timeout)
        self._children = []
        self._thread = None
        self._http = None
        self._counts = None
        self._lost = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        runinfo.remove(self.instance)
        self.access_log.close()
        log.info("Recording server stopped")

    def __enter__(self) -> RecordingServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _log_request(self, end: End) -> None:
        """The access-log line of an answer that has ended. ``end.record`` is a dict of the fields the
        handler knew, or, for an answer about a recording (nearly all of them), the start of the line
        already encoded (``_Link.log_record``): encoding the same few fields again per range took as
        long as sending it."""
        record = end.record
        if type(record) is str:
            self.access_log.write_line(self._line(record, encode_basestring(end.method), end.status,
                                                  encode_basestring(end.client), end.body_bytes, end.started,
                                                  ',"aborted":true' if end.aborted else ""))
            return
        duration_ms = (time.monotonic() - end.started) * 1000
        record.setdefault("method", end.method)
        record["status"] = end.status
        record["client"] = end.client
        record["time"] = time.time()
        record["bytes"] = end.body_bytes
        record["duration_ms"] = duration_ms
        if end.aborted:
            record["aborted"] = True
        record["pid"] = self._pid  # which of the serving processes answered
        self.access_log.write(record)
        if record.get("kind") == "endpoint":  # rare and what the sync pipeline waits for: on disk now
            self.access_log.flush()

    def _write_runinfo(self) -> None:
        runinfo.write({
            "pid": os.getpid(),
            "host": self.host,
            "port": self._port,
            "local_url": self.local_url,
            "public_url": self._public_url,
            "started_at": self._started_at,
            "instance": self.instance,
            "endpoint_template": self.recording_endpoint_template(),
        })

    # -- requests -------------------------------------------------------------------------------
    def _handle(self, conn: Connection, req: Request) -> None:
        path = req.path
        if path.startswith(RECORDINGS_PATH):
            self._serve_recording(conn, req, path[len(RECORDINGS_PATH):])
        elif path.startswith(self.endpoint_prefix + "/"):
            self._serve_endpoint(conn, req, path[len(self.endpoint_prefix) + 1:])
        elif path == "/healthz":
            self._serve_health(conn, req)
        else:
            record = {"kind": "other", "path": path[:200]}
            self._json(conn, req, 404, {"message": "Not found"}, record)

    def _json(self, conn: Connection, req: Request, status: int, data: dict[str, Any],
              record: dict[str, Any], extra: list[tuple[str, str]] | None = None) -> None:
        body = json.dumps(data).encode("utf-8")
        headers = [("Content-Type", "application/json"), ("Cache-Control", "no-store")] + (extra or [])
        conn.respond(req, status, headers, body, record=record)

    def _serve_health(self, conn: Connection, req: Request) -> None:
        data = {
            "status": "ok",
            "app": "callrelay",
            "version": __version__,
            "uptime_s": round(time.monotonic() - self.started_mono, 3),
            "instance": self.instance,
            "pid": self._pid,
            "access_log": {"lost_since": self.access_log_lost_since()},
        }
        self._json(conn, req, 200, data, {"kind": "health", "path": req.path},
                   [("Access-Control-Allow-Origin", "*")])

    # -- the endpoint HubSpot calls -------------------------------------------------------------
    def _check_signature(self, req: Request) -> str:
        sig = req.headers.get(SIGNATURE_HEADER.lower())
        ts = req.headers.get(TIMESTAMP_HEADER.lower())
        if sig is None and ts is None:
            return "absent"
        if self.signature_mode == "off" or not self.client_secret:
            return "unchecked"
        host = req.headers.get("host", "")
        candidates = []
        if self._public_url:
            candidates.append(self._public_url + req.target)
        candidates += [f"https://{host}{req.target}", f"http://{host}{req.target}"]
        for uri in candidates:
            if verify_v3(self.client_secret, req.method, uri, req.body, ts, sig):
                return "valid"
        return "invalid"

    def _serve_endpoint(self, conn: Connection, req: Request, raw_id: str) -> None:
        external_id = unquote(raw_id)
        record: dict[str, Any] = {"kind": "endpoint", "path": req.target[:300], "external_id": external_id,
                                  "user_agent": req.headers.get("user-agent")}
        signed = record["signed"] = self._check_signature(req)
        if req.method not in ("GET", "HEAD"):
            self._json(conn, req, 405, {"message": "Use GET"}, record, [("Allow", "GET, HEAD")])
            return
        if signed == "invalid" or (self.signature_mode == "required" and signed != "valid"):
            if signed == "absent":
                log.warning("Refused an unsigned request for %r (signature checks are required)", external_id)
            self._json(conn, req, 401, {"message": "Invalid or missing HubSpot signature"}, record)
            return
        if signed == "absent" and self.signature_mode == "if-present" and self.client_secret:
            log.info("Request for %r came without HubSpot's signature", external_id)
        query = parse_qs(req.query, keep_blank_values=True)
        account = (query.get("externalAccountId") or [""])[0]
        app_id = (query.get("appId") or [""])[0]
        missing = [n for n, v in (("externalAccountId", account), ("appId", app_id)) if not v]
        if not external_id or missing:
            what = ", ".join((["externalId"] if not external_id else []) + missing)
            self._json(conn, req, 400, {"message": f"Missing {what}"}, record)
            return
        share = self.store.lookup(external_id)
        rec = self._recording(share.sha256) if share else None
        if share is None or rec is None:
            self._json(conn, req, 404, {"message": "Unknown externalId"}, record)
            return
        record["sha256"] = share.sha256
        if share.app_id != app_id or share.external_account_id != account:
            self._json(conn, req, 403, {"message": "This call was logged for another app or account"}, record)
            return
        token = self.links.make(share.sha256, self.link_ttl_s, external_id=external_id)
        self._json(conn, req, 200, {"authenticatedUrl": f"{self.base_url}{RECORDINGS_PATH}{token}"}, record)

    # -- the recordings -------------------------------------------------------------------------
    def _recording(self, sha256: str) -> StoredRecording | None:
        cached = self._recordings.get(sha256)
        if cached is not None:
            return cached.rec
        return self.store.get(sha256)

    @staticmethod
    def _render_head(rec: StoredRecording) -> str:
        """The header lines every answer about this recording carries, rendered once."""
        lines = _CORS + [
            ("Accept-Ranges", "bytes"),
            ("ETag", f'"{rec.sha256}"'),
            ("Last-Modified", ranges.http_date(rec.mtime)),
            ("Cache-Control", "private, max-age=3600"),
            ("X-Content-Type-Options", "nosniff"),
            ("Content-Disposition", content_disposition(rec.filename)),
        ]
        return "".join(f"{name}: {value}\r\n" for name, value in lines)

    def _open(self, sha256: str) -> _OpenRecording | None:
        """The recording, open: stored files never change (content-addressed, read-only), so one fd
        per recording serves every request (``os.sendfile`` reads at an offset and moves no file
        position). The catalogue is asked when the recording is not open yet, or when the open file
        has changed since (``_OpenRecording.unchanged``): it is then opened again, and served only
        if it is still what the catalogue stored."""
        entry = self._recordings.get(sha256)
        if entry is not None:
            if entry.unchanged():
                return entry
            self._retire(entry)
        rec = self.store.get(sha256)
        if rec is None:
            return None
        try:
            fd = os.open(rec.path, os.O_RDONLY | _O_BINARY)
        except OSError:
            return None
        try:
            st = os.fstat(fd)
            stored = self._as_stored(rec, fd, st)
        except OSError:
            stored = False
        if not stored:
            os.close(fd)
            return None
        entry = _OpenRecording(rec, self._render_head(rec), fd, st)
        if len(self._recordings) >= _MAX_OPEN:
            for old in list(self._recordings.values()):
                if old.users == 0:
                    self._retire(old)
        self._recordings[sha256] = entry
        return entry

    def _as_stored(self, rec: StoredRecording, fd: int, st: os.stat_result) -> bool:
        """Whether the file just opened is the recording the catalogue lists: its size and modification
        time as stored (else its SHA-256 is checked, once per process: a data directory copied without
        its times is still served). A file shortened or replaced under the store is refused, and said
        once: its bytes are not what the ETag (the hash) promises."""
        if st.st_size == rec.size and st.st_mtime == rec.mtime:
            return True
        identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        checked = self._checked.get(rec.sha256)
        if checked is not None and checked[0] == identity:
            return checked[1]
        same = st.st_size == rec.size and _sha256_of(fd) == rec.sha256
        self._checked[rec.sha256] = (identity, same)
        if not same:
            log.error("The stored recording %s (%s) has changed on disk (%d bytes, %d stored): it is no longer "
                      "the recording its links promise, so they are refused. Submit the call's recording again.",
                      rec.path, rec.filename, st.st_size, rec.size)
        return same

    def _retire(self, entry: _OpenRecording) -> None:
        """Forget an open recording; its fd is closed once no response reads it any more."""
        if self._recordings.get(entry.rec.sha256) is entry:
            del self._recordings[entry.rec.sha256]
        entry.retired = True
        if entry.users == 0:
            os.close(entry.fd)

    def _check_open(self) -> None:
        """Once a second: a recording removed from the store (retention, in any process) is retired, so
        its links stop working within a second."""
        for entry in list(self._recordings.values()):
            try:
                gone = os.stat(entry.path).st_ino != entry.ino
            except OSError:
                gone = True
            if gone:
                self._retire(entry)

    def _close_recordings(self) -> None:
        for entry in list(self._recordings.values()):
            self._retire(entry)

    def _tick(self) -> None:
        """Once a second, on the loop's thread."""
        self.access_log.flush()
        self._check_open()
        for child in self._children:
            if not child.lost and not child.alive():
                child.lost = True
                if self._counts is not None:
                    self._counts[child.slot] = 0
                log.warning("Recording server worker %s ended (exit code %s); the other processes serve on",
                            child.pid, child.process.exitcode)

    def _link(self, token: str, claims: LinkClaims, entry: _OpenRecording) -> _Link:
        """The open link ``token``: what answering it again takes, ready (see ``_fast_raw``)."""
        key = (RECORDINGS_PATH + token).encode("latin-1")  # the request-target as it arrives
        link = self._links_open.get(key)
        if link is None or link.entry is not entry:
            fields = {"kind": "recording", "path": RECORDINGS_PATH + redact(token), "sha256": claims.sha256}
            if claims.external_id:
                fields["external_id"] = claims.external_id
            link = _Link(entry, claims.expires, encode_line(fields)[:-1], self._server_name)
            if len(self._links_open) >= _LINKS_OPEN:
                self._links_open.clear()
            self._links_open[key] = link
        return link

    def _serve_recording(self, conn: Connection, req: Request, token: str) -> None:
        claims = self.links.verify(token)
        entry = self._open(claims.sha256) if claims is not None else None
        if claims is None or entry is None:
            refused: dict[str, Any] = {"kind": "recording", "path": RECORDINGS_PATH + redact(token),
                                       "range": req.headers.get("range")}
            if claims is not None:
                refused["sha256"] = claims.sha256
                if claims.external_id:
                    refused["external_id"] = claims.external_id
            refused["user_agent"] = req.headers.get("user-agent")
            conn.respond(req, 403, [("Content-Type", "text/plain")], _FORBIDDEN, record=refused)
            return
        range_header = req.headers.get("range")
        record = self._link(token, claims, entry).log_record(range_header)
        if req.method == "GET" or req.method == "HEAD":
            self._send_file(conn, req, entry, record)
            return
        if req.method == "OPTIONS":  # CORS preflight
            conn.respond(req, 204, _CORS + [
                ("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS"),
                ("Access-Control-Allow-Headers", "Range, If-Range, If-None-Match, If-Modified-Since"),
                ("Access-Control-Max-Age", "86400"),
            ], record=record)
        else:
            conn.respond(req, 405, [("Allow", "GET, HEAD, OPTIONS")], b"", record=record)

    @staticmethod
    def _end_later(conn: Connection, link: _Link, record: str, started: float, body_sent: int) -> None:
        """A C fast-path answer the socket took in part: the rest goes from the output queue, reading
        the recording's fd till then; its log line is written when it ends."""
        link.entry.users += 1
        conn.end_queued(End(record, link.entry.release, False, started, "GET", conn.client, 206), body_sent)

    def _fast_raw(self, conn: Connection, data: bytes) -> int:
        """The C fast path (``_fastserve.serve``, Linux): a GET of one ``bytes=a-b`` range through a link
        the general path answered before, answered from the bytes as they arrive, before httptools and
        the Python callbacks; the same answers and log lines as ``_send_file``
        (tests/server/test_server_fast.py, benchmarks/fuzz_fastpath.py), a third of the CPU per range. Returns how many bytes
        of ``data`` it answered; the parser gets the rest."""
        assert _fastserve is not None
        lines = self.access_log.lines
        done = _fastserve.serve(conn.fd, data, self._links_open, conn.server.date(), conn.client_json, self._pid,
                                conn.last_activity, lines, MAX_PIPELINED)
        if type(done) is not int:  # the socket took the last answer in part: the rest is queued
            done, head, fd, offset, count, body_sent, link, range_header = done
            conn.queue_rest(head, fd, offset, count)
            self._end_later(conn, link, link.log_record(range_header), conn.last_activity, body_sent)
        if len(lines) >= self.access_log.BATCH:
            self.access_log.flush()
        return int(done)

    def _line(self, record: str, method_json: str, status: int, client_json: str, body_bytes: int, started: float,
              aborted: str) -> str:
        """An access-log line: ``record`` (the start of the line, see ``_Link.log_record``) and the
        fields known when the answer ended."""
        # times as integers made into decimals: a float's shortest repr (dtoa) cost ~1 us per line
        now = time.time_ns() // 1000
        took = int((time.monotonic() - started) * 1_000_000)
        return (f'{record},"method":{method_json},"status":{status},"client":{client_json},'
                f'"time":{now // 1_000_000}.{now % 1_000_000:06d},"bytes":{body_bytes},'
                f'"duration_ms":{took // 1000}.{took % 1000:03d}{aborted},"pid":{self._pid}}}')

    def _send_file(self, conn: Connection, req: Request, entry: _OpenRecording, record: str) -> None:
        etag = entry.etag
        mtime = entry.rec.mtime
        head = entry.head
        fd = entry.fd
        size = entry.size
        h = req.headers
        if not _CONDITIONAL.isdisjoint(h):  # preconditions, RFC 9110 section 13.2.2
            status = self._preconditions(h, etag, mtime)
            if status:
                conn.respond(req, status, head, b"", record=record)
                return
        range_header = h.get("range")
        chosen: list[tuple[int, int]] | None = None
        if range_header is not None and req.method == "GET":
            if_range = h.get("if-range")
            if if_range is None or ranges.if_range_matches(if_range, etag, mtime):
                chosen = ranges.parse_range(range_header, size)
        if chosen is None:  # the whole file
            entry.users += 1
            conn.respond_file(req, 200, _OCTET + head, fd, 0, size, record=record, on_end=entry.release)
        elif not chosen:
            conn.respond(req, 416, f"{head}Content-Range: bytes */{size}\r\n", b"", record=record)
        elif len(chosen) == 1:
            first, last = chosen[0]
            entry.users += 1
            conn.respond_file(req, 206, f"{_OCTET}{head}Content-Range: bytes {first}-{last}/{size}\r\n",
                              fd, first, last - first + 1, record=record, on_end=entry.release)
        else:
            boundary = secrets.token_hex(12)
            body: list[bytes | FileSegment] = []
            for first, last in chosen:
                body.append(
                    f"\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\n"
                    f"Content-Range: bytes {first}-{last}/{size}\r\n\r\n".encode("ascii")
                )
                body.append(FileSegment(fd, first, last - first + 1))
            body.append(f"\r\n--{boundary}--\r\n".encode("ascii"))
            entry.users += 1
            conn.respond(req, 206, f"Content-Type: multipart/byteranges; boundary={boundary}\r\n{head}",
                         body, record=record, on_end=entry.release)

    @staticmethod
    def _preconditions(h: dict[str, str], etag: str, mtime: float) -> int:
        """412 or 304 when a precondition says so, else 0."""
        if_match = h.get("if-match")
        if if_match is not None and ranges.if_match_fails(if_match, etag):
            return 412
        if if_match is None and "if-unmodified-since" in h:
            ius = ranges.parse_http_date(h["if-unmodified-since"])
            if ius is not None and int(mtime) > ius:
                return 412
        inm = h.get("if-none-match")
        if inm is not None:
            return 304 if ranges.none_match(inm, etag) else 0
        if "if-modified-since" in h:
            ims = ranges.parse_http_date(h["if-modified-since"])
            if ims is not None and int(mtime) <= ims:
                return 304
        return 0


def serve_in_child(config: dict[str, Any], listener: socket.socket, control: Any, counts: Any, lost: Any,
                   slot: int) -> None:
    """A worker process (``workers.spawn`` starts it): serve on ``listener`` as the parent's server
    described by ``config`` does, until told to stop or the parent goes away."""
    workers_mod.ignore_interrupts()
    try:
        server = RecordingServer(
            RecordingStore(Path(config["store_root"])),
            host=config["host"],
            port=config["port"],
            public_url=config["public_url"],
            signing_key=config["signing_key"],
            client_secret=config["client_secret"],
            signature_mode=config["signature_mode"],
            link_ttl_s=config["link_ttl_s"],
            endpoint_prefix=config["endpoint_prefix"],
            max_connections=config["max_connections"],
            max_per_client=config["max_per_client"],
            idle_timeout_s=config["idle_timeout_s"],
        )
        server.access_log = AccessLog(Path(config["access_log"]))
        server.instance = config["instance"]
        server.started_mono = config["started_mono"]
    except Exception as exc:  # noqa: BLE001 - told to the parent, which logs it
        control.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    server.serve_as_worker(listener, control, counts, lost, slot, balance=config["balance"])
