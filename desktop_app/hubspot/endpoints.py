"""Pure request building: each HubSpot operation as a function that returns an ``ApiRequest``.

Nothing here touches the network, the keyring or a clock, so every request can be built and
checked against HubSpot's descriptions in a test. ``client.HubSpotClient`` sends them. Inputs are
validated here: a wrong value raises ``ValueError`` with a sentence saying what is wrong.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import requests

from desktop_app import phones
from desktop_app.hubspot import versions
from desktop_app.hubspot.config import is_loopback_url
from desktop_app.hubspot.models import AssociationType
from desktop_app.hubspot.ratelimit import SEARCH, STANDARD

Auth = Literal["bearer", "developer", "none"]

CALL_SOURCE = "INTEGRATIONS_PLATFORM"
CALL_DIRECTIONS = ("INBOUND", "OUTBOUND")
CALL_STATUSES = ("BUSY", "CALLING_CRM_USER", "CANCELED", "COMPLETED", "CONNECTING", "FAILED", "IN_PROGRESS",
                 "MISSED", "NO_ANSWER", "QUEUED", "RINGING")
ASSOCIATION_CATEGORIES = ("HUBSPOT_DEFINED", "INTEGRATOR_DEFINED", "USER_DEFINED", "WORK")

CALL_PROPERTIES = (
    "hs_timestamp", "hs_call_title", "hubspot_owner_id", "hs_call_body", "hs_call_duration",
    "hs_call_from_number", "hs_call_to_number", "hs_call_direction", "hs_call_disposition", "hs_call_status",
    "hs_call_source", "hs_call_app_id", "hs_call_external_id", "hs_call_external_account_id",
)
# What a call says about its recording and transcript once HubSpot has processed it.
TRANSCRIPT_PROPERTIES = (
    "hs_call_external_id", "hs_call_status", "hs_call_duration", "hs_call_has_transcript",
    "hs_call_transcription_id", "hs_call_recording_url", "hs_call_authed_url_provider", "hs_call_app_id",
    "hs_call_external_account_id", "hs_call_source",
)
CONTACT_PROPERTIES = ("email", "firstname", "lastname", "phone", "mobilephone", "company", "hubspot_owner_id")
SEARCH_LIMIT_MAX = 200
BATCH_MAX = 100


@dataclass(frozen=True)
class ApiRequest:
    """One HTTP request to HubSpot, before auth is added.

    ``auth``: ``bearer`` (access token), ``developer`` (the developer API key as ``hapikey`` when
    there is one, else the bearer token), ``none``. ``kind`` picks the rate-limit window.
    ``creates`` marks a request that makes a record: when its answer is lost it may have happened,
    so it is not retried blindly.
    """

    operation: str
    method: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    json: Any = None
    form: tuple[tuple[str, str], ...] | None = None
    auth: Auth = "bearer"
    kind: str = STANDARD
    creates: bool = False


def at_version(req: ApiRequest, version: str) -> ApiRequest:
    """``req`` (built on its v3 path) as sent to HubSpot's API ``version`` (``versions.VERSIONS``). Only the
    path differs: the bodies the app sends are the same in both (``versions`` says where this is from)."""
    path = versions.dated_path(req.path, version)
    return req if path == req.path else dataclasses.replace(req, path=path)


def http_request(req: ApiRequest, base_url: str, *, headers: Mapping[str, str] | None = None,
                 extra_params: Sequence[tuple[str, str]] = ()) -> requests.Request:
    """The ``requests.Request`` for ``req`` against ``base_url`` (auth goes in ``headers``/``extra_params``)."""
    params = [*req.params, *extra_params]
    return requests.Request(
        req.method, base_url.rstrip("/") + req.path, params=params or None, headers=dict(headers or {}),
        json=req.json if req.form is None else None, data=list(req.form) if req.form else None)


def _seg(value: str | int) -> str:
    text = str(value)
    if not text:
        raise ValueError("an id in the path is empty")
    return urllib.parse.quote(text, safe="")


def _app_id(app_id: str | int) -> str:
    text = str(app_id).strip()
    if not re.fullmatch(r"[0-9]{1,10}", text) or int(text) > 2**31 - 1:
        raise ValueError(f"The HubSpot app id must be a number (got {text!r}); find it in the app's settings.")
    return text


# --- calling recording settings -----------------------------------------------------------------

def validate_recording_url(url: str, *, allow_http: bool = False) -> str:
    """Check a URL for ``urlToRetrieveAuthedRecording``: absolute, https, with exactly one ``%s`` where
    the call's external id goes. ``allow_http``: the HubSpot that will fetch it is the sandbox or runs
    on loopback (``HubSpotConfig.allows_http``); only then are http and a loopback host accepted —
    HubSpot's own servers can never reach this computer's loopback."""
    url = url.strip()
    if url.count("%s") != 1:
        raise ValueError("The recording URL must contain %s exactly once (HubSpot puts the call's external "
                         f"id there); got {url!r}.")
    parts = urllib.parse.urlsplit(url.replace("%s", "EXTERNALID"))
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"The recording URL must be an absolute https:// URL; got {url!r}.")
    if "EXTERNALID" in parts.netloc:
        raise ValueError("The %s placeholder belongs in the path or query of the recording URL, not the host.")
    if is_loopback_url(parts.geturl()) and not allow_http:
        raise ValueError(f"HubSpot's servers cannot reach {parts.hostname} (this computer's loopback); register "
                         f"the recording server's public https:// address (its tunnel) instead of {url!r}.")
    if parts.scheme == "http" and not allow_http:
        raise ValueError(f"HubSpot fetches recordings only over https://; got {url!r}.")
    return url


def recording_settings_get(app_id: str | int) -> ApiRequest:
    return ApiRequest("recording_settings.get", "GET",
                      f"/crm/v3/extensions/calling/{_app_id(app_id)}/settings/recording", auth="developer")


def recording_settings_create(app_id: str | int, url: str, *, allow_http: bool = False) -> ApiRequest:
    return ApiRequest("recording_settings.create", "POST",
                      f"/crm/v3/extensions/calling/{_app_id(app_id)}/settings/recording",
                      json={"urlToRetrieveAuthedRecording": validate_recording_url(url, allow_http=allow_http)},
                      auth="developer")


def recording_settings_update(app_id: str | int, url: str, *, allow_http: bool = False) -> ApiRequest:
    return ApiRequest("recording_settings.update", "PATCH",
                      f"/crm/v3/extensions/calling/{_app_id(app_id)}/settings/recording",
                      json={"urlToRetrieveAuthedRecording": validate_recording_url(url, allow_http=allow_http)},
                      auth="developer")


def recordings_ready(engagement_id: str | int) -> ApiRequest:
    """Tell HubSpot the call's recording can be fetched (``engagementId`` is an int64 there)."""
    text = str(engagement_id).strip()
    if not text.isdigit():
        raise ValueError(f"The call id must be a number; got {text!r}.")
    # Not idempotent for our purposes (each mark starts a fetch and an analysis): a lost answer is
    # ambiguous, and the sync pipeline settles it from the recording server's access log.
    return ApiRequest("recordings.ready", "POST", "/crm/v3/extensions/calling/recordings/ready",
                      json={"engagementId": int(text)}, creates=True)


