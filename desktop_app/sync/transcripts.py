"""Posting Call Relay's own transcript of a call to HubSpot, exactly once (issue 20).

HubSpot transcribes a logged recording only for an owner with a paid seat and while the account's monthly
analysis allowance lasts. For the other calls the desk (or ``callrelay transcribe … --post``) makes a
``Transcript`` (``desktop_app.transcribe``) and this module posts it through HubSpot's third-party
transcripts API (``POST /crm/v3/extensions/calling/transcripts``, or the dated path the client uses).

The step ``transcript_posted`` is written down in the history before the POST and after it (with HubSpot's
transcript id as its message and on the submission: ``transcript_id``, status ``transcribed``,
``transcript_source`` ``callrelay``), like every step of the pipeline. A post has no idempotency key, so after
an attempt that may have reached HubSpot (a crash, a lost answer, a 5xx) the poster looks before posting
again. HubSpot offers no way to list a call's transcripts; what it does offer is the call's
``hs_call_transcription_id``, which names the transcript the call shows — the poster reads it, GETs that
transcript and adopts it when it is an app's (``INTEGRATOR_GENERATED``) and not one this submission
deleted. (That HubSpot sets ``hs_call_transcription_id`` for a third-party transcript as it does for its
own is what this relies on; the sandbox does so.) An attempt that got no answer may still be under way
at HubSpot for the client's read timeout, so an empty look after one is repeated once that time has passed.

A corrected transcript replaces the posted one: ``transcript_deleted`` (DELETE, written down the same way;
a 404 means it is already gone) then ``transcript_posted`` again. The history keeps every attempt.

Speakers: channel 1 is the caller, channel 2 the recipient (as HubSpot's own transcription takes them); by
the call's direction one is the agent (the call's owner) and the other the contact.
"""

from __future__ import annotations

import argparse
import json
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from desktop_app.errors import UserError
from desktop_app.hubspot.endpoints import TranscriptUtterance
from desktop_app.sync import history as h
from desktop_app.sync.pipeline import (
    NOT_TRANSCRIBED_STATE,
    TRANSCRIPT_POSTED,
    PermanentError,
    RetryPolicy,
    SubmissionReader,
    TransientError,
    _unsettled_for,
)
from desktop_app.testing import crash_point
from desktop_app.transcribe import Transcript

if TYPE_CHECKING:
    from desktop_app.hubspot.client import HubSpotClient
    from desktop_app.server.recordings import RecordingStore
    from desktop_app.settings import Settings

log = logging.getLogger(__name__)

POSTED_STEP = TRANSCRIPT_POSTED  # "transcript_posted"
DELETED_STEP = "transcript_deleted"
INTEGRATOR_GENERATED = "INTEGRATOR_GENERATED"
WHEN_CHOICES = ("never", "not-transcribed", "always")
# the causes after which ``transcribe.when = not-transcribed`` transcribes on the desk (seat or allowance)
_SEAT_OR_ALLOWANCE = ("paid Sales Hub or Service Hub seat", "analysis limit")


class TranscriptPort(Protocol):
    """What posting needs of HubSpot; each method raises TransientError or PermanentError."""

    def post_transcript(self, call_id: str, utterances: Sequence[TranscriptUtterance]) -> str: ...
    def find_transcript(self, call_id: str, exclude: Sequence[str] = ()) -> str | None: ...
    def delete_transcript(self, transcript_id: str) -> bool: ...
    def people(self, owner_id: str, contact_id: str) -> dict[str, tuple[str, str]]: ...


class TranscriberHost(Protocol):
    """What the desk's transcriber and the app's Post take from the app's root (``runtime.Runtime``, a layer
    above this one): its history, recording store, settings, retry policy and HubSpot client, and its
    listeners (each change of a submission is announced through ``notify``)."""

    @property
    def history(self) -> h.History: ...
    @property
    def store(self) -> RecordingStore: ...
    @property
    def settings(self) -> Settings: ...
    @property
    def policy(self) -> RetryPolicy: ...
    @property
    def client(self) -> HubSpotClient | None: ...
    def add_listener(self, callback: Callable[[h.Submission], object]) -> None: ...
    def notify(self, sub: h.Submission) -> None: ...


