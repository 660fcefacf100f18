"""CRM objects as HubSpot keeps them: property definitions, values checked like HubSpot checks them,
search with filter groups, and association types.

Only what the app uses is modelled: calls and contacts in full, owners, and companies, deals and
tickets as association targets.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from desktop_app.sandbox.errors import ApiError, validation

# HubSpot's default call dispositions (the ids HubSpot documents for every account).
DISPOSITIONS: tuple[tuple[str, str], ...] = (
    ("9d9162e7-6cf3-4944-bf63-4dff82258764", "Busy"),
    ("f240bbac-87c9-4f6e-bf70-924b57d47db7", "Connected"),
    ("a4c4c377-d246-4b32-a13b-75a56a4cd0ff", "Left live message"),
    ("b2cf5968-551e-4856-9783-52b3da59a7d0", "Left voicemail"),
    ("73a0d17f-1163-4015-bdd5-ec830791da20", "No answer"),
    ("17b47fee-58de-441e-a44c-c6300d46f273", "Wrong number"),
)

# Object type names, ids and singular forms HubSpot accepts in paths.
OBJECT_TYPES = {
    "calls": ("calls", "call", "0-48"),
    "contacts": ("contacts", "contact", "0-1"),
    "companies": ("companies", "company", "0-2"),
    "deals": ("deals", "deal", "0-3"),
    "tickets": ("tickets", "ticket", "0-5"),
}
TYPE_IDS = {name: forms[2] for name, forms in OBJECT_TYPES.items()}

# HubSpot-defined association type ids between calls and the records they are logged on.
ASSOCIATION_TYPES: dict[tuple[str, str], int] = {
    ("calls", "contacts"): 194, ("contacts", "calls"): 193,
    ("calls", "companies"): 182, ("companies", "calls"): 181,
    ("calls", "deals"): 206, ("deals", "calls"): 205,
    ("calls", "tickets"): 220, ("tickets", "calls"): 219,
}
INVERSE_TYPE = {v: ASSOCIATION_TYPES[(b, a)] for (a, b), v in ASSOCIATION_TYPES.items()}


def association_target(from_kind: str, type_ids: list[int]) -> str | None:
    """The object type that association type ids lead to from ``from_kind`` (None: none of them does)."""
    for (a, b), tid in ASSOCIATION_TYPES.items():
        if a == from_kind and tid in type_ids:
            return b
    return None


def object_type(name: str) -> str | None:
    low = name.lower()
    for canonical, forms in OBJECT_TYPES.items():
        if low in forms:
            return canonical
    return None


@dataclass(frozen=True)
class Prop:
    name: str
    kind: str  # string, number, datetime, enumeration, bool, owner, disposition, email
    options: tuple[str, ...] = ()
    read_only: bool = False


def _props(*items: Prop) -> dict[str, Prop]:
    return {p.name: p for p in items}


CALL_PROPERTIES = _props(
    Prop("hs_timestamp", "datetime"),
    Prop("hs_call_title", "string"),
    Prop("hs_call_body", "string"),
    Prop("hubspot_owner_id", "owner"),
    Prop("hs_call_duration", "number"),
    Prop("hs_call_from_number", "string"),
    Prop("hs_call_to_number", "string"),
    Prop("hs_call_direction", "enumeration", ("INBOUND", "OUTBOUND")),
    Prop("hs_call_disposition", "disposition"),
    Prop("hs_call_status", "enumeration", ("BUSY", "CALLING_CRM_USER", "CANCELED", "COMPLETED", "CONNECTING",
                                           "FAILED", "IN_PROGRESS", "MISSED", "NO_ANSWER", "QUEUED", "RINGING")),
    Prop("hs_call_source", "string"),
    Prop("hs_call_app_id", "number"),
    Prop("hs_call_external_id", "string"),
    Prop("hs_call_external_account_id", "string"),
    Prop("hs_call_recording_url", "string"),
    Prop("hs_call_callee_object_id", "number"),
    Prop("hs_call_callee_object_type", "enumeration", ("CONTACT", "COMPANY")),
    Prop("hs_activity_type", "string"),
    Prop("hs_attachment_ids", "string"),
    Prop("hs_call_has_transcript", "bool", read_only=True),
    Prop("hs_call_transcription_id", "number", read_only=True),
    # Sandbox only: why a recording was or was not transcribed (HubSpot gives no such reason).
    Prop("sandbox_transcript_status", "string", read_only=True),
    Prop("sandbox_transcript_reason", "string", read_only=True),
    Prop("hs_object_id", "number", read_only=True),
    Prop("hs_createdate", "datetime", read_only=True),
    Prop("hs_lastmodifieddate", "datetime", read_only=True),
)
CONTACT_PROPERTIES = _props(
    Prop("email", "email"),
    Prop("firstname", "string"),
    Prop("lastname", "string"),
    Prop("phone", "string"),
    Prop("mobilephone", "string"),
    Prop("company", "string"),
    Prop("jobtitle", "string"),
    Prop("hubspot_owner_id", "owner"),
    Prop("lifecyclestage", "enumeration", ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead",
                                           "opportunity", "customer", "evangelist", "other")),
    Prop("hs_object_id", "number", read_only=True),
    Prop("createdate", "datetime", read_only=True),
    Prop("lastmodifieddate", "datetime", read_only=True),
)
PROPERTIES = {"calls": CALL_PROPERTIES, "contacts": CONTACT_PROPERTIES}
DEFAULT_RETURNED = {
    "calls": ("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
    "contacts": ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
}
# Properties whose values are unique, so that reads may name a record by them (``idProperty``).
UNIQUE_PROPERTIES = {"calls": ("hs_object_id",), "contacts": ("hs_object_id", "email")}
CREATED_PROP = {"calls": "hs_createdate", "contacts": "createdate"}
MODIFIED_PROP = {"calls": "hs_lastmodifieddate", "contacts": "lastmodifieddate"}
REQUIRED_ON_CREATE = {"calls": ("hs_timestamp",), "contacts": ()}
SEARCHABLE_TEXT = {
    "calls": ("hs_call_title", "hs_call_body", "hs_call_external_id"),
    "contacts": ("firstname", "lastname", "email", "phone", "mobilephone", "company"),
}

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def now_iso() -> str:
    return iso(_dt.datetime.now(_dt.timezone.utc))


def iso(moment: _dt.datetime) -> str:
    return moment.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_datetime(value: str) -> _dt.datetime | None:
    """HubSpot takes epoch milliseconds or ISO 8601 (a date alone means midnight UTC)."""
    text = value.strip()
    if re.fullmatch(r"-?\d{1,16}", text):
        return _dt.datetime.fromtimestamp(int(text) / 1000, _dt.timezone.utc)
    try:
        moment = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    return moment


def _property_error(kind: str, name: str, message: str, portal_id: int) -> dict[str, Any]:
    return {"isValid": False, "message": message, "error": kind, "name": name, "localizedErrorMessage": message,
            "portalId": portal_id}


def check_properties(object_kind: str, values: dict[str, Any], *, creating: bool, owners: set[str],
                     portal_id: int) -> dict[str, str]:
    """Property values checked and normalised as HubSpot does, or an ApiError listing each bad one."""
    defs = PROPERTIES[object_kind]
    problems: list[dict[str, Any]] = []
    out: dict[str, str] = {}
    for name, raw in values.items():
        prop = defs.get(name)
        if prop is None:
            problems.append(_property_error("PROPERTY_DOESNT_EXIST", name, f'Property "{name}" does not exist',
                                            portal_id))
            continue
        if prop.read_only:
            problems.append(_property_error("READ_ONLY_VALUE", name, f'"{name}" is a read only property; its value '
                                            "cannot be set.", portal_id))
            continue
        value = "" if raw is None else str(raw)
        check = _VALUE_CHECKS.get(prop.kind) if value else None
        try:
            out[name] = check(name, value, prop, owners) if check else value
        except _BadValue as bad:
            problems.append(_property_error(bad.kind, name, bad.message, portal_id))
    if creating:
        for name in REQUIRED_ON_CREATE[object_kind]:
            if not out.get(name) and name not in values:
                problems.append(_property_error("REQUIRED_PROPERTY", name, f"Missing required property {name}",
                                                portal_id))
    if problems:
        import json

        raise validation(
            f"Property values were not valid: {json.dumps(problems)}",
            errors=[{"message": p["message"], "code": p["error"], "in": p["name"],
                     "context": {"propertyName": [p["name"]]}} for p in problems],
        )
    return out


class _BadValue(Exception):
    """A property value HubSpot refuses: its error kind and message."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def _number_value(name: str, value: str, prop: Prop, owners: set[str]) -> str:
    try:
        number = float(value)
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError
    except ValueError:
        raise _BadValue("INVALID_DOUBLE", f"{value!r} was not a valid number.") from None
    if name == "hs_call_duration" and number < 0:
        raise _BadValue("INVALID_LONG", f"{value!r} must not be negative.")
    return value


