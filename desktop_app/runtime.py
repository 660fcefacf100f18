"""The composition root: one object that starts and holds the app's parts (Qt-free).

``Runtime`` puts together the settings, the history, the recording store, the HubSpot client (for a
real account, or for the in-process sandbox in offline demo mode), the recording server
(``ServerConfig.from_settings``, as ``callrelay serve`` builds it) and its tunnel
(``tunnel.factory.from_settings``), and the submission pipeline with its scheduler over them. The GUI
and the ``callrelay`` commands both use it, so they behave the same. It only wires: what a call's
details are (``sync.details``), who carries which submission when (``sync.scheduler``) and how a step
runs (``sync.pipeline``) are decided by the packages that own them. ``start`` does network work: call
it off the GUI thread.
"""

from __future__ import annotations

import datetime as dt
import getpass
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from desktop_app import keystore, paths
from desktop_app import settings as settings_mod
from desktop_app.hubspot.client import HubSpotClient
from desktop_app.hubspot.config import ENV_NAMES, HubSpotConfig, config_from_env, load_config
from desktop_app.hubspot.endpoints import CallDetails
from desktop_app.hubspot.errors import HubSpotError
from desktop_app.hubspot.recording_url import AskTakeOver, settings_guard
from desktop_app.server.config import ServerConfig
from desktop_app.server.recordings import RecordingStore, sha256_of
from desktop_app.sync import history as h
from desktop_app.sync.details import ContactResolver, SubmissionRefused, call_details_for_file
from desktop_app.sync.hubspot_port import ClientPort
from desktop_app.sync.pipeline import Outcome, Pipeline, RetryPolicy, Seen, ServerPort
from desktop_app.sync.retention import apply_retention
from desktop_app.sync.scheduler import Scheduler, Worker
from desktop_app.sync.serverlink import NoServer, ServerLink, fetched_since

if TYPE_CHECKING:  # the parts a run may not need are imported when it starts them
    from desktop_app.relay.desk import Sent, TeamDesk, TeamHistory
    from desktop_app.sandbox.server import Sandbox
    from desktop_app.server.app import RecordingServer
    from desktop_app.sync.transcripts import AutoTranscriber
    from desktop_app.tunnel.base import Tunnel

__all__ = ["InProcessServerLink", "Runtime", "SetupError", "SubmissionRefused", "sandbox_wanted"]

log = logging.getLogger(__name__)


# how many times the start reads the account (a read: safe to repeat) before it says HubSpot cannot be reached
START_READS = 3


class SetupError(RuntimeError):
    """The app cannot start its work as configured (the message says what to change)."""


class InProcessServerLink:
    """``ServerPort`` for the server this process runs."""

    def __init__(self, server: RecordingServer) -> None:
        self.server = server

    def recording_endpoint_template(self) -> str:
        return self.server.recording_endpoint_template()

    def fetched_since(self, external_id: str, since: dt.datetime) -> bool | None:
        self.server.access_log.flush()
        return fetched_since(external_id, since, self.server.access_log.path,
                             lost_since=self.server.access_log_lost_since())


def sandbox_wanted(settings: settings_mod.Settings, env: Mapping[str, str]) -> bool:
    """Offline demo mode: the setting says so and no HUBSPOT_* variables name another HubSpot."""
    return bool(settings.get("hubspot.sandbox")) and not any(env.get(n) for n in ENV_NAMES)


