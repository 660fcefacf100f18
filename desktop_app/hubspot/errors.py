"""One exception for everything that can go wrong talking to HubSpot.

``HubSpotError`` carries what HubSpot said (its ``Error`` body: ``category``, ``message``,
``correlationId``, ``errors``), what the app decided (``retryable``, ``retry_after``,
``ambiguous``) and a sentence an agent can act on (``agent_message``). Network failures map to it
too. No secret ever reaches an instance: texts from the outside pass through ``scrub`` first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
from urllib3.exceptions import NameResolutionError, NewConnectionError

# Categories HubSpot uses in its Error body (the ones the app treats specially).
RATE_LIMITS = "RATE_LIMITS"
MISSING_SCOPES = "MISSING_SCOPES"
INVALID_AUTHENTICATION = "INVALID_AUTHENTICATION"
EXPIRED_AUTHENTICATION = "EXPIRED_AUTHENTICATION"
VALIDATION_ERROR = "VALIDATION_ERROR"
OBJECT_NOT_FOUND = "OBJECT_NOT_FOUND"
CONFLICT = "CONFLICT"
# Categories of our own, for failures that never reached HubSpot's error body.
NETWORK = "NETWORK"
TIMEOUT = "TIMEOUT"
BAD_RESPONSE = "BAD_RESPONSE"
DAILY_LIMIT = "DAILY_LIMIT"
OAUTH = "OAUTH"

SECONDLY = "SECONDLY"
DAILY = "DAILY"

_SCOPE_KEYS = ("missingScopes", "requiredScopes", "requiredGranularScopes")
_SECRET_QUERY = re.compile(r"(?i)\b(hapikey|access_token|refresh_token|client_secret|code)=([^&\s'\"]+)")
_BEARER = re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+")


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every given secret, bearer token and secret-bearing query value blanked out."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    text = _SECRET_QUERY.sub(lambda m: f"{m.group(1)}=***", text)
    return _BEARER.sub("Bearer ***", text)


@dataclass(frozen=True)
class FieldError:
    """One entry of HubSpot's ``errors`` list (its ``ErrorDetail``)."""

    message: str
    in_: str | None = None
    code: str | None = None
    sub_category: str | None = None
    context: Mapping[str, list[str]] = field(default_factory=dict)


