"""The team's history on PostgreSQL: the supervisors' queries, totals and CSV the desk has over its SQLite
history (`desktop_app/sync/history.py`: the same `Query` filter, the same statuses and CSV columns), plus
totals per agent and for the whole team.

Every function takes the ``viewer`` (the agent asking): an agent sees their own submissions only, a
supervisor everyone's. What they read is migration 4 of `db.MIGRATIONS`: indexes (created_at, id),
(status, created_at, id) and (agent_id, created_at, id) for the newest-first pages; `submission_totals`
(per UTC day, agent and status, kept by statement-level triggers) for the totals and counts of a filter
of status, agent and dates (the part-days at either end counted from the submissions); and a trigram
index (``pg_trgm``, where the server has it) over the searched text, so ``text`` finds any part of 3+
characters of a title, number, id or error without reading every row.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

import psycopg
from psycopg.rows import dict_row

from desktop_app.relay.db import Agent
from desktop_app.sync.history import STATUSES, Query, csv_row, write_csv

MAX_PAGE = 1000
EVERYTHING = Query()
TOTALS = ("day", "agent", "team")

# the text the supervisors' filter searches: the same columns as the desk's (`history._TEXT_COLUMNS`);
# the trigram index of migration 4 is on exactly this expression
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


def _agent_ids(conn: psycopg.Connection[Any], name: str) -> list[int]:
    """The ids of the agents named ``name`` (one active, any revoked ones before it): looked up first so the
    planner sees the ids and uses the (agent_id, created_at, id) index."""
    return [int(r[0]) for r in conn.execute("SELECT id FROM agents WHERE name = %s", (name,)).fetchall()]


def _one_of(column: str, values: list[Any], args: list[Any]) -> str:
    if len(values) == 1:
        args.append(values[0])
        return f"{column} = %s"
    args.append(values)
    return f"{column} = ANY(%s)"


def where(conn: psycopg.Connection[Any], query: Query, viewer: Agent, column: str = "s.agent_id") -> tuple[str, list[Any]]:
    """The WHERE clause (over ``submissions s``) of ``query`` as ``viewer`` sees it."""
    clauses: list[str] = []
    args: list[Any] = []
    if not viewer.is_supervisor:
        clauses.append("s.agent_id = %s")
        args.append(viewer.id)
    # one value is written as "=": the planner then walks the (status|agent_id, created_at, id) index in
    # order for a page, which it does not do for "= ANY(array)", even of one element
    if query.statuses:
        clauses.append(_one_of("s.status", list(query.statuses), args))
    if query.agent:
        clauses.append(_one_of("s.agent_id", _agent_ids(conn, query.agent), args))
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
    """One page of the submissions matching ``query``, newest first. Several statuses: the newest of each
    status read on its own from the (status, created_at, id) index, then merged (PostgreSQL cannot walk
    that index in order for ``status = ANY``, and would sort every matching row instead)."""
    limit, offset = max(0, min(limit, MAX_PAGE)), max(0, offset)
    order = " ORDER BY s.created_at DESC, s.id DESC"
    if len(query.statuses) > 1:
        parts, args = [], []
        for status in query.statuses:
            clause, part_args = where(conn, replace(query, statuses=(status,)), viewer)
            parts.append(f"(SELECT s.id, s.created_at FROM submissions s{clause}{order} LIMIT %s)")
            args += [*part_args, limit + offset]
        sql = (f"SELECT {_COLUMNS} FROM ({' UNION ALL '.join(parts)}) page JOIN submissions s ON s.id = page.id"
               f" JOIN agents a ON a.id = s.agent_id{order} LIMIT %s OFFSET %s")
    else:
        clause, args = where(conn, query, viewer)
        sql = f"SELECT {_COLUMNS} FROM submissions s JOIN agents a ON a.id = s.agent_id{clause}{order} LIMIT %s OFFSET %s"
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(sql, [*args, limit, offset]).fetchall()
    return [_row(r) for r in rows]


def iter_all(conn: psycopg.Connection[Any], viewer: Agent, query: Query = EVERYTHING, *,
             page: int = MAX_PAGE) -> Iterator[dict[str, Any]]:
    """Every matching submission, newest first, a page at a time (keyset: no OFFSET over a long history)."""
    clause, args = where(conn, query, viewer)
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


def _midnight(moment: dt.datetime, *, up: bool) -> dt.datetime:
    day = moment.astimezone(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return day + dt.timedelta(days=1) if up and day != moment else day


_GROUP = {"day": ("to_char(date_trunc('day', s.created_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD')", "t.day"),
          "agent": ("s.agent_id", "t.agent_id"), "status": ("NULL", "NULL")}


def _rollup_fits(query: Query) -> bool:
    return not (query.text or query.owner_id or query.contact_id)


def _grouped(conn: psycopg.Connection[Any], viewer: Agent, query: Query, by: str) -> list[tuple[Any, str, int]]:
    """(day, agent_id or None as ``by`` says, status, count) of the matching submissions. A filter of
    status, agent and dates only reads the totals the triggers keep (`submission_totals`, whole UTC days)
    plus the submissions of the part-days at either end; any other filter reads the submissions."""
    row_key, total_key = _GROUP[by]

    def from_rows(q: Query) -> list[tuple[Any, str, int]]:
        clause, args = where(conn, q, viewer)
        rows = conn.execute(f"SELECT {row_key}, s.status, count(*) FROM submissions s{clause}"
                            " GROUP BY 1, 2", args).fetchall()
        return [(r[0], str(r[1]), int(r[2])) for r in rows]

    if not _rollup_fits(query):
        return from_rows(query)
    first = _midnight(query.since, up=True) if query.since else None
    end = _midnight(query.until, up=False) if query.until else None
    if first is not None and end is not None and first >= end:  # within one day
        return from_rows(query)
    out: list[tuple[Any, str, int]] = []
    if query.since is not None and first is not None and first != query.since:
        out += from_rows(replace(query, until=first))
    if query.until is not None and end is not None and end != query.until:
        out += from_rows(replace(query, since=end))
    clauses: list[str] = ["t.n <> 0"]
    args: list[Any] = []
    if not viewer.is_supervisor:
        clauses.append("t.agent_id = %s")
        args.append(viewer.id)
    if query.statuses:
        clauses.append("t.status = ANY(%s)")
        args.append(list(query.statuses))
    if query.agent:
        clauses.append("t.agent_id = ANY(%s)")
        args.append(_agent_ids(conn, query.agent))
    if first is not None:
        clauses.append("t.day >= %s")
        args.append(first.date())
    if end is not None:
        clauses.append("t.day < %s")
        args.append(end.date())
    rows = conn.execute(f"SELECT {total_key}, t.status, sum(t.n)::bigint FROM submission_totals t"
                        f" WHERE {' AND '.join(clauses)} GROUP BY 1, 2", args).fetchall()
    key: Any = (lambda d: d.isoformat()) if by == "day" else (lambda k: k)  # a date, named after grouping
    return out + [(key(r[0]), str(r[1]), int(r[2])) for r in rows]


def _totals(rows: Sequence[tuple[Any, str, int]], key: str) -> list[dict[str, Any]]:
    out: dict[Any, dict[str, Any]] = {}
    for name, status, n in rows:
        entry = out.setdefault(name, {key: name, "total": 0, **{s: 0 for s in STATUSES}})
        entry[status] = entry.get(status, 0) + n
        entry["total"] += n
    return list(out.values())


def count(conn: psycopg.Connection[Any], viewer: Agent, query: Query = EVERYTHING) -> int:
    if _rollup_fits(query):
        return sum(n for *_, n in _grouped(conn, viewer, query, "status"))
    clause, args = where(conn, query, viewer)
    row = conn.execute(f"SELECT count(*) FROM submissions s{clause}", args).fetchone()
    return int(row[0]) if row else 0


def totals_per_day(conn: psycopg.Connection[Any], viewer: Agent, query: Query = EVERYTHING) -> list[dict[str, Any]]:
    """Per day (UTC) and status, as the desk's `History.totals_per_day`."""
    return _totals(sorted(_grouped(conn, viewer, query, "day")), "day")


