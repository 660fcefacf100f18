"""What HubSpot does after "recording ready": fetch the recording and decide on a transcript.

1. Call the registered ``urlToRetrieveAuthedRecording`` with ``%s`` replaced by the call's
   ``hs_call_external_id`` and ``?externalAccountId=…&appId=…`` added, signed like HubSpot signs
   app requests (v3: ``X-HubSpot-Signature-v3`` and ``X-HubSpot-Request-Timestamp``).
2. Read ``authenticatedUrl`` from the JSON answer and download it with ``Range`` requests: the
   start (``bytes=0-…``), a seek to the middle, then the rest; each must be a ``206`` whose
   ``Content-Range`` agrees with the others, and the middle must equal the same bytes of the whole.
3. Check the bytes (``judge.py``: PyAV and HubSpot's documented rules, independent of the app's
   own inspector): WAV, FLAC or MP4, more than one channel, channels not identical, audible.
4. Transcribe only when the call's owner has a paid Sales/Service seat and the account's monthly
   analysis limit is not reached. Otherwise, and on any failure above, record the reason.

Steps 1-3 run in a child process (``fetch_and_judge_apart``): the sandbox stands in for HubSpot,
and downloading and decoding a whole recording in the process that runs it (in the desktop app's
sandbox mode, the GUI's) would hold that process's interpreter lock and stall its window.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from desktop_app.sandbox import judge
from desktop_app.sandbox.records import Records

log = logging.getLogger(__name__)


def _sign_v3(client_secret: str, method: str, uri: str, body: bytes, timestamp_ms: int) -> str:
    from desktop_app.server.signature import sign_v3

    return sign_v3(client_secret, method, uri, body, timestamp_ms)


@dataclass
class FetchRecord:
    """One attempt, readable by tests (``Sandbox.fetch_log``) and summarised in the call's properties."""

    call_id: str
    external_id: str = ""
    status: str = "pending"  # pending, transcribed, not_transcribed
    reason: str = ""  # a code (see REASONS) when not transcribed
    detail: str = ""
    retrieve_url: str = ""
    authenticated_url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    container: str = ""
    channels: int | None = None
    size: int = 0
    transcript_id: str = ""
    fetched_by: int = 0  # the process that made the requests (a child of the sandbox's)
    fetched_at_priority: int = 0  # its nice value
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    @property
    def done(self) -> bool:
        return self.finished_at is not None


REASONS = {
    "missing_properties": "The call lacks hs_call_external_id, hs_call_app_id, hs_call_external_account_id or "
                          "hs_call_source=INTEGRATIONS_PLATFORM, so HubSpot cannot ask for its recording.",
    "no_recording_setting": "No urlToRetrieveAuthedRecording is registered for the call's app.",
    "retrieve_failed": "The recording endpoint did not answer with an authenticatedUrl.",
    "download_failed": "The authenticatedUrl could not be downloaded.",
    "range_not_supported": "The recording URL did not answer Range requests with 206 Partial Content.",
    "unsupported_format": "The file is not WAV, FLAC or MP4.",
    "bad_audio": "The audio cannot be decoded, is cut off before its declared length, or is silent.",
    "one_channel": "All speakers are on one channel; HubSpot needs one speaker per channel.",
    "identical_channels": "Both channels carry the same audio; HubSpot needs one speaker per channel.",
    "no_owner": "The call has no owner; only calls of users with a paid Sales or Service seat are transcribed.",
    "owner_without_paid_seat": "The call's owner has no paid Sales or Service Hub seat.",
    "analysis_limit_reached": "The account reached its monthly conversation analysis limit.",
}


class FetchFailed(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or REASONS[reason])
        self.reason = reason
        self.detail = detail or REASONS[reason]


def _parse_content_range(value: str | None) -> tuple[int, int, int] | None:
    if not value or not value.startswith("bytes "):
        return None
    try:
        span, total = value[6:].split("/")
        first, last = span.split("-")
        return int(first), int(last), int(total)
    except ValueError:
        return None


