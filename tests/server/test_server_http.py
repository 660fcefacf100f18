"""The recording server against real HTTP clients (requests, http.client, raw sockets)."""

from __future__ import annotations

import email.utils
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
import requests
from server_helpers import CLIENT_SECRET, SIGNING_KEY, cpus, from_each_cpu, on_cpu, random_file, raw_request

from desktop_app import paths
from desktop_app.server import RecordingServer, fetches_for, runinfo, sign_v3
from desktop_app.server.accesslog import read_entries
from desktop_app.server.recordings import RecordingStore, StoredRecording

ENDPOINT = "/retrieve/authenticated/recordings"


def get(url: str, **headers: str) -> requests.Response:
    return requests.get(url, headers=headers, timeout=10)


def endpoint_url(server: RecordingServer, external_id: str, app_id: str = "1", account: str = "acct") -> str:
    return f"{server.local_url}{ENDPOINT}/{quote(external_id, safe='')}?externalAccountId={account}&appId={app_id}"


def signed_headers(method: str, url: str, secret: str = CLIENT_SECRET, age_ms: int = 0) -> dict[str, str]:
    ts = str(int(time.time() * 1000) - age_ms)
    return {"X-HubSpot-Signature-v3": sign_v3(secret, method, url, b"", ts), "X-HubSpot-Request-Timestamp": ts}


def flush_log(server: RecordingServer) -> list[dict[str, object]]:
    time.sleep(0.05)  # the line is written when the response ends, on the server's thread
    server.access_log.flush()
    return list(read_entries())


# -- the endpoint HubSpot calls ---------------------------------------------------------------------
def test_endpoint_answers_a_signed_link_that_serves_the_file(server: RecordingServer, store: RecordingStore,
                                                             stored: StoredRecording, blob: Path) -> None:
    store.share("call/1 ü", stored.sha256, app_id="1", external_account_id="acct")
    r = get(endpoint_url(server, "call/1 ü"))
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    link = r.json()["authenticatedUrl"]
    assert link.startswith(f"{server.local_url}/recordings/")
    f = get(link)
    assert f.status_code == 200 and f.content == blob.read_bytes()


def test_endpoint_errors(server: RecordingServer, store: RecordingStore, stored: StoredRecording) -> None:
    store.share("call-1", stored.sha256, app_id="1", external_account_id="acct")
    assert get(endpoint_url(server, "nope")).status_code == 404
    assert get(endpoint_url(server, "nope")).json()["message"]
    assert get(endpoint_url(server, "call-1", app_id="2")).status_code == 403
    assert get(endpoint_url(server, "call-1", account="other")).status_code == 403
    assert get(f"{server.local_url}{ENDPOINT}/call-1?appId=1").status_code == 400
    assert get(f"{server.local_url}{ENDPOINT}/call-1?externalAccountId=acct").status_code == 400
    assert get(f"{server.local_url}{ENDPOINT}/call-1?externalAccountId=&appId=1").status_code == 400
    assert requests.post(endpoint_url(server, "call-1"), timeout=5).status_code == 405
    assert get(f"{server.local_url}/elsewhere").status_code == 404


def test_signature_modes(store: RecordingStore, stored: StoredRecording) -> None:
    store.share("call-1", stored.sha256, app_id="1", external_account_id="acct")
    results = {}
    for mode in ("off", "if-present", "required"):
        with RecordingServer(store, signing_key=SIGNING_KEY, client_secret=CLIENT_SECRET,
                             signature_mode=mode) as srv:
            url = endpoint_url(srv, "call-1")
            results[mode] = (
                get(url).status_code,
                get(url, **signed_headers("GET", url)).status_code,
                get(url, **signed_headers("GET", url, secret="forged")).status_code,
                get(url, **signed_headers("GET", url, age_ms=6 * 60 * 1000)).status_code,
                get(url, **{"X-HubSpot-Signature-v3": "x"}).status_code,  # half the headers
            )
    assert results == {
        "off": (200, 200, 200, 200, 200),
        "if-present": (200, 200, 401, 401, 401),
        "required": (401, 200, 401, 401, 401),
    }
    signed = [e["signed"] for e in read_entries() if e.get("kind") == "endpoint"]
    assert signed[5:10] == ["absent", "valid", "invalid", "invalid", "invalid"]  # if-present's five


