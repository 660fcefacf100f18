"""Public base URLs: HubSpot fetches recordings over HTTPS only."""

from __future__ import annotations

from urllib.parse import urlsplit


class InsecureUrlError(ValueError):
    """A plain-http (or otherwise unusable) public URL where HubSpot needs https."""


def check_public_url(url: str, *, allow_http: bool = False) -> str:
    """Return ``url`` without a trailing slash, or raise InsecureUrlError with a sentence to act on.

    HubSpot only calls ``https://`` recording URLs; ``allow_http`` (the sandbox) also accepts http.
    """
    url = (url or "").strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InsecureUrlError(f"{url!r} is not a web address: give the public base URL, such as "
                               "https://calls.example.com")
    if parts.query or parts.fragment:
        raise InsecureUrlError(f"{url!r}: a public base URL has no query or fragment")
    if parts.scheme == "http" and not allow_http:
        raise InsecureUrlError(
            f"{url} is plain http: HubSpot only fetches recordings over https. Put TLS in front of "
            "the server (your reverse proxy, ngrok or cloudflared give an https address); plain http "
            "is accepted only in sandbox mode."
        )
    return url