class Downloader:
    """Range downloads of one URL, each request logged into the record."""

    def __init__(self, session: requests.Session, record: FetchRecord, timeout: float) -> None:
        self.session, self.record, self.timeout = session, record, timeout

    def get_range(self, url: str, first: int, last: int | None) -> tuple[int, bytes, tuple[int, int, int] | None,
                                                                          str]:
        header = f"bytes={first}-{'' if last is None else last}"
        try:
            resp = self.session.get(url, headers={"Range": header}, timeout=self.timeout)
        except requests.RequestException as exc:
            self.record.requests.append({"method": "GET", "url": url, "range": header, "status": None,
                                         "error": type(exc).__name__})
            raise FetchFailed("download_failed", f"GET {header}: {type(exc).__name__}: {exc}") from None
        body = resp.content
        self.record.requests.append({"method": "GET", "url": url, "range": header, "status": resp.status_code,
                                     "bytes": len(body), "content_range": resp.headers.get("Content-Range"),
                                     "content_type": resp.headers.get("Content-Type")})
        return resp.status_code, body, _parse_content_range(resp.headers.get("Content-Range")), \
            resp.headers.get("Content-Type", "")

    def download(self, url: str, target: Path, chunk: int, max_bytes: int) -> int:
        status, body, crange, ctype = self.get_range(url, 0, chunk - 1)
        if status == 200:
            self.record.warnings.append("range_not_supported: the first Range request got 200 with the whole file; "
                                        "seeking in HubSpot's player will not work")
            raise FetchFailed("range_not_supported", "The recording URL answered a Range request with 200, not 206")
        if status != 206 or crange is None:
            raise FetchFailed("download_failed", f"GET bytes=0-{chunk - 1} answered {status}"
                              + ("" if crange else " without a valid Content-Range"))
        if "octet-stream" not in ctype and not ctype.startswith("audio/"):
            self.record.warnings.append(f"content_type: {ctype or '(none)'} (HubSpot asks for application/octet-stream)")
        first, last, total = crange
        if first != 0 or last != len(body) - 1:
            raise FetchFailed("download_failed", f"Content-Range {first}-{last} does not match the {len(body)} bytes sent")
        if total > max_bytes:
            raise FetchFailed("download_failed", f"The recording is {total} bytes, more than {max_bytes}")
        middle: tuple[int, bytes] | None = None
        if total > len(body):  # a seek to the middle, as a listener would
            mid = total // 2
            status, mbody, mrange, _ = self.get_range(url, mid, min(total - 1, mid + chunk - 1))
            if status != 206 or mrange is None or mrange[0] != mid or mrange[2] != total:
                raise FetchFailed("range_not_supported", f"A seek to byte {mid} answered {status} "
                                  f"(Content-Range {mrange})")
            middle = (mid, mbody)
        with open(target, "wb") as fh:
            fh.write(body)
            pos = len(body)
            step = max(chunk, 4 * 1024 * 1024)
            while pos < total:
                status, part, prange, _ = self.get_range(url, pos, min(total - 1, pos + step - 1))
                if status != 206 or prange is None or prange[0] != pos or prange[2] != total or not part:
                    raise FetchFailed("download_failed", f"GET bytes={pos}- answered {status} (Content-Range {prange})")
                fh.write(part)
                pos += len(part)
        if middle is not None:
            with open(target, "rb") as fh:
                fh.seek(middle[0])
                if fh.read(len(middle[1])) != middle[1]:
                    raise FetchFailed("download_failed", "The bytes of the seek to the middle differ from the same "
                                      "bytes read in order")
        return total