# --- third-party transcripts (transcriptions-v3.json) ---------------------------------------------

TRANSCRIPTS_PATH = "/crm/v3/extensions/calling/transcripts"
TRANSCRIPTS_WRITE_SCOPE = "crm.extensions_calling_transcripts.write"
_LANGUAGE = re.compile(r"\A[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*\Z")


@dataclass(frozen=True)
class TranscriptUtterance:
    """One utterance of a transcript an app posts: who spoke (HubSpot's ``speaker`` {id, name, email}), what,
    when (milliseconds from the recording's start) and in which language (``en``, ``en-US``; optional)."""

    speaker_id: str
    speaker_name: str
    text: str
    start_ms: int
    end_ms: int
    language: str = ""
    speaker_email: str = ""

    def as_json(self) -> dict[str, Any]:
        speaker = {"id": self.speaker_id, "name": self.speaker_name}
        if self.speaker_email:
            speaker["email"] = self.speaker_email
        out: dict[str, Any] = {"speaker": speaker, "text": self.text, "startTimeMillis": int(self.start_ms),
                               "endTimeMillis": int(self.end_ms)}
        if self.language:
            out["languageCode"] = self.language
        return out


def _engagement_id(engagement_id: str | int) -> int:
    text = str(engagement_id).strip()
    if not text.isdigit():
        raise ValueError(f"The call id must be a number; got {text!r}.")
    return int(text)


