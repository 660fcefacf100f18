"""HubSpot's request signature, version 3, as pure functions.

HubSpot signs a request with ``X-HubSpot-Signature-v3``: the base64 of an HMAC-SHA256, keyed with
the app's client secret, over ``method + uri + body + timestamp`` (UTF-8), where ``uri`` is the full
URL HubSpot called (``https://host/path?query``) with a few percent-escapes decoded, and the
timestamp (milliseconds since the epoch) travels in ``X-HubSpot-Request-Timestamp``. A request older
than five minutes is refused. The sandbox imports ``sign_v3`` to sign its requests the same way.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-HubSpot-Signature-v3"
TIMESTAMP_HEADER = "X-HubSpot-Request-Timestamp"
MAX_AGE_MS = 5 * 60 * 1000

# The escapes HubSpot's validation guide says to decode in the URI before hashing.
_DECODED = {
    "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
    "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
}


def normalize_uri(uri: str) -> str:
    """Decode the escapes HubSpot decodes (either case of hex digits), leave every other one alone."""
    if "%" not in uri:
        return uri
    out: list[str] = []
    i = 0
    while i < len(uri):
        if uri[i] == "%" and uri[i : i + 3].upper() in _DECODED:
            out.append(_DECODED[uri[i : i + 3].upper()])
            i += 3
        else:
            out.append(uri[i])
            i += 1
    return "".join(out)


def sign_v3(client_secret: str, method: str, uri: str, body: bytes, timestamp_ms: int | str) -> str:
    """The ``X-HubSpot-Signature-v3`` value for a request."""
    message = (
        method.upper().encode("utf-8")
        + normalize_uri(uri).encode("utf-8")
        + body
        + str(timestamp_ms).encode("ascii")
    )
    mac = hmac.new(client_secret.encode("utf-8"), message, hashlib.sha256).digest()
    return base64.b64encode(mac).decode("ascii")


def verify_v3(
    client_secret: str,
    method: str,
    uri: str,
    body: bytes,
    timestamp: str | int | None,
    signature: str | None,
    *,
    now_ms: int | None = None,
    max_age_ms: int = MAX_AGE_MS,
) -> bool:
    """True when ``signature`` is HubSpot's v3 signature of this request and it is fresh.

    A timestamp more than ``max_age_ms`` in the past (or in the future) fails; the signatures are
    compared in constant time.
    """
    if not client_secret or signature is None or timestamp is None:
        return False
    try:
        ts = int(str(timestamp).strip())
    except ValueError:
        return False
    now = int(time.time() * 1000) if now_ms is None else now_ms
    if abs(now - ts) > max_age_ms:
        return False
    expected = sign_v3(client_secret, method, uri, body, str(timestamp).strip())
    return hmac.compare_digest(expected.encode("ascii"), signature.strip().encode("ascii", "replace"))