class HubSpotError(Exception):
    """A request to HubSpot that did not succeed.

    ``status`` is the HTTP status (None when no answer came); ``retryable`` says whether the same
    request may succeed later; ``retry_after`` (seconds) when HubSpot or the limiter said when;
    ``ambiguous`` that a create may have happened although no answer confirmed it (settle it by
    searching before creating again).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        category: str | None = None,
        correlation_id: str | None = None,
        errors: Iterable[FieldError] = (),
        context: Mapping[str, list[str]] | None = None,
        sub_category: str | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        policy_name: str | None = None,
        agent_message: str | None = None,
        ambiguous: bool = False,
        operation: str | None = None,
    ) -> None:
        self.message = message
        self.status = status
        self.category = category
        self.correlation_id = correlation_id
        self.errors: tuple[FieldError, ...] = tuple(errors)
        self.context: dict[str, list[str]] = dict(context or {})
        self.sub_category = sub_category
        self.retryable = retryable
        self.retry_after = retry_after
        self.policy_name = policy_name
        self.ambiguous = ambiguous
        self.operation = operation
        self.agent_message = agent_message or message
        super().__init__(self._describe())

    def _describe(self) -> str:
        parts = [self.agent_message]
        details = []
        if self.status is not None:
            details.append(f"HTTP {self.status}")
        if self.category:
            details.append(self.category)
        if self.correlation_id:
            details.append(f"correlationId {self.correlation_id}")
        if details:
            parts.append(f"({', '.join(details)})")
        return " ".join(parts)

    @property
    def missing_scopes(self) -> list[str]:
        """The scopes HubSpot named as missing (in the body's or an error detail's context)."""
        return _scopes(self.context, self.errors)

    def __repr__(self) -> str:
        return (f"HubSpotError(status={self.status!r}, category={self.category!r}, "
                f"message={self.message!r}, correlation_id={self.correlation_id!r}, "
                f"retryable={self.retryable!r}, ambiguous={self.ambiguous!r})")


def _scopes(context: Mapping[str, list[str]], errors: Iterable[FieldError]) -> list[str]:
    found: list[str] = []
    for ctx in (context, *(e.context for e in errors)):
        for key in _SCOPE_KEYS:
            for scope in ctx.get(key, ()) or ():
                if isinstance(scope, str) and scope not in found:
                    found.append(scope)
    return found


def _str_list_map(value: Any) -> dict[str, list[str]]:
    if not isinstance(value, Mapping):
        return {}
    out: dict[str, list[str]] = {}
    for key, items in value.items():
        if isinstance(items, list):
            out[str(key)] = [str(i) for i in items]
        elif items is not None:
            out[str(key)] = [str(items)]
    return out


def _field_errors(value: Any, secrets: Iterable[str]) -> list[FieldError]:
    if not isinstance(value, list):
        return []
    out = []
    for item in value:
        if not isinstance(item, Mapping):
            continue
        out.append(FieldError(
            message=scrub(str(item.get("message", "")), secrets),
            in_=_opt_str(item.get("in")),
            code=_opt_str(item.get("code")),
            sub_category=_opt_str(item.get("subCategory")),
            context=_str_list_map(item.get("context")),
        ))
    return out


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (seconds form; an HTTP date is read as unknown)."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return max(0.0, seconds)


def agent_sentence(status: int | None, category: str | None, message: str, *,
                   scopes: list[str], policy_name: str | None, field_errors: Iterable[FieldError],
                   retry_after: float | None) -> str:
    """The sentence shown to an agent for an error answer from HubSpot."""
    if scopes or category == MISSING_SCOPES:
        if len(scopes) == 1:
            return f"The token has no `{scopes[0]}` scope; add it to the HubSpot app and sign in again."
        if scopes:
            named = ", ".join(f"`{s}`" for s in scopes)
            return f"The token lacks a scope this needs (one of {named}); add it to the HubSpot app and sign in again."
        return "The token lacks a scope this needs; check the HubSpot app's scopes and sign in again."
    if status == 401 or category in (INVALID_AUTHENTICATION, EXPIRED_AUTHENTICATION):
        return ("HubSpot did not accept the sign-in (the token is wrong, expired or revoked); "
                "sign in to HubSpot again or paste a new private-app token.")
    if status == 429 or category == RATE_LIMITS:
        if policy_name == DAILY:
            return ("The HubSpot account's daily API limit is used up; sending resumes after midnight "
                    "in the account's time zone.")
        when = f"wait {retry_after:g} s" if retry_after else "wait a moment"
        return f"HubSpot's rate limit was reached; HubSpot asks to {when} before the next request."
    if status == 403:
        return f"HubSpot refused this request: {message}"
    if status == 404 or category == OBJECT_NOT_FOUND:
        return f"HubSpot has no such record: {message}"
    if status == 409 or category == CONFLICT:
        return f"HubSpot reports a conflict: {message}"
    if status is not None and 400 <= status < 500:
        fields = [f"{e.in_}: {e.message}" if e.in_ else e.message for e in field_errors if e.message]
        extra = f" ({'; '.join(fields)})" if fields else ""
        return f"HubSpot rejected the request: {message}{extra}"
    if status is not None and status >= 500:
        return f"HubSpot had a problem on its side (HTTP {status}); it is worth trying again in a moment."
    return message


def from_response(response: requests.Response, *, secrets: Iterable[str] = (),
                  operation: str | None = None, ambiguous_if_5xx: bool = False) -> HubSpotError:
    """The error for an unsuccessful HTTP answer, parsed from HubSpot's ``Error`` body when it has one."""
    secrets = tuple(secrets)
    status = response.status_code
    body: Any = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, Mapping):
        body = {}
    raw_text = response.text[:300] if not body else ""
    message = scrub(str(body.get("message") or raw_text or response.reason or f"HTTP {status}"), secrets)
    category = _opt_str(body.get("category"))
    correlation_id = _opt_str(body.get("correlationId")) or response.headers.get("X-HubSpot-Correlation-Id")
    errors = _field_errors(body.get("errors"), secrets)
    context = _str_list_map(body.get("context"))
    policy_name = _opt_str(body.get("policyName"))
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if status == 429 and policy_name is None:
        policy_name = SECONDLY
    if status == 429:
        retryable = policy_name != DAILY
    else:
        retryable = status in (500, 502, 503, 504)
    ambiguous = ambiguous_if_5xx and status in (500, 502, 504)
    if ambiguous:
        retryable = True
    sentence = agent_sentence(status, category, message, scopes=_scopes(context, errors),
                              policy_name=policy_name, field_errors=errors, retry_after=retry_after)
    if ambiguous:
        sentence = (f"HubSpot had a problem on its side (HTTP {status}) while creating; the record may "
                    "exist already, so it is looked up before trying again.")
    return HubSpotError(
        message, status=status, category=category, correlation_id=correlation_id, errors=errors,
        context=context, sub_category=_opt_str(body.get("subCategory")), retryable=retryable,
        retry_after=retry_after, policy_name=policy_name, agent_message=sentence, ambiguous=ambiguous,
        operation=operation,
    )


