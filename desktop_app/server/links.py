"""Signed, expiring links to one recording.

A token is ``base64url(payload) + "." + base64url(tag)``; the payload holds a version byte, the
expiry (seconds since the epoch), the recording's SHA-256 and the externalId the link was issued
for (empty when issued by hand), and the tag is an HMAC-SHA256 of the payload with the link-signing
key (kept in the keyring). Nothing in a token is a path: the server looks the hash up in the
catalogue.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
import time
from dataclasses import dataclass

_VERSION = 1
_HEAD = struct.Struct(">BQ32s")  # version, expiry, raw sha256
MAX_TOKEN_LENGTH = 1024
_CACHE_SIZE = 4096


@dataclass(frozen=True)
class LinkClaims:
    sha256: str
    expires: int
    external_id: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_B64URL = re.compile(r"[A-Za-z0-9_-]*\Z")


def _unb64(text: str) -> bytes:
    """Strict: only the one spelling ``_b64`` gives (no padding, no other characters, no stray bits in
    the last character), so a token altered in any way decodes to nothing. The standard decoder skips
    characters outside the alphabet and ignores a last character's unused bits."""
    if len(text) % 4 == 1 or not _B64URL.match(text):
        raise ValueError("not canonical base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:
        raise ValueError("not canonical base64url")
    return data


class LinkSigner:
    def __init__(self, key: str | bytes) -> None:
        if not key:
            raise ValueError("a link-signing key is needed")
        self._key = key.encode("utf-8") if isinstance(key, str) else key
        self._verified: dict[str, LinkClaims] = {}

    @property
    def key(self) -> bytes:
        return self._key

    def _tag(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()

    def make(self, sha256: str, ttl_s: float, *, external_id: str = "", now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + ttl_s)
        payload = _HEAD.pack(_VERSION, expires, bytes.fromhex(sha256)) + external_id.encode("utf-8")
        return f"{_b64(payload)}.{_b64(self._tag(payload))}"

    def verify(self, token: str, *, now: float | None = None) -> LinkClaims | None:
        """The claims of a genuine, unexpired token; None for anything else.

        A player reads one link many times (a range per seek), so genuine tokens are remembered
        (the expiry is still checked on every use)."""
        claims = self._verified.get(token)
        if claims is not None:
            return claims if claims.expires >= (time.time() if now is None else now) else None
        claims = self._verify(token, now)
        if claims is not None:
            if len(self._verified) >= _CACHE_SIZE:
                self._verified.clear()
            self._verified[token] = claims
        return claims

    def _verify(self, token: str, now: float | None) -> LinkClaims | None:
        if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
            return None
        body, _, tag = token.partition(".")
        try:
            payload = _unb64(body)
            given = _unb64(tag)
        except (binascii.Error, ValueError):
            return None
        if not hmac.compare_digest(self._tag(payload), given) or len(payload) < _HEAD.size:
            return None
        version, expires, raw = _HEAD.unpack_from(payload)
        if version != _VERSION or expires < (time.time() if now is None else now):
            return None
        try:
            external_id = payload[_HEAD.size :].decode("utf-8")
        except UnicodeDecodeError:
            return None
        return LinkClaims(sha256=raw.hex(), expires=expires, external_id=external_id)


def redact(token: str) -> str:
    """What the access log shows of a token: enough to tell two apart, nothing to reuse."""
    # ASCII: one character beyond it makes every access-log line a wide string, 1 µs more per request
    return "..." + token[-6:] if len(token) > 12 else "..."
