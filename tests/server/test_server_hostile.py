"""Hostile or damaged input to the recording server: huge numbers in a Range, altered link tokens, and
stored files changed under the server (truncated in place, replaced). Each is checked on every path
that may answer it: the C fast path, the Python fast path and the general path."""

from __future__ import annotations

import base64
import logging
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from server_helpers import SIGNING_KEY, random_file

from desktop_app.server import RecordingServer, ranges
from desktop_app.server.links import LinkSigner
from desktop_app.server.recordings import RecordingStore, StoredRecording

SIZE = 300_000
HUGE = "9" * 5000


@pytest.fixture(params=["c", "general"])
def srv(request: pytest.FixtureRequest, store: RecordingStore) -> Iterator[RecordingServer]:
    """A running server answering through one path only: "c" (the C fast path, where it was built)
    or "general" (without it)."""
    server = RecordingServer(store, signing_key=SIGNING_KEY)
    server.start()
    http = server._http
    assert http is not None
    if request.param == "c":
        assert http.fast_raw is not None, "the C fast path (desktop_app/server/_fastserve.c) was not built"
    else:
        http.fast_raw = None
    yield server
    server.stop()


def get(url: str, **headers: str) -> requests.Response:
    return requests.get(url, headers=headers, timeout=10)


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


# -- numbers past any file ----------------------------------------------------------------------------
def test_parse_range_takes_any_number_of_digits() -> None:
    assert ranges.parse_range(f"bytes={HUGE}-", SIZE) == []  # past the end: unsatisfiable
    assert ranges.parse_range(f"bytes={HUGE}-{HUGE}9", SIZE) == []
    assert ranges.parse_range(f"bytes=0-{HUGE}", SIZE) == [(0, SIZE - 1)]
    assert ranges.parse_range(f"bytes=10-{'0' * 5000}20", SIZE) == [(10, 20)]  # leading zeros
    assert ranges.parse_range(f"bytes=-{HUGE}", SIZE) == [(0, SIZE - 1)]  # a suffix longer than the file
    assert ranges.parse_range(f"bytes={HUGE}9-{HUGE}", SIZE) is None  # last before first: ignored
    assert ranges.parse_range(f"bytes=5-{HUGE},{HUGE}-", SIZE) == [(5, SIZE - 1)]
    assert ranges.parse_range(f"bytes=0-0,{'1' * 19}-{'1' * 19}", SIZE) == [(0, 0)]


def test_a_range_of_thousands_of_digits_is_just_past_the_end(srv: RecordingServer, stored: StoredRecording,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    link = srv.make_link(stored.sha256)
    body = stored.path.read_bytes()
    for _ in range(2):  # the second time through a link already answered (the fast paths')
        r = get(link, Range=f"bytes={HUGE}-")
        assert r.status_code == 416 and r.headers["Content-Range"] == f"bytes */{SIZE}"
        r = get(link, Range=f"bytes=0-{HUGE}")
        assert r.status_code == 206 and r.content == body
        r = get(link, Range=f"bytes=-{HUGE}")
        assert r.status_code == 206 and r.content == body
        r = get(link, Range=f"bytes={'1' * 19}-{'1' * 20}")
        assert r.status_code == 416
        r = get(link, Range="bytes=100-199")
        assert r.status_code == 206 and r.content == body[100:200]
    assert errors(caplog) == []


# -- altered links --------------------------------------------------------------------------------------
def alterations(token: str) -> list[str]:
    """The token changed in ways a lax base64 decoder reads as the same bytes (and a few that it doesn't)."""
    body, tag = token.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

    def same_bits(part: str) -> str:  # the last character's unused low bits set: decodes to the same bytes
        pad = -len(part) % 4
        last = alphabet.index(part[-1])
        spare = {1: 0b11, 2: 0b1111}.get(pad, 0)
        assert spare, "a part whose length leaves no spare bits"
        return part[:-1] + alphabet[last | spare]

    altered = [
        f"{body}.{same_bits(tag)}",  # a changed last character
        f"{same_bits(body)}.{tag}" if -len(body) % 4 else f"{body}.{tag}=",
        f"{body}.{tag[:5]}!{tag[5:]}",  # an inserted "!"
        f"{body[:8]}@@@@{body[8:]}.{tag}",
        f"{body}.{tag}=",  # an appended "="
        f"{body}=.{tag}",
        f"{body}.{tag}==",
        f"{body}.{tag} ",
        f"{body}.{tag}%3D",
        f"{body}.{tag[:-1]}",
        f"{body}.{tag}A",
        f"{body}.{tag}\t",
        f"{body}.{tag.swapcase()}",
    ]
    assert all(a != token for a in altered)
    return altered


def test_a_lax_decoder_would_read_the_alterations_as_the_same_token() -> None:
    """The alterations above are the ones that got through: the standard decoder ignores them."""
    token = LinkSigner("k").make("ab" * 32, 60, external_id="call-1")
    body, tag = token.split(".")
    lax = base64.urlsafe_b64decode
    assert lax(tag + "=" * (-len(tag) % 4)) == lax(alterations(token)[0].split(".")[1] + "=" * (-len(tag) % 4))


def test_altered_link_tokens_are_refused(srv: RecordingServer, stored: StoredRecording) -> None:
    link = srv.make_link(stored.sha256, external_id="call-1")
    base, token = link.rsplit("/", 1)
    assert get(link, Range="bytes=0-9").status_code == 206
    assert get(link, Range="bytes=0-9").status_code == 206  # known now to the fast paths
    for altered in alterations(token):
        assert srv.links.verify(altered) is None, altered
        r = get(f"{base}/{altered}", Range="bytes=0-9")
        assert r.status_code == 403, (altered, r.status_code)
    assert get(link, Range="bytes=0-9").status_code == 206


# -- stored files changed under the server ----------------------------------------------------------
def writable(path: Path) -> None:
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)