# "owner:<id>" / "contact:<id>" → (name, email): who speaks, where known
People = dict[str, tuple[str, str]]


class ClientTranscripts:
    """``TranscriptPort`` over ``HubSpotClient`` (HubSpot or the sandbox)."""

    def __init__(self, client: HubSpotClient) -> None:
        self.client = client

    def post_transcript(self, call_id: str, utterances: Sequence[TranscriptUtterance]) -> str:
        from desktop_app.sync.hubspot_port import _translate

        return str(_translate(lambda: self.client.post_transcript(call_id, utterances)))

    def find_transcript(self, call_id: str, exclude: Sequence[str] = ()) -> str | None:
        """The app transcript the call shows (its ``hs_call_transcription_id``), unless it is one of ``exclude``."""
        from desktop_app.sync.hubspot_port import _translate

        call = _translate(lambda: self.client.read_call(call_id, ("hs_call_transcription_id",
                                                                  "hs_call_has_transcript")))
        tid = str(call.get("hs_call_transcription_id") or "")
        if not tid or tid in exclude:
            return None
        found = _translate(lambda: self.client.get_transcript(tid))
        if found is None or found.source != INTEGRATOR_GENERATED or str(found.engagement_id) != str(call_id):
            return None
        return tid

    def delete_transcript(self, transcript_id: str) -> bool:
        from desktop_app.sync.hubspot_port import _translate

        return bool(_translate(lambda: self.client.delete_transcript(transcript_id)))

    def people(self, owner_id: str, contact_id: str) -> People:
        """The owner's and the contact's names and emails as HubSpot has them; what cannot be read is left out
        (the speakers are then named from the history, and posting goes on)."""
        from desktop_app.hubspot.errors import HubSpotError

        out: People = {}
        try:
            if owner_id:
                for o in self.client.owners():
                    if str(o.id) == str(owner_id):
                        out[f"owner:{o.id}"] = (o.name, o.email or "")
            if contact_id:
                c = self.client.read_contact(contact_id)
                if c is not None:
                    out[f"contact:{contact_id}"] = (c.name or c.email or "", c.email or "")
        except (HubSpotError, ValueError) as exc:
            log.info("speaker names and emails not read from HubSpot: %s", exc)
        return out


class PostRefused(ValueError):
    """A post that cannot be made as asked (no call logged yet, already transcribed, nothing to post); one
    sentence the user can act on. ``bad_input``: the input itself is unusable (exit status 2)."""

    def __init__(self, message: str, *, bad_input: bool = False) -> None:
        super().__init__(message)
        self.bad_input = bad_input


@dataclass
class Posted:
    submission: h.Submission
    transcript_id: str | None  # None: not posted (see ``error``)
    adopted: bool = False  # found at HubSpot from an earlier attempt, not posted again
    error: str | None = None


def speakers_for(sub: h.Submission, people: People | None = None) -> dict[int, tuple[str, str, str]]:
    """Channel → (speaker id, name, email): channel 1 the caller, 2 the recipient; the agent (the call's owner)
    is the caller of an OUTBOUND call and the recipient of an INBOUND one, the contact the other."""
    people = people or {}
    details = sub.details
    direction = str(details.get("direction") or "").upper()
    owner, contact = str(details.get("owner_id") or ""), str(details.get("contact_id") or "")
    agent_name, agent_email = people.get(f"owner:{owner}", ("", ""))
    contact_name, contact_email = people.get(f"contact:{contact}", ("", ""))
    agent = (owner or "agent", agent_name or "Agent", agent_email)
    other = (contact or "contact", contact_name or "Contact", contact_email)
    if direction == "OUTBOUND":
        return {1: agent, 2: other}
    if direction == "INBOUND":
        return {1: other, 2: agent}
    return {1: ("caller", "Caller", ""), 2: ("recipient", "Recipient", "")}


