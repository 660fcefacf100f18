"""Secrets live in the OS keyring only: never in a file, a log or the history.

Each secret is stored under a service name scoped to the data directory, so a test or a second
installation with its own ``CALLRELAY_HOME`` never sees another's secrets.
"""

from __future__ import annotations

import hashlib
import secrets as _random

import keyring
import keyring.errors

from desktop_app import paths

# The names of every secret the app keeps.
HUBSPOT_ACCESS_TOKEN = "hubspot-access-token"
HUBSPOT_REFRESH_TOKEN = "hubspot-refresh-token"
HUBSPOT_DEVELOPER_API_KEY = "hubspot-developer-api-key"
HUBSPOT_CLIENT_SECRET = "hubspot-client-secret"
LINK_SIGNING_KEY = "link-signing-key"
NGROK_AUTHTOKEN = "ngrok-authtoken"

KNOWN = (
    HUBSPOT_ACCESS_TOKEN,
    HUBSPOT_REFRESH_TOKEN,
    HUBSPOT_DEVELOPER_API_KEY,
    HUBSPOT_CLIENT_SECRET,
    LINK_SIGNING_KEY,
    NGROK_AUTHTOKEN,
)


class KeyringUnavailable(RuntimeError):
    """No usable keyring backend: the message says which is missing and how to get one."""


def service_name() -> str:
    if not paths.is_isolated():
        return "callrelay"
    digest = hashlib.sha256(str(paths.data_dir().resolve()).encode()).hexdigest()[:12]
    return f"callrelay:{digest}"


def _check(name: str) -> None:
    if name not in KNOWN:
        raise KeyError(f"undeclared secret {name!r}")


def backend_name() -> str:
    return type(keyring.get_keyring()).__module__ + "." + type(keyring.get_keyring()).__name__


def ensure_usable() -> str:
    """Return the backend's name, or raise KeyringUnavailable with a sentence a user can act on."""
    kr = keyring.get_keyring()
    name = backend_name()
    if "fail" in name.lower() or "null" in name.lower() or "plaintext" in name.lower():
        raise KeyringUnavailable(
            f"No secure keyring is available (backend {name}). On Linux install and unlock a Secret "
            "Service such as gnome-keyring or KWallet; secrets are never written to a file."
        )
    try:
        kr.get_password(service_name(), "__probe__")
    except keyring.errors.KeyringError as exc:
        raise KeyringUnavailable(f"The keyring ({name}) cannot be used: {exc}") from None
    return name


def get(name: str) -> str | None:
    _check(name)
    try:
        return keyring.get_password(service_name(), name)
    except keyring.errors.KeyringError as exc:
        raise KeyringUnavailable(f"The keyring cannot be read: {exc}") from None


def set(name: str, value: str) -> None:  # noqa: A001 - mirrors keyring's verbs
    _check(name)
    if not value:
        delete(name)
        return
    try:
        keyring.set_password(service_name(), name, value)
    except keyring.errors.KeyringError as exc:
        raise KeyringUnavailable(f"The keyring cannot be written: {exc}") from None


def delete(name: str) -> None:
    _check(name)
    try:
        keyring.delete_password(service_name(), name)
    except keyring.errors.PasswordDeleteError:
        pass
    except keyring.errors.KeyringError as exc:
        raise KeyringUnavailable(f"The keyring cannot be written: {exc}") from None


def get_or_create(name: str, nbytes: int = 32) -> str:
    """A random secret made once and kept (the server's link-signing key)."""
    value = get(name)
    if not value:
        value = _random.token_urlsafe(nbytes)
        set(name, value)
    return value