class Runtime:
    """Starts, holds and stops the app's parts. ``own_server=False`` uses the data directory's running
    recording server instead of starting one (``callrelay upload``). ``sandbox_if_no_keyring`` (the app):
    without a usable keyring a real account cannot work, so start in sandbox mode instead (see
    ``keyring_notice``); the commands leave it False and fail with the keyring's message."""

    def __init__(self, settings: settings_mod.Settings | None = None, *, sandbox: bool | None = None,
                 own_server: bool = True, env: Mapping[str, str] | None = None,
                 policy: RetryPolicy | None = None, sandbox_if_no_keyring: bool = False,
                 sandbox_search_lag_s: float | None = None, take_over: bool | AskTakeOver = False) -> None:
        self.env = os.environ if env is None else env
        self.settings = settings or settings_mod.load()
        self.is_sandbox = sandbox_wanted(self.settings, self.env) if sandbox is None else sandbox
        self.own_server = own_server
        self.sandbox_if_no_keyring = sandbox_if_no_keyring
        self.sandbox_search_lag_s = sandbox_search_lag_s
        self.keyring_notice = ""  # one sentence when this run goes on without a keyring
        # HubSpot's recording URL registered by another desk or the relay: True replaces it, False leaves it
        # (the registration fails, naming it), a callable asks (the app's dialog, from a worker thread)
        self.take_over: bool | AskTakeOver = take_over
        self.policy = policy or RetryPolicy()
        self.history = h.History()
        self.store = RecordingStore()
        self.sandbox: Sandbox | None = None
        self.server: RecordingServer | None = None
        self.tunnel: Tunnel | None = None
        self.tunnel_problem = ""  # why no tunnel could be started (a provider missing, manual without a URL)
        self.client: HubSpotClient | None = None
        self.config: HubSpotConfig | None = None
        self.pipeline: Pipeline | None = None
        self.scheduler: Scheduler | None = None  # who carries which submission when (with the pipeline)
        self.contacts: ContactResolver | None = None
        self.portal_id = ""
        self.last_warnings: list[str] = []
        self._listeners: list[Callable[[h.Submission], object]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._worker: Worker | None = None
        self.team: TeamDesk | None = None  # a joined desk's parts (start)
        self.transcriber: AutoTranscriber | None = None  # the desk's transcriber (issue 20), with the worker

    # -- life cycle ------------------------------------------------------------------------------
    def start(self) -> Runtime:
        if self._start_team():
            return self
        self._without_keyring()
        config = self._hubspot_config()
        if not config.access_token and not config.refresh_token:
            raise SetupError("No HubSpot account is configured: sign in or paste a private-app token in Settings "
                             "(or use sandbox mode to try the app offline).")
        self.config = config
        self.client = client = HubSpotClient(config)
        if not self.is_sandbox:  # the in-process sandbox is this desk's own: no one else registers there
            client.recording_url_guard = settings_guard(self._take_over, shared=self.settings)
        self.portal_id = config.portal_id or self._read_portal_id(client)
        # the portal id just learnt goes with the account: with hubspot.external_account_id empty (the
        # default) it is the id every call is logged under (hs_call_external_account_id)
        self.config = config = client.config
        self.contacts = ContactResolver(client, self.settings)
        link: ServerPort
        if self.own_server:
            link = InProcessServerLink(self._start_server(config))
        else:
            try:
                link = ServerLink.discover()
            except NoServer as exc:
                raise SetupError(str(exc)) from None
        self.pipeline = Pipeline(self.history, self.store, ClientPort(client, portal_id=self.portal_id), link,
                                 policy=self.policy, on_change=self.notify)
        self.scheduler = Scheduler(self.pipeline, self.history, self._stop)
        apply_retention(self.history, self.store, int(self.settings.get("calls.retention_days")))
        return self

    def _hubspot_config(self) -> HubSpotConfig:
        """The account's configuration: the in-process sandbox's (started here) in sandbox mode."""
        if not self.is_sandbox:
            return load_config(self.settings, self.env)
        from desktop_app.sandbox.server import Sandbox

        self.sandbox = Sandbox(port=0, state_file=paths.sandbox_dir() / "state.json",
                               search_lag_s=self._sandbox_lag()).start()
        return replace(config_from_env(self.sandbox.env(), self.settings), is_sandbox=True)

    def _read_portal_id(self, client: HubSpotClient) -> str:
        """The account's portal id (one read). The client reports a 5xx or a lost answer at once, so a
        passing one is tried again here, at the retry policy's pace, a few times (the window waits for it);
        then SetupError in one sentence."""
        for attempt in range(1, START_READS + 1):
            try:
                return str(client.account_details().portal_id)
            except HubSpotError as exc:
                if not exc.retryable or attempt == START_READS:
                    raise SetupError(f"HubSpot cannot be reached with this account: {exc}") from None
                time.sleep(self.policy.backoff(attempt, exc.retry_after))
        raise AssertionError("unreachable")

    def _take_over(self, current: str, wanted: str) -> bool:
        """Replace ``current``, a recording URL this desk did not register, by ``wanted``? (``take_over``)"""
        decision = self.take_over
        return bool(decision(current, wanted)) if callable(decision) else bool(decision)

    def _start_team(self) -> bool:
        """A desk that joined a team (``team.relay_url``) sends to the relay and holds no HubSpot secret:
        only the team's parts start (``team``, the outbox's sender); False for a single desk."""
        from desktop_app.relay.desk import TeamDesk, TeamSetupError, joined_url

        if not joined_url(self.settings):
            return False
        try:
            self.team = TeamDesk.from_settings(self.settings)
        except TeamSetupError as exc:
            raise SetupError(str(exc)) from None
        return self.team is not None

    def submit_to_team(self, path: Path, details: CallDetails,
                       on_progress: Callable[[str, int, int], None] | None = None) -> Sent:
        """Blocking (a worker thread): write the recording into the outbox and send it to the relay, as
        ``callrelay upload`` does on a joined desk; the `desk.Sent` (sent, pending or refused)."""
        from desktop_app.relay.desk import call_for_relay

        if self.team is None:
            raise SetupError("This desk has not joined a team.")
        entry, _ = self.team.queue(Path(path), call_for_relay(details.to_dict()), again=True)
        return self.team.send(entry, on_progress)

    def team_history(self) -> TeamHistory | None:
        """The team's history as the History page reads it (`desk.TeamHistory`), or None for a single desk."""
        from desktop_app.relay.desk import TeamHistory

        return TeamHistory(self.team) if self.team is not None else None

    def _sandbox_lag(self) -> float:
        """How long the in-process sandbox keeps a new record out of search, as HubSpot's index does: its
        default (a few seconds), but never longer than the pipeline's policy waits before searching again
        after a create whose answer was lost (``search_lag_s``; the default policy outlasts the default lag).
        A test of the lag itself passes ``sandbox_search_lag_s``."""
        from desktop_app.sandbox.server import DEFAULT_SEARCH_LAG_S

        if self.sandbox_search_lag_s is not None:
            return self.sandbox_search_lag_s
        return min(DEFAULT_SEARCH_LAG_S, self.policy.search_lag_s * 2 / 3)

    def _without_keyring(self) -> None:
        """No usable keyring: sandbox mode needs no real secret, so it goes on with a link-signing key kept
        in memory for this run (``keystore.use_memory``); a real account cannot work, so the app
        (``sandbox_if_no_keyring``) starts in sandbox mode instead. ``keyring_notice`` says which, in one
        sentence with what to install. A locked keyring asks to be unlocked here (its own prompt)."""
        if not (self.own_server if self.is_sandbox else self.sandbox_if_no_keyring):
            return  # the sandbox without a server of its own needs no secret; a command reports the keyring's error
        try:
            keystore.ensure_usable()
            return
        except keystore.KeyringUnavailable as exc:
            log.warning("no usable keyring (%s): %s", exc.detail, exc)
            self.keyring_notice = keystore.sandbox_notice(exc) if self.is_sandbox else keystore.account_notice(exc)
            self.is_sandbox = True
            keystore.use_memory(exc)

    def server_config(self, client_secret: str | None = None) -> ServerConfig:
        """The recording server's configuration from the settings (as ``callrelay serve`` builds it); in
        sandbox mode on a free port, the emulator fetching over loopback."""
        return ServerConfig.from_settings(self.settings, client_secret=client_secret,
                                          port=0 if self.is_sandbox else None)

    def _start_server(self, config: HubSpotConfig) -> RecordingServer:
        self.server = server = self.server_config(config.client_secret).build(self.store)
        server.start()
        if self.is_sandbox:  # the emulator fetches over loopback; real HubSpot needs the tunnel's https URL
            server.set_public_url(server.local_url)
        elif not self.settings.get("server.public_url"):
            self._start_tunnel(server)
        return server

    def _start_tunnel(self, server: RecordingServer) -> None:
        """The ``tunnel.provider`` in front of ``server`` (``tunnel.factory.from_settings``); why there is none
        in ``tunnel_problem`` (the window shows it)."""
        from desktop_app.tunnel import factory
        from desktop_app.tunnel.base import TunnelConfigError
        from desktop_app.tunnel.cli_support import why_not_started
        from desktop_app.tunnel.url_change import keep_hubspot_pointed

        provider = str(self.settings.get("tunnel.provider") or "")
        if not provider:
            self.tunnel_problem = "No tunnel provider is set and no public URL is given."
        else:
            tunnel = factory.from_settings(provider, self.settings, server)
            try:
                tunnel.start()
                self.tunnel = tunnel
            except TunnelConfigError as exc:
                self.tunnel_problem = why_not_started(exc)
        if self.tunnel_problem:
            log.warning("no tunnel: %s", self.tunnel_problem)  # the window shows it
        if self.tunnel is not None and self.client is not None:
            # a new public URL (a quick tunnel restarted) is registered with HubSpot at once, so
            # old and new calls keep playing, and the change is kept in the history
            keep_hubspot_pointed(self.tunnel, self.client, self.history, str(self.settings.get("server.endpoint_prefix")))

    def stop(self) -> None:
        self._stop.set()
        if self.transcriber is not None:
            self.transcriber.stop()
        if self._worker is not None:
            self._worker.join(timeout=10)
        parts: list[tuple[object, Callable[[], None]]] = [
            (part, part.stop) for part in (self.tunnel, self.server, self.sandbox) if part is not None]
        for part, stop in parts:
            try:
                stop()
            except Exception:  # noqa: BLE001 - stopping the rest matters more
                log.exception("stopping %s", part)
        if self.client is not None:
            self.client.close()
        if self.team is not None:
            self.team.close()
        self.history.close()

    def __enter__(self) -> Runtime:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- listeners -------------------------------------------------------------------------------
    def add_listener(self, callback: Callable[[h.Submission], object]) -> None:
        with self._lock:
            self._listeners.append(callback)

    def notify(self, sub: h.Submission) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for callback in listeners:
            try:
                callback(sub)
            except Exception:  # noqa: BLE001 - a listener's bug must not stop the pipeline
                log.exception("submission listener failed")

    # -- work ------------------------------------------------------------------------------------
    @property
    def agent(self) -> str:
        name = str(self.settings.get("calls.agent") or "")
        if name:
            return name
        try:
            return getpass.getuser()
        except Exception:  # noqa: BLE001 - no login name on this system
            return "agent"

    def _pipeline(self) -> Pipeline:
        if self.pipeline is None:
            raise SetupError("The app has not been started.")
        return self.pipeline

    def _scheduler(self) -> Scheduler:
        if self.scheduler is None:
            raise SetupError("The app has not been started.")
        return self.scheduler

    def submit(self, path: Path, details: CallDetails, agent: str | None = None, *, sha256: str | None = None) -> int:
        """Record a submission for a checked recording; ``run_submission`` carries it to HubSpot."""
        sid = self._pipeline().submit(Path(path), details, agent=agent or self.agent, sha256=sha256)
        sub = self.history.get(sid)
        if sub is not None:
            self.notify(sub)
        return sid

    def seen(self, path: Path) -> Seen:
        """What this account already has of a recording: an unfinished submission to run instead of a new
        one, the submission that logged it (see ``Pipeline.seen``). SubmissionRefused when it cannot be read."""
        try:
            if self.team is not None:  # the relay answers for the team: nothing of it is in this desk's history
                return Seen(sha256_of(Path(path)), None, None)
            return self._pipeline().seen(Path(path))
        except OSError as exc:
            raise SubmissionRefused(f"It cannot be read: {exc.strerror or exc}.") from None

    def run_submission(self, submission_id: int) -> h.Submission:
        """Blocking: carry a submission to ready (or failed). Call it from a worker thread."""
        return self._scheduler().run(submission_id)

    # -- the background worker (the app): resume, retries that fall due, transcripts ------------
    def start_worker(self, interval_s: float = 5.0) -> None:
        """Start the thread that, every ``interval_s``, does a round of ``work_once`` (so a killed app resumes
        its work on the next start) and, for a single desk, the transcriber."""
        if self._worker is not None:
            return
        self._worker = Worker(self.work_once, interval_s, self._stop).start()
        from desktop_app.sync import transcripts

        # transcribe.when: calls HubSpot did not transcribe are transcribed here and posted, one at a time
        # (a joined desk holds no HubSpot client: the relay logs its calls, and posts nothing from here)
        if self.team is None:
            self.transcriber = transcripts.start_for(self)

    def work_once(self) -> int:
        """One round of the background worker (``Scheduler.work_once``); returns how many submissions it moved
        on (a joined desk: how many of its outbox's entries reached the relay)."""
        if self.team is not None:
            return sum(1 for sent in self.team.flush() if sent.state == "sent")
        return self._scheduler().work_once()

    def run_batch(self, ids: list[int], on_chunk: Callable[[list[int]], None] | None = None) -> None:
        """Blocking: the batchable steps (call creation, associations) of many submissions, 100 at a time;
        ``on_chunk`` gets each prepared chunk, to ``run_submission`` its submissions for the rest."""
        self._pipeline().run_batch(ids, on_chunk)

    def run_many(self, ids: list[int]) -> list[h.Submission]:
        """Blocking (the app's "Upload all ready"): see ``Scheduler.run_many``; the final states."""
        return self._scheduler().run_many(ids)

    def retry(self, submission_id: int) -> None:
        self._pipeline().retry(submission_id)

    def cancel(self, submission_id: int) -> bool:
        """Stop a submission that has not reached HubSpot yet (see ``Pipeline.cancel``); False: too late."""
        return self._pipeline().cancel(submission_id)

    def check_transcript(self, submission_id: int) -> Outcome:
        """One look at whether HubSpot transcribed a ready call (schedules the next look)."""
        return self._pipeline().check_transcript(submission_id)

    def details_for_file(self, path: Path, row: Mapping[str, str | None]) -> CallDetails:
        """Check a recording and build its call details (``sync.details.call_details_for_file``), the
        contact ``row`` names found with HubSpot (``resolve_contact``).

        Raises SubmissionRefused when the file cannot be uploaded as it is, or a value is wrong.
        Warnings (a mono file, a silent channel…) are left in ``last_warnings``.
        """
        details, self.last_warnings = call_details_for_file(path, row, self.settings)
        contact = row.get("contact") or ""
        if contact:
            details.contact_id = self.resolve_contact(contact)
        return details

    def resolve_contact(self, text: str) -> str:
        """The id of the HubSpot contact named by an id, an email address or a phone number
        (``sync.details.ContactResolver``); SubmissionRefused, one sentence, when there is none."""
        if self.contacts is None:
            raise SetupError("The app has not been started.")
        return self.contacts.resolve(text)