def utterances_for(sub: h.Submission, transcript: Transcript,
                   people: People | None = None) -> list[TranscriptUtterance]:
    """The transcript as HubSpot's utterances, in time order, one speaker per channel."""
    who = speakers_for(sub, people)
    out: list[TranscriptUtterance] = []
    for u in sorted(transcript.utterances, key=lambda u: (u.start_ms, u.channel)):
        if u.channel not in who:
            raise PostRefused(f"An utterance is on channel {u.channel}; a call has a caller (1) and a recipient (2).")
        if not u.text.strip():
            continue  # nothing was said: HubSpot refuses blank text
        sid, name, email = who[u.channel]
        start = max(0, int(u.start_ms))  # HubSpot wants a start ≥ 0 and an end after it: a word too short
        end = max(int(u.end_ms), start + 1)  # to time gets one millisecond rather than refusing the transcript
        out.append(TranscriptUtterance(sid, name, u.text.strip(), start, end, transcript.language or "", email))
    if not out:
        raise PostRefused("The transcript holds no words; there is nothing to post.")
    return out


def _since_settled(steps: Sequence[h.Step]) -> list[h.Step]:
    """The ``transcript_posted`` attempts after the last settled transcript (posted, adopted or deleted)."""
    out: list[h.Step] = []
    for s in steps:
        if s.step == DELETED_STEP and s.outcome == h.OK or s.step == POSTED_STEP and s.outcome in (h.OK, h.ADOPTED):
            out = []
        elif s.step == POSTED_STEP:
            out.append(s)
    return out


def _transcript_ids(steps: Sequence[h.Step], step: str) -> list[str]:
    """The transcript ids named by the settled attempts at ``step`` (their message: ``transcript <id>``)."""
    return [(s.message or "").split()[-1] for s in steps
            if s.step == step and s.outcome in (h.OK, h.ADOPTED) and (s.message or "").startswith("transcript ")]


