"""Settings, declared once.

Each setting's name, type, default and description is declared in ``DECLARED`` below; that
declaration validates the settings file (a plain JSON file in the data directory) and builds the
settings page. An undeclared key in the file is an error, not silently ignored. Secrets are never
settings: they live in the keyring (``desktop_app.keystore``).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from desktop_app import paths
from desktop_app.errors import UserError


@dataclass(frozen=True)
class Setting:
    name: str
    type: type
    default: Any
    description: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    section: str = "General"


DECLARED: tuple[Setting, ...] = (
    # HubSpot
    Setting("hubspot.api_url", str, "https://api.hubapi.com", "Base URL of HubSpot's API.", section="HubSpot"),
    Setting("hubspot.app_id", str, "", "Your HubSpot app's id (needed to register the recording endpoint).",
            section="HubSpot"),
    Setting("hubspot.auth", str, "private-app", "How the app signs in to HubSpot.",
            choices=("private-app", "oauth"), section="HubSpot"),
    Setting("hubspot.oauth_client_id", str, "", "OAuth client id of your HubSpot app.", section="HubSpot"),
    Setting("hubspot.oauth_redirect_port", int, 0, "Port of the sign-in redirect "
            "http://127.0.0.1:PORT/oauth-callback; register that URL in your HubSpot app (0 picks a free port, "
            "which only the sandbox accepts).", minimum=0, maximum=65535, section="HubSpot"),
    Setting("hubspot.external_account_id", str, "", "The id this app uses for the HubSpot account "
            "(hs_call_external_account_id); the portal id when empty.", section="HubSpot"),
    Setting("hubspot.rate_limit_per_10s", int, 100, "Requests per 10 seconds your HubSpot tier allows "
            "(100 Free/Starter, 190 Professional/Enterprise, 250 with the limit increase).",
            minimum=1, maximum=1000, section="HubSpot"),
    Setting("hubspot.daily_limit", int, 250_000, "Requests per day your HubSpot tier allows.",
            minimum=1, section="HubSpot"),
    Setting("hubspot.api_version", str, "v3", "HubSpot API version the app calls: v3, or HubSpot's newest "
            "date-versioned API (2026-09).", choices=("v3", "2026-09"), section="HubSpot"),
    Setting("hubspot.own_recording_url", str, "", "The recording URL this desk registered with HubSpot last (kept by "
            "the app: it re-points its own earlier URL, never another desk's or the relay's).", section="HubSpot"),
    Setting("hubspot.sandbox", bool, True, "Use the local HubSpot emulator (offline demo mode) instead of "
            "a real account.", section="HubSpot"),
    # Recording server
    Setting("server.host", str, "127.0.0.1", "Address the recording server listens on (the tunnel is the "
            "way in from outside).", section="Recording server"),
    Setting("server.port", int, 8765, "Port of the recording server (0 picks a free one).",
            minimum=0, maximum=65535, section="Recording server"),
    Setting("server.public_url", str, "", "Public base URL of the recording server when you state it "
            "yourself (otherwise the tunnel's).", section="Recording server"),
    Setting("server.endpoint_prefix", str, "/retrieve/authenticated/recordings",
            "Path HubSpot calls to get a recording's link.", section="Recording server"),
    Setting("server.link_ttl_s", int, 3600, "How long a recording link stays valid, in seconds.",
            minimum=30, maximum=7 * 86400, section="Recording server"),
    Setting("server.signature", str, "if-present", "Check HubSpot's request signature (v3) on the "
            "recording endpoint.", choices=("off", "if-present", "required"), section="Recording server"),
    Setting("server.max_connections", int, 256, "Connections served at once; more get 503.",
            minimum=1, maximum=10000, section="Recording server"),
    Setting("server.idle_timeout_s", float, 30.0, "Seconds an idle or stalled client is kept.",
            minimum=1, maximum=3600, section="Recording server"),
    Setting("server.workers", int, 2, "Processes serving recordings on the one port (1: only the app's "
            "own; each further one is a small child process and adds a core's worth of throughput).",
            minimum=1, maximum=16, section="Recording server"),
    # Tunnel
    Setting("tunnel.provider", str, "manual", "How HubSpot reaches the recording server.",
            choices=("ngrok", "cloudflared", "ssh", "manual"), section="Tunnel"),
    Setting("tunnel.ngrok_domain", str, "", "Reserved ngrok domain (keeps the URL across restarts).",
            section="Tunnel"),
    Setting("tunnel.cloudflared_path", str, "cloudflared", "Path of the cloudflared program.", section="Tunnel"),
    Setting("tunnel.cloudflared_tunnel", str, "", "Named cloudflared tunnel (empty: a quick tunnel).",
            section="Tunnel"),
    Setting("tunnel.cloudflared_hostname", str, "", "Hostname of the named cloudflared tunnel.",
            section="Tunnel"),
    Setting("tunnel.ssh_host", str, "", "SSH host that forwards to this computer.", section="Tunnel"),
    Setting("tunnel.ssh_port", int, 22, "SSH port.", minimum=1, maximum=65535, section="Tunnel"),
    Setting("tunnel.ssh_user", str, "", "SSH user.", section="Tunnel"),
    Setting("tunnel.ssh_key", str, "", "Private key file for the SSH tunnel.", section="Tunnel"),
    Setting("tunnel.ssh_remote_port", int, 8765, "Port opened on the SSH host.", minimum=1, maximum=65535,
            section="Tunnel"),
    Setting("tunnel.ssh_public_url", str, "", "Public HTTPS URL of your reverse proxy on the SSH host.",
            section="Tunnel"),
    Setting("tunnel.check_interval_s", int, 180, "Seconds between reachability checks.", minimum=10,
            maximum=3600, section="Tunnel"),
    # Calls
    Setting("calls.default_region", str, "US", "Region for phone numbers written without a country code "
            "(two letters, e.g. US, GB, DE).", section="Calls"),
    Setting("calls.agent", str, "", "Your name as shown in the sync history (the login name when empty).",
            section="Calls"),
    Setting("calls.pbx_patterns", list, [], "Extra file-name patterns of your phone system: a list of "
            '{"name", "regex", "timestamp_format"} (named groups: from, to, direction, timestamp).',
            section="Calls"),
    Setting("calls.retention_days", int, 0, "Remove recordings HubSpot has transcribed after this many "
            "days (0 keeps them).", minimum=0, maximum=3650, section="Calls"),
    # Transcription (issue 20): local speech to text with the optional transcribe extra
    Setting("transcribe.model_dir", str, "", "Folder of the CTranslate2 Whisper model used to transcribe calls "
            "here (model.bin, config.json, tokenizer.json, vocabulary); nothing is downloaded.",
            section="Transcription"),
    Setting("transcribe.language", str, "", "Language of the calls as a two-letter code (en, de, fr…); empty: "
            "detected once per call.", section="Transcription"),
    Setting("transcribe.when", str, "never", "When Call Relay transcribes a call itself: never, calls HubSpot did "
            "not transcribe (no paid seat or allowance), or always.", choices=("never", "not-transcribed", "always"),
            section="Transcription"),
    # Team mode
    Setting("team.relay_url", str, "", "The team's relay this desk joined (callrelay join); empty: a single desk.",
            section="Team"),
    Setting("relay.link_ttl_s", int, 3600, "On a relay's host: how long a recording link it gives HubSpot stays "
            "valid, in seconds.", minimum=60, maximum=7 * 24 * 3600, section="Team"),
    # First run
    Setting("ui.first_run_done", bool, False, "The first-run choice (sandbox, own account or team) was made; "
            "Set up… in the Call Relay menu shows it again.", section="Window"),
    # Window state
    Setting("ui.geometry", str, "", "Main window geometry (base64).", section="Window"),
    Setting("ui.last_folder", str, "", "Folder of the last recording opened.", section="Window"),
)

BY_NAME: dict[str, Setting] = {s.name: s for s in DECLARED}


class SettingsError(UserError, ValueError):
    """A settings file or value that does not match the declarations."""


def validate(name: str, value: Any) -> Any:
    """Return ``value`` converted to the declared type, or raise SettingsError."""
    decl = BY_NAME.get(name)
    if decl is None:
        raise SettingsError(f"Unknown setting {name!r}")
    if decl.type is float and isinstance(value, int) and not isinstance(value, bool):
        try:
            value = float(value)
        except OverflowError:
            raise SettingsError(f"Setting {name!r} is too large; got a number of {len(str(value))} digits") from None
    if decl.type is not bool and isinstance(value, bool) or not isinstance(value, decl.type):
        raise SettingsError(f"Setting {name!r} must be {_kind(decl.type)}, not {_kind(type(value))}")
    if isinstance(value, float) and not math.isfinite(value):
        raise SettingsError(f"Setting {name!r} must be a finite number; got {value!r}")
    if decl.choices and value not in decl.choices:
        raise SettingsError(f"Setting {name!r} must be one of {', '.join(decl.choices)}; got {value!r}")
    if decl.minimum is not None and cast(float, value) < decl.minimum:
        raise SettingsError(f"Setting {name!r} must be at least {decl.minimum}; got {value!r}")
    if decl.maximum is not None and cast(float, value) > decl.maximum:
        raise SettingsError(f"Setting {name!r} must be at most {decl.maximum}; got {value!r}")
    return value


class Settings:
    """The settings of one data directory. Reads on creation; ``save`` writes atomically."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or paths.settings_file()
        self._values: dict[str, Any] = {}
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return  # no file yet: every setting has its default
        except IsADirectoryError:
            raise _file_error(self.path, "it is a folder, not a file") from None
        except OSError as exc:
            raise _file_error(self.path, f"it cannot be read ({exc.strerror or exc})") from None
        self._values = _parse(self.path, data)

    def get(self, name: str) -> Any:
        if name not in BY_NAME:
            raise SettingsError(f"Unknown setting {name!r}")
        return self._values.get(name, BY_NAME[name].default)

    def __getitem__(self, name: str) -> Any:
        return self.get(name)

    def set(self, name: str, value: Any) -> None:  # noqa: A003
        self._values[name] = validate(name, value)

    def update(self, values: Mapping[str, Any]) -> None:
        checked = {name: validate(name, value) for name, value in values.items()}
        self._values.update(checked)

    def reset(self, name: str) -> None:
        self._values.pop(name, None)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".settings-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(self._values, fh, indent=2, sort_keys=True)
                fh.write("\n")
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def load() -> Settings:
    return Settings()


