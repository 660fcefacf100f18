"""HubSpot's API versions: which path an operation has in each, in one place.

HubSpot publishes date-versioned APIs twice a year beside the v3 (and v4 associations) paths:
``/crm/objects/2026-09/{objectType}``, ``/crm/associations/2026-09/...``, ``/crm/owners/2026-09``,
``/crm/extensions/calling/2026-09/...`` (HubSpot's OpenAPI files in
``HubSpot/HubSpot-public-api-spec-collection``, ``.../Rollouts/*/2026-09/``). The request bodies the
app sends are the same in both; the dated answers put a batch's errors in the same schema as its
results (``errors``, ``numErrors``), which the client reads either way.

The client builds every request on the v3 path and ``dated_path`` moves it to the configured version;
the sandbox maps a dated path back with ``v3_path`` so both families share one state. Operations with
no dated copy in HubSpot's files (association labels, call dispositions, account details, OAuth) keep
their path in every version. Pure functions: no I/O.
"""

from __future__ import annotations

import re

V3 = "v3"
NEWEST = "2026-09"
VERSIONS = (V3, NEWEST)
DEFAULT = V3  # until HubSpot retires v3

# (v3 prefix, dated prefix with {v}); the first that matches wins. Association paths under
# /crm/v4/objects/ become /crm/objects/{v}/ like the objects themselves.
_PREFIXES = (
    ("/crm/v3/objects/", "/crm/objects/{v}/"),
    ("/crm/v4/objects/", "/crm/objects/{v}/"),
    ("/crm/v3/owners", "/crm/owners/{v}"),
    ("/crm/v3/extensions/calling/", "/crm/extensions/calling/{v}/"),
)
# v4 association batch paths: /crm/v4/associations/{from}/{to}/batch/... (labels have no dated copy).
_ASSOC_BATCH = re.compile(r"\A/crm/v4/associations/([^/]+)/([^/]+)/batch/")
_DATED = re.compile(r"\A/crm/(objects|associations|owners|extensions/calling)/(\d{4}-\d{2})(?=/|\Z)")
# The dated object paths take HubSpot's object type ids as well as names.
_TYPE_NAMES = {"0-48": "calls", "0-1": "contacts", "0-2": "companies", "0-3": "deals", "0-5": "tickets"}


def check(version: str) -> str:
    """``version`` when the app supports it; else ``ValueError`` with a sentence naming the choices."""
    if version not in VERSIONS:
        raise ValueError(f"Unknown HubSpot API version {version!r}; use one of {', '.join(VERSIONS)}.")
    return version


def dated_path(path: str, version: str) -> str:
    """The path of the operation at ``path`` (a v3/v4 path) in ``version`` (unchanged for v3 and for
    operations that have no dated copy)."""
    if check(version) == V3:
        return path
    m = _ASSOC_BATCH.match(path)
    if m:
        return f"/crm/associations/{version}/" + path[len("/crm/v4/associations/"):]
    for old, new in _PREFIXES:
        if path.startswith(old):
            return new.format(v=version) + path[len(old):]
    return path


def version_of(path: str) -> str | None:
    """The dated version a path belongs to (``2026-09``), or None for a v3/v4/unversioned path."""
    m = _DATED.match(path)
    return m.group(2) if m else None


def v3_path(path: str) -> str:
    """The v3/v4 path of the operation at a dated ``path`` (unchanged when it is not dated)."""
    m = _DATED.match(path)
    if not m:
        return path
    family, rest = m.group(1), path[m.end():]
    if family == "owners":
        return "/crm/v3/owners" + rest
    if family == "extensions/calling":
        return "/crm/v3/extensions/calling" + rest
    if family == "associations":
        return "/crm/v4/associations" + rest
    parts = rest.split("/")  # ["", objectType, ...]
    if len(parts) > 1:
        parts[1] = _TYPE_NAMES.get(parts[1], parts[1])
    major = "v4" if len(parts) > 3 and parts[3] == "associations" else "v3"
    return f"/crm/{major}/objects" + "/".join(parts)
