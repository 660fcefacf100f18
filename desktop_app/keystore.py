"""Secrets live in the OS keyring only: never in a file, a log or the history.

Each secret is stored under a service name scoped to the data directory, so a test or a second
installation with its own ``CALLRELAY_HOME`` never sees another's secrets.

Without a usable keyring (a desktop session with no Secret Service, or a keyring that stays locked),
``use_memory`` lets a run go on with the secrets the app makes itself (the link-signing key) kept in this
process's memory only: they are never written anywhere and are gone at exit. The secrets a person gives
(tokens, keys) cannot be kept so: storing one raises ``KeyringUnavailable``.
"""

from __future__ import annotations

import hashlib
import secrets as _random
import threading

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
TEAM_RELAY_TOKEN = "team-relay-token"  # this desk's agent token at the team's relay (callrelay join)

KNOWN = (
    HUBSPOT_ACCESS_TOKEN,
    HUBSPOT_REFRESH_TOKEN,
    HUBSPOT_DEVELOPER_API_KEY,
    HUBSPOT_CLIENT_SECRET,
    LINK_SIGNING_KEY,
    NGROK_AUTHTOKEN,
    TEAM_RELAY_TOKEN,
)
# The secrets the app makes itself: the only ones a run without a keyring keeps (in memory).
GENERATED = (LINK_SIGNING_KEY,)

# Why a keyring cannot be used, as the middle of a sentence, and what to do about it.
MISSING = "no keyring is reachable on this desktop session"
LOCKED = "the keyring did not open (it is locked, or its prompt was dismissed or could not be shown)"
INSTALL = "install gnome-keyring or KeePassXC (with its Secret Service integration on)"


class KeyringUnavailable(RuntimeError):
    """No usable keyring. ``str()`` is one sentence a user can act on (what to install or unlock);
    ``reason`` is MISSING or LOCKED; ``detail`` is the keyring library's own words, for the log only."""

    def __init__(self, reason: str = MISSING, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{_capital(reason)}: {self.fix}; secrets are never written to a file.")

    @property
    def fix(self) -> str:
        return INSTALL if self.reason == MISSING else f"unlock the keyring when asked, or {INSTALL}"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def sandbox_notice(exc: KeyringUnavailable) -> str:
    """One sentence for a sandbox run that goes on without a keyring (``use_memory``)."""
    return (f"{_capital(exc.reason)}, so links made now stop working after a restart and no HubSpot account can "
            f"be used: {exc.fix}.")


def account_notice(exc: KeyringUnavailable) -> str:
    """One sentence for a run that was to use a real account and starts in sandbox mode instead."""
    return (f"Your HubSpot account's secrets live in the keyring but {exc.reason}, so Call Relay started in "
            f"sandbox mode (links made now stop working after a restart): {exc.fix}, and start Call Relay again.")


# This run's secrets when it goes on without a keyring (``use_memory``); None: the OS keyring is used.
_memory: dict[str, str] | None = None
_memory_why: KeyringUnavailable | None = None
_lock = threading.RLock()


def use_memory(why: KeyringUnavailable) -> None:
    """Go on without a keyring for the rest of this process: the secrets the app makes (GENERATED) are
    kept in memory only, never written; storing any other secret raises ``why`` again."""
    global _memory, _memory_why
    with _lock:
        if _memory is None:
            _memory = {}
        _memory_why = why


def use_keyring() -> None:
    """Back to the OS keyring (forgets what ``use_memory`` kept)."""
    global _memory, _memory_why
    with _lock:
        _memory, _memory_why = None, None


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


def _no_backend(name: str) -> bool:
    return any(word in name.lower() for word in ("fail", "null", "plaintext"))


def _unavailable(exc: BaseException) -> KeyringUnavailable:
    """The keyring library's error as a KeyringUnavailable (its own words kept as ``detail``)."""
    name = backend_name()
    missing = _no_backend(name) or isinstance(exc, keyring.errors.NoKeyringError)
    return KeyringUnavailable(MISSING if missing else LOCKED, f"{name}: {exc}")


def ensure_usable() -> str:
    """Return the OS keyring's backend name, or raise KeyringUnavailable (one sentence a user can act on).

    This reads a secret, so a locked keyring asks to be unlocked (its own prompt) before this returns."""
    with _lock:
        kr = keyring.get_keyring()
        name = backend_name()
        if _no_backend(name):
            raise KeyringUnavailable(MISSING, f"backend {name}")
        try:
            kr.get_password(service_name(), "__probe__")
        except Exception as exc:  # noqa: BLE001 - D-Bus and Secret Service errors too: any failure means unusable
            raise _unavailable(exc) from None
        return name


# Every use of the keyring holds _lock: a keyring's prompts (to make or unlock it) come one at a time, so two
# threads of the app never ask at once (gnome-keyring left the second of two "make the keyring" prompts unshown).
def get(name: str) -> str | None:
    _check(name)
    with _lock:
        if _memory is not None:
            return _memory.get(name)
        try:
            return keyring.get_password(service_name(), name)
        except keyring.errors.KeyringError as exc:
            raise _unavailable(exc) from None


def set(name: str, value: str) -> None:  # noqa: A001 - mirrors keyring's verbs
    _check(name)
    if not value:
        delete(name)
        return
    with _lock:
        if _memory is not None:
            if name not in GENERATED:
                raise KeyringUnavailable(_memory_why.reason if _memory_why else MISSING)
            _memory[name] = value
            return
        try:
            keyring.set_password(service_name(), name, value)
        except keyring.errors.KeyringError as exc:
            raise _unavailable(exc) from None


def delete(name: str) -> None:
    _check(name)
    with _lock:
        if _memory is not None:
            _memory.pop(name, None)
            return
        try:
            keyring.delete_password(service_name(), name)
        except keyring.errors.PasswordDeleteError:
            pass
        except keyring.errors.KeyringError as exc:
            raise _unavailable(exc) from None


def get_or_create(name: str, nbytes: int = 32) -> str:
    """A random secret made once and kept (the server's link-signing key)."""
    with _lock:
        value = get(name)
        if not value:
            value = _random.token_urlsafe(nbytes)
            set(name, value)
        return value