@dataclass
class TranscriptPoster(SubmissionReader):
    """Posts (and replaces) the transcripts of submissions; exactly once across crashes and retries."""

    history: h.History
    hubspot: TranscriptPort
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    on_change: Callable[[h.Submission], None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def post(self, submission_id: int, transcript: Transcript, *, replace: bool = False,
             people: People | None = None) -> Posted:
        """Post ``transcript`` for the submission's call, retrying what can be retried. With ``replace``, a
        transcript Call Relay posted before is deleted first (a correction). Raises ``PostRefused``."""
        with self._lock:
            sub = self._get(submission_id)
            if not sub.call_id:
                raise PostRefused(f"Submission {sub.id} has no HubSpot call yet ({sub.status}); its transcript can "
                                  "be posted once the call is logged.")
            if sub.status not in (h.READY, h.NOT_TRANSCRIBED, h.TRANSCRIBED):
                raise PostRefused(f"Submission {sub.id} is {sub.status}; its transcript can be posted once its call "
                                  "is logged and marked ready (Retry it first).")
            if sub.transcribed_by == h.SOURCE_HUBSPOT:
                raise PostRefused(f"HubSpot already transcribed the call of submission {sub.id}; Call Relay does "
                                  "not post a second transcript over HubSpot's own.")
            open_posts = _since_settled(sub.steps)
            if sub.transcript_id and not open_posts and not replace:
                raise PostRefused(f"Submission {sub.id} already has a transcript in HubSpot ({sub.transcript_id}); "
                                  "post a corrected one with replace (--replace).")
            utterances = utterances_for(sub, transcript, people if people is not None else self._people(sub))
            if replace and sub.transcript_id:
                error = self._delete(sub)
                if error:
                    return Posted(self._changed(sub.id), None, error=error)
                sub = self._get(submission_id)
            for attempt in range(1, self.policy.max_attempts + 1):
                result = self._post_once(sub, utterances)
                if isinstance(result, Posted):
                    return result
                if attempt == self.policy.max_attempts or result is None:
                    break
                self.sleep(result)
                sub = self._get(submission_id)
            last = self._get(submission_id)
            return Posted(last, None, error=(last.steps[-1].message if last.steps else None) or "not posted")

    def _post_once(self, sub: h.Submission, utterances: list[TranscriptUtterance]) -> Posted | float | None:
        """One attempt: a ``Posted``, or seconds to wait before the next (None: do not try again)."""
        assert sub.call_id
        earlier = _since_settled(sub.steps)
        deleted = _transcript_ids(sub.steps, DELETED_STEP)
        step_id = self.history.step_started(sub.id, POSTED_STEP)
        crash_point(POSTED_STEP, "before")
        adopted = False
        try:
            found = None
            maybe = [s for s in earlier if s.outcome in (h.STARTED, h.RETRY)]
            if maybe:  # an earlier attempt may have posted it: look before posting again
                found = self.hubspot.find_transcript(sub.call_id, deleted)
                wait = _unsettled_for(maybe, self.policy) if found is None else 0.0
                if wait:
                    log.info("submission %s: waiting %.1f s for what an earlier post may still make", sub.id, wait)
                    self.sleep(wait)
                    found = self.hubspot.find_transcript(sub.call_id, deleted)
            if found is not None:
                tid, adopted = found, True
                log.info("submission %s: adopted transcript %s posted by an earlier attempt", sub.id, tid)
            else:
                tid = self.hubspot.post_transcript(sub.call_id, utterances)
        except TransientError as exc:
            crash_point(POSTED_STEP, "after")
            delay = self.policy.backoff(len(earlier) + 1, exc.retry_after)
            self.history.step_ended(step_id, h.RETRY, http_status=exc.status, message=str(exc),
                                    correlation_id=exc.correlation_id)
            self._changed(sub.id)
            return delay
        except PermanentError as exc:
            crash_point(POSTED_STEP, "after")
            self.history.step_ended(step_id, h.FAILED_OUTCOME, http_status=exc.status, message=str(exc),
                                    correlation_id=exc.correlation_id)
            self._changed(sub.id)
            return None
        crash_point(POSTED_STEP, "after")
        self.history.step_ended(step_id, h.ADOPTED if adopted else h.OK, http_status=None if adopted else 200,
                                message=f"transcript {tid}", submission={
                                    "state": TRANSCRIPT_POSTED, "status": h.TRANSCRIBED, "transcript_id": tid,
                                    "transcript_source": h.SOURCE_CALLRELAY, "next_attempt_at": None})
        return Posted(self._changed(sub.id), tid, adopted=adopted)

    def _delete(self, sub: h.Submission) -> str | None:
        """Delete the transcript Call Relay posted (a correction follows); an error sentence, or None."""
        assert sub.transcript_id
        tid = sub.transcript_id
        for attempt in range(1, self.policy.max_attempts + 1):
            step_id = self.history.step_started(sub.id, DELETED_STEP)
            crash_point(DELETED_STEP, "before")
            try:
                gone = self.hubspot.delete_transcript(tid)
            except TransientError as exc:
                crash_point(DELETED_STEP, "after")
                self.history.step_ended(step_id, h.RETRY, http_status=exc.status, message=str(exc),
                                        correlation_id=exc.correlation_id)
                if attempt == self.policy.max_attempts:
                    return str(exc)
                self.sleep(self.policy.backoff(attempt, exc.retry_after))
                continue
            except PermanentError as exc:
                crash_point(DELETED_STEP, "after")
                self.history.step_ended(step_id, h.FAILED_OUTCOME, http_status=exc.status, message=str(exc),
                                        correlation_id=exc.correlation_id)
                return str(exc)
            crash_point(DELETED_STEP, "after")
            self.history.step_ended(step_id, h.OK, http_status=204 if gone else 404, message=f"transcript {tid}",
                                    submission={"transcript_id": None, "transcript_source": None,
                                                "status": h.NOT_TRANSCRIBED, "state": NOT_TRANSCRIBED_STATE})
            return None
        return "not deleted"

    def _people(self, sub: h.Submission) -> People:
        """Who speaks: the names the history remembers, then HubSpot's names and emails where it answers."""
        out: People = {k: (v, "") for k, v in self.history.labels().items()}
        out.update(self.hubspot.people(str(sub.details.get("owner_id") or ""),
                                       str(sub.details.get("contact_id") or "")))
        return out

    def _missing(self, submission_id: int) -> Exception:
        return PostRefused(f"There is no submission {submission_id} in this data directory's history.")


# -- when the desk transcribes ----------------------------------------------------------------------
def wants_transcript(sub: h.Submission, when: str) -> bool:
    """Whether ``transcribe.when`` asks the desk to transcribe and post this submission's call now:
    ``always`` once its call is marked ready (or HubSpot did not transcribe it); ``not-transcribed`` only when
    HubSpot did not for a seat or allowance cause (a recording HubSpot never fetched needs its tunnel fixed
    first); never twice, never over HubSpot's own."""
    if when == "never" or not sub.call_id or sub.transcript_id or any(
            s.step == POSTED_STEP and s.outcome == h.FAILED_OUTCOME for s in sub.steps[-1:]):
        return False
    if sub.status == h.NOT_TRANSCRIBED:
        return when == "always" or any(c in (sub.error or "") for c in _SEAT_OR_ALLOWANCE)
    return when == "always" and sub.status == h.READY


class AutoTranscriber:
    """The desk's transcriber: one call at a time on its own thread (off the UI thread and off the pipeline's
    HubSpot worker). ``offer`` a submission whenever it changes; one ``wants_transcript`` accepts is
    transcribed (``transcribe``: the recording's path → ``Transcript``) and posted."""

    def __init__(self, poster: TranscriptPoster, transcribe: Callable[[Path], Transcript],
                 when: Callable[[], str], locate: Callable[[h.Submission], Path] | None = None) -> None:
        self.poster, self.transcribe, self.when = poster, transcribe, when
        self.locate = locate or (lambda sub: Path(sub.recording_path))  # the recording's file
        self._queue: queue.Queue[int | None] = queue.Queue()
        self._pending: set[int] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.cancel = threading.Event()  # set by stop(): the engine stops between segments

    def offer(self, sub: h.Submission) -> bool:
        if not wants_transcript(sub, self.when()):
            return False
        with self._lock:
            if sub.id in self._pending:
                return False
            self._pending.add(sub.id)
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="callrelay-transcriber", daemon=True)
                self._thread.start()
        self._queue.put(sub.id)
        return True

    def offer_all(self, history: h.History) -> int:
        """Offer every call that may want a transcript (an earlier run killed while transcribing left nothing
        posted: it is transcribed again); how many were taken."""
        subs = history.search(h.Query(statuses=(h.READY, h.NOT_TRANSCRIBED)), limit=None, with_steps=True)
        return sum(self.offer(s) for s in reversed(subs))  # oldest first

    def stop(self, timeout: float = 5.0) -> None:
        self.cancel.set()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)

    def _work(self) -> None:
        while (sid := self._queue.get()) is not None:
            try:
                sub = self.poster.history.get(sid)
                if sub is not None and wants_transcript(sub, self.when()):
                    log.info("submission %s: transcribing %s", sid, sub.recording_name)
                    transcript = self.transcribe(self.locate(sub))
                    result = self.poster.post(sid, transcript)
                    if result.error:
                        log.warning("submission %s: the transcript was not posted: %s", sid, result.error)
            except Exception:  # a failed transcription must not stop the next one
                log.warning("submission %s: transcribing failed", sid, exc_info=True)
            finally:
                with self._lock:
                    self._pending.discard(sid)


