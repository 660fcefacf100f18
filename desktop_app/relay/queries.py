"""The team's history on PostgreSQL: the supervisors' queries, totals and CSV the desk has over its SQLite
history (`desktop_app/sync/history.py`: the same `Query` filter, the same statuses and CSV columns), plus
totals per agent and for the whole team.

Every function takes the ``viewer`` (the agent asking): an agent sees their own submissions only, a
supervisor everyone's. The indexes they use are migration 3 of `db.MIGRATIONS`: (created_at, id) for the
newest-first pages, (created_at, status) and (agent_id, status, created_at) for the totals, and a
trigram index (``pg_trgm``, where the server has it) over the searched text, so ``text`` finds any part
of 3+ characters of a title, number, id or error without reading every row.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import psycopg
from psycopg.rows import dict_row

from desktop_app.relay.db import Agent
from desktop_app.sync.history import CSV_COLUMNS, STATUSES, Query

MAX_PAGE = 1000
EVERYTHING = Query()
TOTALS = ("day", "agent", "team")

# the text the supervisors' filter searches: the same columns as the desk's (`history._TEXT_COLUMNS`);
# the trigram index of migration 3 is on exactly this expression
TEXT_EXPR = ("(s.title || ' ' || s.recording_name || ' ' || s.from_number || ' ' || s.to_number || ' ' ||"
             " s.external_id || ' ' || coalesce(s.call_id, '') || ' ' || coalesce(s.error, ''))")

_COLUMNS = (
    "s.id, s.external_id, a.name AS agent, s.created_at, s.updated_at, s.recording_name, s.recording_sha256,"
    " s.recording_size, s.details, s.title, s.owner_id, s.contact_id, s.from_number, s.to_number, s.duration_ms,"
    " s.call_timestamp, s.state, s.status, s.call_id, s.portal_id, s.error, s.error_status,"
    " s.error_correlation_id, s.next_attempt_at, s.ready_at"
)


def query_from_params(params: Mapping[str, Sequence[str]]) -> Query:
    """The filter of an API request's query string (``status`` repeatable, ``since``/``until`` ISO 8601,
    ``agent``, ``owner``, ``contact``, ``text``); ValueError with one sentence for a bad value."""
    def one(name: str) -> str | None:
        values = params.get(name) or []
        return values[-1].strip() or None if values else None

    statuses = tuple(s for s in params.get("status") or [] if s)
    bad = [s for s in statuses if s not in STATUSES]
    if bad:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {bad[0]!r}.")

    def moment(name: str) -> dt.datetime | None:
        text = one(name)
        if text is None:
            return None
        try:
            when = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{name} must be a date (YYYY-MM-DD) or an ISO 8601 time, not {text[:40]!r}.") from None
        return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)

    text = one("text")
    if text is not None and len(text) > 200:
        raise ValueError("text may hold at most 200 characters.")
    return Query(statuses=statuses, agent=one("agent"), owner_id=one("owner"), contact_id=one("contact"),
                 since=moment("since"), until=moment("until"), text=text)


def where(query: Query, viewer: Agent) -> tuple[str, list[Any]]:
    """The WHERE clause (over ``submissions s`` joined to ``agents a``) of ``query`` as ``viewer`` sees it."""
    clauses: list[str] = []
    args: list[Any] = []
    if not viewer.is_supervisor:
        clauses.append("s.agent_id = %s")
        args.append(viewer.id)
    if query.statuses:
        clauses.append("s.status = ANY(%s)")
        args.append(list(query.statuses))
    if query.agent:
        clauses.append("s.agent_id IN (SELECT id FROM agents WHERE name = %s)")
        args.append(query.agent)
    for column, value in (("s.owner_id", query.owner_id), ("s.contact_id", query.contact_id)):
        if value:
            clauses.append(f"{column} = %s")
            args.append(value)
    if query.since:
        clauses.append("s.created_at >= %s")
        args.append(query.since)
    if query.until:
        clauses.append("s.created_at < %s")
        args.append(query.until)
    if query.text:
        like = "%" + query.text.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        clauses.append(f"{TEXT_EXPR} ILIKE %s")
        args.append(like)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


def _row(r: dict[str, Any]) -> dict[str, Any]:
    """A submission as the desk's ``history --json`` shows one (`history.Submission.to_dict`'s names)."""
    details = r["details"] if isinstance(r["details"], dict) else json.loads(r["details"] or "{}")
    out = {
        "id": r["id"], "created_at": r["created_at"], "updated_at": r["updated_at"], "agent": r["agent"],
        "recording": r["recording_name"], "recording_sha256": r["recording_sha256"],
        "recording_size": r["recording_size"], "status": r["status"], "state": r["state"],
        "external_id": r["external_id"], "call_id": r["call_id"], "portal_id": r["portal_id"],
        "contact_id": r["contact_id"] or None, "owner_id": r["owner_id"] or None,
        "details": {**details, "title": r["title"], "from_number": r["from_number"], "to_number": r["to_number"],
                    "duration_ms": r["duration_ms"]},
        "error": r["error"], "error_status": r["error_status"], "correlation_id": r["error_correlation_id"],
        "next_attempt_at": r["next_attempt_at"], "ready_at": r["ready_at"],
    }
    out["call_url"] = (f"https://app.hubspot.com/contacts/{r['portal_id']}/record/0-48/{r['call_id']}"
                       if r["portal_id"] and r["call_id"] else None)
    return {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in out.items()}


def search(conn: psycopg.Connection[Any], viewer: Agent, query: Query = EVERYTHING, *, limit: int = 200,
           offset: int = 0) -> list[dict[str, Any]]:
    """One page of the submissions matching ``query``, newest first."""
    clause, args = where(query, viewer)
    sql = (f"SELECT {_COLUMNS} FROM submissions s JOIN agents a ON a.id = s.agent_id{clause}"
           " ORDER BY s.created_at DESC, s.id DESC LIMIT %s OFFSET %s")
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(sql, [*args, max(0, min(limit, MAX_PAGE)), max(0, offset)]).fetchall()
    return [_row(r) for r in rows]


def count(conn: psycopg.Connection[Any], viewer: Agent, query: Query = EVERYTHING) -> int:
    clause, args = where(query, viewer)
    row = conn.execute(f"SELECT count(*) FROM submissions s{clause}", args).fetchone()
    return int(row[0]) if row else 0


def iter_all(conn: psycopg.Connection[Any], viewer: Agent, query: Query = EVERYTHING, *,
             page: int = MAX_PAGE) -> Iterator[dict[str, Any]]:
    """Every matching submission, newest first, a page at a time (keyset: no OFFSET over a long history)."""
    clause, args = where(query, viewer)
    after: tuple[dt.datetime, int] | None = None
    while True:
        keyset = ""
        extra: list[Any] = []
        if after is not None:
            keyset = (" AND " if clause else " WHERE ") + "(s.created_at, s.id) < (%s, %s)"
            extra = [after[0], after[1]]
        with conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"SELECT {_COLUMNS} FROM submissions s JOIN agents a ON a.id = s.agent_id{clause}{keyset}"
                " ORDER BY s.created_at DESC, s.id DESC LIMIT %s", [*args, *extra, page]).fetchall()
        for r in rows:
            yield _row(r)
        if len(rows) < page:
            return
        after = (rows[-1]["created_at"], rows[-1]["id"])


def _totals(rows: Sequence[tuple[Any, str, int]], key: str) -> list[dict[str, Any]]:
    out: dict[Any, dict[str, Any]] = {}
    for name, status, n in rows:
        entry = out.setdefault(name, {key: name, "total": 0, **{s: 0 for s in STATUSES}})
        entry[status] = entry.get(status, 0) + n
        entry["total"] += n
    return list(out.values())


def totals_per_day(conn: psycopg.Connection[Any], viewer: Agent, query: Query = EVERYTHING) -> list[dict[str, Any]]:
    """Per day (UTC) and status, as the desk's `History.totals_per_day`."""
    clause, args = where(query, viewer)
    rows = conn.execute(
        "SELECT to_char(date_trunc('day', s.created_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD') AS day, s.status,"
        f" count(*) FROM submissions s{clause} GROUP BY 1, 2 ORDER BY 1", args).fetchall()
    return _totals(rows, "day")


