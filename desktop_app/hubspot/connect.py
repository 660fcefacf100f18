"""Connecting Call Relay to a HubSpot account, as ``callrelay hubspot connect`` and the first-run
window both do: the account's values checked (``check_api_url``, ``check_app_id``, the ``HUBSPOT_*=value``
lines ``callrelay sandbox`` prints), the sign-in checked with one read-only request (``check_sign_in``),
then saved: the secrets into the keyring (``save_secrets``), the API URL and app id into the settings
(``save_settings``).
"""

from __future__ import annotations

import shlex
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from desktop_app.hubspot import config as cfg

if TYPE_CHECKING:  # the settings and the keyring are loaded when used: every `callrelay` command imports this
    from desktop_app.settings import Settings


class BadInput(ValueError):
    """Standard input that is not the account's ``HUBSPOT_*=value`` lines (the message names the line)."""


@dataclass(frozen=True)
class Account:
    api_url: str
    app_id: str
    access_token: str
    developer_api_key: str
    client_secret: str
    portal_id: str = ""


def parse_env_lines(text: str) -> dict[str, str]:
    """``HUBSPOT_NAME=value`` lines (shell-quoted, optionally after ``export``), as ``callrelay sandbox``
    prints them. Blank lines and ``#`` comments are skipped; anything else is refused by line number, never
    quoting the value (it may be a secret)."""
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            raise BadInput(f"line {number} is not a NAME=value line (unbalanced quotes)") from None
        if words[:1] == ["export"]:
            words = words[1:]
        if not words:
            continue
        name, sep, value = words[0].partition("=")
        if len(words) != 1 or not sep:
            raise BadInput(f"line {number} is not a NAME=value line")
        if name not in cfg.ENV_NAMES:
            raise BadInput(f"line {number} sets {name[:40]!r}, which is not one of {', '.join(cfg.ENV_NAMES)}")
        values[name] = value.strip()
    return values


def account_from_env_lines(values: Mapping[str, str]) -> Account:
    if not values:
        raise BadInput("no HUBSPOT_* lines on standard input: pipe in the lines `callrelay sandbox` prints, or "
                       "run this in a terminal to be asked for each value")
    if not values.get(cfg.ENV_ACCESS_TOKEN):
        raise BadInput(f"{cfg.ENV_ACCESS_TOKEN} is missing: Call Relay signs in to the account with it")
    return Account(api_url=check_api_url(values.get(cfg.ENV_URL) or cfg.HUBSPOT_API),
                   app_id=check_app_id(values.get(cfg.ENV_APP_ID, "")), access_token=values[cfg.ENV_ACCESS_TOKEN],
                   developer_api_key=values.get(cfg.ENV_DEVELOPER_API_KEY, ""),
                   client_secret=values.get(cfg.ENV_CLIENT_SECRET, ""), portal_id=values.get(cfg.ENV_PORTAL_ID, ""))


def check_api_url(url: str) -> str:
    """The API base URL, or BadInput: https, or plain http to this computer (a sandbox)."""
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise BadInput("the HubSpot API URL must look like https://api.hubapi.com")
    if parts.scheme == "http" and not cfg.is_loopback_url(url):
        raise BadInput("the HubSpot API URL must be https:// (plain http only to this computer, for a sandbox)")
    return url.strip().rstrip("/")


def check_app_id(app_id: str) -> str:
    from desktop_app.hubspot import endpoints

    if not app_id:
        return ""
    try:
        return endpoints._app_id(app_id)
    except ValueError as exc:
        raise BadInput(str(exc)) from None


def saved_account(conf: Settings) -> Account:
    """The account saved in the settings and the keyring (empty values where none is)."""
    from desktop_app import keystore

    return Account(api_url=str(conf.get("hubspot.api_url")), app_id=str(conf.get("hubspot.app_id")),
                   access_token=keystore.get(keystore.HUBSPOT_ACCESS_TOKEN) or "",
                   developer_api_key=keystore.get(keystore.HUBSPOT_DEVELOPER_API_KEY) or "",
                   client_secret=keystore.get(keystore.HUBSPOT_CLIENT_SECRET) or "")


def save_secrets(account: Account) -> None:
    """Keep the account's secrets in the keyring (KeyringUnavailable when it cannot); a refresh token left
    by an earlier OAuth sign-in is removed (it belongs to another account)."""
    from desktop_app import keystore

    keystore.set(keystore.HUBSPOT_ACCESS_TOKEN, account.access_token)
    keystore.delete(keystore.HUBSPOT_REFRESH_TOKEN)
    keystore.set(keystore.HUBSPOT_DEVELOPER_API_KEY, account.developer_api_key)
    keystore.set(keystore.HUBSPOT_CLIENT_SECRET, account.client_secret)


def save_settings(conf: Settings, account: Account) -> None:
    """Write the account's API URL and app id into the settings, sandbox mode off (OSError when it cannot)."""
    conf.update({"hubspot.api_url": account.api_url, "hubspot.app_id": account.app_id,
                 "hubspot.auth": "private-app", "hubspot.sandbox": False})
    conf.save()


def check_sign_in(account: Account) -> str:
    """The portal id of the account the token signs in to (one read-only request), or HubSpotError."""
    from desktop_app.hubspot.client import HubSpotClient

    config = cfg.HubSpotConfig(api_url=account.api_url, access_token=account.access_token, app_id=account.app_id,
                               developer_api_key=account.developer_api_key, client_secret=account.client_secret,
                               read_timeout=15.0)
    with HubSpotClient(config) as client:
        return str(client.account_details().portal_id)