# -- callrelay transcribe … --post ------------------------------------------------------------------
def find_submission(history: h.History, target: str, portal_id: str) -> h.Submission:
    """The submission ``target`` names: its id, or a recording FILE (by SHA-256: the newest submission of it to
    this account that logged a call). Raises ``PostRefused``."""
    from desktop_app.server.recordings import sha256_of

    if target.strip().isdigit() and not Path(target).exists():
        sub = history.get(int(target))
        if sub is None:
            raise PostRefused(f"There is no submission {target} in this data directory's history.")
        return sub
    try:
        sha = sha256_of(Path(target))
    except OSError as exc:
        raise PostRefused(f"{target} cannot be read ({exc.strerror or exc}); name a submission id or a recording "
                          "file.", bad_input=True) from None
    logged = [s for s in history.of_recording(sha, portal_id) if s.call_id]
    if not logged:
        raise PostRefused(f"{target} was never logged as a call in this HubSpot account; upload it first "
                          "(`callrelay upload`).")
    return logged[0]


def read_transcript_file(path: Path) -> Transcript:
    """A transcript from a JSON file: ``Transcript.to_dict()``'s form, or ``callrelay transcribe --json``'s (one
    utterance a line: ``channel``, ``start_ms``, ``end_ms``, ``text``; ``language`` optional on each)."""
    from desktop_app.transcribe import Utterance

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PostRefused(f"The transcript {path} cannot be read ({getattr(exc, 'strerror', None) or exc}).",
                          bad_input=True) from None
    try:
        stripped = text.strip()
        if stripped.startswith("{") and "\n{" not in stripped:
            data = json.loads(stripped)
            if "utterances" in data:
                return Transcript.from_dict(data)
            lines = [data]
        else:
            lines = [json.loads(line) for line in text.splitlines() if line.strip()]
        language = next((str(d["language"]) for d in lines if d.get("language")), "")
        return Transcript(language, tuple(Utterance.from_dict(d) for d in lines))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise PostRefused(f"The transcript {path} is not a transcript Call Relay can read ({exc}); write one "
                          "utterance a line with channel, start_ms, end_ms and text.", bad_input=True) from None


