"""Who is calling the sandbox: its credentials, the tokens it issues, and each request's authentication.

A request authenticates as HubSpot's description of its operation asks (``openapi.Operation.security``):
a bearer token (private-app or OAuth) holding one of the operation's scopes, or the developer API key
(``hapikey``) where the operation takes it — v3 lists it as the ``developers-*`` scopes, the dated files
as the ``developer_hapikey`` scheme, and some dated operations take nothing else.
"""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from desktop_app import openapi
from desktop_app.sandbox.errors import ApiError
from desktop_app.sandbox.seeds import OWNER_SEEDS
from desktop_app.sandbox.state import Store

# Scopes of the private-app token the sandbox hands out: what the app needs, nothing more.
PRIVATE_APP_SCOPES = (
    "crm.objects.contacts.read", "crm.objects.contacts.write", "crm.objects.owners.read",
    "crm.objects.companies.read", "crm.objects.deals.read", "tickets", "crm.objects.calls.read",
)
DEVELOPER_SCOPES = ("developers-read", "developers-write")
DEVELOPER_KEY_SCHEME = "developer_hapikey"  # the dated files' name for the developer API key
ANY_TOKEN_SCOPE = "oauth"  # granted to every token (HubSpot lists it for endpoints any token may call)


@dataclass(frozen=True)
class Credentials:
    access_token: str  # a private-app token with PRIVATE_APP_SCOPES
    app_id: int
    developer_api_key: str  # hapikey of the developer account that owns the app
    client_id: str  # OAuth client id of the app
    client_secret: str  # OAuth client secret (also signs the recording fetch, v3)
    portal_id: int

    @classmethod
    def generate(cls) -> Credentials:
        return cls(
            access_token=f"pat-na1-{uuid.uuid4()}",
            app_id=1_000_000 + secrets.randbelow(8_999_999),
            developer_api_key=str(uuid.uuid4()),
            client_id=str(uuid.uuid4()),
            client_secret=str(uuid.uuid4()),
            portal_id=10_000_000 + secrets.randbelow(89_999_999),
        )


class Auth:
    """The account's credentials (kept in the store across restarts) and its tokens."""

    def __init__(self, store: Store, token_ttl_s: int) -> None:
        self.store = store
        self.token_ttl_s = token_ttl_s
        self.credentials = self.load_credentials()

    def load_credentials(self) -> Credentials:
        saved = self.store.get("meta", "credentials")
        if saved:
            creds = Credentials(**saved)
        else:
            creds = Credentials.generate()
            self.store.put("meta", "credentials", asdict(creds))
        if not self.store.get("tokens", creds.access_token):
            self.store.put("tokens", creds.access_token, {"kind": "private-app", "scopes": list(PRIVATE_APP_SCOPES),
                                                          "expires_at": None, "user_id": OWNER_SEEDS[0][4]})
        return creds

    def issue_token(self, scopes: list[str] | tuple[str, ...], *, kind: str = "oauth", ttl_s: int | None = None,
                    refresh: bool = False) -> str | tuple[str, str]:
        """A token with exactly ``scopes``; ``kind`` "oauth" (expires after ``ttl_s``, default the sandbox's
        token lifetime) or "private-app". With ``refresh`` also a refresh token: ``(access, refresh)``."""
        if kind == "private-app":
            token = f"pat-na1-{uuid.uuid4()}"
            self.store.put("tokens", token, {"kind": kind, "scopes": list(scopes), "expires_at": None,
                                             "user_id": OWNER_SEEDS[0][4]})
            return token
        access, refresh_token = self.issue_oauth(list(scopes), ttl_s)
        return (access, refresh_token) if refresh else access

    def expire_token(self, token: str) -> None:
        with self.store.lock:
            rec = self.store.get("tokens", token)
            if rec is not None:
                self.store.put("tokens", token, {**rec, "expires_at": time.time() - 1})

    def authenticate(self, op: openapi.Operation, headers: dict[str, str],
                      query: dict[str, list[str]]) -> dict[str, Any]:
        security = op.security
        if not security:
            return {"kind": "none"}
        wanted = op.scopes
        hapikey = query["hapikey"][-1] if query.get("hapikey") else None
        auth = headers.get("authorization", "")
        # v3 lists the developer key's scopes under oauth2; the dated files name its scheme (developer_hapikey),
        # and some of them accept nothing else.
        takes_key = any(s in DEVELOPER_SCOPES for s in wanted) or any(DEVELOPER_KEY_SCHEME in alt for alt in security)
        takes_token = any(scheme != DEVELOPER_KEY_SCHEME for alt in security for scheme in alt)
        if hapikey is not None:
            if hapikey != self.credentials.developer_api_key:
                raise ApiError(401, "INVALID_AUTHENTICATION", "The API key provided is invalid. View or manage your "
                               "API key here: https://app.hubspot.com/l/api-key/")
            if not takes_key:
                raise ApiError(401, "INVALID_AUTHENTICATION", "This endpoint does not accept a developer API key "
                               "(hapikey); use an access token.")
            return {"kind": "developer-api-key", "key": "developer", "scopes": list(DEVELOPER_SCOPES)}
        if not takes_token:
            raise ApiError(401, "INVALID_AUTHENTICATION", "This endpoint accepts only the app's developer API key "
                           "(hapikey); an access token cannot call it.")
        if not auth:
            raise ApiError(401, "INVALID_AUTHENTICATION", "Authentication credentials not found. This API supports "
                           "OAuth 2.0 authentication and you can find more details at "
                           "https://developers.hubspot.com/docs/methods/auth/oauth-overview")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "INVALID_AUTHENTICATION", "Authentication credentials not found: the Authorization "
                           "header must be 'Bearer <token>'.")
        rec = self.store.get("tokens", token.strip())
        if rec is None:
            raise ApiError(401, "INVALID_AUTHENTICATION", "Authentication credentials not found. The access token "
                           "is not known to this account.")
        if rec.get("expires_at") is not None and rec["expires_at"] <= time.time():
            ago = max(0, int(time.time() - rec["expires_at"]))
            raise ApiError(401, "EXPIRED_AUTHENTICATION", f"The OAuth token used to make this call expired {ago} "
                           "second(s) ago.", context={"expiredAt": [str(int(rec["expires_at"] * 1000))]})
        have = set(rec.get("scopes", [])) | {ANY_TOKEN_SCOPE}
        if wanted and not have.intersection(wanted):
            raise ApiError(403, "MISSING_SCOPES", "This app hasn't been granted all required scopes to make this "
                           "call. Read more about required scopes here: https://developers.hubspot.com/scopes.",
                           errors=[{"message": "One or more of the following scopes are required.",
                                    "context": {"requiredGranularScopes": sorted(set(wanted))[:20]}}],
                           links={"scopes": "https://developers.hubspot.com/scopes"})
        return {"kind": rec["kind"], "key": "app", "scopes": sorted(have), "token": token.strip(),
                "user_id": rec.get("user_id")}

    def issue_oauth(self, scopes: list[str], ttl_s: int | None = None) -> tuple[str, str]:
        access = f"sbx-oauth-{secrets.token_urlsafe(24)}"
        refresh = f"sbx-refresh-{uuid.uuid4()}"
        ttl = self.token_ttl_s if ttl_s is None else ttl_s
        self.store.put("tokens", access, {"kind": "oauth", "scopes": scopes, "expires_at": time.time() + ttl,
                                          "user_id": OWNER_SEEDS[0][4], "refresh": refresh})
        self.store.put("refresh_tokens", refresh, {"scopes": scopes, "user_id": OWNER_SEEDS[0][4], "valid": True})
        return access, refresh
