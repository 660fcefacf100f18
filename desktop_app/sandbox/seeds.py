"""What a new sandbox holds: owners (with the sandbox-only flag of a paid Sales/Service seat) and
contacts whose phone numbers are stored in the forms people type them."""

from __future__ import annotations

OWNER_SEEDS = (
    # id, email, first, last, userId, paid Sales/Service seat
    ("71000001", "alice.agent@example.com", "Alice", "Agent", 9100001, True),
    ("71000002", "bob.caller@example.com", "Bob", "Caller", 9100002, True),
    ("71000003", "carol.viewer@example.com", "Carol", "Viewer", 9100003, False),
)
CONTACT_SEEDS = (
    # firstname, lastname, email, phone, mobilephone, company
    ("Jane", "Doe", "jane.doe@example.com", "+16175550142", "", "Acme Corp"),
    ("John", "Smith", "john.smith@example.com", "(617) 555-0199", "", "Acme Corp"),
    ("Maria", "Garcia", "maria.garcia@example.org", "", "6175550123", ""),
    ("Hans", "Müller", "hans.mueller@example.de", "+49 30 1234567", "030 7654321", "Beispiel GmbH"),
    ("Lee", "Chen", "lee.chen@example.com", "", "+1 (415) 555-0100", ""),
    ("Priya", "Patel", "priya.patel@example.co.uk", "020 7946 0018", "+44 7700 900123", ""),
)