def when_setting(settings: Any) -> str:
    """``transcribe.when`` (never, not-transcribed, always); ``never`` where the setting is not declared."""
    from desktop_app import settings as settings_mod

    try:
        value = str(settings.get("transcribe.when"))
    except settings_mod.SettingsError:
        return "never"
    return value if value in WHEN_CHOICES else "never"


def start_for(runtime: TranscriberHost, *, transcribe: Callable[[Path], Transcript] | None = None,
              when: Callable[[], str] | None = None, client: HubSpotClient | None = None) -> AutoTranscriber:
    """The desk's transcriber for a started ``Runtime``: it follows the runtime's submissions (a listener) and
    takes what an earlier run left; ``transcribe`` defaults to the engine with the settings' model and
    language, ``when`` to ``transcribe.when``, ``client`` to the runtime's. Stop it with ``stop()``."""
    hubspot = client or runtime.client
    if hubspot is None:  # the root starts it only with a HubSpot client (a joined desk has none: the relay logs)
        raise ValueError("the desk's transcriber needs a HubSpot client")
    poster = TranscriptPoster(runtime.history, ClientTranscripts(hubspot), runtime.policy,
                              on_change=runtime.notify)
    def locate(sub: h.Submission) -> Path:  # the store's copy (the original may have moved since)
        stored = runtime.store.get(sub.recording_sha256 or "")
        return Path(stored.path) if stored is not None and Path(stored.path).exists() else Path(sub.recording_path)

    auto = AutoTranscriber(poster, transcribe or (lambda path: _transcribe_with_engine(
        path, runtime.settings, cancel=auto.cancel)), when or (lambda: when_setting(runtime.settings)), locate)
    runtime.add_listener(auto.offer)
    auto.offer_all(runtime.history)
    return auto