def test_a_stored_file_truncated_in_place_is_not_announced_at_its_old_size(
        srv: RecordingServer, stored: StoredRecording, caplog: pytest.LogCaptureFixture) -> None:
    link = srv.make_link(stored.sha256)
    for _ in range(2):
        assert get(link, Range="bytes=0-99").status_code == 206
    writable(stored.path)
    os.truncate(stored.path, 1000)  # the same inode, shorter
    for spec in ("bytes=0-99", "bytes=2000-2099", None):
        r = get(link, **({"Range": spec} if spec else {}))
        assert r.status_code == 403, (spec, r.status_code, r.headers)
    assert [m for m in errors(caplog) if "changed" in m] and len(errors(caplog)) == 1


@pytest.mark.parametrize("how", ["renamed over", "rewritten in place"])
def test_a_stored_file_replaced_under_the_store_is_not_served_under_its_old_etag(
        srv: RecordingServer, store: RecordingStore, stored: StoredRecording, tmp_path: Path, how: str) -> None:
    link = srv.make_link(stored.sha256)
    for _ in range(2):
        r = get(link, Range="bytes=0-99")
        assert r.status_code == 206 and r.headers["ETag"] == f'"{stored.sha256}"'
    other = random_file(tmp_path / "other.wav", SIZE, seed=99).read_bytes()  # the same size, other bytes
    time.sleep(0.02)  # a later modification time
    if how == "renamed over":
        fresh = stored.path.with_name("replacement.part")
        fresh.write_bytes(other)
        os.replace(fresh, stored.path)
    else:
        writable(stored.path)
        with open(stored.path, "r+b") as f:
            f.write(other)
    deadline = time.monotonic() + 2.5  # past the server's once-a-second look at the store too
    while time.monotonic() < deadline:
        for spec in ("bytes=0-99", None):
            r = get(link, **({"Range": spec} if spec else {}))
            assert r.status_code == 403 or other[:100] not in r.content, (spec, r.status_code)
            assert r.status_code == 403, (spec, r.status_code)
        time.sleep(0.2)
    assert store.get(stored.sha256) is not None  # the catalogue still lists it: the server refused on its own


def test_a_stored_file_with_another_time_but_the_same_bytes_is_still_served(
        srv: RecordingServer, stored: StoredRecording, caplog: pytest.LogCaptureFixture) -> None:
    """A data directory copied without its files' times: the catalogue's time no longer matches, the
    hash does (checked once), so the recording is served as before."""
    link = srv.make_link(stored.sha256)
    for _ in range(2):
        assert get(link, Range="bytes=0-99").status_code == 206
    os.utime(stored.path, (stored.mtime - 86400, stored.mtime - 86400))
    for _ in range(3):
        r = get(link, Range="bytes=100-199")
        assert r.status_code == 206 and r.content == stored.path.read_bytes()[100:200]
    assert errors(caplog) == []
