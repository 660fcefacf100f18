"""The pipeline's view of HubSpot, over ``desktop_app.hubspot.HubSpotClient``.

Translates the client's ``HubSpotError`` into the pipeline's two kinds of failure: transient (worth
retrying: 429, 5xx, timeouts, resets) and permanent (the user must change something first).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TypeVar

from desktop_app.hubspot import endpoints
from desktop_app.hubspot.client import HubSpotClient
from desktop_app.hubspot.endpoints import CallDetails
from desktop_app.hubspot.errors import HubSpotError
from desktop_app.sync.pipeline import PermanentError, TransientError

T = TypeVar("T")

# The sandbox says why it did not transcribe a call; HubSpot itself gives no reason.
SANDBOX_REASON = "sandbox_transcript_reason"
SANDBOX_REASONS = {
    "owner_without_paid_seat": "the call's owner has no paid Sales Hub or Service Hub seat",
    "no_owner": "the call has no owner (only calls of users with a paid seat are transcribed)",
    "analysis_limit_reached": "the account reached its monthly conversation analysis limit",
    "one_channel": "all speakers are on one channel",
    "identical_channels": "both channels carry the same audio",
    "unsupported_format": "the recording is not WAV, FLAC or MP4",
    "range_not_supported": "the recording URL did not answer Range requests with 206",
    "retrieve_failed": "the recording endpoint did not answer with a link",
    "download_failed": "the recording could not be downloaded",
    "no_recording_setting": "no recording URL is registered for the app",
    "missing_properties": "the call lacks the properties HubSpot needs to fetch its recording",
    "bad_audio": "the audio cannot be decoded",
}


def _translate(call: Callable[[], T]) -> T:
    try:
        return call()
    except HubSpotError as exc:
        if exc.retryable or exc.ambiguous:
            raise TransientError(str(exc), status=exc.status, correlation_id=exc.correlation_id,
                                 retry_after=exc.retry_after, ambiguous=exc.ambiguous) from None
        raise PermanentError(str(exc), status=exc.status, correlation_id=exc.correlation_id) from None
    except ValueError as exc:  # a request the client refused to build (a bad URL, a bad field)
        raise PermanentError(str(exc)) from None


class ClientPort:
    """``HubSpotPort`` for the real client (and so for HubSpot or the sandbox)."""

    def __init__(self, client: HubSpotClient, *, portal_id: str | None = None) -> None:
        self.client = client
        config = client.config
        self.app_id = str(config.app_id)
        self.portal_id = portal_id if portal_id is not None else str(config.portal_id)
        self.external_account_id = config.external_account_id or self.portal_id

    def ensure_recording_endpoint(self, url_template: str) -> str:
        settings = _translate(lambda: self.client.register_recording_url(url_template))
        return settings.url_to_retrieve_authed_recording

    def find_call(self, external_id: str) -> str | None:
        calls = _translate(lambda: self.client.find_calls_by_external_id(external_id))
        return str(calls[0].id) if calls else None

    def create_call(self, external_id: str, details: CallDetails) -> str:
        created = _translate(lambda: self.client.create_call(replace(details, external_id=external_id)))
        return str(created.id)

    def find_calls(self, external_ids: Sequence[str]) -> dict[str, str]:
        """External id → call id for the calls HubSpot has: searches with an IN filter, 100 ids each (HubSpot
        reads by ``idProperty`` only for unique-value properties, which ``hs_call_external_id`` is not)."""
        found = _translate(lambda: self.client.find_calls_by_external_ids(list(external_ids)))
        return {ext: str(calls[0].id) for ext, calls in found.items() if calls}

    def create_calls(self, items: Sequence[tuple[str, CallDetails]]) -> dict[str, str]:
        """Create up to 100 calls in one request; external id → call id of those created."""
        batch: list[tuple[CallDetails, Mapping[str, Sequence[str]]]] = [
            (replace(details, external_id=ext), {}) for ext, details in items]
        result = _translate(lambda: self.client.batch_create_calls(batch))
        return {str(c.external_id): str(c.id) for c in result.results if c.external_id}

    def associate_many(self, to_type: str, pairs: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """Associate (call id, record id) pairs in one request; the pairs HubSpot confirmed."""
        results, _errors = _translate(lambda: self.client.associate_batch(to_type, list(pairs)))
        done = {(str(r.from_id), str(r.to_id)) for r in results}
        return done

    def associate(self, call_id: str, to_type: str, to_id: str) -> None:
        _translate(lambda: self.client.associate(call_id, to_type, to_id))

    def mark_ready(self, call_id: str) -> None:
        _translate(lambda: self.client.mark_recording_ready(call_id))

    def transcript_state(self, call_id: str) -> tuple[bool, str | None]:
        props = (*endpoints.TRANSCRIPT_PROPERTIES, SANDBOX_REASON)
        call = _translate(lambda: self.client.read_call(call_id, props))
        if call.has_transcript:
            return True, None
        reason = call.get(SANDBOX_REASON) or ""
        return False, (SANDBOX_REASONS.get(reason, reason) if reason else None)