def _datetime_value(name: str, value: str, prop: Prop, owners: set[str]) -> str:
    moment = parse_datetime(value)
    if moment is None:
        raise _BadValue("INVALID_DATE", f"{value!r} was not a valid long or ISO 8601 date-time.")
    return iso(moment)


def _option_value(name: str, value: str, prop: Prop, owners: set[str]) -> str:
    if value not in prop.options:
        raise _BadValue("INVALID_OPTION", f"{value} was not one of the allowed options: "
                        f"[{', '.join(prop.options)}]")
    return value


def _owner_value(name: str, value: str, prop: Prop, owners: set[str]) -> str:
    if value not in owners:
        raise _BadValue("INVALID_OWNER_ID", f"{value} is not a valid owner id")
    return value


def _disposition_value(name: str, value: str, prop: Prop, owners: set[str]) -> str:
    if value not in {d for d, _ in DISPOSITIONS}:
        raise _BadValue("INVALID_OPTION", f"{value} is not a call disposition of this account "
                        "(GET /calling/v1/dispositions lists them)")
    return value


def _email_value(name: str, value: str, prop: Prop, owners: set[str]) -> str:
    if not _EMAIL.match(value):
        raise _BadValue("INVALID_EMAIL", f"Email address {value} is invalid")
    return value


