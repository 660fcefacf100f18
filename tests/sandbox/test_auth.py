"""Authentication as HubSpot's descriptions ask: tokens and scopes, the developer API key where it is
accepted, and the OAuth authorization-code flow with refresh-token rotation."""

from __future__ import annotations

import http.server
import threading
import urllib.parse
from collections.abc import Iterator

import pytest
import requests
from sandbox_helpers import bearer
from test_validation import assert_error

from desktop_app.sandbox import Sandbox


def test_missing_unknown_and_malformed_credentials_get_401(sandbox: Sandbox, http: requests.Session) -> None:
    u = f"{sandbox.url}/crm/v3/owners"
    assert_error(http.get(u), 401, "INVALID_AUTHENTICATION")
    assert_error(http.get(u, headers=bearer("pat-na1-not-a-token")), 401, "INVALID_AUTHENTICATION")
    assert_error(http.get(u, headers={"Authorization": sandbox.credentials.access_token}), 401,
                 "INVALID_AUTHENTICATION")
    assert http.get(u, headers=bearer(sandbox.credentials.access_token)).status_code == 200


def test_expired_token_and_missing_scope(sandbox: Sandbox, http: requests.Session) -> None:
    token = sandbox.issue_token(["crm.objects.owners.read"])
    assert isinstance(token, str)
    assert http.get(f"{sandbox.url}/crm/v3/owners", headers=bearer(token)).status_code == 200
    body = assert_error(http.post(f"{sandbox.url}/crm/v3/objects/calls", headers=bearer(token),
                                  json={"properties": {}, "associations": []}), 403, "MISSING_SCOPES")
    assert "crm.objects.contacts.write" in body["errors"][0]["context"]["requiredGranularScopes"]
    sandbox.expire_token(token)
    expired = assert_error(http.get(f"{sandbox.url}/crm/v3/owners", headers=bearer(token)), 401,
                           "EXPIRED_AUTHENTICATION")
    assert "expired" in expired["message"]


def test_settings_take_the_developer_key_or_a_developers_scope_not_the_private_app_token(
        sandbox: Sandbox, http: requests.Session) -> None:
    c = sandbox.credentials
    u = f"{sandbox.url}/crm/v3/extensions/calling/{c.app_id}/settings/recording"
    assert_error(http.get(u, headers=bearer(c.access_token)), 403, "MISSING_SCOPES")
    assert_error(http.get(u, params={"hapikey": "wrong"}), 401, "INVALID_AUTHENTICATION")
    assert_error(http.get(u, params={"hapikey": c.developer_api_key}), 404, "OBJECT_NOT_FOUND")  # none yet
    created = http.post(u, params={"hapikey": c.developer_api_key},
                        json={"urlToRetrieveAuthedRecording": "https://rec.example.com/r/%s"})
    assert created.status_code == 200 and sandbox.recording_setting() == {
        "urlToRetrieveAuthedRecording": "https://rec.example.com/r/%s"}
    assert_error(http.post(u, params={"hapikey": c.developer_api_key},
                           json={"urlToRetrieveAuthedRecording": "https://rec.example.com/r/%s"}), 409, "CONFLICT")
    no_placeholder = assert_error(http.patch(u, params={"hapikey": c.developer_api_key},
                                             json={"urlToRetrieveAuthedRecording": "https://rec.example.com/r/"}),
                                  400, "VALIDATION_ERROR")
    assert "%s" in no_placeholder["message"]
    assert_error(http.patch(u, params={"hapikey": c.developer_api_key},
                            json={"urlToRetrieveAuthedRecording": "http://rec.example.com/r/%s"}), 400,
                 "VALIDATION_ERROR")  # plain http is for loopback only
    dev_token = sandbox.issue_token(["developers-write", "developers-read"])
    assert isinstance(dev_token, str)
    patched = http.patch(u, headers=bearer(dev_token), json={"urlToRetrieveAuthedRecording": "http://127.0.0.1:1/%s"})
    assert patched.status_code == 200 and http.get(u, headers=bearer(dev_token)).json() == {
        "urlToRetrieveAuthedRecording": "http://127.0.0.1:1/%s"}
    other_app = u.replace(str(c.app_id), str(c.app_id + 1))
    assert_error(http.get(other_app, params={"hapikey": c.developer_api_key}), 404, "OBJECT_NOT_FOUND")
    v2026 = f"{sandbox.url}/crm/extensions/calling/2026-03/{c.app_id}/settings/recording"
    assert http.get(v2026, params={"hapikey": c.developer_api_key}).status_code == 200
    # the developer key opens only what asks for it
    assert_error(http.get(f"{sandbox.url}/crm/v3/owners", params={"hapikey": c.developer_api_key}), 401,
                 "INVALID_AUTHENTICATION")


