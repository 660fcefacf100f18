"""Public URLs must be https for HubSpot; plain http only in the sandbox."""

from __future__ import annotations

import pytest

from desktop_app.tunnel.urls import InsecureUrlError, check_public_url


def test_https_is_accepted_and_normalised() -> None:
    assert check_public_url(" https://calls.example.com/ ") == "https://calls.example.com"
    assert check_public_url("https://example.com/relay/") == "https://example.com/relay"


def test_plain_http_is_refused_with_a_reason() -> None:
    with pytest.raises(InsecureUrlError, match="only fetches recordings over https"):
        check_public_url("http://calls.example.com")


def test_plain_http_is_allowed_in_the_sandbox() -> None:
    assert check_public_url("http://127.0.0.1:8765/", allow_http=True) == "http://127.0.0.1:8765"


@pytest.mark.parametrize("bad", ["", "calls.example.com", "ftp://x.example", "https://x.example/?a=1", "https://"])
def test_what_is_not_a_base_url_is_refused(bad: str) -> None:
    with pytest.raises(InsecureUrlError):
        check_public_url(bad, allow_http=True)