def totals_per_agent(conn: psycopg.Connection[Any], viewer: Agent, query: Query = EVERYTHING) -> list[dict[str, Any]]:
    """Per agent (by name) and status."""
    clause, args = where(query, viewer)
    rows = conn.execute(
        f"SELECT a.name, t.status, t.n FROM (SELECT s.agent_id, s.status, count(*) AS n FROM submissions s{clause}"
        " GROUP BY 1, 2) t JOIN agents a ON a.id = t.agent_id ORDER BY a.name", args).fetchall()
    return _totals(rows, "agent")


def totals_team(conn: psycopg.Connection[Any], viewer: Agent, query: Query = EVERYTHING) -> list[dict[str, Any]]:
    """The whole team's totals per status (an agent: their own), with how many agents they come from."""
    clause, args = where(query, viewer)
    rows = conn.execute(f"SELECT s.status, count(*), count(DISTINCT s.agent_id) FROM submissions s{clause}"
                        " GROUP BY 1", args).fetchall()
    entry: dict[str, Any] = {"team": "team", "total": 0, **{s: 0 for s in STATUSES}}
    agents = conn.execute(f"SELECT count(DISTINCT s.agent_id) FROM submissions s{clause}", args).fetchone()
    for status, n, _ in rows:
        entry[status] = entry.get(status, 0) + n
        entry["total"] += n
    entry["agents"] = int(agents[0]) if agents else 0
    return [entry]


def totals(conn: psycopg.Connection[Any], viewer: Agent, by: str, query: Query = EVERYTHING) -> list[dict[str, Any]]:
    if by not in TOTALS:
        raise ValueError(f"by must be one of {', '.join(TOTALS)}.")
    fn = {"day": totals_per_day, "agent": totals_per_agent, "team": totals_team}[by]
    return fn(conn, viewer, query)


def export_csv(conn: psycopg.Connection[Any], viewer: Agent, query: Query = EVERYTHING,
               out: io.TextIOBase | None = None) -> str:
    """CSV of every matching submission, the desk's columns (`history.CSV_COLUMNS`)."""
    buffer = out if out is not None else io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for sub in iter_all(conn, viewer, query):
        d = sub["details"]
        writer.writerow([
            sub["id"], sub["created_at"], sub["agent"], sub["recording"], sub["status"], sub["state"],
            d.get("title", ""), d.get("from_number", ""), d.get("to_number", ""), d.get("direction", ""),
            d.get("duration_ms", 0), sub["owner_id"] or "", sub["contact_id"] or "", sub["call_id"] or "",
            sub["external_id"], sub["call_url"] or "", sub["error"] or "", sub["correlation_id"] or "",
            d.get("timestamp", "") or "", sub["contact_id"] or "", sub["owner_id"] or "", d.get("notes", "") or "",
        ])
    return buffer.getvalue() if isinstance(buffer, io.StringIO) and out is None else ""