def test_signature_over_the_public_url(store: RecordingStore, stored: StoredRecording) -> None:
    """Behind a tunnel HubSpot signs the public URL; the server checks against it."""
    store.share("c", stored.sha256, app_id="1", external_account_id="acct")
    with RecordingServer(store, signing_key=SIGNING_KEY, client_secret=CLIENT_SECRET, signature_mode="required",
                         public_url="https://tunnel.example.com/base") as srv:
        local = endpoint_url(srv, "c")
        public = "https://tunnel.example.com/base" + local[len(srv.local_url):]
        assert get(local, **signed_headers("GET", public)).status_code == 200
        assert get(local, **signed_headers("GET", "https://elsewhere.example.com" + local[len(srv.local_url):])
                   ).status_code == 401
        link = get(local, **signed_headers("GET", public)).json()["authenticatedUrl"]
        assert link.startswith("https://tunnel.example.com/base/recordings/")


# -- the file ---------------------------------------------------------------------------------------
def test_whole_file_headers(server: RecordingServer, stored: StoredRecording, blob: Path) -> None:
    r = get(server.make_link(stored.sha256))
    assert r.status_code == 200
    assert r.content == blob.read_bytes()
    h = r.headers
    assert h["Content-Type"] == "application/octet-stream"
    assert h["Accept-Ranges"] == "bytes"
    assert h["ETag"] == f'"{stored.sha256}"'
    assert email.utils.parsedate_to_datetime(h["Last-Modified"]).timestamp() == int(stored.path.stat().st_mtime)
    assert h["Content-Length"] == str(blob.stat().st_size)
    assert h["Access-Control-Allow-Origin"] == "*"
    assert "attachment" in h["Content-Disposition"]
    assert "filename*=UTF-8''call%201%20%C3%A9.wav" in h["Content-Disposition"]


@pytest.mark.parametrize(("spec", "first", "last"), [
    ("bytes=0-99", 0, 99), ("bytes=1000-", 1000, 299_999), ("bytes=-500", 299_500, 299_999),
    ("bytes=299999-299999", 299_999, 299_999), ("bytes=100-999999", 100, 299_999),
    ("bytes=-999999", 0, 299_999), ("BYTES=5-9", 5, 9),
])
def test_single_ranges(server: RecordingServer, stored: StoredRecording, blob: Path, spec: str, first: int,
                       last: int) -> None:
    r = get(server.make_link(stored.sha256), Range=spec)
    assert r.status_code == 206
    assert r.headers["Content-Range"] == f"bytes {first}-{last}/300000"
    assert r.content == blob.read_bytes()[first : last + 1]
    assert r.headers["Content-Length"] == str(last - first + 1)


