"""Arbitrary Range headers against the running server, each answer checked against RFC 9110 as
read here (independently of the server's parser): status, Content-Range, and the exact bytes."""

from __future__ import annotations

import http.client
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_helpers import SIGNING_KEY, random_file

from desktop_app.server import RecordingServer
from desktop_app.server.ranges import MAX_RANGES  # the server's one policy number: more specs, no ranges
from desktop_app.server.recordings import RecordingStore

SIZES = (1, 1000, 70_000)


def rfc_ranges(header: str, size: int) -> list[tuple[int, int]] | None:
    """None: ignore the header (whole file). Else the satisfiable ranges, inclusive, as asked."""
    m = re.fullmatch(r"(?i:bytes)=(.*)", header, flags=re.S)
    if not m:
        return None
    specs = [s.strip(" \t") for s in m.group(1).split(",")]
    specs = [s for s in specs if s]
    if not specs or len(specs) > MAX_RANGES:
        return None
    out = []
    for spec in specs:
        if m2 := re.fullmatch(r"([0-9]+)-([0-9]*)", spec):
            first = int(m2.group(1))
            last = int(m2.group(2)) if m2.group(2) else None
            if last is not None and last < first:
                return None
            if first < size:
                out.append((first, size - 1 if last is None else min(last, size - 1)))
        elif m3 := re.fullmatch(r"-([0-9]+)", spec):
            n = int(m3.group(1))
            if n > 0:
                out.append((max(0, size - n), size - 1))
        else:
            return None
    return out


def number(size: int) -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from([0, 1, size - 1, size, size + 1, 2**63]), st.integers(0, size + 10))


def range_spec(size: int) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(number(size), number(size)).map(lambda t: f"{t[0]}-{t[1]}"),
        number(size).map(lambda a: f"{a}-"),
        number(size).map(lambda n: f"-{n}"),
        st.sampled_from(["", "-", "x", "1-2-3", " 5-6 ", "\t0-0", "+1-2", "0x1-2", "1 -2", "²-4", "1-¹"]),
    )


def range_header(size: int) -> st.SearchStrategy[str]:
    structured = st.tuples(
        st.sampled_from(["bytes", "BYTES", "Bytes", "bits", "bytes ", ""]),
        st.lists(range_spec(size), min_size=0, max_size=8),
        st.sampled_from([",", ", ", " ,", ",,"]),
    ).map(lambda t: f"{t[0]}={t[2].join(t[1])}")
    junk = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30)
    many = st.integers(MAX_RANGES - 2, MAX_RANGES + 2).map(lambda n: "bytes=" + ",".join(f"{i * 3}-{i * 3}" for i in range(n)))
    return st.one_of(structured, junk, many)


class Files(dict[int, tuple[bytes, int, str]]):
    """size -> (content, port, path); a short repr for Hypothesis' reports."""

    def __repr__(self) -> str:
        return f"<files of sizes {sorted(self)}>"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Files]:
    home = tmp_path_factory.mktemp("ranges-home")
    store = RecordingStore(home / "recordings")
    out = Files()
    srv = RecordingServer(store, signing_key=SIGNING_KEY)
    srv.start()
    for size in SIZES:
        rec = store.add(random_file(Path(home) / f"f{size}.wav", size, seed=size))
        out[size] = (rec.path.read_bytes(), srv.port, urlsplit(srv.make_link(rec.sha256)).path)
    yield out
    srv.stop()


def fetch(port: int, path: str, header: str) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest("GET", path)
        conn.putheader("Range", header)
        conn.endheaders()
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def parts_of(content_type: str, body: bytes) -> list[tuple[int, int, int, bytes]]:
    boundary = re.fullmatch(r"multipart/byteranges; boundary=(\S+)", content_type).group(1)  # type: ignore[union-attr]
    pieces = body.split(f"--{boundary}".encode())
    assert pieces[-1] == b"--\r\n", "the closing delimiter ends the body"
    out = []
    for piece in pieces[1:-1]:
        head, sep, data = piece.partition(b"\r\n\r\n")
        assert sep and data.endswith(b"\r\n")
        m = re.search(rb"\r\nContent-Range: bytes (\d+)-(\d+)/(\d+)", head)
        assert m, head
        out.append((int(m.group(1)), int(m.group(2)), int(m.group(3)), data[:-2]))
    return out


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_range_header_gets_the_rfc_answer(files: Files, data: st.DataObject) -> None:
    size = data.draw(st.sampled_from(SIZES))
    check(files, size, data.draw(range_header(size)))


EDGES = ["bytes=-0", "bytes=0-0", "bytes=-1", "bytes=0-", "bytes=-0,0-0", "bytes={size}-", "bytes={last}-",
         "bytes={last}-{size}", "bytes=-{size}", "bytes=-{after}", "bytes=0-{last},-1", "bytes=1-1,1-1",
         "bytes=0-1,3-4", "bytes=0-1,2-3", "bytes= 0-1", "bytes=0-1 ", "bytes=²-4", "bytes=1-0"]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("template", EDGES)
def test_edge_range_headers(files: Files, size: int, template: str) -> None:
    check(files, size, template.format(size=size, last=size - 1, after=size + 1))


def check(files: Files, size: int, header: str) -> None:
    content, port, path = files[size]
    status, headers, body = fetch(port, path, header)
    want = rfc_ranges(header.strip(" \t"), size)
    if want is None:
        assert (status, body) == (200, content)
        assert "content-range" not in headers
    elif not want:
        assert status == 416
        assert headers["content-range"] == f"bytes */{size}"
    else:
        assert status == 206
        asked = set()
        for first, last in want:
            asked.update(range(first, last + 1))
        if headers["content-type"].startswith("multipart/byteranges"):
            parts = parts_of(headers["content-type"], body)
            assert len(parts) >= 2
        else:
            m = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", headers["content-range"])
            assert m
            parts = [(int(m.group(1)), int(m.group(2)), int(m.group(3)), body)]
        served: set[int] = set()
        for first, last, total, chunk in parts:
            assert total == size and first <= last < size
            assert chunk == content[first : last + 1]
            assert served.isdisjoint(range(first, last + 1)), "parts overlap"
            served.update(range(first, last + 1))
        # every byte asked for is served; anything more is only a gap a coalescing server may fill
        assert asked <= served
        assert served == asked or len(parts) < len(want)
        assert int(headers["content-length"]) == len(body)
