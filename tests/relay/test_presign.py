"""HubSpot's endpoint answers each request with a fresh presigned link. botocore's generate_presigned_url
builds a whole request for each (about half the relay's CPU per answer in benchmarks/relay.py); the store
signs them itself (`desktop_app.relay.presign`) once botocore's first link showed how, and those links are
botocore's own, byte for byte, and the real store takes them."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import botocore.auth
import pytest
import requests
from services import Seaweed
from test_storage import fetch

from desktop_app.relay.storage import MIN_PART_SIZE, S3Store


def _counting(monkeypatch: pytest.MonkeyPatch, store: S3Store) -> list[str]:
    calls: list[str] = []
    real = store._s3.generate_presigned_url

    def count(operation: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(operation)
        return real(operation, *args, **kwargs)

    monkeypatch.setattr(store._s3, "generate_presigned_url", count)
    return calls


def test_links_are_signed_locally_after_botocores_first_and_the_store_takes_them(
        seaweed: Seaweed, bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in seaweed.env().items():
        monkeypatch.setenv(name, value)
    store = S3Store(bucket, "team", endpoint_url=seaweed.endpoint, addressing="path")
    calls = _counting(monkeypatch, store)
    bodies = {f"recordings/call-{n}@desk+1=x.wav": b"RIFF" + os.urandom(5000) for n in range(5)}
    for key, body in bodies.items():
        store.put(key, body)
    for _ in range(4):
        for key, body in bodies.items():
            status, headers, got = fetch(store.presigned_get(key, 600), {"Range": "bytes=10-99"})
            assert (status, headers["content-type"], got) == (206, "application/octet-stream", body[10:100])
    # a multipart upload through the presigned part links
    key = "recordings/upload.wav"
    upload_id = store.begin(key)
    data = os.urandom(MIN_PART_SIZE + 1000)
    etags = {}
    for number, chunk in ((1, data[:MIN_PART_SIZE]), (2, data[MIN_PART_SIZE:])):
        answer = requests.put(store.presigned_part(key, upload_id, number, 600), data=chunk, timeout=60)
        assert answer.status_code == 200, answer.text
        etags[number] = answer.headers["ETag"]
    store.complete(key, upload_id, etags)
    assert seaweed.client().get_object(Bucket=bucket, Key=f"team/{key}")["Body"].read() == data
    # 20 GET links and 2 part links: botocore made one of each kind (to learn from), the relay the rest
    assert sorted(calls) == ["get_object", "upload_part"]


@pytest.mark.parametrize("addressing", ["path", "virtual"])
def test_a_local_link_is_botocores_link(seaweed: Seaweed, monkeypatch: pytest.MonkeyPatch, addressing: str) -> None:
    for name, value in {**seaweed.env(), "AWS_SESSION_TOKEN": "session/token+with=odd chars"}.items():
        monkeypatch.setenv(name, value)
    endpoint = seaweed.endpoint if addressing == "path" else seaweed.virtual_endpoint
    store = S3Store("team-bucket", "a/b", endpoint_url=endpoint, addressing=addressing)
    when = dt.datetime(2026, 12, 4, 21, 30, 5, tzinfo=dt.timezone.utc)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda remove_tzinfo=True: when.replace(tzinfo=None))
    store.presigned_get("warm/up.wav", 60)  # botocore's first link, to learn from
    calls = _counting(monkeypatch, store)
    for key in ("recordings/x.wav", "r/=+@._-/9"):
        full = f"a/b/{key}"
        ours = store._presign.url("get_object", {"Bucket": "team-bucket", "Key": full,
                                                  "ResponseContentType": "application/octet-stream"},
                                  full, {"response-content-type": "application/octet-stream"}, 3600, now=when)
        theirs = store._s3.generate_presigned_url("get_object", Params={
            "Bucket": "team-bucket", "Key": full, "ResponseContentType": "application/octet-stream"}, ExpiresIn=3600)
        a, b = urlsplit(ours), urlsplit(theirs)
        assert (a.scheme, a.netloc, a.path) == (b.scheme, b.netloc, b.path)
        assert dict(parse_qsl(a.query)) == dict(parse_qsl(b.query))
        assert "X-Amz-Security-Token" in dict(parse_qsl(a.query))
    assert calls == ["get_object", "get_object"]  # only the two made for comparison


def test_a_store_with_a_client_of_its_own_keeps_botocores_links(seaweed: Seaweed, bucket: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials the relay cannot read (a client handed in): every link from botocore, as before."""
    store = S3Store(bucket, endpoint_url=seaweed.endpoint, client=seaweed.client())
    calls = _counting(monkeypatch, store)
    for n in range(3):
        assert "X-Amz-Signature=" in store.presigned_get(f"k{n}", 60)
    assert calls == ["get_object"] * 3
