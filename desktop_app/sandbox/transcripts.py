"""Third-party transcripts in the sandbox (issue 20), as HubSpot describes them.

``POST /crm/v3/extensions/calling/transcripts`` (and its dated copy) stores an app's transcript of a call:
``{engagementId, transcriptCreateUtterances: [{speaker {id, name, email}, text, startTimeMillis, endTimeMillis,
languageCode}]}`` → ``{id}`` (200); GET and DELETE by id. A GET shows ``transcriptSource``
``INTEGRATOR_GENERATED`` (HubSpot's own are ``HUBSPOT_GENERATED``). The v3 operation lists OAuth alone
(``transcriptions-v3.json``): a private-app token is refused whatever scopes it holds; the 2026-09 file also
lists private apps with the scope, so the dated path takes one that holds it. The call shows its transcript
as HubSpot sets it: ``hs_call_has_transcript`` and ``hs_call_transcription_id``. What the schema check lets
through but HubSpot refuses is refused here: no utterances, negative times, an end not after its start, blank
text, a speaker without an id, a language code that is not one.
"""

from __future__ import annotations

import re
from typing import Any

from desktop_app.hubspot import versions
from desktop_app.sandbox.errors import ApiError, not_found, validation
from desktop_app.sandbox.operation import Context, Outcome
from desktop_app.sandbox.operation import SandboxParts as Sandbox

SOURCE = "INTEGRATOR_GENERATED"
WRITE_SCOPE = "crm.extensions_calling_transcripts.write"
_LANGUAGE = re.compile(r"\A[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*\Z")  # BCP 47's shape: en, en-US, pt-BR, yue


def _refuse_private_app(ctx: Context) -> None:
    if ctx.principal.get("kind") == "private-app" and versions.version_of(ctx.path or "") is None:
        raise ApiError(403, "MISSING_SCOPES", "This app hasn't been granted all required scopes to make this call. "
                       f"The {WRITE_SCOPE} scope can only be granted to an OAuth app; a private-app token cannot "
                       "hold it.",
                       errors=[{"message": "One or more of the following scopes are required.",
                                "context": {"requiredGranularScopes": [WRITE_SCOPE]}}],
                       links={"scopes": "https://developers.hubspot.com/scopes"})


def check_utterances(utterances: list[dict[str, Any]]) -> None:
    """Raise a 400 (HubSpot's VALIDATION_ERROR) naming the first utterance field HubSpot would refuse."""
    if not utterances:
        raise validation("transcriptCreateUtterances must hold at least one utterance",
                         context={"transcriptCreateUtterances": ["[]"]})
    for i, u in enumerate(utterances):
        where = f"transcriptCreateUtterances[{i}]"
        start, end = int(u["startTimeMillis"]), int(u["endTimeMillis"])
        if start < 0:
            raise validation(f"{where}.startTimeMillis must not be negative", context={"startTimeMillis": [str(start)]})
        if end <= start:  # HubSpot: "Should be greater than startTimeMillis"
            raise validation(f"{where}.endTimeMillis ({end}) is not after its startTimeMillis ({start})",
                             context={"endTimeMillis": [str(end)]})
        if not str(u["text"]).strip():
            raise validation(f"{where}.text must not be blank", context={"text": [str(u["text"])]})
        if not str(u["speaker"].get("id", "")).strip():
            raise validation(f"{where}.speaker.id must not be blank", context={"speaker": ["id"]})
        language = u.get("languageCode")
        if language is not None and not _LANGUAGE.match(str(language)):
            raise validation(f"{where}.languageCode {language!r} is not a language code (such as en or en-US)",
                             context={"languageCode": [str(language)]})


def h_create(sb: Sandbox, ctx: Context) -> Outcome:

    _refuse_private_app(ctx)
    call_id = str(ctx.body["engagementId"])
    if not sb.records.exists("calls", call_id):
        raise not_found(f"No call engagement with id {call_id}")
    utterances = list(ctx.body["transcriptCreateUtterances"])
    check_utterances(utterances)
    with sb.store.lock:
        tid = sb.records.make_transcript(call_id, 0, SOURCE, utterances)
        sb.records.set_call_properties(call_id, {"hs_call_has_transcript": "true", "hs_call_transcription_id": tid})
    return Outcome(200, {"id": tid})  # transcriptions-v3.json: 200 (not 201, unlike object creates)


def h_get(sb: Sandbox, ctx: Context) -> Outcome:

    rec = sb.store.get("transcripts", str(ctx.path_params["transcriptId"]))
    if rec is None:
        raise not_found(f"No transcript {ctx.path_params['transcriptId']}")
    return Outcome(200, rec)


def h_delete(sb: Sandbox, ctx: Context) -> Outcome:

    _refuse_private_app(ctx)
    tid = str(ctx.path_params["transcriptId"])
    with sb.store.lock:
        rec = sb.store.get("transcripts", tid)
        if rec is None:
            raise not_found(f"No transcript {tid}")
        sb.store.delete("transcripts", tid)
        call_id = str(rec["engagementId"])
        call = sb.store.get("calls", call_id)
        if call is not None and str(call["properties"].get("hs_call_transcription_id") or "") == tid:
            sb.records.set_call_properties(call_id, {"hs_call_has_transcript": "false",
                                                     "hs_call_transcription_id": ""})
    return Outcome(204)


def of_call(sb: Sandbox, call_id: str) -> dict[str, Any] | None:
    """The transcript the call shows (its ``hs_call_transcription_id``), or None."""
    call = sb.store.get("calls", str(call_id))
    tid = str((call or {}).get("properties", {}).get("hs_call_transcription_id") or "")
    found: dict[str, Any] | None = sb.store.get("transcripts", tid) if tid else None
    return found