@pytest.fixture
def redirect_catcher() -> Iterator[tuple[str, list[str]]]:
    """A loopback page that records the query it was redirected to, as the app's OAuth listener does."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

        def do_GET(self) -> None:  # noqa: N802
            seen.append(self.path)
            body = b"signed in"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/oauth-callback", seen
    server.shutdown()
    server.server_close()


def test_oauth_code_flow_refresh_rotation_and_token_info(sandbox: Sandbox, http: requests.Session,
                                                         redirect_catcher: tuple[str, list[str]]) -> None:
    redirect_uri, seen = redirect_catcher
    c = sandbox.credentials
    scope = "crm.objects.contacts.read crm.objects.contacts.write"
    page = http.get(f"{sandbox.url}/oauth/authorize", params={"client_id": c.client_id, "redirect_uri": redirect_uri,
                                                              "scope": scope, "state": "xyz"})
    assert page.status_code == 200 and page.text == "signed in"  # followed the redirect to the loopback page
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(seen[0]).query)
    assert query["state"] == ["xyz"]
    code = query["code"][0]
    form = {"grant_type": "authorization_code", "client_id": c.client_id, "client_secret": c.client_secret,
            "redirect_uri": redirect_uri, "code": code}
    assert_error(http.post(f"{sandbox.url}/oauth/v1/token", data={**form, "client_secret": "nope"}), 400,
                 "VALIDATION_ERROR", "BAD_CLIENT_SECRET")
    tokens = http.post(f"{sandbox.url}/oauth/v1/token", data=form)
    assert tokens.status_code == 200, tokens.text
    t = tokens.json()
    assert t["token_type"] == "bearer" and t["expires_in"] > 0 and t["scopes"] == scope.split()
    assert_error(http.post(f"{sandbox.url}/oauth/v1/token", data=form), 400, "VALIDATION_ERROR", "BAD_AUTH_CODE")
    resp = http.post(f"{sandbox.url}/crm/v3/objects/contacts/search", headers=bearer(t["access_token"]), json={
        "filterGroups": [], "after": "0", "limit": 1, "properties": [], "sorts": []})
    assert resp.status_code == 200
    assert "X-HubSpot-RateLimit-Daily" not in http.get(f"{sandbox.url}/crm/v3/objects/contacts/101",
                                                       headers=bearer(t["access_token"])).headers
    info = http.get(f"{sandbox.url}/oauth/v1/access-tokens/{t['access_token']}").json()
    assert info["hub_id"] == c.portal_id and info["app_id"] == c.app_id and info["scopes"] == scope.split()
    refresh = {"grant_type": "refresh_token", "client_id": c.client_id, "client_secret": c.client_secret,
               "refresh_token": t["refresh_token"]}
    renewed = http.post(f"{sandbox.url}/oauth/v1/token", data=refresh).json()
    assert renewed["access_token"] != t["access_token"] and renewed["refresh_token"] != t["refresh_token"]
    assert_error(http.post(f"{sandbox.url}/oauth/v1/token", data=refresh), 400, "VALIDATION_ERROR",
                 "BAD_REFRESH_TOKEN")  # rotated out
    assert http.get(f"{sandbox.url}/oauth/v1/refresh-tokens/{renewed['refresh_token']}").status_code == 200
    assert http.get(f"{sandbox.url}/oauth/v1/refresh-tokens/{t['refresh_token']}").status_code == 404
    assert sandbox.response_problems == []