def fetch(retrieve_template: str, external_id: str, external_account_id: str, app_id: str, client_secret: str,
          record: FetchRecord, *, chunk: int = 256 * 1024, timeout: float = 30.0,
          max_bytes: int = 2 * 1024**3) -> Path:
    """Steps 1–3 of the module docstring; returns the downloaded file (the caller deletes it)."""
    base = retrieve_template.replace("%s", urllib.parse.quote(external_id, safe=""))
    query = urllib.parse.urlencode({"externalAccountId": external_account_id, "appId": app_id})
    url = f"{base}{'&' if '?' in base else '?'}{query}"
    record.retrieve_url = url
    session = requests.Session()
    session.trust_env = False  # loopback URLs: never through a proxy from the environment
    session.headers["User-Agent"] = "HubSpot Connect 2.0 (http://dev.hubspot.com/) (sandbox)"
    try:
        timestamp = int(time.time() * 1000)
        signature = _sign_v3(client_secret, "GET", url, b"", timestamp)
        headers = {"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": str(timestamp),
                   "Accept": "application/json"}
        try:
            resp = session.get(url, headers=headers, timeout=timeout)
        except requests.RequestException as exc:
            record.requests.append({"method": "GET", "url": url, "status": None, "error": type(exc).__name__})
            raise FetchFailed("retrieve_failed", f"GET {url}: {type(exc).__name__}: {exc}") from None
        record.requests.append({"method": "GET", "url": url, "status": resp.status_code, "signed": True})
        if resp.status_code != 200:
            raise FetchFailed("retrieve_failed", f"The recording endpoint answered {resp.status_code}")
        try:
            payload = resp.json()
            authed = str(payload["authenticatedUrl"])
        except (ValueError, KeyError, TypeError):
            raise FetchFailed("retrieve_failed", "The recording endpoint's answer has no authenticatedUrl") from None
        record.authenticated_url = authed
        fd, name = tempfile.mkstemp(prefix="sandbox-recording-", suffix=".bin")
        os.close(fd)
        target = Path(name)
        try:
            record.size = Downloader(session, record, timeout).download(authed, target, chunk, max_bytes)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return target
    finally:
        session.close()


@dataclass(frozen=True)
class FetchJob:
    """What the child process of ``fetch_and_judge_apart`` needs for steps 1-3."""

    retrieve_template: str
    external_id: str
    external_account_id: str
    app_id: str
    client_secret: str
    chunk: int
    timeout: float


def _fetch_and_judge(job: FetchJob, record: FetchRecord) -> tuple[FetchRecord, judge.Verdict | None,
                                                                  tuple[str, str] | None]:
    """Steps 1-3 (in the child process): the record as the fetch filled it in, and the verdict or the
    failure's (reason, detail)."""
    path: Path | None = None
    try:
        path = fetch(job.retrieve_template, job.external_id, job.external_account_id, job.app_id,
                     job.client_secret, record, chunk=job.chunk, timeout=job.timeout)
        return record, judge.judge(path), None  # PyAV and HubSpot's rules, never the app's own inspector
    except FetchFailed as failed:
        return record, None, (failed.reason, failed.detail)
    finally:
        if path is not None:
            path.unlink(missing_ok=True)


# How much lower than the sandbox's the child's CPU priority is (its nice value, added): HubSpot's work
# never competes with the GUI thread of the app that runs the sandbox for a CPU.
CHILD_NICENESS = 10


def _helper_main(conn: Any) -> None:  # a helper process's entry point: fetch and judge until told to stop
    try:
        niceness = os.nice(CHILD_NICENESS)
    except OSError:  # not allowed here: run at the parent's priority
        niceness = os.nice(0)
    while True:
        try:
            job, record = conn.recv()
        except (EOFError, OSError):  # the sandbox is gone or closed the pipe
            return
        record.fetched_at_priority, record.fetched_by = niceness, os.getpid()
        try:
            conn.send(_fetch_and_judge(job, record))
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the caller
            conn.send(RuntimeError(f"{type(exc).__name__}: {exc}"))


# How long the child may take for one recording (each request has ``FetchJob.timeout`` of its own).
APART_TIMEOUT_S = 900.0
# Helper processes kept waiting for the next fetch (one more is started whenever all are busy) …
IDLE_HELPERS = 2
# … up to this many at once (~45 MB each): a batch marks a hundred calls ready at once, and a helper per
# fetch ran 1,000 calls out of memory; the other fetches wait for one, as HubSpot's own queue makes them.
MAX_HELPERS = 2


