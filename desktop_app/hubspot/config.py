"""How to reach one HubSpot account: URL, credentials, limits.

``load_config`` reads the ``HUBSPOT_*`` environment variables when any is set (automation, tests,
``eval "$(callrelay sandbox)"``), otherwise the settings file and the keyring. Secrets are kept
out of ``repr``/``str`` so a config can be logged.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from desktop_app import keystore
from desktop_app import settings as settings_mod
from desktop_app.hubspot import versions

AuthKind = Literal["private-app", "oauth"]

ENV_URL = "HUBSPOT_URL"
ENV_ACCESS_TOKEN = "HUBSPOT_ACCESS_TOKEN"
ENV_APP_ID = "HUBSPOT_APP_ID"
ENV_DEVELOPER_API_KEY = "HUBSPOT_DEVELOPER_API_KEY"
ENV_CLIENT_SECRET = "HUBSPOT_CLIENT_SECRET"
ENV_PORTAL_ID = "HUBSPOT_PORTAL_ID"
ENV_NAMES = (ENV_URL, ENV_ACCESS_TOKEN, ENV_APP_ID, ENV_DEVELOPER_API_KEY, ENV_CLIENT_SECRET, ENV_PORTAL_ID)

HUBSPOT_API = "https://api.hubapi.com"
HUBSPOT_APP = "https://app.hubspot.com"


@dataclass(frozen=True)
class HubSpotConfig:
    api_url: str = HUBSPOT_API
    auth: AuthKind = "private-app"
    access_token: str = field(default="", repr=False)
    refresh_token: str = field(default="", repr=False)
    oauth_client_id: str = ""
    oauth_redirect_port: int = 0  # 0: any free port (the sandbox); HubSpot wants the registered one
    token_expires_at: float | None = None  # wall-clock seconds; None: unknown (refresh first)
    app_id: str = ""
    developer_api_key: str = field(default="", repr=False)
    client_secret: str = field(default="", repr=False)  # the app's: OAuth token exchange, signatures
    portal_id: str = ""
    external_account_id: str = ""
    rate_limit_per_10s: int = 100
    daily_limit: int = 250_000
    search_per_second: int = 4
    is_sandbox: bool = False
    api_version: str = versions.DEFAULT  # "v3" or HubSpot's newest dated version (versions.VERSIONS)
    connect_timeout: float = 5.0
    read_timeout: float = 30.0

    @property
    def base_url(self) -> str:
        return self.api_url.rstrip("/")

    @property
    def authorize_url(self) -> str:
        """Where a browser signs in for OAuth: HubSpot's app domain, or the sandbox itself."""
        if _host(self.api_url) == _host(HUBSPOT_API):
            return f"{HUBSPOT_APP}/oauth/authorize"
        return f"{self.base_url}/oauth/authorize"

    @property
    def account_key(self) -> str:
        """Names the account for the shared rate limiter (no secret in it)."""
        who = self.portal_id or hashlib.sha256(
            (self.access_token or self.refresh_token or self.developer_api_key).encode()).hexdigest()[:16]
        return f"{self.base_url}#{who}"

    @property
    def effective_external_account_id(self) -> str:
        """``hs_call_external_account_id``: the setting, or the portal id when it is empty."""
        return self.external_account_id or self.portal_id

    def secrets(self) -> tuple[str, ...]:
        """Every secret this config holds (for scrubbing texts)."""
        return tuple(s for s in (self.access_token, self.refresh_token, self.developer_api_key,
                                 self.client_secret) if s)

    def allows_http(self) -> bool:
        """Plain http is acceptable for a recording URL only for the sandbox or a loopback host."""
        return self.is_sandbox or is_loopback_url(self.api_url)


def _host(url: str) -> str:
    return (urllib.parse.urlsplit(url).hostname or "").lower()


def is_loopback_url(url: str) -> bool:
    host = _host(url)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def config_from_env(env: Mapping[str, str], settings: settings_mod.Settings | None = None) -> HubSpotConfig:
    """A private-app config from the ``HUBSPOT_*`` variables (as ``callrelay sandbox`` prints them)."""
    base = _from_settings(settings) if settings is not None else HubSpotConfig()
    url = env.get(ENV_URL) or base.api_url
    return replace(
        base,
        api_url=url,
        auth="private-app",
        access_token=env.get(ENV_ACCESS_TOKEN, ""),
        refresh_token="",
        app_id=env.get(ENV_APP_ID, base.app_id),
        developer_api_key=env.get(ENV_DEVELOPER_API_KEY, ""),
        client_secret=env.get(ENV_CLIENT_SECRET, ""),
        portal_id=env.get(ENV_PORTAL_ID, base.portal_id),
        is_sandbox=is_loopback_url(url),
    )


def _from_settings(settings: settings_mod.Settings) -> HubSpotConfig:
    return HubSpotConfig(
        api_url=str(settings.get("hubspot.api_url")),
        auth="oauth" if settings.get("hubspot.auth") == "oauth" else "private-app",
        oauth_client_id=str(settings.get("hubspot.oauth_client_id")),
        oauth_redirect_port=int(settings.get("hubspot.oauth_redirect_port")),
        app_id=str(settings.get("hubspot.app_id")),
        external_account_id=str(settings.get("hubspot.external_account_id")),
        rate_limit_per_10s=int(settings.get("hubspot.rate_limit_per_10s")),
        daily_limit=int(settings.get("hubspot.daily_limit")),
        api_version=str(settings.get("hubspot.api_version")),
        # the sandbox setting never lets plain http reach a remote host
        is_sandbox=bool(settings.get("hubspot.sandbox")) and is_loopback_url(str(settings.get("hubspot.api_url"))),
    )


def load_config(settings: settings_mod.Settings | None = None,
                env: Mapping[str, str] | None = None) -> HubSpotConfig:
    """The account to use: the ``HUBSPOT_*`` variables when any is set, else settings + keyring."""
    env = os.environ if env is None else env
    settings = settings if settings is not None else settings_mod.load()
    if any(env.get(name) for name in ENV_NAMES):
        return config_from_env(env, settings)
    base = _from_settings(settings)
    return replace(
        base,
        access_token=keystore.get(keystore.HUBSPOT_ACCESS_TOKEN) or "",
        refresh_token=(keystore.get(keystore.HUBSPOT_REFRESH_TOKEN) or "") if base.auth == "oauth" else "",
        developer_api_key=keystore.get(keystore.HUBSPOT_DEVELOPER_API_KEY) or "",
        client_secret=keystore.get(keystore.HUBSPOT_CLIENT_SECRET) or "",
    )
