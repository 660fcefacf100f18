"""HubSpot's v3 signature: checked against OpenSSL's HMAC, an independent implementation."""

from __future__ import annotations

import base64
import subprocess

import pytest

from desktop_app.server.signature import normalize_uri, sign_v3, verify_v3

NOW = 1_700_000_000_000


def openssl_v3(secret: str, source: bytes) -> str:
    out = subprocess.run(["openssl", "dgst", "-sha256", "-hmac", secret, "-binary"], input=source,
                         capture_output=True, check=True).stdout
    return base64.b64encode(out).decode()


@pytest.mark.parametrize(("method", "uri", "body"), [
    ("GET", "https://example.com/retrieve/authenticated/recordings/call-1?externalAccountId=9&appId=1", b""),
    ("POST", "https://example.com/hook", '{"a": "é"}'.encode()),
])
def test_sign_v3_matches_openssl(method: str, uri: str, body: bytes) -> None:
    source = method.encode() + uri.encode() + body + str(NOW).encode()
    assert sign_v3("s3cr3t", method, uri, body, NOW) == openssl_v3("s3cr3t", source)


def test_escapes_hubspot_decodes_before_hashing() -> None:
    assert normalize_uri("https://h/a%3Ab%2fc%3F%40%21%24%27%28%29%2A%2C%3B%20%25") == \
        "https://h/a:b/c?@!$'()*,;%20%25"
    decoded = sign_v3("k", "GET", "https://h/x?u=a:b", b"", NOW)
    assert sign_v3("k", "GET", "https://h/x?u=a%3Ab", b"", NOW) == decoded


def test_verify_v3() -> None:
    uri = "https://example.com/r/1?appId=1"
    sig = sign_v3("k", "GET", uri, b"", NOW)
    assert verify_v3("k", "GET", uri, b"", str(NOW), sig, now_ms=NOW + 1000)
    assert verify_v3("k", "get", uri, b"", NOW, sig, now_ms=NOW)  # the method is upper-cased
    assert not verify_v3("other", "GET", uri, b"", str(NOW), sig, now_ms=NOW)
    assert not verify_v3("k", "GET", uri + "2", b"", str(NOW), sig, now_ms=NOW)
    assert not verify_v3("k", "GET", uri, b"x", str(NOW), sig, now_ms=NOW)
    assert not verify_v3("k", "GET", uri, b"", str(NOW + 1), sig, now_ms=NOW)
    assert not verify_v3("k", "GET", uri, b"", str(NOW), sig, now_ms=NOW + 5 * 60 * 1000 + 1)  # stale
    assert verify_v3("k", "GET", uri, b"", str(NOW), sig, now_ms=NOW + 5 * 60 * 1000)
    assert not verify_v3("k", "GET", uri, b"", str(NOW), sig, now_ms=NOW - 6 * 60 * 1000)  # from the future
    assert not verify_v3("k", "GET", uri, b"", "yesterday", sig, now_ms=NOW)
    assert not verify_v3("k", "GET", uri, b"", None, sig, now_ms=NOW)
    assert not verify_v3("k", "GET", uri, b"", str(NOW), None, now_ms=NOW)
    assert not verify_v3("", "GET", uri, b"", str(NOW), sign_v3("", "GET", uri, b"", NOW), now_ms=NOW)
    assert not verify_v3("k", "GET", uri, b"", str(NOW), "ü" + sig, now_ms=NOW)
