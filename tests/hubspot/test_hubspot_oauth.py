"""Configuration (environment, settings, keyring) and OAuth 2 end to end against the sandbox.

Run under ``./scripts/with-keyring``: secrets go to a real Secret Service.
"""

from __future__ import annotations

import socket
import threading
import time
import urllib.parse

import pytest
import requests
from hs_support import BROWSER_AGENT

from desktop_app import keystore
from desktop_app.hubspot import errors, oauth
from desktop_app.hubspot.client import HubSpotClient
from desktop_app.hubspot.config import HubSpotConfig, load_config
from desktop_app.hubspot.errors import HubSpotError
from desktop_app.hubspot.ratelimit import RateLimiter
from desktop_app.sandbox import Sandbox
from desktop_app.settings import Settings


def browser(url: str) -> None:
    """The user's browser: opens the authorize page, which redirects to our loopback listener."""
    requests.get(url, headers={"User-Agent": BROWSER_AGENT}, timeout=5)


def oauth_settings(sb: Sandbox) -> Settings:
    settings = Settings()
    settings.update({"hubspot.api_url": sb.url, "hubspot.auth": "oauth", "hubspot.sandbox": True,
                     "hubspot.oauth_client_id": sb.credentials.client_id, "hubspot.app_id": str(sb.credentials.app_id)})
    settings.save()
    keystore.set(keystore.HUBSPOT_CLIENT_SECRET, sb.credentials.client_secret)
    return settings


def test_config_from_environment_needs_no_keyring(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)
    config = load_config()
    assert config.api_url == sandbox.url and config.is_sandbox and config.auth == "private-app"
    assert config.access_token == sandbox.credentials.access_token
    assert config.developer_api_key == sandbox.credentials.developer_api_key
    assert (config.app_id, config.portal_id) == (str(sandbox.credentials.app_id), str(sandbox.credentials.portal_id))
    assert config.effective_external_account_id == str(sandbox.credentials.portal_id)
    for secret in config.secrets():
        assert secret not in repr(config) and secret not in str(config)


def test_config_from_settings_and_keyring() -> None:
    settings = Settings()
    settings.update({"hubspot.api_url": "https://api.hubapi.com", "hubspot.app_id": "777", "hubspot.sandbox": True,
                     "hubspot.rate_limit_per_10s": 190, "hubspot.external_account_id": "acct-1"})
    settings.save()
    keystore.set(keystore.HUBSPOT_ACCESS_TOKEN, "pat-na1-secret-token")
    keystore.set(keystore.HUBSPOT_REFRESH_TOKEN, "refresh-not-for-private-apps")
    keystore.set(keystore.HUBSPOT_DEVELOPER_API_KEY, "dev-key-secret")
    config = load_config()
    assert (config.app_id, config.rate_limit_per_10s, config.effective_external_account_id) == ("777", 190, "acct-1")
    assert config.access_token == "pat-na1-secret-token" and config.developer_api_key == "dev-key-secret"
    assert config.refresh_token == ""  # a private-app sign-in has no refresh token
    assert not config.is_sandbox and not config.allows_http()  # the sandbox switch never opens http to HubSpot
    assert "secret" not in repr(config)
    assert config.authorize_url == "https://app.hubspot.com/oauth/authorize"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sign_in_end_to_end_then_refresh_with_rotation(sandbox: Sandbox) -> None:
    settings = oauth_settings(sandbox)
    port = free_port()
    settings.set("hubspot.oauth_redirect_port", port)  # the redirect URL registered in the app
    settings.save()
    tokens = oauth.sign_in(load_config(), open_browser=browser, timeout=10)
    assert keystore.get(keystore.HUBSPOT_ACCESS_TOKEN) == tokens.access_token
    assert keystore.get(keystore.HUBSPOT_REFRESH_TOKEN) == tokens.refresh_token
    assert tokens.hub_id == sandbox.credentials.portal_id and "crm.objects.contacts.write" in tokens.scopes
    assert tokens.access_token not in repr(tokens)
    authorize = [r for r in sandbox.requests if r.alias == "oauth.authorize"]
    assert authorize and authorize[0].status == 302
    assert authorize[0].query["redirect_uri"] == [f"http://127.0.0.1:{port}/oauth-callback"]

    config = load_config()  # settings + keyring; the expiry is unknown, so the client refreshes first
    assert config.auth == "oauth" and config.refresh_token == tokens.refresh_token
    with HubSpotClient(config, limiter=RateLimiter()) as client:
        assert client.account_details().portal_id == sandbox.credentials.portal_id
    rotated = keystore.get(keystore.HUBSPOT_REFRESH_TOKEN)
    assert rotated and rotated != tokens.refresh_token  # the new refresh token was stored back
    assert keystore.get(keystore.HUBSPOT_ACCESS_TOKEN) != tokens.access_token
    assert [r.alias for r in sandbox.requests[-2:]] == ["oauth.token", "account.details"]
    assert sandbox.requests[-1].auth == "oauth"

    stale = HubSpotConfig(api_url=sandbox.url, auth="oauth", refresh_token=tokens.refresh_token,
                          oauth_client_id=sandbox.credentials.client_id, client_secret=sandbox.credentials.client_secret)
    with HubSpotClient(stale, limiter=RateLimiter()) as client, pytest.raises(HubSpotError) as info:
        client.owners()  # the old refresh token was rotated away
    assert "sign in to HubSpot again" in info.value.agent_message
    assert tokens.refresh_token not in str(info.value)