# A property's kind -> the check of a (non-empty) value of it, which returns the value as stored.
_VALUE_CHECKS: dict[str, Callable[[str, str, Prop, set[str]], str]] = {
    "number": _number_value, "datetime": _datetime_value, "enumeration": _option_value, "owner": _owner_value,
    "disposition": _disposition_value, "email": _email_value,
}


def public_object(obj: dict[str, Any], wanted: list[str] | None) -> dict[str, Any]:
    """A stored object as HubSpot returns it (``SimplePublicObject``)."""
    kind = obj["kind"]
    names = list(DEFAULT_RETURNED[kind]) + [n for n in (wanted or []) if n not in DEFAULT_RETURNED[kind]]
    props = obj["properties"]
    return {
        "id": obj["id"],
        "properties": {n: props.get(n) for n in names if n in props or n in DEFAULT_RETURNED[kind]},
        "createdAt": obj["createdAt"],
        "updatedAt": obj["updatedAt"],
        "archived": False,
    }


def _as_number(value: str | None) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        moment = parse_datetime(value)
        return moment.timestamp() * 1000 if moment else None


def _matches(props: dict[str, str], flt: dict[str, Any]) -> bool:
    name = flt["propertyName"]
    op = flt["operator"]
    have = props.get(name)
    present = have not in (None, "")
    if op == "HAS_PROPERTY":
        return present
    if op == "NOT_HAS_PROPERTY":
        return not present
    value = flt.get("value")
    values = [str(v).lower() for v in flt.get("values") or []]
    text = (have or "").lower()
    if op == "EQ":
        return present and text == str(value).lower()
    if op == "NEQ":
        return text != str(value).lower()
    if op == "IN":
        return present and text in values
    if op == "NOT_IN":
        return text not in values
    if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        pattern = re.escape(str(value).lower()).replace(r"\*", ".*")
        tokens = re.split(r"[\s,;@.()+\-]+", text) + [text]
        found = present and any(re.fullmatch(pattern, tok) for tok in tokens if tok)
        return found if op == "CONTAINS_TOKEN" else not found
    number, target = _as_number(have), _as_number(None if value is None else str(value))
    if number is None:
        return False
    if op == "BETWEEN":
        high = _as_number(str(flt.get("highValue")))
        return target is not None and high is not None and target <= number <= high
    if target is None:
        return False
    return {"GT": number > target, "GTE": number >= target, "LT": number < target, "LTE": number <= target}[op]


def search(objects: list[dict[str, Any]], request: dict[str, Any]) -> dict[str, Any]:
    """HubSpot's CRM search: OR of filter groups, AND within one; ``query`` over the text properties;
    sorts; paging by ``after`` (an offset); limits as HubSpot enforces them."""
    groups = request.get("filterGroups") or []
    if len(groups) > 5 or sum(len(g.get("filters", [])) for g in groups) > 18 or any(
            len(g.get("filters", [])) > 6 for g in groups):
        raise ApiError(400, "VALIDATION_ERROR", "Search allows at most 5 filterGroups, 6 filters in a group and 18 "
                       "filters in all.")
    limit = 10 if request.get("limit") is None else int(request["limit"])  # 0: the total alone
    if limit > 200 or limit < 0:
        raise validation(f"limit must be between 0 and 200, got {limit}")
    after_text = str(request.get("after") or "0")
    if not after_text.isdigit():
        raise validation(f"after must be a number, got {after_text!r}")
    after = int(after_text)
    if after >= 10_000:
        raise validation("Search results can be paged up to 10,000 results.")
    hits = [o for o in objects if not groups or any(all(_matches(o["properties"], f) for f in g.get("filters", []))
                                                  for g in groups)]
    query = (request.get("query") or "").strip().lower()
    if query:
        kind = objects[0]["kind"] if objects else "contacts"
        hits = [o for o in hits if any(query in (o["properties"].get(p) or "").lower() for p in SEARCHABLE_TEXT[kind])]
    hits.sort(key=lambda o: int(o["id"]))
    for sort in reversed(request.get("sorts") or []):
        spec = sort if isinstance(sort, dict) else {"propertyName": str(sort).lstrip("-"),
                                                     "direction": "DESCENDING" if str(sort).startswith("-")
                                                     else "ASCENDING"}
        name = spec.get("propertyName", "")
        hits.sort(key=lambda o: str(o["properties"].get(name) or ""),  # noqa: B023 - sorted at once
                  reverse=spec.get("direction") == "DESCENDING")
    page = hits[after:after + limit]
    out: dict[str, Any] = {"total": len(hits),
                           "results": [public_object(o, request.get("properties")) for o in page]}
    if limit and after + limit < len(hits):
        out["paging"] = {"next": {"after": str(after + limit)}}
    return out
