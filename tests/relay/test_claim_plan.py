"""The relay's workers claim every half second each: on a team history of many finished submissions the claim
must find due work through its partial index, not by reading the whole table."""

from __future__ import annotations

import datetime as dt

import pytest

from desktop_app.relay import db as teamdb
from desktop_app.relay.db import PIPELINE_STATUSES, WORK_STATUSES, TeamDB


@pytest.mark.parametrize("statuses", [WORK_STATUSES, PIPELINE_STATUSES])
def test_a_claim_on_a_large_history_uses_an_index(database_url: str, statuses: tuple[str, ...]) -> None:
    with TeamDB(database_url) as db, db.connection() as conn:
        agent = conn.execute("INSERT INTO agents (name, role, token_sha256) VALUES ('a', 'agent', %s) RETURNING id",
                             ("0" * 64,)).fetchone()
        assert agent is not None
        conn.execute(
            "INSERT INTO submissions (agent_id, recording_name, external_id, state, status)"
            " SELECT %s, 'r.wav', 'x-' || n, 'transcript_seen', 'transcribed' FROM generate_series(1, 50000) n",
            (agent[0],))
        conn.execute("INSERT INTO submissions (agent_id, recording_name, external_id, state, status)"
                     " VALUES (%s, 'q.wav', 'queued-1', 'checked', 'queued')", (agent[0],))
        conn.execute("ANALYZE submissions")
        seen: list[str] = []
        real_execute = conn.execute

        def explain(query, params=None, **kw):  # type: ignore[no-untyped-def]
            seen.extend(r[0] for r in real_execute(b"EXPLAIN " + query.as_bytes(conn) if hasattr(query, "as_bytes")
                                                   else "EXPLAIN " + query, params).fetchall())
            return real_execute(query, params, **kw)

        conn.execute = explain  # type: ignore[method-assign]
        try:
            got = teamdb.claim(conn, "relay-x/1", dt.timedelta(seconds=30), statuses)
        finally:
            conn.execute = real_execute  # type: ignore[method-assign]
    assert got is not None and got.external_id == "queued-1"
    plan = "\n".join(seen)
    assert "Seq Scan on submissions" not in plan, plan