def _agent_names(conn: psycopg.Connection[Any], ids: set[int]) -> dict[int, str]:
    rows = conn.execute("SELECT id, name FROM agents WHERE id = ANY(%s)", (sorted(ids),)).fetchall()
    return {int(i): str(n) for i, n in rows}


def totals_per_agent(conn: psycopg.Connection[Any], viewer: Agent, query: Query = EVERYTHING) -> list[dict[str, Any]]:
    """Per agent (by name) and status."""
    grouped = [(agent_id, status, n) for agent_id, status, n in _grouped(conn, viewer, query, "agent") if n]
    names = _agent_names(conn, {a for a, _, _ in grouped})
    return _totals(sorted((names.get(a, str(a)), status, n) for a, status, n in grouped), "agent")


def totals_team(conn: psycopg.Connection[Any], viewer: Agent, query: Query = EVERYTHING) -> list[dict[str, Any]]:
    """The whole team's totals per status (an agent: their own), with how many agents they come from."""
    entry: dict[str, Any] = {"team": "team", "total": 0, **{s: 0 for s in STATUSES}}
    agents: set[int] = set()
    for agent_id, status, n in _grouped(conn, viewer, query, "agent"):
        if n:
            agents.add(agent_id)
            entry[status] = entry.get(status, 0) + n
            entry["total"] += n
    entry["agents"] = len(agents)
    return [entry]


def totals(conn: psycopg.Connection[Any], viewer: Agent, by: str, query: Query = EVERYTHING) -> list[dict[str, Any]]:
    if by not in TOTALS:
        raise ValueError(f"by must be one of {', '.join(TOTALS)}.")
    fn = {"day": totals_per_day, "agent": totals_per_agent, "team": totals_team}[by]
    return fn(conn, viewer, query)


def export_csv(conn: psycopg.Connection[Any], viewer: Agent, query: Query = EVERYTHING,
               out: io.TextIOBase | None = None) -> str:
    """CSV of every matching submission, the desk's columns (`history.CSV_COLUMNS`)."""
    return write_csv((csv_row(
        sub["details"], id=sub["id"], created_at=sub["created_at"], agent=sub["agent"], recording=sub["recording"],
        status=sub["status"], state=sub["state"], duration_ms=sub["details"].get("duration_ms", 0),
        owner_id=sub["owner_id"] or "", contact_id=sub["contact_id"] or "", call_id=sub["call_id"] or "",
        external_id=sub["external_id"], call_url=sub["call_url"] or "", error=sub["error"] or "",
        correlation_id=sub["correlation_id"] or "", contact=sub["contact_id"] or "", owner=sub["owner_id"] or "")
        for sub in iter_all(conn, viewer, query)), out)