def transcripts_create(engagement_id: str | int, utterances: Sequence[TranscriptUtterance]) -> ApiRequest:
    """Post an app's transcript of a call. Each post makes a new transcript (nothing makes it idempotent), so
    a lost answer is ambiguous: the sync pipeline looks at the call's ``hs_call_transcription_id`` first."""
    if not utterances:
        raise ValueError("A transcript needs at least one utterance; there is nothing to post.")
    for i, u in enumerate(utterances, 1):
        if u.start_ms < 0 or u.end_ms <= u.start_ms:  # HubSpot: end "greater than startTimeMillis"
            raise ValueError(f"Utterance {i} does not end after it starts ({u.start_ms} ms to {u.end_ms} ms); "
                             "correct its times.")
        if not u.text.strip():
            raise ValueError(f"Utterance {i} has no text; remove it or write what was said.")
        if not str(u.speaker_id).strip():
            raise ValueError(f"Utterance {i} names no speaker.")
        if u.language and not _LANGUAGE.match(u.language):
            raise ValueError(f"Utterance {i}'s language {u.language!r} is not a language code such as en or en-US.")
    return ApiRequest("transcripts.create", "POST", TRANSCRIPTS_PATH,
                      json={"engagementId": _engagement_id(engagement_id),
                            "transcriptCreateUtterances": [u.as_json() for u in utterances]}, creates=True)


def transcripts_get(transcript_id: str | int) -> ApiRequest:
    return ApiRequest("transcripts.get", "GET", f"{TRANSCRIPTS_PATH}/{_seg(transcript_id)}")


def transcripts_delete(transcript_id: str | int) -> ApiRequest:
    return ApiRequest("transcripts.delete", "DELETE", f"{TRANSCRIPTS_PATH}/{_seg(transcript_id)}")


def transcripts_permission_probe() -> ApiRequest:
    """A transcript for engagement 0 (no call has that id), with no utterances: HubSpot checks the sign-in and
    its scope first, so a 403 means this sign-in cannot post transcripts and any other refusal means it can.
    Creates nothing. ``hubspot test``'s check."""
    return ApiRequest("transcripts.create", "POST", TRANSCRIPTS_PATH,
                      json={"engagementId": 0, "transcriptCreateUtterances": []})


# --- calls --------------------------------------------------------------------------------------

def hubspot_timestamp(when: dt.datetime | str) -> str:
    """``hs_timestamp`` in ISO 8601 UTC with milliseconds. A string is ISO 8601 (without a zone: UTC; empty:
    now); a naive datetime is refused."""
    if isinstance(when, str):
        if not when:
            when = dt.datetime.now(dt.timezone.utc)
        else:
            when = dt.datetime.fromisoformat(when.replace("Z", "+00:00"))
            when = when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("The call's start time needs a time zone.")
    return when.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# what the agent states about a call, in the order the history keeps them (``CallDetails.to_dict``)
DETAIL_FIELDS = ("title", "timestamp", "duration_ms", "from_number", "to_number", "direction", "status",
                 "disposition", "owner_id", "notes", "contact_id", "company_id", "deal_id", "ticket_id")


@dataclass
class CallDetails:
    """One call, in the app's own terms: what the agent states about it (the form, a command's flags, a
    CSV row), kept in the history as ``to_dict``, and the ``external_id`` it is logged under
    (``hs_call_external_id``, which the pipeline keeps beside the details). Durations are milliseconds, as
    HubSpot stores them; ``timestamp`` is ISO 8601 (or a datetime with a zone); empty values are left out."""

    external_id: str = ""
    timestamp: str | dt.datetime = ""
    duration_ms: int = 0
    title: str = ""
    notes: str = ""  # hs_call_body
    owner_id: str = ""
    from_number: str = ""
    to_number: str = ""
    direction: str = ""  # INBOUND / OUTBOUND
    disposition: str = ""  # an outcome id from HubSpot's call dispositions
    status: str = "COMPLETED"
    contact_id: str = ""  # the records the call is associated with
    company_id: str = ""
    deal_id: str = ""
    ticket_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The agent's details (not the external id), as the history and the relay keep them."""
        out = {name: getattr(self, name) for name in DETAIL_FIELDS}
        if isinstance(self.timestamp, dt.datetime):
            out["timestamp"] = self.timestamp.isoformat()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CallDetails:
        known = {k: v for k, v in data.items() if k in DETAIL_FIELDS}
        return cls(**known)


