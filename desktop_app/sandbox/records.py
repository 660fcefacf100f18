"""The sandbox's CRM records on its store: objects (calls, contacts, ...), associations, transcripts, seeds.

Handlers (``handlers.py``) and the recording fetch (``fetcher.Fetches``) change records only through
``Records``; the property rules themselves (what HubSpot accepts in a property, search) are in ``crm.py``.
"""

from __future__ import annotations

import time
from typing import Any

from desktop_app.sandbox import crm
from desktop_app.sandbox.errors import ApiError, not_found, validation
from desktop_app.sandbox.seeds import CONTACT_SEEDS, OWNER_SEEDS
from desktop_app.sandbox.state import Store


class Records:
    """Objects, associations and transcripts of one sandbox account. ``search_lag_s``: how long a record
    created through the API stays out of search (HubSpot's index lag)."""

    def __init__(self, store: Store, portal_id: int, search_lag_s: float) -> None:
        self.store = store
        self.portal_id = portal_id
        self.search_lag_s = search_lag_s

    def seed(self) -> None:
        stamp = crm.now_iso()
        for oid, email, first, last, user_id, paid in OWNER_SEEDS:
            self.store.put("owners", oid, {"id": oid, "email": email, "firstName": first, "lastName": last,
                                           "userId": user_id, "userIdIncludingInactive": user_id, "type": "PERSON",
                                           "createdAt": stamp, "updatedAt": stamp, "archived": False,
                                           "teams": [], "paid_seat": paid})
        for first, last, email, phone, mobile, company in CONTACT_SEEDS:
            props = {"firstname": first, "lastname": last, "email": email, "company": company}
            if phone:
                props["phone"] = phone
            if mobile:
                props["mobilephone"] = mobile
            self.create_object("contacts", {k: v for k, v in props.items() if v})
        for kind, name in (("companies", "Acme Corp"), ("deals", "Acme renewal"), ("tickets", "Acme support")):
            oid = str(self.store.next_id(kind, 3001))
            self.store.put(kind, oid, {"id": oid, "kind": kind, "properties": {"name": name, "hs_object_id": oid},
                                       "createdAt": stamp, "updatedAt": stamp})
        self.store.put("meta", "seeded", True)

    def owner_ids(self) -> set[str]:
        return {o["id"] for o in self.store.values("owners") if not o.get("archived")}

    def create_object(self, kind: str, properties: dict[str, str], *, lag: bool = False) -> dict[str, Any]:
        """A new object; with ``lag`` (a create through the API) it enters the search index only after
        ``search_lag_s`` (seeds and test-made records are found at once)."""
        with self.store.lock:
            oid = str(self.store.next_id(kind, 40_000_000_001 if kind == "calls" else 101))
            stamp = crm.now_iso()
            props = dict(properties)
            props.update({"hs_object_id": oid, crm.CREATED_PROP[kind]: stamp, crm.MODIFIED_PROP[kind]: stamp})
            obj = {"id": oid, "kind": kind, "properties": props, "createdAt": stamp, "updatedAt": stamp,
                   "searchable_at": time.time() + (self.search_lag_s if lag else 0.0)}
            self.store.put(kind, oid, obj)
            return obj

    def update_object(self, kind: str, oid: str, properties: dict[str, str]) -> dict[str, Any]:
        with self.store.lock:
            obj = self.store.get(kind, oid)
            if obj is None:
                raise not_found(f"Object {kind} {oid} not found")
            stamp = crm.now_iso()
            props = {**obj["properties"], **properties, crm.MODIFIED_PROP[kind]: stamp}
            obj = {**obj, "properties": props, "updatedAt": stamp}
            self.store.put(kind, oid, obj)
            return obj

    def set_call_properties(self, call_id: str, properties: dict[str, str]) -> None:
        """Internal writes (read-only properties included), as HubSpot's own processes do."""
        self.update_object("calls", call_id, properties)

    def exists(self, kind: str, oid: str) -> bool:
        return self.store.get(kind, str(oid)) is not None

    def objects_stored(self, kind: str) -> list[dict[str, Any]]:
        """The stored objects of ``kind`` (with their ``kind``), oldest first."""
        return sorted(self.store.values(kind), key=lambda o: int(o["id"]))

    def archive_object(self, kind: str, oid: str) -> None:
        """Delete an object and every association from or to it."""
        with self.store.lock:
            self.store.delete(kind, oid)
            for key, link in self.store.items("associations"):
                if (link["fromType"], link["fromId"]) == (kind, oid) or (link["toType"], link["toId"]) == (kind, oid):
                    self.store.delete("associations", key)

    def dissociate(self, from_kind: str, from_id: str, to_kind: str, to_id: str) -> None:
        """Remove every association type between two records, in both directions."""
        with self.store.lock:
            self.store.delete("associations", f"{from_kind}:{from_id}:{to_kind}:{to_id}")
            self.store.delete("associations", f"{to_kind}:{to_id}:{from_kind}:{from_id}")

    @staticmethod
    def check_association_types(from_kind: str, to_kind: str, types: list[dict[str, Any]]) -> None:
        for spec_ in types:
            type_id = int(spec_["associationTypeId"])
            category = spec_["associationCategory"]
            if category != "HUBSPOT_DEFINED" or crm.ASSOCIATION_TYPES.get((from_kind, to_kind)) != type_id:
                raise validation(f"{category} association type {type_id} is not valid from {from_kind} to {to_kind}"
                                 f" (GET /crm/v4/associations/{from_kind}/{to_kind}/labels lists the valid ones)",
                                 context={"associationTypeId": [str(type_id)]})

    def associate(self, from_kind: str, from_id: str, to_kind: str, to_id: str,
                   types: list[dict[str, Any]]) -> None:
        for kind, oid in ((from_kind, from_id), (to_kind, to_id)):
            if not self.exists(kind, oid):
                raise not_found(f"No {kind} with id {oid}")
        self.check_association_types(from_kind, to_kind, types)
        with self.store.lock:
            for a_kind, a_id, b_kind, b_id, inverse in ((from_kind, from_id, to_kind, to_id, False),
                                                        (to_kind, to_id, from_kind, from_id, True)):
                key = f"{a_kind}:{a_id}:{b_kind}:{b_id}"
                current = self.store.get("associations", key) or {"fromType": a_kind, "fromId": str(a_id),
                                                                  "toType": b_kind, "toId": str(b_id), "types": []}
                for spec_ in types:
                    tid = int(spec_["associationTypeId"])
                    tid = crm.INVERSE_TYPE[tid] if inverse else tid
                    entry = {"category": spec_["associationCategory"], "typeId": tid}
                    if entry not in current["types"]:
                        current["types"].append(entry)
                self.store.put("associations", key, current)

    def check_create_associations(self, kind: str, associations: list[dict[str, Any]]) -> None:
        for assoc in associations:
            to_id = str(assoc["to"]["id"])
            to_kind = crm.association_target(kind, [t["associationTypeId"] for t in assoc["types"]])
            if to_kind is None:
                raise validation(f"Association type(s) {[t['associationTypeId'] for t in assoc['types']]} are not "
                                 f"valid from {kind}")
            if not self.exists(to_kind, to_id):
                raise validation(f"No {to_kind[:-1]} with id {to_id} to associate with",
                                 context={"id": [to_id]})

    def create_with_associations(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        props = crm.check_properties(kind, body.get("properties", {}), creating=True, owners=self.owner_ids(),
                                     portal_id=self.portal_id)
        associations = body.get("associations") or []
        self.check_create_associations(kind, associations)
        with self.store.lock:  # the uniqueness check and the create are one step
            if kind == "contacts" and props.get("email"):
                email = props["email"].lower()
                for other in self.store.values("contacts"):
                    if (other["properties"].get("email") or "").lower() == email:
                        raise ApiError(409, "CONFLICT", f"Contact already exists. Existing ID: {other['id']}",
                                       context={"existingId": [other["id"]]})
            obj = self.create_object(kind, props, lag=True)
            for assoc in associations:
                types = assoc["types"]
                to_kind = crm.association_target(kind, [t["associationTypeId"] for t in types])
                assert to_kind is not None  # checked above
                self.associate(kind, obj["id"], to_kind, str(assoc["to"]["id"]), types)
            return obj

    def make_transcript(self, call_id: str, channels: int, source: str,
                         utterances: list[dict[str, Any]] | None = None) -> str:
        tid = str(self.store.next_id("transcripts", 880_000_001))
        stamp = crm.now_iso()
        if utterances is None:
            utterances = [{"speaker": {"id": str(ch), "name": f"Channel {ch}"},
                           "text": f"(sandbox transcript: speaker on channel {ch})", "languageCode": "en-US",
                           "startTimeMillis": 1000 * (ch - 1), "endTimeMillis": 1000 * ch} for ch in range(1, channels + 1)]
        self.store.put("transcripts", tid, {
            "id": tid, "engagementId": int(call_id), "transcriptSource": source, "createdAt": stamp, "updatedAt": stamp,
            "transcriptUtterances": [{**u, "id": f"{tid}-{i}"} for i, u in enumerate(utterances)]})
        return tid