def parse_multipart(content_type: str, body: bytes) -> list[tuple[str, bytes]]:
    boundary = re.search(r"boundary=(\S+)", content_type).group(1).encode()  # type: ignore[union-attr]
    parts = []
    for chunk in body.split(b"--" + boundary)[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, data = chunk.partition(b"\r\n\r\n")
        assert data.endswith(b"\r\n")
        crange = re.search(rb"Content-Range: (bytes \S+)", head).group(1).decode()  # type: ignore[union-attr]
        parts.append((crange, data[:-2]))
    return parts


def test_several_ranges_make_a_multipart_answer(server: RecordingServer, stored: StoredRecording,
                                                blob: Path) -> None:
    data = blob.read_bytes()
    r = get(server.make_link(stored.sha256), Range="bytes=500-599, 0-9,-10, 550-700")
    assert r.status_code == 206
    assert r.headers["Content-Type"].startswith("multipart/byteranges; boundary=")
    assert int(r.headers["Content-Length"]) == len(r.content)
    assert parse_multipart(r.headers["Content-Type"], r.content) == [
        ("bytes 0-9/300000", data[0:10]),
        ("bytes 500-700/300000", data[500:701]),  # 500-599 and 550-700 coalesced
        ("bytes 299990-299999/300000", data[299_990:]),
    ]
    one = get(server.make_link(stored.sha256), Range="bytes=0-9,5-20")  # coalesced into one
    assert one.status_code == 206 and one.headers["Content-Range"] == "bytes 0-20/300000"


@pytest.mark.parametrize("spec", ["bytes=300000-", "bytes=300000-300010", "bytes=-0", "bytes=400000-,500000-"])
def test_unsatisfiable_ranges_get_416(server: RecordingServer, stored: StoredRecording, spec: str) -> None:
    r = get(server.make_link(stored.sha256), Range=spec)
    assert r.status_code == 416
    assert r.headers["Content-Range"] == "bytes */300000"


@pytest.mark.parametrize("spec", ["bytes=5-1", "bytes=abc", "items=0-5", "bytes=", "bytes 0-5", "bytes=1-2-3",
                                  "bytes=-", "bytes=0-1,x", "bytes=+1-2", "bytes=0x10-20"])
def test_malformed_ranges_are_ignored(server: RecordingServer, stored: StoredRecording, blob: Path,
                                      spec: str) -> None:
    r = get(server.make_link(stored.sha256), Range=spec)
    assert r.status_code == 200 and r.content == blob.read_bytes()


def test_if_range(server: RecordingServer, stored: StoredRecording, blob: Path) -> None:
    link = server.make_link(stored.sha256)
    lm = get(link).headers["Last-Modified"]
    etag = f'"{stored.sha256}"'
    assert get(link, Range="bytes=0-9", **{"If-Range": etag}).status_code == 206
    assert get(link, Range="bytes=0-9", **{"If-Range": lm}).status_code == 206
    stale = get(link, Range="bytes=0-9", **{"If-Range": '"something-else"'})
    assert stale.status_code == 200 and stale.content == blob.read_bytes()
    assert get(link, Range="bytes=0-9", **{"If-Range": "W/" + etag}).status_code == 200  # weak never matches
    old = email.utils.formatdate(stored.mtime - 3600, usegmt=True)
    assert get(link, Range="bytes=0-9", **{"If-Range": old}).status_code == 200


def test_conditional_requests(server: RecordingServer, stored: StoredRecording) -> None:
    link = server.make_link(stored.sha256)
    etag = f'"{stored.sha256}"'
    lm = get(link).headers["Last-Modified"]
    r = get(link, **{"If-None-Match": f'"other", {etag}'})
    assert r.status_code == 304 and r.content == b"" and r.headers["ETag"] == etag
    assert get(link, **{"If-None-Match": "W/" + etag}).status_code == 304  # weak comparison
    assert get(link, **{"If-None-Match": "*"}).status_code == 304
    assert get(link, **{"If-None-Match": '"other"'}).status_code == 200
    assert get(link, **{"If-Modified-Since": lm}).status_code == 304
    earlier = email.utils.formatdate(stored.mtime - 10, usegmt=True)
    assert get(link, **{"If-Modified-Since": earlier}).status_code == 200
    # If-None-Match wins over If-Modified-Since
    assert get(link, **{"If-None-Match": '"other"', "If-Modified-Since": lm}).status_code == 200
    assert get(link, **{"If-Match": '"other"'}).status_code == 412
    assert get(link, **{"If-Match": etag}, Range="bytes=0-0").status_code == 206
    assert get(link, **{"If-Unmodified-Since": earlier}).status_code == 412


def test_head_matches_get_without_a_body(server: RecordingServer, stored: StoredRecording) -> None:
    link = urlsplit(server.make_link(stored.sha256))
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("HEAD", link.path)
    r = conn.getresponse()
    assert r.status == 200 and r.read() == b""
    assert r.getheader("Content-Length") == "300000" and r.getheader("Accept-Ranges") == "bytes"
    conn.request("HEAD", link.path, headers={"Range": "bytes=0-9"})  # RFC 9110: Range is for GET only
    r = conn.getresponse()
    assert r.status == 200 and r.read() == b""
    conn.request("GET", link.path, headers={"Range": "bytes=0-3"})  # same connection still usable
    r = conn.getresponse()
    assert r.status == 206 and r.read() == stored.path.read_bytes()[:4]
    conn.close()


def test_bad_tokens_get_the_same_403(server: RecordingServer, store: RecordingStore, stored: StoredRecording,
                                     tmp_path: Path) -> None:
    good = server.make_link(stored.sha256)
    token = good.rsplit("/", 1)[1]
    expired = server.make_link(stored.sha256, ttl_s=-1)
    other_key = RecordingServer(store, signing_key="another-key").links.make(stored.sha256, 60)
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    removed_rec = store.add(random_file(tmp_path / "gone.wav", 100, seed=3))
    removed = server.make_link(removed_rec.sha256)
    store.remove(removed_rec.sha256)
    answers = set()
    for url in (expired, f"{server.local_url}/recordings/{other_key}", f"{server.local_url}/recordings/{tampered}",
                f"{server.local_url}/recordings/", f"{server.local_url}/recordings/{stored.sha256}",
                removed, f"{server.local_url}/recordings/{token}%2F..%2F..%2Fcatalog.sqlite3"):
        r = get(url)
        answers.add((r.status_code, r.content, r.headers.get("Content-Type")))
    assert answers == {(403, b"Forbidden\n", "text/plain")}
    for target in ("/recordings/../catalog.sqlite3", f"/recordings/{token}/../../catalog.sqlite3",
                   "/recordings/..%2Fcatalog.sqlite3"):  # sent as is: requests would remove the dots
        raw = raw_request(server.port, f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        assert raw.startswith(b"HTTP/1.1 403 ") and raw.endswith(b"\r\n\r\nForbidden\n")
    assert get(good).status_code == 200


def test_options_preflight_allows_range(server: RecordingServer, stored: StoredRecording) -> None:
    r = requests.options(server.make_link(stored.sha256), timeout=5,
                         headers={"Origin": "https://app.hubspot.com", "Access-Control-Request-Method": "GET",
                                  "Access-Control-Request-Headers": "range"})
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert "Range" in r.headers["Access-Control-Allow-Headers"]


def test_healthz(server: RecordingServer) -> None:
    time.sleep(0.05)
    data = get(f"{server.local_url}/healthz").json()
    from desktop_app import __version__

    assert data["status"] == "ok" and data["version"] == __version__
    assert data["uptime_s"] >= 0.05 and data["instance"] == server.instance


# -- behaviour --------------------------------------------------------------------------------------
def test_a_recording_added_by_another_process_after_start_is_served(server: RecordingServer,
                                                                      tmp_path: Path) -> None:
    src = random_file(tmp_path / "late.flac", 5000, seed=9)
    code = textwrap.dedent(f"""
        from desktop_app.server.recordings import RecordingStore
        s = RecordingStore()
        r = s.add({str(src)!r})
        s.share("late-call", r.sha256, app_id="7", external_account_id="x")
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    r = get(endpoint_url(server, "late-call", app_id="7", account="x"))
    assert r.status_code == 200
    assert get(r.json()["authenticatedUrl"]).content == src.read_bytes()


def test_pipelined_requests_on_one_connection(server: RecordingServer, stored: StoredRecording) -> None:
    path = urlsplit(server.make_link(stored.sha256)).path
    req = f"GET {path} HTTP/1.1\r\nHost: x\r\nRange: bytes=0-4\r\n\r\n"
    last = f"GET {path} HTTP/1.1\r\nHost: x\r\nRange: bytes=10-14\r\nConnection: close\r\n\r\n"
    data = raw_request(server.port, (req + req + last).encode())
    assert data.count(b"HTTP/1.1 206 Partial Content") == 3
    body = stored.path.read_bytes()
    assert data.endswith(b"\r\n\r\n" + body[10:15])
    assert data.count(b"\r\n\r\n" + body[0:5]) == 2


def test_bad_requests_get_400_and_a_closed_connection(server: RecordingServer) -> None:
    assert raw_request(server.port, b"NOT HTTP AT ALL\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    huge = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n"
    assert raw_request(server.port, huge).startswith(b"HTTP/1.1 431 ")


def test_a_client_hanging_up_mid_body_is_normal(store: RecordingStore, tmp_path: Path) -> None:
    big = store.add(random_file(tmp_path / "big.wav", 20_000_000, seed=4))
    with RecordingServer(store, signing_key=SIGNING_KEY) as srv:
        path = urlsplit(srv.make_link(big.sha256)).path
        for _ in range(5):
            s = socket.create_connection(("127.0.0.1", srv.port))
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nRange: bytes=0-\r\n\r\n".encode())
            s.recv(1000)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
            s.close()
        time.sleep(0.3)
        r = get(srv.make_link(big.sha256), Range="bytes=5-9")
        assert r.status_code == 206 and r.content == big.path.read_bytes()[5:10]
        srv.access_log.flush()
        entries = [e for e in read_entries() if e.get("range") == "bytes=0-"]
        assert len(entries) == 5
        # logged as aborted; the headers may have been all the client got before it hung up
        assert all(e.get("aborted") and e["status"] == 206 and e["bytes"] < 20_000_000 for e in entries)
        assert srv.connections() <= 1  # the hung-up connections are gone


def test_idle_and_slow_clients_time_out(store: RecordingStore) -> None:
    with RecordingServer(store, signing_key=SIGNING_KEY, idle_timeout_s=1.0) as srv:
        idle = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        slow = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        start = time.monotonic()
        closed_after = None
        for _ in range(20):  # a request trickling in, a byte every 0.2 s: active, but never complete
            try:
                slow.sendall(b"G")
            except (BrokenPipeError, ConnectionResetError):
                closed_after = time.monotonic() - start
                break
            time.sleep(0.2)
        assert closed_after is not None and 1.0 <= closed_after < 2.5
        assert idle.recv(100) == b""  # closed by the server
        idle.close()
        slow.close()


def test_files_stay_closed_under_many_requests(server: RecordingServer, stored: StoredRecording) -> None:
    from server_helpers import fds_open

    link = server.make_link(stored.sha256)
    with requests.Session() as s:
        for _ in range(2):  # the second answer starts after the first one ended (and opened the access log)
            s.get(link, headers={"Range": "bytes=0-0"}, timeout=5)
        before = fds_open()
        for i in range(200):
            assert s.get(link, headers={"Range": f"bytes={i}-{i + 100}"}, timeout=5).status_code == 206
        assert fds_open() == before


# -- run info, public URL, access log ----------------------------------------------------------------
def test_server_json_follows_the_server(store: RecordingStore) -> None:
    srv = RecordingServer(store, signing_key=SIGNING_KEY)
    assert runinfo.read() is None
    srv.start()
    try:
        info = runinfo.read()
        assert info is not None
        assert (info["port"], info["local_url"], info["public_url"]) == (srv.port, srv.local_url, None)
        assert info["host"] == "127.0.0.1" and isinstance(info["pid"], int) and info["started_at"] > 0
        srv.set_public_url("https://abc.example.com/")
        info = json.loads((paths.run_dir() / "server.json").read_text())
        assert info["public_url"] == "https://abc.example.com"
        assert info["endpoint_template"] == f"https://abc.example.com{ENDPOINT}/%s"
        assert srv.recording_endpoint_template() == f"https://abc.example.com{ENDPOINT}/%s"
        with pytest.raises(ValueError):
            srv.set_public_url("ftp://nope")
    finally:
        srv.stop()
    assert not (paths.run_dir() / "server.json").exists()


def test_start_fails_loudly_on_a_taken_port(store: RecordingStore, server: RecordingServer) -> None:
    with pytest.raises(OSError):
        RecordingServer(store, signing_key=SIGNING_KEY, port=server.port).start()


def test_start_stop_restart(store: RecordingStore, stored: StoredRecording) -> None:
    srv = RecordingServer(store, signing_key=SIGNING_KEY)
    for _ in range(2):
        t0 = time.monotonic()
        srv.start()
        assert time.monotonic() - t0 < 2
        assert get(srv.make_link(stored.sha256), Range="bytes=0-0").status_code == 206
        port = srv.port
        srv.stop()
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)


def test_access_log_and_fetches_for(server: RecordingServer, store: RecordingStore,
                                    stored: StoredRecording) -> None:
    store.share("call-9", stored.sha256, app_id="1", external_account_id="acct")
    assert fetches_for("call-9") == []
    url = endpoint_url(server, "call-9")
    link = get(url, **signed_headers("GET", url)).json()["authenticatedUrl"]
    token = link.rsplit("/", 1)[1]
    get(link, Range="bytes=0-99")
    get(server.make_link(stored.sha256))  # issued by hand: no externalId
    entries = flush_log(server)
    text = (paths.logs_dir() / "access.log").read_text()
    assert token not in text and token[:-6] not in text
    fetches = fetches_for("call-9")
    assert [(f.kind, f.status, f.signed, f.range, f.bytes) for f in fetches] == [
        ("endpoint", 200, "valid", None, len(get(url, **signed_headers("GET", url)).content)),
        ("recording", 206, None, "bytes=0-99", 100),
    ]
    assert all(f.sha256 == stored.sha256 and f.duration_ms >= 0 for f in fetches)
    assert entries[-1]["kind"] == "recording" and entries[-1]["bytes"] == 300_000
    assert "external_id" not in entries[-1]


def test_links_use_the_keyring_key_and_survive_a_restart(store: RecordingStore, stored: StoredRecording) -> None:
    from desktop_app import keystore

    assert keystore.get(keystore.LINK_SIGNING_KEY) is None
    with RecordingServer(store) as first:
        token = first.make_link(stored.sha256).rsplit("/", 1)[1]
    assert keystore.get(keystore.LINK_SIGNING_KEY)
    with RecordingServer(store) as second:
        assert get(f"{second.local_url}/recordings/{token}", Range="bytes=0-0").status_code == 206
    keystore.set(keystore.LINK_SIGNING_KEY, "a-new-key")  # a new key: old links stop working
    with RecordingServer(store) as third:
        assert get(f"{third.local_url}/recordings/{token}").status_code == 403


def test_two_workers_share_the_port_and_the_cap(store: RecordingStore, stored: StoredRecording,
                                                tmp_path: Path) -> None:
    import concurrent.futures

    with RecordingServer(store, signing_key=SIGNING_KEY, workers=2) as srv:
        link = srv.make_link(stored.sha256)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda i: get(link, Range=f"bytes={i}-{i + 9}"), range(40)))
        assert all(a.status_code == 206 for a in answers)
        assert [a.content for a in answers] == [stored.path.read_bytes()[i : i + 10] for i in range(40)]
    big = store.add(random_file(tmp_path / "big.wav", 30_000_000, seed=5))
    with RecordingServer(store, signing_key=SIGNING_KEY, workers=2, max_connections=3) as srv:
        # held from each CPU in turn: when connections are steered by CPU, both processes hold some,
        # and each must count the other's. Each is busy (an answer going out: idle ones would be closed
        # to make room)
        path = urlsplit(srv.make_link(big.sha256)).path
        held = []
        for cpu in from_each_cpu(3):
            with on_cpu(cpu):
                held.append(socket.create_connection(("127.0.0.1", srv.port)))
                held[-1].sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                held[-1].recv(1000)
        deadline = time.monotonic() + 2
        while srv.connections() < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        if srv.steered:
            assert sorted(srv.connections_per_process()) == [1, 2]
        for cpu in cpus():
            with on_cpu(cpu):
                answer = raw_request(srv.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert answer.startswith(b"HTTP/1.1 503 "), (cpu, answer[:40])
        for s in held:
            s.close()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{srv.local_url}/healthz", timeout=2)


def test_access_log_rotates_and_is_read_across_the_rotation(tmp_path: Path) -> None:
    from desktop_app.server.accesslog import AccessLog

    log = AccessLog(tmp_path / "access.log", max_bytes=2000)
    for i in range(60):
        log.write({"kind": "endpoint", "external_id": "c", "status": 200, "time": i, "n": i})
    log.close()
    assert (tmp_path / "access.log.1").exists()
    assert sum(p.stat().st_size for p in tmp_path.iterdir()) < 4200  # one old file kept, not all
    times = [f.time for f in fetches_for("c", path=tmp_path / "access.log")]
    assert times == sorted(times) and times[-1] == 59 and len(times) < 60


def test_access_log_lines_written_while_another_thread_flushes_are_all_kept(tmp_path: Path) -> None:
    """The server's thread appends lines while another (the sync pipeline, asking whether HubSpot
    fetched a call) flushes: none may be lost or written twice. Thread switches are forced often."""
    import sys
    import threading

    from desktop_app.server.accesslog import AccessLog

    log = AccessLog(tmp_path / "access.log", max_bytes=10**9)
    done = threading.Event()

    def flusher() -> None:
        while not done.is_set():
            log.flush()

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        t = threading.Thread(target=flusher)
        t.start()
        for i in range(100_000):
            log.write_line(f'{{"n":{i}}}')
        done.set()
        t.join()
    finally:
        sys.setswitchinterval(old)
    log.close()
    numbers = [int(line[5:-1]) for line in (tmp_path / "access.log").read_text().splitlines()]
    assert numbers == list(range(100_000))



@pytest.mark.parametrize("range_header", [None, "bytes=0-50331647"])
def test_a_fast_reader_gets_a_big_file_in_chunks(store: RecordingStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 range_header: str | None) -> None:
    """curl reads a loopback download as fast as it is sent, so the socket never fills: one sendfile
    would carry the whole file while the process's other connections wait. Each call sends at most
    SENDFILE_CHUNK, and the loop sends the next when it finds the socket writable again. Checked for
    the whole file (Python's paths) and for one range of a known link, which the C fast path answers:
    it sends the first chunk itself and leaves the rest to the queue, whose os.sendfile calls are
    watched here (the real calls, noted on their way)."""
    from desktop_app.server.core import SENDFILE_CHUNK

    size = 48 * 1024 * 1024
    rec = store.add(random_file(tmp_path / "big.wav", size, seed=11))
    calls: list[tuple[int, int]] = []
    real_sendfile = os.sendfile

    def sendfile(out_fd: int, in_fd: int, offset: int, count: int) -> int:
        calls.append((offset, count))
        return real_sendfile(out_fd, in_fd, offset, count)

    answers = 4
    with RecordingServer(store, signing_key=SIGNING_KEY) as srv:
        link = srv.make_link(rec.sha256)
        assert get(link, Range="bytes=0-0").status_code == 206  # the link is known: the fast path is open
        monkeypatch.setattr(os, "sendfile", sendfile)
        # several times on one connection: on a new one the kernel's send buffer starts small and fills
        # at once; later answers go out through the grown buffer as fast as curl reads
        out = subprocess.run(["curl", "-s", *["-o", "/dev/null"] * answers, "-w", "%{http_code} %{size_download} ",
                              *(["-H", f"Range: {range_header}"] if range_header else []), *[link] * answers],
                             capture_output=True, text=True, timeout=60, check=True).stdout
        monkeypatch.undo()
    assert out.split() == [str(206 if range_header else 200), str(size)] * answers
    assert calls and max(count for _, count in calls) <= SENDFILE_CHUNK
    # each answer's first send (Python's or C's) was at most a chunk: every answer left the rest to
    # the queue, which took it up at most a chunk on
    firsts = [calls[0][0]] + [b for (a, _), (b, _) in zip(calls, calls[1:], strict=False) if b < a]
    assert len(firsts) == answers and max(firsts) <= SENDFILE_CHUNK, firsts