def call_properties(call: CallDetails, *, app_id: str | int, external_account_id: str) -> dict[str, str]:
    """The call's HubSpot properties. ``hs_call_duration`` is in milliseconds (HubSpot's calls guide;
    the integration guide's "seconds" is wrong for this property)."""
    if not call.external_id or "/" in call.external_id:
        raise ValueError("The call's external id must be non-empty and hold no '/'.")
    if call.duration_ms < 0:
        raise ValueError("The call's duration cannot be negative.")
    if call.direction and call.direction not in CALL_DIRECTIONS:
        raise ValueError(f"The call's direction must be INBOUND or OUTBOUND; got {call.direction!r}.")
    status = call.status or "COMPLETED"
    if status not in CALL_STATUSES:
        raise ValueError(f"The call's status must be one of {', '.join(CALL_STATUSES)}; got {call.status!r}.")
    if not external_account_id:
        raise ValueError("The external account id is empty (set it, or the portal id, first).")
    props = {
        "hs_timestamp": hubspot_timestamp(call.timestamp),
        "hs_call_title": call.title,
        "hs_call_body": call.notes,
        "hs_call_duration": str(int(call.duration_ms)),
        "hs_call_status": status,
        "hs_call_source": CALL_SOURCE,
        "hs_call_app_id": _app_id(app_id),
        "hs_call_external_id": call.external_id,
        "hs_call_external_account_id": str(external_account_id),
    }
    optional = {
        "hubspot_owner_id": call.owner_id, "hs_call_from_number": call.from_number,
        "hs_call_to_number": call.to_number, "hs_call_direction": call.direction,
        "hs_call_disposition": call.disposition,
    }
    props.update({k: v for k, v in optional.items() if v})
    return props


@dataclass(frozen=True)
class AssociationTarget:
    """A record to associate a call with, and the association type(s) to use."""

    to_id: str
    types: tuple[AssociationType, ...]

    def as_json(self) -> dict[str, Any]:
        if not self.types:
            raise ValueError("An association needs at least one association type.")
        for t in self.types:
            if t.category not in ASSOCIATION_CATEGORIES:
                raise ValueError(f"Unknown association category {t.category!r}.")
        return {"to": {"id": str(self.to_id)}, "types": [t.as_spec() for t in self.types]}


def _create_input(properties: Mapping[str, str], associations: Sequence[AssociationTarget]) -> dict[str, Any]:
    bad = [k for k, v in properties.items() if not isinstance(v, str)]
    if bad:
        raise ValueError(f"HubSpot property values are strings; not: {', '.join(bad)}")
    return {"properties": dict(properties), "associations": [a.as_json() for a in associations]}


def calls_create(properties: Mapping[str, str], associations: Sequence[AssociationTarget] = ()) -> ApiRequest:
    return ApiRequest("calls.create", "POST", "/crm/v3/objects/calls",
                      json=_create_input(properties, associations), creates=True)


def calls_batch_create(items: Sequence[tuple[Mapping[str, str], Sequence[AssociationTarget]]]) -> ApiRequest:
    if not 1 <= len(items) <= BATCH_MAX:
        raise ValueError(f"A batch holds 1 to {BATCH_MAX} calls; got {len(items)}.")
    return ApiRequest("calls.batch_create", "POST", "/crm/v3/objects/calls/batch/create",
                      json={"inputs": [_create_input(p, a) for p, a in items]}, creates=True)


def calls_create_permission_probe() -> ApiRequest:
    """An empty batch create: HubSpot checks the sign-in and its scopes (``crm.objects.contacts.write``)
    before the body, and an empty batch creates nothing. ``hubspot test``'s way to learn, without writing,
    whether this sign-in may log calls (a private-app token's scopes cannot be read through the API)."""
    return ApiRequest("calls.batch_create", "POST", "/crm/v3/objects/calls/batch/create", json={"inputs": []})


