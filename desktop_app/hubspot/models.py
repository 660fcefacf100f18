"""Typed results of the HubSpot client, parsed from HubSpot's response shapes.

Each ``from_json`` raises ``ValueError`` (turned into a ``BAD_RESPONSE`` error by the client) when a
field HubSpot's description marks as required is missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

_O = TypeVar("_O", bound="CrmObject")


def _req(data: Mapping[str, Any], key: str) -> Any:
    if not isinstance(data, Mapping) or key not in data:
        raise ValueError(f"missing {key!r}")
    return data[key]


def _opt(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return None if value is None else str(value)


@dataclass(frozen=True)
class RecordingSettings:
    url_to_retrieve_authed_recording: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RecordingSettings:
        return cls(str(_req(data, "urlToRetrieveAuthedRecording")))


@dataclass(frozen=True)
class PostedTranscript:
    """A transcript HubSpot holds for a call (``TranscriptResponse``): ``source`` ``INTEGRATOR_GENERATED`` for
    an app's, ``HUBSPOT_GENERATED`` for HubSpot's own; ``utterances`` as HubSpot returns them."""

    id: str
    engagement_id: str
    source: str
    utterances: tuple[dict[str, Any], ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PostedTranscript:
        return cls(str(_req(data, "id")), str(_req(data, "engagementId")), str(_req(data, "transcriptSource")),
                   tuple(dict(u) for u in _req(data, "transcriptUtterances")))


@dataclass(frozen=True)
class CrmObject:
    """A call or a contact (HubSpot's ``SimplePublicObject``)."""

    id: str
    properties: dict[str, str | None]
    created_at: str = ""
    updated_at: str = ""
    archived: bool = False
    associations: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def from_json(cls: type[_O], data: Mapping[str, Any]) -> _O:
        props = _req(data, "properties")
        if not isinstance(props, Mapping):
            raise ValueError("'properties' is not an object")
        assoc: dict[str, list[str]] = {}
        for kind, coll in (data.get("associations") or {}).items():
            assoc[str(kind)] = [str(r.get("id")) for r in coll.get("results", []) if isinstance(r, Mapping)]
        return cls(
            id=str(_req(data, "id")),
            properties={str(k): (None if v is None else str(v)) for k, v in props.items()},
            created_at=str(data.get("createdAt", "")),
            updated_at=str(data.get("updatedAt", "")),
            archived=bool(data.get("archived", False)),
            associations=assoc,
        )

    def get(self, name: str) -> str | None:
        return self.properties.get(name)


@dataclass(frozen=True)
class Call(CrmObject):
    @property
    def external_id(self) -> str | None:
        return self.get("hs_call_external_id")

    @property
    def duration_ms(self) -> int | None:
        value = self.get("hs_call_duration")
        return int(float(value)) if value not in (None, "") else None

    @property
    def has_transcript(self) -> bool:
        return (self.get("hs_call_has_transcript") or "").lower() == "true"


@dataclass(frozen=True)
class Contact(CrmObject):
    @property
    def email(self) -> str | None:
        return self.get("email")

    @property
    def name(self) -> str:
        return " ".join(p for p in (self.get("firstname"), self.get("lastname")) if p)

    @property
    def phones(self) -> list[str]:
        return [p for p in (self.get("phone"), self.get("mobilephone")) if p]


@dataclass(frozen=True)
class BatchError:
    status: str
    category: str
    message: str
    context: dict[str, list[str]]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BatchError:
        ctx = data.get("context") or {}
        return cls(str(data.get("status", "")), str(data.get("category", "")), str(data.get("message", "")),
                   {str(k): [str(x) for x in v] for k, v in ctx.items() if isinstance(v, list)})


@dataclass(frozen=True)
class BatchResult:
    """A batch answer: 201/200 (all done) or 207 (some failed, listed in ``errors``)."""

    status: str
    results: list[Call]
    errors: list[BatchError]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BatchResult:
        results = _req(data, "results")
        return cls(str(_req(data, "status")), [Call.from_json(r) for r in results],
                   [BatchError.from_json(e) for e in data.get("errors", []) or []])


@dataclass(frozen=True)
class AssociationType:
    """One association type between two object types (``associationCategory`` + ``associationTypeId``)."""

    category: str
    type_id: int
    label: str | None = None

    def as_spec(self) -> dict[str, Any]:
        return {"associationCategory": self.category, "associationTypeId": self.type_id}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AssociationType:
        return cls(str(_req(data, "category")), int(_req(data, "typeId")), _opt(data, "label"))


@dataclass(frozen=True)
class AssociationResult:
    from_id: str
    to_id: str
    labels: list[str]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AssociationResult:
        return cls(str(_req(data, "fromObjectId")), str(_req(data, "toObjectId")),
                   [str(x) for x in data.get("labels", []) or [] if x is not None])


@dataclass(frozen=True)
class Owner:
    id: str
    email: str | None
    first_name: str | None
    last_name: str | None
    user_id: int | None
    type: str
    archived: bool

    @property
    def name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p) or (self.email or self.id)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Owner:
        user_id = data.get("userId")
        return cls(str(_req(data, "id")), _opt(data, "email"), _opt(data, "firstName"), _opt(data, "lastName"),
                   int(user_id) if user_id is not None else None, str(_req(data, "type")),
                   bool(_req(data, "archived")))


@dataclass(frozen=True)
class Disposition:
    id: str
    label: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Disposition:
        return cls(str(_req(data, "id")), str(_req(data, "label")))


@dataclass(frozen=True)
class AccountDetails:
    portal_id: int
    account_type: str
    time_zone: str
    ui_domain: str
    utc_offset_ms: int
    company_currency: str = ""
    data_hosting_location: str = ""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AccountDetails:
        return cls(int(_req(data, "portalId")), str(_req(data, "accountType")), str(_req(data, "timeZone")),
                   str(_req(data, "uiDomain")), int(_req(data, "utcOffsetMilliseconds")),
                   str(data.get("companyCurrency", "")), str(data.get("dataHostingLocation", "")))


@dataclass(frozen=True)
class TokenSet:
    """An OAuth token answer. Secrets are kept out of ``repr``."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: float
    scopes: tuple[str, ...] = ()
    hub_id: int | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any], now: float) -> TokenSet:
        hub = data.get("hub_id")
        return cls(str(_req(data, "access_token")), str(data.get("refresh_token") or ""),
                   now + float(_req(data, "expires_in")), tuple(str(s) for s in data.get("scopes", []) or []),
                   int(hub) if hub is not None else None)


def call_url(portal_id: int | str, call_id: int | str, ui_domain: str = "app.hubspot.com") -> str:
    """The "Open in HubSpot" link of a call (object type 0-48)."""
    return f"https://{ui_domain}/contacts/{portal_id}/record/0-48/{call_id}"
