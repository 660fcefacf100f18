"""A local HubSpot: a real HTTP server on loopback that implements the operations Call Relay uses,
checks every request against the trimmed copy of HubSpot's OpenAPI descriptions, enforces rate
limits, injects faults on demand, and fetches recordings after "recording ready" as HubSpot does.

    from desktop_app.sandbox import Sandbox
    with Sandbox() as sb:           # port 0: a free port
        env = sb.env()              # HUBSPOT_URL, HUBSPOT_ACCESS_TOKEN, ...
        sb.faults.fail("calls.create", times=2, status=503)
        ...
        sb.calls(), sb.requests, sb.wait_for_fetch(call_id)
"""

from desktop_app.sandbox.faults import ALIASES, Fault, Faults, FaultSpecError, parse_spec
from desktop_app.sandbox.fetcher import REASONS, FetchRecord
from desktop_app.sandbox.limits import RateLimits
from desktop_app.sandbox.server import Credentials, RequestRecord, Sandbox

__all__ = [
    "ALIASES",
    "REASONS",
    "Credentials",
    "Fault",
    "FaultSpecError",
    "Faults",
    "FetchRecord",
    "RateLimits",
    "RequestRecord",
    "Sandbox",
    "parse_spec",
]