def _search_body(filter_groups: list[dict[str, Any]], properties: Iterable[str], limit: int,
                 after: str | None) -> dict[str, Any]:
    if not 1 <= limit <= SEARCH_LIMIT_MAX:
        raise ValueError(f"A search returns 1 to {SEARCH_LIMIT_MAX} results per page.")
    return {"filterGroups": filter_groups, "properties": list(properties), "limit": limit,
            "after": after or "0", "sorts": []}


def _eq(prop: str, value: str) -> dict[str, Any]:
    return {"propertyName": prop, "operator": "EQ", "value": value}


def calls_search_by_external_id(external_id: str, properties: Iterable[str] = TRANSCRIPT_PROPERTIES,
                                limit: int = 10) -> ApiRequest:
    if not external_id:
        raise ValueError("The external id to search for is empty.")
    body = _search_body([{"filters": [_eq("hs_call_external_id", external_id)]}], properties, limit, None)
    return ApiRequest("calls.search", "POST", "/crm/v3/objects/calls/search", json=body, kind=SEARCH)


def calls_search_by_external_ids(external_ids: Sequence[str], properties: Iterable[str] = TRANSCRIPT_PROPERTIES,
                                 after: str | None = None) -> ApiRequest:
    """One search for up to 100 external ids (``IN``); HubSpot compares string values in lower case,
    which the app's ids (``callrelay-<uuid>``) are."""
    if not 1 <= len(external_ids) <= BATCH_MAX:
        raise ValueError(f"A search takes 1 to {BATCH_MAX} external ids; got {len(external_ids)}.")
    groups = [{"filters": [{"propertyName": "hs_call_external_id", "operator": "IN",
                            "values": [str(i) for i in external_ids]}]}]
    return ApiRequest("calls.search", "POST", "/crm/v3/objects/calls/search",
                      json=_search_body(groups, properties, SEARCH_LIMIT_MAX, after), kind=SEARCH)


def calls_batch_read(ids: Sequence[str | int], properties: Iterable[str] = TRANSCRIPT_PROPERTIES,
                     id_property: str | None = None) -> ApiRequest:
    """Read up to 100 calls at once, by record id or, with ``id_property``, by that property's values."""
    if not 1 <= len(ids) <= BATCH_MAX:
        raise ValueError(f"A batch read holds 1 to {BATCH_MAX} ids; got {len(ids)}.")
    body: dict[str, Any] = {"inputs": [{"id": str(i)} for i in ids], "properties": list(properties),
                            "propertiesWithHistory": []}
    if id_property:
        body["idProperty"] = id_property
    return ApiRequest("calls.batch_read", "POST", "/crm/v3/objects/calls/batch/read", json=body)


def calls_read(call_id: str | int, properties: Iterable[str] = TRANSCRIPT_PROPERTIES,
               associations: Iterable[str] = ()) -> ApiRequest:
    params = [("properties", p) for p in properties] + [("associations", a) for a in associations]
    return ApiRequest("calls.read", "GET", f"/crm/v3/objects/calls/{_seg(call_id)}", params=tuple(params))


# --- associations -------------------------------------------------------------------------------

def association_labels(from_type: str, to_type: str) -> ApiRequest:
    return ApiRequest("associations.labels", "GET",
                      f"/crm/v4/associations/{_seg(from_type)}/{_seg(to_type)}/labels")


def association_create(from_type: str, from_id: str | int, to_type: str, to_id: str | int,
                       types: Sequence[AssociationType]) -> ApiRequest:
    body = AssociationTarget(str(to_id), tuple(types)).as_json()["types"]
    return ApiRequest("associations.create", "PUT",
                      f"/crm/v4/objects/{_seg(from_type)}/{_seg(from_id)}/associations/{_seg(to_type)}/{_seg(to_id)}",
                      json=body)


def association_batch_create(from_type: str, to_type: str, pairs: Sequence[tuple[str, str]],
                             types: Sequence[AssociationType]) -> ApiRequest:
    if not 1 <= len(pairs) <= BATCH_MAX:
        raise ValueError(f"A batch holds 1 to {BATCH_MAX} associations; got {len(pairs)}.")
    inputs = [{"from": {"id": str(f)}, **AssociationTarget(str(t), tuple(types)).as_json()} for f, t in pairs]
    return ApiRequest("associations.batch_create", "POST",
                      f"/crm/v4/associations/{_seg(from_type)}/{_seg(to_type)}/batch/create",
                      json={"inputs": inputs})


# --- contacts -----------------------------------------------------------------------------------