class _Helper:
    def __init__(self) -> None:
        ctx = mp.get_context("spawn")  # inherits none of the caller's threads, such as Qt's
        self.conn, child = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(target=_helper_main, args=(child,), daemon=True, name="sandbox-fetch")
        self.proc.start()
        child.close()
        self.reused = False

    def close(self) -> None:
        self.conn.close()
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(5)


_idle: list[_Helper] = []
_idle_lock = threading.Lock()
_running = threading.Condition()
_busy = 0  # helpers fetching now (at most MAX_HELPERS)


def _take_helper(*, fresh: bool = False) -> _Helper:
    with _idle_lock:
        while _idle and not fresh:
            helper = _idle.pop()
            if helper.proc.is_alive():
                helper.reused = True
                return helper
            helper.close()
    return _Helper()  # spawning costs the imports of PyAV and requests once, not once per fetch


def _give_back(helper: _Helper) -> None:
    with _idle_lock:
        if len(_idle) < IDLE_HELPERS:
            _idle.append(helper)
            return
    helper.close()


def fetch_and_judge_apart(job: FetchJob, record: FetchRecord, timeout: float = APART_TIMEOUT_S) -> judge.Verdict:
    """Steps 1-3 in a helper process started with ``spawn`` and reused for later fetches: the download's
    requests, warnings and size are copied into ``record``; raises FetchFailed as ``fetch`` does, and
    when the helper dies or overruns ``timeout`` (it is then ended, never reused). At most ``MAX_HELPERS``
    run at once; a fetch beyond waits for one to finish."""
    global _busy
    with _running:
        _running.wait_for(lambda: _busy < MAX_HELPERS)
        _busy += 1
    try:
        answer = _ask_a_helper(job, record, timeout)
    finally:
        with _running:
            _busy -= 1
            _running.notify()
    if isinstance(answer, BaseException):
        raise answer
    done: FetchRecord
    verdict: judge.Verdict | None
    failure: tuple[str, str] | None
    done, verdict, failure = answer
    for name in ("retrieve_url", "authenticated_url", "requests", "warnings", "size", "fetched_by",
                 "fetched_at_priority"):
        setattr(record, name, getattr(done, name))
    if failure is not None:
        raise FetchFailed(*failure)
    assert verdict is not None
    return verdict


def _ask_a_helper(job: FetchJob, record: FetchRecord, timeout: float) -> Any:
    """The answer of a helper process to one fetch (kept for the next one when it went well)."""
    helper = _take_helper()
    while True:
        try:
            helper.conn.send((job, record))
            if not helper.conn.poll(timeout):
                helper.close()
                raise FetchFailed("download_failed", f"The fetch did not end within {timeout:g} s")
            answer = helper.conn.recv()
            break
        except (EOFError, OSError):
            helper.close()
            if not helper.reused:
                raise FetchFailed("download_failed", "The fetch's process ended unexpectedly") from None
            helper = _take_helper(fresh=True)  # one kept waiting died meanwhile: a new one, once
    _give_back(helper)
    return answer


