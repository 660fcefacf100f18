"""The recordings store against a real S3 gateway (SeaweedFS, started by the tests) and a real folder."""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from services import Seaweed

from desktop_app.relay.storage import (
    MIN_PART_SIZE,
    FileStore,
    S3Store,
    StorageError,
    open_store,
    part_ranges,
    send_parts,
)


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """GET ``url`` on loopback whatever its host name says (``BUCKET.localhost`` resolves to loopback per
    RFC 6761, which this machine's resolver does not do), sending that host name in ``Host``."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection("127.0.0.1", parts.port, timeout=30)
    try:
        conn.request("GET", parts.path + ("?" + parts.query if parts.query else ""),
                     headers={"Host": parts.netloc, **(headers or {})})
        answer = conn.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        conn.close()


@pytest.fixture
def store(seaweed: Seaweed, bucket: str) -> S3Store:
    return S3Store(bucket, "team1", endpoint_url=seaweed.endpoint, addressing="path")


@pytest.fixture
def audio(seaweed: Seaweed, bucket: str) -> tuple[str, bytes]:
    """A recording put the way a store that guesses from the key keeps it: ``audio/wav``."""
    body = b"RIFF" + os.urandom(100_000)
    seaweed.client().put_object(Bucket=bucket, Key="team1/calls/a.wav", Body=body, ContentType="audio/wav")
    return "calls/a.wav", body


def test_a_presigned_get_answers_206_and_octet_stream_for_a_wav_key(store: S3Store, audio: tuple[str, bytes]) -> None:
    key, body = audio
    url = store.presigned_get(key, 300)
    assert urlsplit(url).path == f"/{store.bucket}/team1/calls/a.wav"  # path-style
    status, headers, got = fetch(url, {"Range": "bytes=100-1099"})
    assert status == 206
    assert headers["content-type"] == "application/octet-stream"
    assert headers["content-range"] == f"bytes 100-1099/{len(body)}"
    assert got == body[100:1100]
    status, headers, got = fetch(url)
    assert (status, headers["content-type"], got) == (200, "application/octet-stream", body)


def test_the_link_expires(store: S3Store, audio: tuple[str, bytes]) -> None:
    key, body = audio
    url = store.presigned_get(key, 3)  # SigV4 counts from the signing second: 2-3 s of life
    assert fetch(url, {"Range": "bytes=0-3"})[0] == 206
    time.sleep(4.2)
    status, _, text = fetch(url, {"Range": "bytes=0-3"})
    assert status == 403 and b"expired" in text.lower()


def test_a_tampered_link_is_refused_by_the_store(seaweed: Seaweed, store: S3Store, audio: tuple[str, bytes]) -> None:
    key, _ = audio
    seaweed.client().put_object(Bucket=store.bucket, Key="team1/calls/b.wav", Body=b"other agent's call")
    url = store.presigned_get(key, 300)
    assert fetch(url)[0] == 200
    signature = url.rsplit("X-Amz-Signature=", 1)[1][:64]
    flipped = signature[:10] + ("0" if signature[10] != "0" else "1") + signature[11:]
    tampered = {
        "signature": url.replace(signature, flipped),
        "key": url.replace("/calls/a.wav", "/calls/b.wav"),
        "content type": url.replace("application%2Foctet-stream", "audio%2Fwav"),
        "expiry": url.replace("X-Amz-Expires=300", "X-Amz-Expires=3000"),
    }
    for what, bad in tampered.items():
        assert bad != url, what
        status, _, text = fetch(bad)
        assert status == 403, f"a link with a changed {what} was answered {status}"
        assert b"other agent" not in text


class CountingSession(requests.Session):
    """Counts the bytes of every request body it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes_sent = 0

    def put(self, url: str | bytes, data: Any = None, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.bytes_sent += len(data or b"")
        return super().put(url, data=data, **kwargs)


class Dropped(Exception):
    pass


def test_an_interrupted_multipart_upload_resumes_sending_only_the_missing_parts(
    store: S3Store, tmp_path: Path
) -> None:
    recording = tmp_path / "long call.wav"
    recording.write_bytes(os.urandom(3 * MIN_PART_SIZE + 12_345))
    size = recording.stat().st_size
    key = "calls/long.wav"
    upload = store.begin(key)

    def url_for(n: int) -> str:
        return store.presigned_part(key, upload, n, 600)

    first = CountingSession()

    def drop_after_two(number: int, _size: int) -> None:
        if number == 2:
            raise Dropped  # the desk loses its connection (or is restarted) here

    with pytest.raises(Dropped):
        send_parts(recording, MIN_PART_SIZE, store.parts_done(key, upload), url_for, session=first,
                   on_part=drop_after_two)
    assert first.bytes_sent == 2 * MIN_PART_SIZE

    done = store.parts_done(key, upload)  # a new desk process asks the store what it has
    assert {n: p.size for n, p in done.items()} == {1: MIN_PART_SIZE, 2: MIN_PART_SIZE}
    again = CountingSession()
    sent = send_parts(recording, MIN_PART_SIZE, done, url_for, session=again)
    assert sorted(sent) == [3, 4]
    assert again.bytes_sent == sum(p.size for p in sent.values()) == size - 2 * MIN_PART_SIZE  # only 3 and 4 again
    assert not store.exists(key)
    store.complete(key, upload)  # the ETags of parts 1 and 2 come from the store's list
    assert store.exists(key)
    assert store.size(key) == size
    assert store.sha256(key) == hashlib.sha256(recording.read_bytes()).hexdigest()


def test_complete_refuses_an_upload_with_a_hole(store: S3Store) -> None:
    key = "calls/holes.wav"
    upload = store.begin(key)
    for n in (1, 3):
        assert requests.put(store.presigned_part(key, upload, n, 60), data=os.urandom(MIN_PART_SIZE)).ok
    with pytest.raises(StorageError, match=r"parts \[2\] are missing"):
        store.complete(key, upload)
    store.abort(key, upload)
    with pytest.raises(StorageError, match="no longer knows this upload"):
        store.parts_done(key, upload)


def test_sha256_is_the_objects_and_sees_a_change(store: S3Store) -> None:
    data = os.urandom(3 * 1024 * 1024 + 7)
    store.put("x/y.flac", data)
    assert store.sha256("x/y.flac") == hashlib.sha256(data).hexdigest()
    store.put("x/y.flac", data[:-1] + bytes([data[-1] ^ 1]))
    assert store.sha256("x/y.flac") != hashlib.sha256(data).hexdigest()
    store.delete("x/y.flac")
    assert not store.exists("x/y.flac")


def test_virtual_host_addressing(seaweed: Seaweed, bucket: str, audio: tuple[str, bytes],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """BUCKET.localhost:PORT/KEY (SeaweedFS runs with -s3.domainName=localhost). This machine's resolver
    does not resolve *.localhost to loopback as RFC 6761 asks, so this test's process does."""
    real = socket.getaddrinfo

    def loopback_localhost(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".localhost"):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", loopback_localhost)
    key, body = audio
    store = S3Store(bucket, "team1", endpoint_url=seaweed.virtual_endpoint, addressing="virtual")
    url = store.presigned_get(key, 300)
    parts = urlsplit(url)
    assert (parts.hostname, parts.path) == (f"{bucket}.localhost", "/team1/calls/a.wav")
    status, headers, got = fetch(url, {"Range": "bytes=4-9"})
    assert (status, headers["content-type"], got) == (206, "application/octet-stream", body[4:10])
    store.put("calls/v.wav", b"virtual")  # the store's own requests go to BUCKET.localhost too
    assert store.sha256("calls/v.wav") == hashlib.sha256(b"virtual").hexdigest()
    assert seaweed.client().get_object(Bucket=bucket, Key="team1/calls/v.wav")["Body"].read() == b"virtual"


def test_refused_keys_and_an_unreachable_store_are_one_sentence(
    seaweed: Seaweed, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "W" + seaweed.secret_key[1:] + "x"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", wrong)
    store = S3Store(bucket, endpoint_url=seaweed.endpoint, addressing="path")
    with pytest.raises(StorageError) as refused:
        store.exists("calls/a.wav")
    message = str(refused.value)
    assert "refused the S3 keys" in message and wrong not in message and "\n" not in message
    closed = S3Store(bucket, endpoint_url="http://127.0.0.1:9", addressing="path", connect_timeout_s=2)
    with pytest.raises(StorageError, match="cannot be reached"):
        closed.put("calls/a.wav", b"x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweed.secret_key)
    missing = S3Store("no-such-bucket-here", endpoint_url=seaweed.endpoint, addressing="path")
    with pytest.raises(StorageError, match="does not exist"):
        missing.sha256("calls/a.wav")


@pytest.mark.parametrize(
    "url, message",
    [
        ("", "not a store"),
        ("http://bucket/x", "not a store"),
        ("s3://", "names no bucket"),
        ("s3://Bad_Bucket", "not a valid bucket name"),
        ("s3://bucket/../x", "not a valid recording key"),
        ("file:", "names no folder"),
        ("file://otherhost/x", "another host"),
    ],
)
def test_open_store_refuses_a_bad_url_in_one_sentence(url: str, message: str) -> None:
    with pytest.raises(StorageError, match=message) as info:
        open_store(url)
    assert "\n" not in str(info.value)


def test_auto_addressing_is_path_style_for_an_endpoint_and_virtual_host_on_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-real-secret")
    own = urlsplit(open_store("s3://my-bucket/p", endpoint_url="https://s3.example.com", region="eu-west-1")
                   .presigned_get("a.wav", 60))
    assert (own.hostname, own.path) == ("s3.example.com", "/my-bucket/p/a.wav")
    aws = urlsplit(open_store("s3://my-bucket/p", region="eu-west-1").presigned_get("a.wav", 60))
    assert aws.hostname is not None and aws.hostname.startswith("my-bucket.s3.") and aws.path == "/p/a.wav"
    assert "not-a-real-secret" not in own.query + aws.query


def test_open_store_builds_both_kinds(tmp_path: Path) -> None:
    s3 = open_store("s3://my-bucket/team/a", endpoint_url="http://127.0.0.1:1", region="eu-west-1")
    assert isinstance(s3, S3Store) and (s3.bucket, s3.prefix, s3.url) == ("my-bucket", "team/a", "s3://my-bucket/team/a")
    assert isinstance(open_store(f"file:{tmp_path}/recs"), FileStore)
    assert open_store(f"file://{tmp_path}/recs").url == f"file:{tmp_path}/recs"


@pytest.mark.parametrize("key", ["../x", "a/../../x", "/etc/passwd", "a//b", "a\\b", "a/./b", ".hidden", "a\x00b", ""])
def test_a_key_never_leaves_the_store(tmp_path: Path, key: str) -> None:
    store = FileStore(tmp_path / "recs")
    with pytest.raises(StorageError, match="not a valid recording key"):
        store.put(key, b"x")
    assert [p.name for p in tmp_path.iterdir()] == ["recs"]


def test_the_file_store_resumes_and_joins_parts(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "recs")
    data = os.urandom(250_000)
    key = "calls/c.wav"
    upload = store.begin(key)
    ranges = part_ranges(len(data), 100_000)
    for n, off, length in ranges[:2]:
        store.write_part(key, upload, n, data[off:off + length])
    with pytest.raises(StorageError, match="belongs to another recording"):
        store.write_part("calls/other.wav", upload, 3, b"x")
    again = FileStore(tmp_path / "recs")  # a restarted relay
    done = again.parts_done(key, upload)
    assert sorted(done) == [1, 2]
    missing = [(n, off, length) for n, off, length in ranges if n not in done]
    assert missing == [(3, 200_000, 50_000)]
    for n, off, length in missing:
        again.write_part(key, upload, n, data[off:off + length])
    again.complete(key, upload)
    assert again.path(key).read_bytes() == data
    assert again.sha256(key) == hashlib.sha256(data).hexdigest()
    assert not (tmp_path / "recs" / ".uploads" / upload).exists()
    with pytest.raises(StorageError, match="no presigned links"):
        again.presigned_get(key, 60)


def test_the_file_store_refuses_to_join_parts_with_a_hole_and_aborts(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "recs")
    upload = store.begin("calls/d.wav")
    store.write_part("calls/d.wav", upload, 1, b"a" * 10)
    store.write_part("calls/d.wav", upload, 3, b"c" * 10)
    with pytest.raises(StorageError, match="some of its parts are missing"):
        store.complete("calls/d.wav", upload)
    assert not store.exists("calls/d.wav")
    store.abort("calls/d.wav", upload)
    with pytest.raises(StorageError, match="no longer knows this upload"):
        store.parts_done("calls/d.wav", upload)
    with pytest.raises(StorageError, match="not one the store gave"):
        store.parts_done("calls/d.wav", "../../etc")


def test_a_part_the_store_holds_with_the_wrong_size_is_sent_again(store: S3Store, tmp_path: Path) -> None:
    recording = tmp_path / "call.wav"
    recording.write_bytes(os.urandom(MIN_PART_SIZE + 1000))
    key = "calls/short-part.wav"
    upload = store.begin(key)
    assert requests.put(store.presigned_part(key, upload, 1, 60), data=b"cut short").ok  # an earlier bad attempt
    session = CountingSession()
    sent = send_parts(recording, MIN_PART_SIZE, store.parts_done(key, upload),
                      lambda n: store.presigned_part(key, upload, n, 60), session=session)
    assert sorted(sent) == [1, 2]
    assert session.bytes_sent == sum(p.size for p in sent.values()) == recording.stat().st_size
    store.complete(key, upload, {n: p.etag for n, p in sent.items()})
    assert store.sha256(key) == hashlib.sha256(recording.read_bytes()).hexdigest()