def contact_filters_email(email: str) -> list[dict[str, Any]]:
    email = email.strip().lower()
    if "@" not in email:
        raise ValueError(f"Not an email address: {email!r}")
    return [{"filters": [_eq("email", email)]}]


def contact_filters_name(name: str) -> list[dict[str, Any]]:
    parts = name.split()
    if not parts:
        raise ValueError("The name to search for is empty.")
    if len(parts) == 1:
        return [{"filters": [_eq("firstname", parts[0])]}, {"filters": [_eq("lastname", parts[0])]}]
    first, last = " ".join(parts[:-1]), parts[-1]
    return [{"filters": [_eq("firstname", first), _eq("lastname", last)]}]


PHONE_PROPERTIES = ("phone", "mobilephone")  # the contact properties a number is searched in


def contact_filters_phone(number: str, region: str = "US") -> list[dict[str, Any]]:
    """One filter group per phone property (groups are ORed), each matching any stored form."""
    forms = phones.variants(number, region)
    if not forms:
        raise ValueError("The phone number to search for is empty.")
    return [{"filters": [{"propertyName": prop, "operator": "IN", "values": forms}]}
            for prop in PHONE_PROPERTIES]


def contacts_search(filter_groups: list[dict[str, Any]], properties: Iterable[str] = CONTACT_PROPERTIES,
                    limit: int = 20, after: str | None = None) -> ApiRequest:
    return ApiRequest("contacts.search", "POST", "/crm/v3/objects/contacts/search",
                      json=_search_body(filter_groups, properties, limit, after), kind=SEARCH)


def contacts_read(contact_id: str | int, properties: Iterable[str] = CONTACT_PROPERTIES) -> ApiRequest:
    return ApiRequest("contacts.read", "GET", f"/crm/v3/objects/contacts/{_seg(contact_id)}",
                      params=tuple(("properties", p) for p in properties))


def contacts_create(properties: Mapping[str, str]) -> ApiRequest:
    return ApiRequest("contacts.create", "POST", "/crm/v3/objects/contacts",
                      json=_create_input(properties, ()), creates=True)


# --- owners, dispositions, account ----------------------------------------------------------------

def owners_page(after: str | None = None, limit: int = 100) -> ApiRequest:
    params = [("limit", str(limit)), ("archived", "false")] + ([("after", after)] if after else [])
    return ApiRequest("owners.list", "GET", "/crm/v3/owners", params=tuple(params))


def call_dispositions() -> ApiRequest:
    return ApiRequest("calls.dispositions", "GET", "/calling/v1/dispositions")


def account_details() -> ApiRequest:
    return ApiRequest("account.details", "GET", "/account-info/v3/details")


# --- OAuth --------------------------------------------------------------------------------------

def oauth_exchange_code(code: str, *, client_id: str, client_secret: str, redirect_uri: str) -> ApiRequest:
    if not (code and client_id and client_secret):
        raise ValueError("The OAuth code exchange needs the code, the client id and the client secret.")
    form = (("grant_type", "authorization_code"), ("client_id", client_id), ("client_secret", client_secret),
            ("redirect_uri", redirect_uri), ("code", code))
    return ApiRequest("oauth.token", "POST", "/oauth/v1/token", form=form, auth="none")


def oauth_refresh(refresh_token: str, *, client_id: str, client_secret: str) -> ApiRequest:
    if not (refresh_token and client_id and client_secret):
        raise ValueError("Refreshing the OAuth token needs the refresh token, the client id and the secret.")
    form = (("grant_type", "refresh_token"), ("client_id", client_id), ("client_secret", client_secret),
            ("refresh_token", refresh_token))
    return ApiRequest("oauth.refresh", "POST", "/oauth/v1/token", form=form, auth="none")


def authorize_url(base: str, *, client_id: str, redirect_uri: str, scopes: Sequence[str], state: str,
                  optional_scopes: Sequence[str] = ()) -> str:
    """The browser URL that asks the user to grant the app access."""
    query = [("client_id", client_id), ("redirect_uri", redirect_uri), ("scope", " ".join(scopes)),
             ("state", state)]
    if optional_scopes:
        query.append(("optional_scope", " ".join(optional_scopes)))
    return f"{base}?{urllib.parse.urlencode(query, quote_via=urllib.parse.quote)}"
