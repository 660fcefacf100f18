"""Fault injection: make given operations fail the way networks and HubSpot fail.

A rule names a target (an operation alias such as ``calls.create``, an operationId, ``METHOD
/path/template``, or ``*`` for every API operation), an action and how many times it fires:

=====================  =========================================================================
action                 effect
=====================  =========================================================================
``500`` (any status)   answer that status with a HubSpot ``Error`` body (the operation is not done)
``429``                a ``SECONDLY`` rate-limit answer (``429/DAILY`` for the daily policy), with
                       ``Retry-After`` and HubSpot's 429 body
``reset``              close the connection with a TCP reset before answering (not done)
``lost``               do the operation, then reset the connection: the client cannot know it happened
``timeout[=S]``        say nothing for S seconds (default 30), then close the connection (not done)
``slow=S``             wait S seconds, then answer normally
=====================  =========================================================================

Text form (``callrelay sandbox --faults SPEC``): rules separated by ``;`` or ``,``, each
``TARGET:ACTION[xN]``; ``N`` is how many times it fires (default 1, ``*`` for always); ``@K``
after the count skips the first K matching requests. Examples::

    calls.create:503x2              the first two call creations answer 503
    contacts.search:429x3           three SECONDLY 429s on contact search
    recordings.ready:lost           marks ready, then drops the connection
    *:slow=0.5x*                    every request waits half a second
    calls.create:500x1@2            the third call creation fails once
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field

from desktop_app.sandbox.errors import ApiError
from desktop_app.sandbox.limits import Limiter, rate_limit_error

# Short names for the operations, used by fault rules and in the request log.
ALIASES: dict[str, tuple[str, str]] = {
    "settings.get": ("GET", "/crm/v3/extensions/calling/{appId}/settings/recording"),
    "settings.create": ("POST", "/crm/v3/extensions/calling/{appId}/settings/recording"),
    "settings.update": ("PATCH", "/crm/v3/extensions/calling/{appId}/settings/recording"),
    "recordings.ready": ("POST", "/crm/v3/extensions/calling/recordings/ready"),
    "transcripts.create": ("POST", "/crm/v3/extensions/calling/transcripts"),
    "transcripts.get": ("GET", "/crm/v3/extensions/calling/transcripts/{transcriptId}"),
    "transcripts.delete": ("DELETE", "/crm/v3/extensions/calling/transcripts/{transcriptId}"),
    "calling_settings.get": ("GET", "/crm/v3/extensions/calling/{appId}/settings"),
    "calling_settings.create": ("POST", "/crm/v3/extensions/calling/{appId}/settings"),
    "calling_settings.update": ("PATCH", "/crm/v3/extensions/calling/{appId}/settings"),
    "calling_settings.delete": ("DELETE", "/crm/v3/extensions/calling/{appId}/settings"),
    "calls.create": ("POST", "/crm/v3/objects/calls"),
    "calls.batch_create": ("POST", "/crm/v3/objects/calls/batch/create"),
    "calls.batch_read": ("POST", "/crm/v3/objects/calls/batch/read"),
    "calls.search": ("POST", "/crm/v3/objects/calls/search"),
    "calls.get": ("GET", "/crm/v3/objects/calls/{callId}"),
    "calls.update": ("PATCH", "/crm/v3/objects/calls/{callId}"),
    "calls.list": ("GET", "/crm/v3/objects/calls"),
    "calls.delete": ("DELETE", "/crm/v3/objects/calls/{callId}"),
    "contacts.create": ("POST", "/crm/v3/objects/contacts"),
    "contacts.search": ("POST", "/crm/v3/objects/contacts/search"),
    "contacts.get": ("GET", "/crm/v3/objects/contacts/{contactId}"),
    "contacts.list": ("GET", "/crm/v3/objects/contacts"),
    "contacts.update": ("PATCH", "/crm/v3/objects/contacts/{contactId}"),
    "contacts.delete": ("DELETE", "/crm/v3/objects/contacts/{contactId}"),
    "associations.default": (
        "PUT", "/crm/v4/objects/{fromObjectType}/{fromObjectId}/associations/default/{toObjectType}/{toObjectId}"),
    "associations.create": ("PUT", "/crm/v4/objects/{objectType}/{objectId}/associations/{toObjectType}/{toObjectId}"),
    "associations.list": ("GET", "/crm/v4/objects/{objectType}/{objectId}/associations/{toObjectType}"),
    "associations.delete": (
        "DELETE", "/crm/v4/objects/{objectType}/{objectId}/associations/{toObjectType}/{toObjectId}"),
    "associations.batch_read": ("POST", "/crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read"),
    "associations.batch_create": ("POST", "/crm/v4/associations/{fromObjectType}/{toObjectType}/batch/create"),
    "associations.batch_default": (
        "POST", "/crm/v4/associations/{fromObjectType}/{toObjectType}/batch/associate/default"),
    "associations.labels": ("GET", "/crm/v4/associations/{fromObjectType}/{toObjectType}/labels"),
    "owners.list": ("GET", "/crm/v3/owners"),
    "owners.get": ("GET", "/crm/v3/owners/{ownerId}"),
    "dispositions": ("GET", "/calling/v1/dispositions"),
    "account.details": ("GET", "/account-info/v3/details"),
    "oauth.token": ("POST", "/oauth/v1/token"),
    "oauth.authorize": ("GET", "/oauth/authorize"),
    "oauth.access_token_info": ("GET", "/oauth/v1/access-tokens/{token}"),
    "oauth.refresh_token_info": ("GET", "/oauth/v1/refresh-tokens/{token}"),
}
_BY_OPERATION = {v: k for k, v in ALIASES.items()}
# The 2026-03 copies share the v3 aliases.
_BY_OPERATION.update({
    ("GET", "/crm/extensions/calling/2026-03/{appId}/settings/recording"): "settings.get",
    ("POST", "/crm/extensions/calling/2026-03/{appId}/settings/recording"): "settings.create",
    ("PATCH", "/crm/extensions/calling/2026-03/{appId}/settings/recording"): "settings.update",
    ("POST", "/crm/extensions/calling/2026-03/recordings/ready"): "recordings.ready",
})


def alias_of(method: str, path_template: str) -> str:
    """The short name of an operation (``METHOD template`` when it has none)."""
    return _BY_OPERATION.get((method.upper(), path_template), f"{method.upper()} {path_template}")


class FaultSpecError(ValueError):
    """A fault rule that cannot be parsed."""


@dataclass
class Fault:
    target: str  # alias, operationId, "METHOD /template" or "*"
    action: str  # "status", "reset", "lost", "timeout", "slow"
    status: int = 0
    policy: str = "SECONDLY"  # for 429
    seconds: float = 0.0  # timeout / slow
    times: int | None = 1  # None: always
    skip: int = 0  # matching requests let through before the rule starts firing
    fired: int = 0
    seen: int = 0

    def matches(self, alias: str, operation_id: str, method: str, template: str) -> bool:
        t = self.target
        return t == "*" or t in (alias, operation_id) or t == f"{method.upper()} {template}"

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times


_ACTION = re.compile(
    r"^(?P<action>reset|lost|timeout(?:=(?P<tsec>\d+(?:\.\d+)?))?|slow=(?P<ssec>\d+(?:\.\d+)?)"
    r"|(?P<status>[1-5]\d\d)(?:/(?P<policy>SECONDLY|DAILY))?)"
    r"(?:x(?P<times>\d+|\*))?(?:@(?P<skip>\d+))?$"
)


def parse_rule(text: str) -> Fault:
    target, sep, action = text.strip().rpartition(":")
    if not sep or not target.strip():
        raise FaultSpecError(f"fault rule {text!r}: expected TARGET:ACTION, e.g. calls.create:503x2")
    target = target.strip()
    if target != "*" and target not in ALIASES and " " not in target and not target.startswith(("get-", "post-",
                                                                                              "put-", "patch-",
                                                                                              "delete-")):
        raise FaultSpecError(f"fault rule {text!r}: unknown target {target!r} (known: {', '.join(sorted(ALIASES))}"
                             ", an operationId, 'METHOD /path/template' or *)")
    m = _ACTION.match(action.strip())
    if not m:
        raise FaultSpecError(f"fault rule {text!r}: unknown action {action!r} (a status such as 503, 429[/DAILY], "
                             "reset, lost, timeout[=S], slow=S; then xN and @K)")
    times_text = m.group("times")
    times = None if times_text == "*" else int(times_text or 1)
    skip = int(m.group("skip") or 0)
    if m.group("status"):
        return Fault(target, "status", status=int(m.group("status")), policy=m.group("policy") or "SECONDLY",
                     times=times, skip=skip)
    name = m.group("action")
    if name.startswith("timeout"):
        return Fault(target, "timeout", seconds=float(m.group("tsec") or 30), times=times, skip=skip)
    if name.startswith("slow"):
        return Fault(target, "slow", seconds=float(m.group("ssec")), times=times, skip=skip)
    return Fault(target, name, times=times, skip=skip)


def parse_spec(spec: str) -> list[Fault]:
    """Rules from the text form (see the module docstring)."""
    return [parse_rule(part) for part in re.split(r"[;,]", spec) if part.strip()]


@dataclass
class Faults:
    """The rules in force; thread-safe. ``take`` picks (and counts) the rule a request meets."""

    rules: list[Fault] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def add(self, target: str, action: str = "status", *, status: int = 500, policy: str = "SECONDLY",
            seconds: float = 0.0, times: int | None = 1, skip: int = 0) -> Fault:
        fault = Fault(target, action, status=status, policy=policy, seconds=seconds, times=times, skip=skip)
        with self._lock:
            self.rules.append(fault)
        return fault

    def add_spec(self, spec: str) -> list[Fault]:
        new = parse_spec(spec)
        with self._lock:
            self.rules.extend(new)
        return new

    # Convenience forms.
    def fail(self, target: str, times: int | None = 1, status: int = 500) -> Fault:
        """``target`` answers ``status`` (a 5xx by default) ``times`` times."""
        return self.add(target, "status", status=status, times=times)

    def rate_limit(self, target: str = "*", times: int | None = 1, policy: str = "SECONDLY") -> Fault:
        return self.add(target, "status", status=429, policy=policy, times=times)

    def reset(self, target: str, times: int | None = 1) -> Fault:
        return self.add(target, "reset", times=times)

    def lost(self, target: str, times: int | None = 1) -> Fault:
        return self.add(target, "lost", times=times)

    def timeout(self, target: str, seconds: float = 30.0, times: int | None = 1) -> Fault:
        return self.add(target, "timeout", seconds=seconds, times=times)

    def slow(self, target: str, seconds: float, times: int | None = 1) -> Fault:
        return self.add(target, "slow", seconds=seconds, times=times)

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def take(self, alias: str, operation_id: str, method: str, template: str) -> Fault | None:
        with self._lock:
            for rule in self.rules:
                if rule.exhausted or not rule.matches(alias, operation_id, method, template):
                    continue
                rule.seen += 1
                if rule.seen <= rule.skip:
                    continue
                rule.fired += 1
                return rule
        return None


def fault_error(fault: Fault, limiter: Limiter, portal_id: int) -> ApiError:
    """The answer a ``status`` fault gives: HubSpot's 429 (with the limiter's headers) or an ``Error``."""
    if fault.status == 429:
        daily = fault.policy == "DAILY"
        headers = limiter.headers(remaining=None if daily else 0, daily_remaining=0 if daily else None)
        return rate_limit_error(fault.policy, 3600 if daily else 1, list(headers), portal_id)
    category = "INTERNAL_ERROR" if fault.status >= 500 else "VALIDATION_ERROR"
    return ApiError(fault.status, category, f"Injected fault: HTTP {fault.status}")
