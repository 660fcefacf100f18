"""Contact search for the call details form (no Qt; runs in a worker).

The contact whose phone matches the call's other party comes first; then what the agent typed,
searched as an email, a phone number or a name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Found:
    id: str
    name: str
    email: str
    phone: str
    why: str  # "phone" (matches the call's number) or "search"

    @property
    def label(self) -> str:
        parts = [self.name or "(no name)"]
        if self.email:
            parts.append(self.email)
        if self.phone:
            parts.append(self.phone)
        text = " · ".join(parts)
        return f"{text}  — matches the call's number" if self.why == "phone" else text


def _found(contact: Any, why: str) -> Found:
    phones = getattr(contact, "phones", []) or []
    return Found(str(contact.id), contact.name, contact.email or "", phones[0] if phones else "", why)


def looks_like_phone(text: str) -> bool:
    return len(re.sub(r"\D", "", text)) >= 5 and not re.search(r"[A-Za-z@]", text)


def find_contacts(client: Any, text: str, party_number: str | None, region: str) -> list[Found]:
    out: list[Found] = []
    seen: set[str] = set()

    def add(contacts: list[Any], why: str) -> None:
        for c in contacts:
            if str(c.id) not in seen:
                seen.add(str(c.id))
                out.append(_found(c, why))

    if party_number:
        add(client.search_contacts_by_phone(party_number, region), "phone")
    text = text.strip()
    if len(text) >= 2:
        if "@" in text:
            add(client.search_contacts_by_email(text), "search")
        elif looks_like_phone(text):
            add(client.search_contacts_by_phone(text, region), "search")
        else:
            add(client.search_contacts_by_name(text), "search")
    return out
