"""OAuth 2 sign-in with a loopback redirect.

``sign_in`` opens HubSpot's authorize page in the browser (``open_browser`` is injectable), waits
on a one-shot HTTP listener on 127.0.0.1 for HubSpot's redirect with the code, checks the
``state``, trades the code for tokens and stores them in the keyring. The client then refreshes
the access token before it expires and stores each rotated refresh token back.
"""

from __future__ import annotations

import http.server
import secrets
import threading
import urllib.parse
import webbrowser
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import requests

from desktop_app.hubspot import endpoints, errors
from desktop_app.hubspot.client import HubSpotClient, TokenStore
from desktop_app.hubspot.config import HubSpotConfig
from desktop_app.hubspot.errors import HubSpotError
from desktop_app.hubspot.models import TokenSet

CALLBACK_PATH = "/oauth-callback"
# What the app needs: log calls and contacts (crm.objects.contacts.*), read owners, and mark recordings ready.
DEFAULT_SCOPES = ("crm.objects.contacts.read", "crm.objects.contacts.write", "crm.objects.owners.read", "oauth")

_PAGE = ("<!doctype html><meta charset=utf-8><title>Call Relay</title>"
         "<body style='font-family:sans-serif'><h1>{title}</h1><p>{text}</p></body>")


@dataclass
class _Outcome:
    code: str | None = None
    state: str | None = None
    error: str | None = None


class LoopbackReceiver:
    """A one-shot HTTP listener on 127.0.0.1 that takes HubSpot's redirect after sign-in."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        outcome = _Outcome()
        done = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                parts = urllib.parse.urlsplit(self.path)
                if parts.path != CALLBACK_PATH or done.is_set():
                    self.send_error(404)
                    return
                query = urllib.parse.parse_qs(parts.query)
                def first(*names: str) -> str | None:
                    return next((query[n][0] for n in names if query.get(n)), None)

                outcome.code = first("code")
                outcome.state = first("state")
                outcome.error = first("error_description", "error")
                ok = outcome.code is not None and outcome.error is None
                body = _PAGE.format(
                    title="Signed in to HubSpot" if ok else "HubSpot sign-in did not finish",
                    text="You can close this window and return to Call Relay." if ok
                    else "Return to Call Relay and try again.").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)
                done.set()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - keep codes out of logs
                return

        self._server = http.server.HTTPServer((host, port), Handler)
        self._outcome = outcome
        self._done = done
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="oauth-loopback",
                                        daemon=True)
        self._thread.start()

    @property
    def redirect_uri(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{CALLBACK_PATH}"

    def wait(self, state: str, timeout: float) -> str:
        """The authorization code, once HubSpot redirected here with the expected ``state``."""
        try:
            if not self._done.wait(timeout):
                raise _oauth_error("nobody completed the sign-in in time",
                                   "The HubSpot sign-in was not completed in time; try again.")
            outcome = self._outcome
            if outcome.error:
                raise _oauth_error(f"authorization refused: {outcome.error}",
                                   f"HubSpot did not grant access: {outcome.error}")
            if not outcome.state or not secrets.compare_digest(outcome.state, state):
                raise _oauth_error("the redirect's state does not match",
                                   "The sign-in answer did not match this request; try again.")
            if not outcome.code:
                raise _oauth_error("the redirect carries no code", "HubSpot's answer carried no code; try again.")
            return outcome.code
        finally:
            self.close()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _oauth_error(detail: str, sentence: str) -> HubSpotError:
    return HubSpotError(detail, category=errors.OAUTH, agent_message=sentence)


def sign_in(
    config: HubSpotConfig,
    *,
    scopes: Sequence[str] = DEFAULT_SCOPES,
    open_browser: Callable[[str], object] = webbrowser.open,
    timeout: float = 300.0,
    port: int | None = None,
    token_store: TokenStore | None = None,
    session: requests.Session | None = None,
) -> TokenSet:
    """Run the authorization-code flow and store the tokens (keyring by default).

    The redirect goes to ``http://127.0.0.1:PORT/oauth-callback`` (``port``, else the config's
    ``oauth_redirect_port``); HubSpot only redirects to a URL registered in the app's settings.
    """
    if not (config.oauth_client_id and config.client_secret):
        raise _oauth_error("client id or secret missing",
                           "Set the HubSpot app's client id and client secret before signing in.")
    receiver = LoopbackReceiver(config.oauth_redirect_port if port is None else port)
    state = secrets.token_urlsafe(24)
    url = endpoints.authorize_url(config.authorize_url, client_id=config.oauth_client_id,
                                  redirect_uri=receiver.redirect_uri, scopes=scopes, state=state)
    try:
        open_browser(url)
    except Exception:
        receiver.close()
        raise
    code = receiver.wait(state, timeout)
    client = HubSpotClient(config, session=session, token_store=token_store)
    try:
        return client.exchange_code(code, receiver.redirect_uri)
    finally:
        if session is None:
            client.close()