def test_an_expired_access_token_is_refreshed_and_the_call_retried(sandbox: Sandbox) -> None:
    access, refresh = sandbox.issue_token(["crm.objects.owners.read"], refresh=True)  # type: ignore[misc]
    config = HubSpotConfig(api_url=sandbox.url, auth="oauth", access_token=access, refresh_token=refresh,
                           token_expires_at=time.time() + 3600, oauth_client_id=sandbox.credentials.client_id,
                           client_secret=sandbox.credentials.client_secret)
    sandbox.expire_token(access)  # HubSpot says it expired although we thought it valid
    with HubSpotClient(config, limiter=RateLimiter()) as client:
        assert client.owners()
    assert [(r.alias, r.status) for r in sandbox.requests] == [("owners.list", 401), ("oauth.token", 200),
                                                               ("owners.list", 200)]
    assert keystore.get(keystore.HUBSPOT_REFRESH_TOKEN) not in (None, refresh)


def test_a_token_about_to_expire_is_refreshed_before_use(sandbox: Sandbox) -> None:
    access, refresh = sandbox.issue_token(["crm.objects.owners.read"], refresh=True)  # type: ignore[misc]
    config = HubSpotConfig(api_url=sandbox.url, auth="oauth", access_token=access, refresh_token=refresh,
                           token_expires_at=time.time() + 30, oauth_client_id=sandbox.credentials.client_id,
                           client_secret=sandbox.credentials.client_secret)
    with HubSpotClient(config, limiter=RateLimiter()) as client:
        client.owners()
        client.owners()  # the new token is good for the sandbox's 30 minutes: no second refresh
    assert [r.alias for r in sandbox.requests] == ["oauth.token", "owners.list", "owners.list"]


def _answer_redirect(query: dict[str, str]) -> object:
    """A browser that comes back to the redirect URI with ``query`` instead of HubSpot's answer."""
    def open_browser(url: str) -> None:
        redirect = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["redirect_uri"][0]
        threading.Thread(target=requests.get, args=(redirect + "?" + urllib.parse.urlencode(query),),
                         kwargs={"timeout": 5, "headers": {"User-Agent": BROWSER_AGENT}}, daemon=True).start()
    return open_browser


@pytest.mark.parametrize("query, words", [
    ({"code": "c1", "state": "forged"}, "did not match"),
    ({"error": "access_denied", "error_description": "The user denied access"}, "denied"),
])
def test_sign_in_refuses_a_wrong_or_refused_answer(sandbox: Sandbox, query: dict[str, str], words: str) -> None:
    oauth_settings(sandbox)
    with pytest.raises(HubSpotError) as info:
        oauth.sign_in(load_config(), open_browser=_answer_redirect(query), timeout=5)  # type: ignore[arg-type]
    assert info.value.category == errors.OAUTH and words in info.value.agent_message
    assert keystore.get(keystore.HUBSPOT_REFRESH_TOKEN) is None
    assert not [r for r in sandbox.requests if r.alias == "oauth.token"]


def test_sign_in_times_out_when_nobody_answers(sandbox: Sandbox) -> None:
    oauth_settings(sandbox)
    with pytest.raises(HubSpotError) as info:
        oauth.sign_in(load_config(), open_browser=lambda url: None, timeout=0.3)
    assert "not completed in time" in info.value.agent_message


def test_a_wrong_client_secret_fails_the_exchange(sandbox: Sandbox) -> None:
    oauth_settings(sandbox)
    keystore.set(keystore.HUBSPOT_CLIENT_SECRET, "not-the-secret")
    with pytest.raises(HubSpotError) as info:
        oauth.sign_in(load_config(), open_browser=browser, timeout=10)
    assert info.value.status == 400 and "not-the-secret" not in str(info.value)
    assert keystore.get(keystore.HUBSPOT_ACCESS_TOKEN) is None