def post_for_submission(runtime: TranscriberHost, submission_id: int, transcript: Transcript,
                        replace: bool = False, *, client: HubSpotClient | None = None) -> Posted:
    """The app's Post transcript (a worker): ``transcript`` (the agent's corrected one) for the submission's call,
    through the same ``TranscriptPoster`` the command uses, on the runtime's client (or ``client``); the
    runtime's listeners hear each change. Raises ``PostRefused`` (one sentence)."""
    hubspot = client or runtime.client
    if hubspot is None:
        raise PostRefused("Call Relay is not connected to HubSpot; connect it in Settings, then post again.")
    poster = TranscriptPoster(runtime.history, ClientTranscripts(hubspot), runtime.policy, on_change=runtime.notify)
    return poster.post(submission_id, transcript, replace=replace)


def _transcribe_with_engine(recording: Path, conf: Any = None, cancel: threading.Event | None = None) -> Transcript:
    """The engine with the settings' model and language (``TranscribeError``, one sentence, when it cannot)."""
    from desktop_app import settings as settings_mod
    from desktop_app.transcribe import engine

    conf = conf if conf is not None else settings_mod.load()
    language = str(conf.get("transcribe.language") or "") or None
    return engine.transcribe_recording(recording, model_dir=str(conf.get("transcribe.model_dir") or "") or None,
                                       language=language, cancel=cancel)


def post_from_command(args: argparse.Namespace) -> int:
    """``callrelay transcribe SUBMISSION|FILE --post``: post the call's transcript once (``args.transcript``, a
    ``Transcript`` already made; else ``args.from_file``, a corrected one; else transcribed here). With
    ``args.replace`` a transcript Call Relay posted before is replaced. ``args.json``: one JSON line.
    0 posted (or found posted), 1 not posted (one sentence on stderr), 2 bad input."""
    from desktop_app.hubspot.client import HubSpotClient
    from desktop_app.hubspot.config import load_config
    from desktop_app.hubspot.errors import HubSpotError

    try:
        config = load_config()
    except Exception as exc:  # noqa: BLE001 - a damaged settings file or no keyring: one sentence
        print(f"callrelay transcribe: {exc}", file=sys.stderr)
        return 1
    try:
        with HubSpotClient(config) as client, h.History() as history:
            portal_id = str(config.portal_id or client.account_details().portal_id)
            sub = find_submission(history, str(args.target), portal_id)
            transcript: Transcript | None = getattr(args, "transcript", None)
            if transcript is None and getattr(args, "from_file", None):
                transcript = read_transcript_file(Path(args.from_file))
            if transcript is None:
                transcript = _transcribe_with_engine(Path(sub.recording_path))
            poster = TranscriptPoster(history, ClientTranscripts(client),
                                      RetryPolicy(in_flight_s=config.read_timeout))
            result = poster.post(sub.id, transcript, replace=bool(getattr(args, "replace", False)))
    except PostRefused as exc:
        print(f"callrelay transcribe: {exc}", file=sys.stderr)
        return 2 if exc.bad_input else 1
    except HubSpotError as exc:
        print(f"callrelay transcribe: {exc.agent_message}", file=sys.stderr)
        return 1
    except UserError as exc:  # the history file, the engine (no extra, no model): one sentence
        print(f"callrelay transcribe: {exc}", file=sys.stderr)
        return 1
    # With --json, standard output is JSON lines: after `callrelay transcribe` printed the utterances (one a
    # line) the posting is said on standard error instead, so those lines stay utterances only.
    as_json = bool(getattr(args, "json", False))
    if as_json and getattr(args, "transcript", None) is None:
        print(json.dumps({"submission": result.submission.id, "call_id": result.submission.call_id,
                          "transcript_id": result.transcript_id, "adopted": result.adopted,
                          "status": result.submission.status, "transcript_source": result.submission.transcribed_by,
                          "error": result.error}))
    if result.transcript_id is None:
        print(f"callrelay transcribe: the transcript was not posted: {result.error}", file=sys.stderr)
        return 1
    how = "found already posted as" if result.adopted else "posted as"
    said = f"submission {result.submission.id}: transcript {how} {result.transcript_id} on call {result.submission.call_id}"
    if not as_json:
        print(said)
    elif getattr(args, "transcript", None) is not None:
        print(said, file=sys.stderr)
    return 0