class Fetches:
    """What HubSpot does after "recording ready", one background thread per call: fetch the recording
    (``fetch``), judge it independently of the app's inspector (``judge.py``), check the owner's paid seat
    and the monthly analysis cap, then write the outcome on the call (``Records``)."""

    def __init__(self, records: Records, client_secret: str, *, analysis_limit: int | None, chunk: int,
                 timeout_s: float) -> None:
        self.records = records
        self.client_secret = client_secret
        self.analysis_limit = analysis_limit
        self.chunk = chunk
        self.timeout_s = timeout_s
        self.history: list[FetchRecord] = []  # every fetch, in the order the calls were marked ready
        self._done = threading.Condition()
        self._workers: list[threading.Thread] = []

    def start(self, call_id: str) -> None:
        record = FetchRecord(call_id=call_id)
        with self._done:
            self.history.append(record)
        worker = threading.Thread(target=self._run, args=(record,), name=f"sandbox-fetch:{call_id}",
                                  daemon=True)
        self._workers = [w for w in self._workers if w.is_alive()] + [worker]
        worker.start()

    def _run(self, record: FetchRecord) -> None:
        try:
            call = self.records.store.get("calls", record.call_id)
            props = call["properties"] if call else {}
            record.external_id = props.get("hs_call_external_id") or ""
            app_id = props.get("hs_call_app_id") or ""
            account = props.get("hs_call_external_account_id") or ""
            if not (record.external_id and app_id and account and props.get("hs_call_source") ==
                    "INTEGRATIONS_PLATFORM"):
                raise FetchFailed("missing_properties")
            try:
                app_number = int(float(app_id))
            except ValueError:
                raise FetchFailed("no_recording_setting", f"hs_call_app_id {app_id!r} is no app id") from None
            setting = self.records.store.get("settings", str(app_number))
            if not setting:
                raise FetchFailed("no_recording_setting", f"No recording URL is registered for app {app_number}")
            # steps 1-3 in a child process: HubSpot's downloading and decoding are not the work of the
            # process that runs the sandbox (in the app's sandbox mode, the GUI's)
            verdict = fetch_and_judge_apart(FetchJob(
                setting["urlToRetrieveAuthedRecording"], record.external_id, account, str(app_number),
                self.client_secret, self.chunk, self.timeout_s), record)
            record.container, record.channels = verdict.container, verdict.channels
            if verdict.reason:
                raise FetchFailed(verdict.reason, verdict.detail)
            channels = verdict.channels or 2
            owner_id = props.get("hubspot_owner_id") or ""
            owner = self.records.store.get("owners", owner_id) if owner_id else None
            if owner is None:
                raise FetchFailed("no_owner")
            if not owner.get("paid_seat"):
                raise FetchFailed("owner_without_paid_seat",
                                          f"Owner {owner_id} ({owner.get('email')}) has no paid Sales or Service seat")
            month_key = "analysed:" + time.strftime("%Y-%m", time.gmtime())
            with self.records.store.lock:
                used = int(self.records.store.get("meta", month_key) or 0)
                if self.analysis_limit is not None and used >= self.analysis_limit:
                    raise FetchFailed("analysis_limit_reached",
                                              f"{used} of {self.analysis_limit} analyses used this month")
                self.records.store.put("meta", month_key, used + 1)
            transcript_id = self.records.make_transcript(record.call_id, channels, "HUBSPOT_GENERATED")
            record.transcript_id = transcript_id
            record.status = "transcribed"
            self.records.set_call_properties(record.call_id, {
                "hs_call_has_transcript": "true", "hs_call_transcription_id": transcript_id,
                "sandbox_transcript_status": "TRANSCRIBED", "sandbox_transcript_reason": ""})
        except FetchFailed as failed:
            record.status, record.reason, record.detail = "not_transcribed", failed.reason, failed.detail
            if self.records.store.get("calls", record.call_id) is not None:
                self.records.set_call_properties(record.call_id, {
                    "hs_call_has_transcript": "false", "sandbox_transcript_status": "NOT_TRANSCRIBED",
                    "sandbox_transcript_reason": failed.reason})
        except Exception as exc:  # pragma: no cover - logged, and visible in the record
            log.exception("sandbox recording fetch of call %s", record.call_id)
            record.status, record.reason, record.detail = "not_transcribed", "download_failed", repr(exc)
        finally:
            record.finished_at = time.time()
            with self._done:
                self._done.notify_all()


    def wait(self, call_id: str, timeout: float = 30.0) -> FetchRecord:
        """The fetch that followed the latest "recording ready" of a call, once finished (TimeoutError when
        it does not finish in time)."""
        deadline = time.monotonic() + timeout
        with self._done:
            while True:
                mine = [r for r in self.history if r.call_id == str(call_id)]
                if mine and mine[-1].done:  # the latest "ready" of that call, finished
                    return mine[-1]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no recording fetch of call {call_id} finished within {timeout} s")
                self._done.wait(left)

    def join(self) -> None:
        """Wait for the fetches under way (each ends within its timeout)."""
        for worker in list(self._workers):
            worker.join(timeout=self.timeout_s + 5)
