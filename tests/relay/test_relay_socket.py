"""The relay's connections as HubSpot's fetcher (or a proxy in front of the relay) uses them: kept alive,
one request after another. Each answer leaves in two writes (headers, then body); with Nagle's algorithm
on, the body waits for the client's delayed ACK of the headers, about 40 ms on Linux, on every answer but
the first of a connection (`benchmarks/relay.py` saw 44 ms per request on one connection). So every socket
the relay accepts must have TCP_NODELAY set, checked here on the real accepted socket (not a timing)."""

from __future__ import annotations

import http.client
import socket
from pathlib import Path
from typing import Any

from desktop_app.relay.db import TeamDB
from desktop_app.relay.service import Relay, RelayOptions
from desktop_app.relay.storage import FileStore


def test_every_accepted_connection_sends_without_nagle_delay(database_url: str, tmp_path: Path) -> None:
    db = TeamDB(database_url)
    relay = Relay(db, FileStore(tmp_path / "store"), RelayOptions(app_id="1", account_id="2"))
    accepted: list[socket.socket] = []
    handle = relay.httpd.process_request

    def keep(request: Any, client_address: Any) -> None:
        accepted.append(request)
        handle(request, client_address)

    relay.httpd.process_request = keep  # type: ignore[method-assign]
    relay.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", relay.port, timeout=10)
        for _ in range(3):  # one keep-alive connection, request after request
            conn.request("GET", "/healthz")
            answer = conn.getresponse()
            assert answer.status == 200 and b'"ok"' in answer.read()
        assert len(accepted) == 1
        assert accepted[0].getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        conn.close()
    finally:
        relay.stop()
        db.close()


def test_a_burst_of_new_connections_is_not_dropped_at_the_listen_backlog(database_url: str, tmp_path: Path) -> None:
    """socketserver listens with a backlog of 5: while the relay's threads are busy, the SYN of a sixth or
    later new connection is dropped and the client sends it again only a second later (the 1 s answers
    `benchmarks/relay.py` saw when its connections opened at once). Here the relay accepts nothing yet, so
    every connection must wait in the backlog: each one that cannot gets no handshake at all."""
    db = TeamDB(database_url)
    relay = Relay(db, FileStore(tmp_path / "store"), RelayOptions(app_id="1", account_id="2"))
    socks: list[socket.socket] = []
    try:
        refused = 0
        for _ in range(32):  # HubSpot's fetchers, or a proxy in front, opening connections at once
            s = socket.socket()
            s.settimeout(0.5)  # a handshake on loopback takes microseconds; a dropped SYN is retried after 1 s
            socks.append(s)
            try:
                s.connect(("127.0.0.1", relay.port))
            except OSError:
                refused += 1
        assert refused == 0
    finally:
        for s in socks:
            s.close()
        relay.httpd.server_close()
        db.close()