def from_exception(exc: requests.RequestException, *, secrets: Iterable[str] = (),
                   operation: str | None = None, may_have_happened: bool = False) -> HubSpotError:
    """The error for a request that got no HTTP answer (timeout, reset, DNS, refused).

    ``may_have_happened`` marks a create whose request may have reached HubSpot: then a read
    timeout or a connection cut after sending makes the outcome ``ambiguous``.
    """
    detail = scrub(_root_cause(exc), secrets)
    sent = not isinstance(exc, requests.ConnectTimeout) and not _never_connected(exc)
    ambiguous = may_have_happened and sent
    if isinstance(exc, requests.Timeout):
        category = TIMEOUT
        sentence = "HubSpot did not answer in time"
    elif _is_dns(exc):
        category = NETWORK
        sentence = "HubSpot's address could not be found; check the internet connection"
    elif not sent:
        category = NETWORK
        sentence = "HubSpot could not be reached; check the internet connection"
    else:
        category = NETWORK
        sentence = "The connection to HubSpot was cut"
    if ambiguous:
        sentence += "; the record may have been created, so it is looked up before trying again."
    else:
        sentence += "."
    return HubSpotError(detail, category=category, retryable=True, agent_message=sentence,
                        ambiguous=ambiguous, operation=operation)


def bad_response(detail: str, *, status: int, operation: str | None = None) -> HubSpotError:
    """A success status whose body is not what HubSpot's description promises."""
    return HubSpotError(detail, status=status, category=BAD_RESPONSE, operation=operation,
                        agent_message=f"HubSpot answered in an unexpected form: {detail}")


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions behind it (causes, contexts, urllib3's ``reason``, wrapped first arguments)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 8 and current not in chain:
        chain.append(current)
        reason = getattr(current, "reason", None)
        nxt = current.__cause__ or current.__context__ or (reason if isinstance(reason, BaseException) else None)
        if nxt is None and current.args and isinstance(current.args[0], BaseException):
            nxt = current.args[0]
        current = nxt
    return chain


def _root_cause(exc: BaseException) -> str:
    root = _chain(exc)[-1]
    return f"{type(root).__name__}: {root}"


def _never_connected(exc: BaseException) -> bool:
    """True when the failure happened before the request could be sent (refused, DNS, connect timeout)."""
    return any(isinstance(e, (NewConnectionError, ConnectionRefusedError, requests.ConnectTimeout))
               for e in _chain(exc))


def _is_dns(exc: BaseException) -> bool:
    return any(isinstance(e, NameResolutionError) for e in _chain(exc))


