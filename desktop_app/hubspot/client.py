"""The HubSpot client: sends the requests ``endpoints`` builds, with auth, limits and errors.

One ``requests.Session`` (pooled connections, a ``User-Agent`` naming the app, a timeout on every
call), one shared ``RateLimiter`` per account. The client does not retry failures: a 5xx, a timeout or a
lost connection raises ``HubSpotError`` at once (``retryable``; ``ambiguous=True`` for a create whose
answer was lost, after which the sync pipeline searches by external id before creating again), and the
caller decides (the pipeline's ``RetryPolicy`` owns retries and back-off; an interactive caller shows the
error). It waits only where HubSpot says to: a 429's ``Retry-After``, through the shared limiter
(``RATE_LIMIT_WAITS`` at most per request).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import requests
from requests.adapters import HTTPAdapter

from desktop_app import USER_AGENT, phones
from desktop_app.hubspot import endpoints, errors, versions
from desktop_app.hubspot.config import HubSpotConfig
from desktop_app.hubspot.endpoints import ApiRequest, AssociationTarget, CallDetails
from desktop_app.hubspot.errors import HubSpotError
from desktop_app.hubspot.models import (
    AccountDetails,
    AssociationResult,
    AssociationType,
    BatchError,
    BatchResult,
    Call,
    Contact,
    Disposition,
    Owner,
    PostedTranscript,
    RecordingSettings,
    TokenSet,
)
from desktop_app.hubspot.ratelimit import RateLimiter, shared_limiter
from desktop_app.hubspot.recording_url import RecordingUrlGuard

log = logging.getLogger(__name__)
T = TypeVar("T")
RECORDING_URL_READ_FRESH_S = 5.0  # a read of the recording URL older than this is made again before replacing it
# How many rate-limit 429s (with Retry-After) one request waits out before it reports the 429: HubSpot's
# SECONDLY window clears within its Retry-After, so a second 429 in a row means others share the account
# heavily; the third is reported (retryable, with its Retry-After) and the caller's policy takes over.
RATE_LIMIT_WAITS = 2


class _ScrubFilter(logging.Filter):
    """urllib3 logs each URL at debug level; a developer API key travels in the query (``hapikey``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        clean = errors.scrub(text)
        if clean != text:
            record.msg, record.args = clean, ()
        return True


logging.getLogger("urllib3.connectionpool").addFilter(_ScrubFilter())


def make_session(pool_size: int = 16) -> requests.Session:
    """The client's session: pooled keep-alive connections, no automatic retries (ours decide)."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
    return session


def limiter_for(config: HubSpotConfig) -> RateLimiter:
    """The process-wide limiter of ``config``'s account."""
    return shared_limiter(config.account_key, lambda: RateLimiter(
        limit=config.rate_limit_per_10s, daily_limit=config.daily_limit,
        search_limit=config.search_per_second))


def recording_registration_problem(config: HubSpotConfig) -> str | None:
    """Why ``config`` cannot register (or read) the recording URL, or None when it can.

    HubSpot's calling settings take the developer account's API key (``hapikey``) or an OAuth token
    with ``developers-write``; a private-app token can never hold that scope (calling-extensions-v3.json
    lists only the developer key and those OAuth scopes). On the dated API (2026-09) the settings take only
    the developer key (calling-extensions-2026-09.json: ``developer_hapikey`` alone). Set-up asks this before
    the first upload."""
    if config.developer_api_key or (config.auth == "oauth" and config.api_version == versions.V3):
        return None
    if config.api_version != versions.V3:
        return (f"Registering the recording URL on HubSpot's {config.api_version} API needs the developer API key "
                "of the developer account that owns your app (HubSpot developer account → Apps → Get HubSpot API "
                "key): that version takes no access token for it. Add the key, or set hubspot.api_version to v3.")
    return ("Registering the recording URL with HubSpot needs the developer API key of the developer account "
            "that owns your app (HubSpot developer account → Apps → Get HubSpot API key): a private-app token "
            "cannot hold the developers-write scope. Add the key, or sign in with OAuth.")


# What the account cannot do about transcripts, in one sentence (hubspot test, set-up, a refused post).
TRANSCRIPTS_NEED_OAUTH = (
    "Call Relay cannot post transcripts with this HubSpot sign-in: HubSpot's transcripts API needs an OAuth "
    f"sign-in with the {endpoints.TRANSCRIPTS_WRITE_SCOPE} scope, which a private-app token cannot hold; sign in "
    "with HubSpot (OAuth) to post them.")


class TokenStore:
    """Where rotated OAuth tokens go; the default keeps them in the keyring."""

    def save(self, tokens: TokenSet) -> None:
        from desktop_app import keystore

        keystore.set(keystore.HUBSPOT_ACCESS_TOKEN, tokens.access_token)
        if tokens.refresh_token:
            keystore.set(keystore.HUBSPOT_REFRESH_TOKEN, tokens.refresh_token)


# Refresh an OAuth token this long before HubSpot says it expires.
REFRESH_MARGIN_S = 120.0


class HubSpotClient:
    """Typed functions for every HubSpot operation the app uses. Thread-safe."""

    def __init__(
        self,
        config: HubSpotConfig,
        *,
        session: requests.Session | None = None,
        limiter: RateLimiter | None = None,
        token_store: TokenStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.session = session if session is not None else make_session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.limiter = limiter if limiter is not None else limiter_for(config)
        self.token_store = token_store if token_store is not None else TokenStore()
        self._clock = clock
        self._lock = threading.Lock()
        self._auth_lock = threading.Lock()
        self._assoc_types: dict[tuple[str, str], AssociationType] = {}
        self._tokens = (config.access_token, config.refresh_token, config.token_expires_at)
        # a desk's client: asked before the registered recording URL is replaced (None: no check)
        self.recording_url_guard: RecordingUrlGuard | None = None
        # app id -> (the URL HubSpot had, time.monotonic() when read): the read a replacement just made
        self._recording_url_read: dict[str, tuple[str | None, float]] = {}

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> HubSpotClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- auth -----------------------------------------------------------------------------------
    def _secrets(self) -> tuple[str, ...]:
        access, refresh, _ = self._tokens
        return (*self.config.secrets(), *(s for s in (access, refresh) if s))

    def _bearer(self) -> str:
        with self._auth_lock:
            access, refresh, expires_at = self._tokens
            if self.config.auth == "oauth" and refresh and (
                    expires_at is None or expires_at - REFRESH_MARGIN_S <= self._clock()):
                self._refresh_locked()
                access = self._tokens[0]
        if not access:
            raise HubSpotError("no access token", category=errors.INVALID_AUTHENTICATION, agent_message=(
                "No HubSpot sign-in is stored: paste a private-app token or sign in with HubSpot first."))
        return access

    def _refresh_locked(self) -> None:
        _, refresh, _ = self._tokens
        req = endpoints.oauth_refresh(refresh, client_id=self.config.oauth_client_id,
                                      client_secret=self.config.client_secret)
        try:
            tokens = self._token_call(req)
        except HubSpotError as exc:
            if exc.status is not None and 400 <= exc.status < 500:  # revoked, rotated away, or a wrong secret
                raise HubSpotError(exc.message, status=exc.status, category=exc.category,
                                   correlation_id=exc.correlation_id, operation=req.operation, agent_message=(
                                       "The HubSpot sign-in has expired or was revoked; sign in to HubSpot again."
                                   )) from None
            raise
        tokens = dataclasses.replace(tokens, refresh_token=tokens.refresh_token or refresh)  # not rotated: keep
        self._tokens = (tokens.access_token, tokens.refresh_token, tokens.expires_at)
        self.token_store.save(tokens)
        log.info("HubSpot access token refreshed; valid for %.0f s", tokens.expires_at - self._clock())

    def refresh_token_now(self) -> None:
        """Refresh the OAuth access token (rotating the refresh token when HubSpot sends a new one)."""
        with self._auth_lock:
            self._refresh_locked()

    def _token_call(self, req: ApiRequest) -> TokenSet:
        resp = self.send(req)
        data = self._json(resp, req)
        try:
            return TokenSet.from_json(data, self._clock())
        except (ValueError, TypeError) as exc:
            raise errors.bad_response(str(exc), status=resp.status_code, operation=req.operation) from None

    def exchange_code(self, code: str, redirect_uri: str) -> TokenSet:
        """Trade an authorization code for tokens, keep them (token store) and use them from now on."""
        req = endpoints.oauth_exchange_code(code, client_id=self.config.oauth_client_id,
                                            client_secret=self.config.client_secret, redirect_uri=redirect_uri)
        tokens = self._token_call(req)
        with self._auth_lock:
            self._tokens = (tokens.access_token, tokens.refresh_token, tokens.expires_at)
        self.token_store.save(tokens)
        return tokens

    def _auth(self, req: ApiRequest) -> tuple[dict[str, str], list[tuple[str, str]]]:
        if req.auth == "none":
            return {}, []
        if req.auth == "developer" and self.config.developer_api_key:
            return {}, [("hapikey", self.config.developer_api_key)]
        if req.auth == "developer":
            problem = recording_registration_problem(self.config)
            if problem:  # say so now, not as a 403 after the first upload
                raise HubSpotError(problem, category=errors.MISSING_SCOPES, operation=req.operation,
                                   retryable=False, agent_message=problem)
        return {"Authorization": f"Bearer {self._bearer()}"}, []

    # --- sending --------------------------------------------------------------------------------
    def send(self, req: ApiRequest) -> requests.Response:
        """Send ``req`` (on the configured API version's path) and return the successful (2xx) response, or
        raise ``HubSpotError``.

        Each call is one attempt: a 5xx, a timeout or a lost connection raises at once (``retryable``, or
        ``ambiguous`` for a create that may have happened), and whoever asked decides whether to try again
        (the sync pipeline's ``RetryPolicy`` does, and writes each attempt down). The client waits only where
        HubSpot says to: a rate-limit 429 with ``Retry-After`` makes the shared limiter hold every thread (and,
        with a shared budget, every relay) that long, and the request is sent again, at most
        ``RATE_LIMIT_WAITS`` times. An expired OAuth token is refreshed once and the request sent again."""
        req = endpoints.at_version(req, self.config.api_version)
        refreshed = False
        waits = 0
        while True:
            headers, auth_params = self._auth(req)
            ticket = self.limiter.acquire(req.kind)  # waits out a 429's pause, shared by every thread
            started = time.monotonic()
            try:
                prepared = self.session.prepare_request(
                    endpoints.http_request(req, self.config.base_url, headers=headers, extra_params=auth_params))
                env = self.session.merge_environment_settings(prepared.url, {}, None, None, None)
                resp = self.session.send(prepared, timeout=(self.config.connect_timeout, self.config.read_timeout),
                                         allow_redirects=False, **env)
            except requests.RequestException as exc:
                self.limiter.release(ticket)
                err = errors.from_exception(exc, secrets=self._secrets(), operation=req.operation,
                                            may_have_happened=req.creates)
                log.info("HubSpot %s %s failed: %s", req.method, req.path, err)
                raise err from None
            except BaseException:
                self.limiter.release(ticket)  # never leave a slot held
                raise
            policy = _policy_name(resp) if resp.status_code == 429 else None
            retry_after = errors.parse_retry_after(resp.headers.get("Retry-After"))
            self.limiter.release(ticket, status=resp.status_code, headers=resp.headers,
                                 policy_name=policy, retry_after=retry_after)
            log.debug("HubSpot %s %s -> %s in %.0f ms", req.method, req.path, resp.status_code,
                      (time.monotonic() - started) * 1000)
            if 200 <= resp.status_code < 300:
                return resp
            if (resp.status_code == 401 and not refreshed and "Authorization" in headers
                    and self.config.auth == "oauth" and self._tokens[1]):
                refreshed = True
                self.refresh_token_now()
                continue
            err = errors.from_response(resp, secrets=self._secrets(), operation=req.operation,
                                       ambiguous_if_5xx=req.creates)
            log.info("HubSpot %s %s: %s", req.method, req.path, err)
            if err.policy_name == errors.DAILY:  # the limiter now stops every thread until the day ends
                if err.retry_after is None:
                    err.retry_after = self.limiter.seconds_until_daily_reset()
                raise err
            if resp.status_code == 429 and err.retry_after is not None and waits < RATE_LIMIT_WAITS:
                waits += 1  # the limiter holds this request, and every other, until the Retry-After has passed
                continue
            raise err

    @staticmethod
    def _json(resp: requests.Response, req: ApiRequest) -> Any:
        try:
            return resp.json()
        except ValueError:
            raise errors.bad_response("the answer is not JSON", status=resp.status_code,
                                      operation=req.operation) from None

    def _call(self, req: ApiRequest) -> Any:
        return self._json(self.send(req), req)

    def _parse(self, parse: Callable[[Any], Any], data: Any, req: ApiRequest) -> Any:
        try:
            return parse(data)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise errors.bad_response(f"{req.operation}: {exc}", status=200, operation=req.operation) from None

    def _app_id(self, app_id: str | int | None) -> str:
        value = str(app_id if app_id is not None else self.config.app_id)
        if not value:
            raise ValueError("No HubSpot app id is set (setting hubspot.app_id or HUBSPOT_APP_ID).")
        return value

    # --- recording settings ---------------------------------------------------------------------
    def get_recording_settings(self, app_id: str | int | None = None) -> RecordingSettings | None:
        """The registered recording URL, or None when none is registered (HubSpot answers 404)."""
        app = self._app_id(app_id)
        found = self._read_or_none(endpoints.recording_settings_get(app), RecordingSettings.from_json)
        self._recording_url_read[app] = (found.url_to_retrieve_authed_recording if found is not None else None,
                                         time.monotonic())
        return found

    def create_recording_settings(self, url: str, app_id: str | int | None = None) -> RecordingSettings:
        req = endpoints.recording_settings_create(self._app_id(app_id), url, allow_http=self.config.allows_http())
        self._recording_url_read.pop(self._app_id(app_id), None)  # a read is used once: it is stale now
        result: RecordingSettings = self._parse(RecordingSettings.from_json, self._call(req), req)
        self._registered(url)
        return result

    def update_recording_settings(self, url: str, app_id: str | int | None = None) -> RecordingSettings:
        """Replace the registered recording URL. With a ``recording_url_guard`` (a desk), only after it allowed
        replacing the URL HubSpot has (read just before, or read now): ``RecordingUrlTaken`` otherwise."""
        app = self._app_id(app_id)
        req = endpoints.recording_settings_update(app, url, allow_http=self.config.allows_http())
        guard = self.recording_url_guard
        if guard is not None:
            # each replacement checks what HubSpot holds now: the read made just before it, else a read now
            _current, read_at = self._recording_url_read.get(app, (None, -RECORDING_URL_READ_FRESH_S))
            if time.monotonic() - read_at >= RECORDING_URL_READ_FRESH_S:
                self.get_recording_settings(app)
            current, _read_at = self._recording_url_read.pop(app)
            guard.check(current, url, app)
        result: RecordingSettings = self._parse(RecordingSettings.from_json, self._call(req), req)
        self._registered(url)
        return result

    def register_recording_url(self, url: str, app_id: str | int | None = None) -> RecordingSettings:
        """Make ``url`` the registered recording URL: create it, update it (see ``update_recording_settings``:
        a desk never silently replaces another's), or leave it as it is."""
        current = self.get_recording_settings(app_id)
        if current is None:
            return self.create_recording_settings(url, app_id)
        if current.url_to_retrieve_authed_recording != url:
            return self.update_recording_settings(url, app_id)
        self._recording_url_read.pop(self._app_id(app_id), None)
        self._registered(url)
        return current

    def _registered(self, url: str) -> None:
        if self.recording_url_guard is not None:
            self.recording_url_guard.registered(url)

    def mark_recording_ready(self, call_id: str | int) -> None:
        """``POST /crm/v3/extensions/calling/recordings/ready``: HubSpot may now fetch and transcribe."""
        self.send(endpoints.recordings_ready(call_id))

    # --- third-party transcripts ----------------------------------------------------------------
    def _transcripts_call(self, req: ApiRequest) -> Any:
        """Send a transcripts request; a 403 becomes the one sentence naming OAuth (``TRANSCRIPTS_NEED_OAUTH``)."""
        try:
            return self.send(req)
        except HubSpotError as exc:
            if exc.status == 403:
                exc.agent_message = TRANSCRIPTS_NEED_OAUTH
                exc.args = (exc._describe(),)  # str(exc) says it too (the pipeline's messages are str(exc))
            raise

    def post_transcript(self, call_id: str | int,
                        utterances: Sequence[endpoints.TranscriptUtterance]) -> str:
        """Post an app's transcript of the call; HubSpot's transcript id. A lost answer raises
        ``HubSpotError(ambiguous=True)``: look at the call's ``hs_call_transcription_id`` before posting again."""
        req = endpoints.transcripts_create(call_id, utterances)
        resp = self._transcripts_call(req)
        result: str = self._parse(lambda d: str(d["id"]), self._json(resp, req), req)
        return result

    def get_transcript(self, transcript_id: str | int) -> PostedTranscript | None:
        """The transcript with this id, or None when HubSpot has none (404)."""
        req = endpoints.transcripts_get(transcript_id)
        try:
            resp = self._transcripts_call(req)
        except HubSpotError as exc:
            if exc.status == 404:
                return None
            raise
        result: PostedTranscript = self._parse(PostedTranscript.from_json, self._json(resp, req), req)
        return result

    def delete_transcript(self, transcript_id: str | int) -> bool:
        """Delete a transcript; False when HubSpot had none with this id (404: already deleted)."""
        try:
            self._transcripts_call(endpoints.transcripts_delete(transcript_id))
        except HubSpotError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def check_may_post_transcripts(self) -> None:
        """Raise ``HubSpotError`` (its sentence names OAuth) when this sign-in may not post transcripts; creates
        nothing (a transcript for engagement 0, which no call has)."""
        try:
            self._transcripts_call(endpoints.transcripts_permission_probe())
        except HubSpotError as exc:
            if exc.status in (400, 404):  # past the sign-in and scope checks: the body was refused
                return
            raise

    # --- calls ----------------------------------------------------------------------------------
    def external_account_id(self) -> str:
        """``hs_call_external_account_id``: the ``hubspot.external_account_id`` setting, else the account's
        portal id, asked of HubSpot once when no one has said it (an account set up in Settings never does)."""
        if not self.config.effective_external_account_id:
            self.account_details()
        return self.config.effective_external_account_id

    def call_properties(self, details: CallDetails) -> dict[str, str]:
        return endpoints.call_properties(details, app_id=self._app_id(None),
                                         external_account_id=self.external_account_id())

    def _targets(self, associate: Mapping[str, Sequence[str]]) -> list[AssociationTarget]:
        return [AssociationTarget(str(to_id), (self.association_type(to_type),))
                for to_type, ids in associate.items() for to_id in ids]

    def create_call(self, details: CallDetails, associate: Mapping[str, Sequence[str]] | None = None) -> Call:
        """Log a call, associated in the same request with the records in ``associate``
        (object type → ids, e.g. ``{"contacts": ["51"]}``).

        A lost answer raises ``HubSpotError(ambiguous=True)``: search by external id before retrying.
        """
        req = endpoints.calls_create(self.call_properties(details), self._targets(associate or {}))
        result: Call = self._parse(Call.from_json, self._call(req), req)
        return result

    def batch_create_calls(self, items: Sequence[tuple[CallDetails, Mapping[str, Sequence[str]]]]) -> BatchResult:
        req = endpoints.calls_batch_create([(self.call_properties(d), self._targets(a)) for d, a in items])
        result: BatchResult = self._parse(BatchResult.from_json, self._call(req), req)
        return result

    def check_may_log_calls(self) -> None:
        """Raise ``HubSpotError`` when this sign-in may not log calls (no ``crm.objects.contacts.write``);
        creates nothing (an empty batch). A 400 about the empty batch means the sign-in and scopes passed."""
        try:
            self.send(endpoints.calls_create_permission_probe())
        except HubSpotError as exc:
            if exc.status != 400:
                raise

    def find_calls_by_external_id(self, external_id: str,
                                  properties: Iterable[str] = endpoints.TRANSCRIPT_PROPERTIES) -> list[Call]:
        """Calls whose ``hs_call_external_id`` is ``external_id`` (the idempotency check)."""
        req = endpoints.calls_search_by_external_id(external_id, properties)
        data = self._call(req)
        result: list[Call] = self._parse(lambda d: [Call.from_json(r) for r in d["results"]], data, req)
        return [c for c in result if c.external_id in (None, external_id)]

    def find_calls_by_external_ids(self, external_ids: Sequence[str],
                                   properties: Iterable[str] = endpoints.TRANSCRIPT_PROPERTIES) -> dict[str, list[Call]]:
        """External id → the calls that carry it, for many ids (searches of 100 ids, all pages)."""
        wanted = [str(i) for i in dict.fromkeys(external_ids)]
        found: dict[str, list[Call]] = {i: [] for i in wanted}
        for start in range(0, len(wanted), endpoints.BATCH_MAX):
            chunk = wanted[start:start + endpoints.BATCH_MAX]
            after: str | None = None
            for _ in range(100):
                req = endpoints.calls_search_by_external_ids(chunk, properties, after)
                data = self._call(req)
                calls: list[Call] = self._parse(lambda d: [Call.from_json(r) for r in d["results"]], data, req)
                for call in calls:
                    if call.external_id in found:
                        found[call.external_id].append(call)
                after = ((data.get("paging") or {}).get("next") or {}).get("after")
                if not after:
                    break
        return found

    def read_calls(self, call_ids: Sequence[str | int],
                   properties: Iterable[str] = endpoints.TRANSCRIPT_PROPERTIES) -> BatchResult:
        """Up to 100 calls by id; ids HubSpot does not know are listed in ``errors`` (a 207 answer)."""
        req = endpoints.calls_batch_read(call_ids, properties)
        result: BatchResult = self._parse(BatchResult.from_json, self._call(req), req)
        return result

    def read_call(self, call_id: str | int, properties: Iterable[str] = endpoints.TRANSCRIPT_PROPERTIES,
                  associations: Iterable[str] = ()) -> Call:
        req = endpoints.calls_read(call_id, properties, associations)
        result: Call = self._parse(Call.from_json, self._call(req), req)
        return result

    # --- associations ---------------------------------------------------------------------------
    def association_types(self, to_type: str, from_type: str = "calls") -> list[AssociationType]:
        req = endpoints.association_labels(from_type, to_type)
        result: list[AssociationType] = self._parse(
            lambda d: [AssociationType.from_json(r) for r in d["results"]], self._call(req), req)
        return result

    def association_type(self, to_type: str, from_type: str = "calls") -> AssociationType:
        """The default (unlabelled, HubSpot-defined) association type, read once and cached."""
        key = (from_type, to_type)
        with self._lock:
            cached = self._assoc_types.get(key)
        if cached is not None:
            return cached
        types = self.association_types(to_type, from_type)
        chosen = next((t for t in types if t.category == "HUBSPOT_DEFINED" and not t.label), None) or next(
            (t for t in types if t.category == "HUBSPOT_DEFINED"), None)
        if chosen is None:
            raise HubSpotError(f"no HubSpot-defined association type from {from_type} to {to_type}",
                               category=errors.BAD_RESPONSE, agent_message=(
                                   f"HubSpot offers no way to associate {from_type} with {to_type}."))
        with self._lock:
            self._assoc_types[key] = chosen
        return chosen

    def associate(self, call_id: str | int, to_type: str, to_id: str | int,
                  from_type: str = "calls") -> AssociationResult:
        req = endpoints.association_create(from_type, call_id, to_type, to_id,
                                           [self.association_type(to_type, from_type)])
        result: AssociationResult = self._parse(AssociationResult.from_json, self._call(req), req)
        return result

    def associate_batch(self, to_type: str, pairs: Sequence[tuple[str, str]],
                        from_type: str = "calls") -> tuple[list[AssociationResult], list[BatchError]]:
        """Associate many (from id, to id) pairs; returns the results and the per-item errors (207)."""
        req = endpoints.association_batch_create(from_type, to_type, pairs, [self.association_type(to_type, from_type)])
        data = self._call(req)
        result: tuple[list[AssociationResult], list[BatchError]] = self._parse(
            lambda d: ([AssociationResult.from_json(r) for r in d["results"]],
                       [BatchError.from_json(e) for e in d.get("errors", []) or []]), data, req)
        return result

    # --- contacts -------------------------------------------------------------------------------
    def _search_contacts(self, groups: list[dict[str, Any]], limit: int = 20) -> list[Contact]:
        req = endpoints.contacts_search(groups, limit=limit)
        result: list[Contact] = self._parse(
            lambda d: [Contact.from_json(r) for r in d["results"]], self._call(req), req)
        return result

    def search_contacts_by_email(self, email: str) -> list[Contact]:
        return self._search_contacts(endpoints.contact_filters_email(email))

    def search_contacts_by_name(self, name: str) -> list[Contact]:
        return self._search_contacts(endpoints.contact_filters_name(name))

    def search_contacts_by_phone(self, number: str, region: str = "US") -> list[Contact]:
        """Contacts whose phone or mobile phone is ``number`` in any of the forms people store."""
        found = self._search_contacts(endpoints.contact_filters_phone(number, region))
        return [c for c in found if any(phones.same_number(p, number, region) for p in c.phones)]

    def read_contact(self, contact_id: str | int) -> Contact | None:
        """The contact with this id, or None when HubSpot has none (404)."""
        return self._read_or_none(endpoints.contacts_read(contact_id), Contact.from_json)

    def _read_or_none(self, req: ApiRequest, parse: Callable[[Any], T]) -> T | None:
        """One object HubSpot reads by id, or None when it answers 404 (there is none)."""
        try:
            data = self._call(req)
        except HubSpotError as exc:
            if exc.status == 404:
                return None
            raise
        result: T = self._parse(parse, data, req)
        return result

    def create_contact(self, *, email: str | None = None, firstname: str | None = None,
                       lastname: str | None = None, phone: str | None = None, region: str = "US",
                       **extra: str) -> Contact:
        """Create a contact; a phone number is stored in E.164 so later searches find it."""
        props = {"email": email, "firstname": firstname, "lastname": lastname,
                 "phone": (phones.to_e164(phone, region) or phone) if phone else None, **extra}
        req = endpoints.contacts_create({k: v for k, v in props.items() if v})
        result: Contact = self._parse(Contact.from_json, self._call(req), req)
        return result

    # --- owners, dispositions, account ----------------------------------------------------------
    def owners(self, page_size: int = 100) -> list[Owner]:
        """Every active owner, following HubSpot's paging."""
        out: list[Owner] = []
        after: str | None = None
        for _ in range(1000):
            req = endpoints.owners_page(after, page_size)
            data = self._call(req)
            out += self._parse(lambda d: [Owner.from_json(r) for r in d["results"]], data, req)
            after = ((data.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                break
        return out

    def call_dispositions(self) -> list[Disposition]:
        req = endpoints.call_dispositions()
        result: list[Disposition] = self._parse(
            lambda d: [Disposition.from_json(r) for r in d], self._call(req), req)
        return result

    def account_details(self) -> AccountDetails:
        """The account's portal id, time zone and UI domain (the limiter's day follows its time zone)."""
        req = endpoints.account_details()
        details: AccountDetails = self._parse(AccountDetails.from_json, self._call(req), req)
        self.limiter.utc_offset_s = details.utc_offset_ms / 1000.0
        if not self.config.portal_id:  # now known: the calls logged from here on name the account by it
            self.config = dataclasses.replace(self.config, portal_id=str(details.portal_id))
        return details


def _policy_name(resp: requests.Response) -> str | None:
    try:
        body = resp.json()
    except ValueError:
        return None
    value = body.get("policyName") if isinstance(body, Mapping) else None
    return str(value) if value else None