def _file_error(path: Path, reason: str) -> SettingsError:
    return SettingsError(f"The settings file {path} cannot be used: {reason}; correct it, or move it aside to "
                         "start from the defaults (Call Relay leaves it as it is).")


def _parse(path: Path, data: bytes) -> dict[str, Any]:
    """The settings in a file's bytes, validated; SettingsError (one sentence naming the file) otherwise."""
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark, as some Windows editors write, is fine
    except UnicodeDecodeError as exc:
        raise _file_error(path, f"it is not UTF-8 text (byte {exc.start + 1})") from None
    if not text.strip():
        raise _file_error(path, "it is empty (an empty object, {}, means every default)")
    try:
        raw = json.loads(text, parse_constant=_no_constant, parse_int=_int, parse_float=_float,
                         object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise _file_error(path, f"it is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise _file_error(path, "it is nested too deeply to be settings") from None
    except ValueError as exc:  # a duplicate name, NaN or Infinity, a number out of range
        raise _file_error(path, str(exc)) from None
    if not isinstance(raw, dict):
        raise _file_error(path, f"it must hold one JSON object ({{...}}), not {_kind(type(raw))}")
    try:
        return {name: validate(name, value) for name, value in raw.items()}
    except SettingsError as exc:
        raise _file_error(path, str(exc)[0].lower() + str(exc)[1:]) from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"it holds {name}, which is not a number JSON allows")


def _int(text: str) -> int:
    if len(text.lstrip("-")) > 20:  # past any setting's range (and Python's limit on digits)
        raise ValueError(f"it holds a number of {len(text.lstrip('-'))} digits, larger than any setting allows")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"it holds the number {text}, larger than any setting allows")
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"{key!r} is written twice")
        out[key] = value
    return out


_KINDS = {bool: "true or false", int: "a whole number", float: "a number", str: "text", list: "a list",
          dict: "an object", type(None): "null"}


def _kind(kind: type) -> str:
    """What a JSON value of Python type ``kind`` is called in the settings file."""
    return _KINDS.get(kind, kind.__name__)
