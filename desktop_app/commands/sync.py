"""``callrelay upload``, ``callrelay resume`` and ``callrelay history``."""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import json
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING, Any

from desktop_app.sync import AUDIO_SUFFIXES
from desktop_app.sync import history as h

if TYPE_CHECKING:
    from desktop_app.relay.desk import TeamDesk
    from desktop_app.runtime import Runtime

def register(sub: Any) -> None:
    up = sub.add_parser("upload", help="upload recordings and log their calls in HubSpot",
                        description="Upload a recording (or a folder of them) and log the call in HubSpot. "
                        "Needs the recording server of this data directory running (the app, or `callrelay serve`).")
    up.add_argument("files", nargs="*", type=Path, metavar="FILE")
    up.add_argument("--folder", type=Path, help="upload every recording in this folder")
    up.add_argument("--manifest", type=Path, help="CSV of call details, one row per file (column `file`)")
    up.add_argument("--from", dest="from_number", help="caller's number")
    up.add_argument("--to", dest="to_number", help="recipient's number")
    up.add_argument("--contact", help="contact id, email, or phone number (+…) to associate the call with")
    up.add_argument("--owner", help="HubSpot owner id")
    up.add_argument("--title", help="call title")
    up.add_argument("--direction", type=str.upper, choices=("INBOUND", "OUTBOUND"))
    up.add_argument("--notes", help="call notes")
    up.add_argument("--timestamp", help="when the call took place (ISO 8601; default: from the file)")
    up.add_argument("--jobs", type=int, default=4, help="submissions run at once (default 4)")
    up.add_argument("--again", action="store_true",
                    help="log a recording this HubSpot account already has as a new call (default: skip it)")
    up.add_argument("--wait", action="store_true",
                    help="on a desk that joined a team: wait until the relay's pipeline ends for each recording")
    up.add_argument("--wait-timeout", type=float, default=600, metavar="SECONDS",
                    help="how long --wait waits in all (default 600)")
    up.set_defaults(func=cmd_upload)

    team = sub.add_parser("team", help="the team relay this desk joined (callrelay join)")
    team_sub = team.add_subparsers(dest="team_command", required=True, metavar="COMMAND")
    flush = team_sub.add_parser("flush", aliases=["resume"], help="send the submissions this desk queued while the relay could not "
                                "be reached (also: resume after a desk was stopped mid-upload)")
    flush.add_argument("--wait", action="store_true", help="wait until the relay's pipeline ends for each")
    flush.add_argument("--wait-timeout", type=float, default=600, metavar="SECONDS")
    flush.set_defaults(func=cmd_team_flush)

    res = sub.add_parser("resume", help="finish every unfinished submission (after a crash or a restart)")
    res.add_argument("--no-transcripts", action="store_true", help="do not look for transcripts")
    res.set_defaults(func=cmd_resume)

    hist = sub.add_parser("history", help="list submissions for supervisors")
    hist.add_argument("--status", action="append", choices=h.STATUSES, help="only this status (repeatable)")
    hist.add_argument("--since", help="only submissions from this date (YYYY-MM-DD or ISO 8601)")
    hist.add_argument("--until", help="only submissions before this date")
    hist.add_argument("--agent")
    hist.add_argument("--owner")
    hist.add_argument("--contact")
    hist.add_argument("--text", help="search titles, numbers, ids and errors")
    hist.add_argument("--totals", choices=("day", "agent", "team"), help="print totals instead of submissions")
    fmt = hist.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="one JSON object per line per submission")
    fmt.add_argument("--csv", action="store_true", help="CSV of every matching submission")
    hist.set_defaults(func=cmd_history)


# -- history ---------------------------------------------------------------------------------------
def _date(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def cmd_history(args: argparse.Namespace) -> int:
    try:
        query = h.Query(statuses=tuple(args.status or ()), agent=args.agent, owner_id=args.owner,
                        contact_id=args.contact, since=_date(args.since), until=_date(args.until), text=args.text)
    except ValueError as exc:
        print(f"callrelay history: bad date: {exc}", file=sys.stderr)
        return 2
    desk = _team_desk("history")
    if desk is not None:
        return desk if isinstance(desk, int) else _team_history(args, desk)
    with h.History.for_reading() as hist:  # reading only: works on a read-only data directory too
        if args.totals:
            if args.totals == "team":
                rows = _team_totals(hist.totals_per_agent(query))
            else:
                rows = hist.totals_per_day(query) if args.totals == "day" else hist.totals_per_agent(query)
            for row in rows:
                print(json.dumps(row) if args.json else "  ".join(f"{k}={v}" for k, v in row.items()))
            return 0
        if args.csv:
            hist.export_csv(query, out=sys.stdout)  # type: ignore[arg-type]
            return 0
        if args.json:
            for sub in hist.iter_all(query):
                data = sub.to_dict()
                data["call_url"] = h.call_url(sub)
                print(json.dumps(data))
            return 0
        subs = hist.search(query, limit=None)
        print(f"{'ID':>5}  {'CREATED':19}  {'STATUS':15}  {'CALL':12}  {'AGENT':10}  RECORDING / ERROR")
        for sub in subs:
            extra = f"  — {sub.error}" if sub.error else ""
            print(f"{sub.id:>5}  {sub.created_at[:19]:19}  {sub.status:15}  {(sub.call_id or '-'):12}  "
                  f"{sub.agent[:10]:10}  {sub.recording_name}{extra}")
        print(f"{len(subs)} submission(s)")
    return 0


# -- upload and resume -----------------------------------------------------------------------------
def _manifest(path: Path | None) -> dict[str, dict[str, str]]:
    if not path:
        return {}
    with open(path, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    out: dict[str, dict[str, str]] = {}
    for row in rows:
        name = (row.get("file") or "").strip()
        if not name:
            raise ValueError(f"{path}: every row needs a `file` column")
        out[Path(name).name] = {k: (v or "").strip() for k, v in row.items() if k}
    return out


def _upload_inputs(args: argparse.Namespace) -> tuple[list[Path], dict[str, dict[str, str]]] | None:
    """``upload``'s files (FILE…, then --folder's recordings by name) and manifest rows; None after
    saying why there are none."""
    files: list[Path] = list(args.files)
    if args.folder:
        if not args.folder.is_dir():
            print(f"callrelay upload: {args.folder} is not a folder", file=sys.stderr)
            return None
        files += sorted(p for p in args.folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        print("callrelay upload: name a FILE or --folder DIR", file=sys.stderr)
        return None
    try:
        manifest = _manifest(args.manifest)
    except (OSError, ValueError) as exc:
        print(f"callrelay upload: the manifest cannot be read: {exc}", file=sys.stderr)
        return None
    return files, manifest


def _log_submissions(app: Runtime, by_id: dict[int, Path], jobs: int) -> int:
    """Carry each submission through the pipeline, ``jobs`` at a time, one line as each ends; how many
    failed."""
    total = len(by_id)
    done = failures = 0
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures: dict[Future[h.Submission], Path] = {}
        if total > 1:  # HubSpot's batch endpoints for call creation and associations, 100 at a time
            print(f"Logging {total} calls in batches…", flush=True)
            app.run_batch(list(by_id), on_chunk=lambda chunk: futures.update(
                {pool.submit(app.run_submission, sid): by_id[sid] for sid in chunk}))
        else:
            futures = {pool.submit(app.run_submission, sid): path for sid, path in by_id.items()}
        for future in as_completed(futures):
            path, sub = futures[future], future.result()
            done += 1
            if sub.status == h.FAILED:
                failures += 1
                cid = f" (correlation id {sub.error_correlation_id})" if sub.error_correlation_id else ""
                print(f"[{done}/{total}] {path.name}: failed: {sub.error}{cid}")
            else:
                print(f"[{done}/{total}] {path.name}: {sub.status}, call {sub.call_id}  {h.call_url(sub) or ''}")
            sys.stdout.flush()
    return failures


def cmd_upload(args: argparse.Namespace) -> int:
    from desktop_app.sync.details import SubmissionRefused

    inputs = _upload_inputs(args)
    if inputs is None:
        return 2
    files, manifest = inputs
    common = {"from_number": args.from_number, "to_number": args.to_number, "contact": args.contact,
              "owner_id": args.owner, "title": args.title, "direction": args.direction, "notes": args.notes,
              "timestamp": args.timestamp}
    desk = _team_desk("upload")
    if desk is not None:
        return desk if isinstance(desk, int) else _team_upload(args, desk, files, manifest, common)
    app = _start_runtime("upload")
    if app is None:
        return 1
    failures = 0
    with _stopping(app):
        if args.contact:  # the contact of every file: one HubSpot does not have refuses them all, before anything
            try:
                app.resolve_contact(args.contact)
            except SubmissionRefused as exc:
                print(f"callrelay upload: {exc}", file=sys.stderr)
                return 1
        by_id: dict[int, Path] = {}  # the submissions this run carries, in order
        for path in files:
            row = {**{k: v for k, v in common.items() if v}, **_manifest_row(manifest.get(path.name, {}))}
            try:
                seen = app.seen(path)
                if seen.unfinished is not None and seen.unfinished.id in by_id:
                    print(f"{path}: skipped, the same recording as {by_id[seen.unfinished.id]}")
                    continue
                if seen.unfinished is not None:  # an earlier run was cut short: finish it, never double it
                    print(f"{path}: carrying on submission {seen.unfinished.id} from an earlier run")
                    by_id[seen.unfinished.id] = path
                    continue
                if seen.logged is not None and not args.again:
                    sub = seen.logged
                    url = h.call_url(sub)
                    print(f"{path}: skipped, already logged as call {sub.call_id} (submission {sub.id}, "
                          f"{sub.status}{', ' + url if url else ''}); --again logs it once more")
                    continue
                sid = app.submit(path, app.details_for_file(path, row), sha256=seen.sha256)
            except SubmissionRefused as exc:
                print(f"{path}: refused: {exc}", file=sys.stderr)
                failures += 1
                continue
            for warning in app.last_warnings:
                print(f"{path}: warning: {warning}", file=sys.stderr)
            by_id[sid] = path
        failures += _log_submissions(app, by_id, args.jobs)
    return 1 if failures else 0


def _start_runtime(command: str) -> Runtime | None:
    """The app's parts for a command, using the data directory's running recording server; None (after
    saying why) when they cannot start."""
    from desktop_app.runtime import Runtime, SetupError

    app = Runtime(own_server=False)
    try:
        app.start()
    except SetupError as exc:
        app.stop()
        print(f"callrelay {command}: {exc}", file=sys.stderr)
        return None
    return app


@contextlib.contextmanager
def _stopping(app: Runtime) -> Iterator[Runtime]:
    try:
        yield app
    finally:
        app.stop()


def _manifest_row(row: dict[str, str]) -> dict[str, str]:
    names = {"from": "from_number", "to": "to_number", "owner": "owner_id"}
    return {names.get(k, k): v for k, v in row.items() if v and k != "file"}


def cmd_resume(args: argparse.Namespace) -> int:
    app = _start_runtime("resume")
    if app is None:
        return 1
    failures = 0
    with _stopping(app):
        unfinished = app.history.unfinished()
        for sub in unfinished:
            result = app.run_submission(sub.id)
            failures += result.status == h.FAILED
            print(f"{result.id} {result.recording_name}: {result.status}"
                  + (f": {result.error}" if result.status == h.FAILED else ""))
        if not args.no_transcripts:
            for sub in app.history.awaiting_transcript():
                outcome = app.check_transcript(sub.id)
                if outcome.submission.status != h.READY:
                    print(f"{sub.id} {sub.recording_name}: {outcome.submission.status}")
        print(f"resumed {len(unfinished)} submission(s), {failures} failed")
    return 1 if failures else 0


# -- a desk that joined a team: upload to the relay, its outbox, the team's history ---------------------
def _team_desk(command: str) -> TeamDesk | int | None:
    """The joined desk's `TeamDesk`, None for a single desk, or 1 (after saying why) when it cannot be used."""
    from desktop_app.relay.desk import TeamDesk, TeamSetupError
    from desktop_app.relay.outbox import OutboxError

    try:
        return TeamDesk.from_settings()
    except (TeamSetupError, OutboxError) as exc:
        print(f"callrelay {command}: {exc}", file=sys.stderr)
        return 1


def _team_upload(args: argparse.Namespace, desk: TeamDesk, files: list[Path], manifest: dict[str, dict[str, str]],
                 common: dict[str, Any]) -> int:
    """``callrelay upload`` on a joined desk: each recording is checked here, written into the outbox, then
    sent to the relay (with the outbox's earlier entries), and with ``--wait`` followed to its end."""
    from desktop_app import settings as settings_mod
    from desktop_app.relay.desk import call_for_relay
    from desktop_app.sync.details import SubmissionRefused, call_details_for_file

    failures = 0
    with desk:
        conf = settings_mod.load()
        queued: dict[str, Path] = {}
        for path in files:
            row = {**{k: v for k, v in common.items() if v}, **_manifest_row(manifest.get(path.name, {}))}
            contact = (row.pop("contact", "") or "").strip()
            try:
                if contact and not contact.isdigit():
                    raise SubmissionRefused(f"On a team desk the contact must be a HubSpot contact id (digits), "
                                            f"not {contact!r}: the relay looks no contact up by email or number.")
                details, warnings = call_details_for_file(path, row, conf)
                details.contact_id = contact
                entry, before = desk.queue(path, call_for_relay(details.to_dict()), again=args.again)
            except SubmissionRefused as exc:
                print(f"{path}: refused: {exc}", file=sys.stderr)
                failures += 1
                continue
            except OSError as exc:
                print(f"{path}: refused: it cannot be read: {exc.strerror or exc}.", file=sys.stderr)
                failures += 1
                continue
            for warning in warnings:
                print(f"{path}: warning: {warning}", file=sys.stderr)
            if before is not None:
                print(f"{path}: skipped, already sent to the team relay as {before.external_id} "
                      f"({before.relay_status}); --again sends it once more")
                continue
            if entry.external_id in queued:
                print(f"{path}: skipped, the same recording as {queued[entry.external_id]}")
                continue
            queued[entry.external_id] = path
        failures += _send_outbox(desk, args)
    return 1 if failures else 0


def cmd_team_flush(args: argparse.Namespace) -> int:
    desk = _team_desk("team flush")
    if desk is None:
        print("callrelay team flush: this desk has not joined a team (callrelay join RELAY_URL CODE).",
              file=sys.stderr)
        return 1
    if isinstance(desk, int):
        return desk
    with desk:
        if not desk.outbox.pending():
            print("Nothing is waiting in this desk's outbox.")
            return 0
        return 1 if _send_outbox(desk, args) else 0


def _send_outbox(desk: TeamDesk, args: argparse.Namespace) -> int:
    """Send every pending outbox entry and print one line each (then, with ``--wait``, the relay's outcome);
    returns how many did not get where they should."""
    from desktop_app.relay.desk import FINAL
    from desktop_app.relay.outbox import PENDING, REFUSED

    pending = desk.outbox.pending()
    total = len(pending)
    if not total:
        return 0
    names = {e.external_id: e.name for e in pending}
    failures = 0
    sent_ids: list[str] = []
    done = 0
    print(f"Sending {total} recording(s) to the team relay at {desk.url}…", flush=True)

    def progress(external_id: str, have: int, size: int) -> None:
        print(f"  {names[external_id]}: {have} of {size} bytes on the relay", flush=True)

    def report(result: Any) -> None:
        nonlocal done, failures
        done += 1
        name = result.entry.name
        if result.resumed:
            print(f"  {name}: resumed: {result.resumed} bytes were on the relay already, {result.sent_bytes} sent "
                  "again", flush=True)
        if result.state == REFUSED:
            failures += 1
            print(f"[{done}/{total}] {name}: refused by the relay: {result.error}", flush=True)
        elif result.state == PENDING:
            failures += 1
            print(f"[{done}/{total}] {name}: kept in this desk's outbox, the relay will get it later "
                  f"(callrelay team flush): {result.error}", flush=True)
        else:
            sent_ids.append(result.external_id)
            print(f"[{done}/{total}] {name}: {result.status} on the relay, external id {result.external_id} "
                  f"({result.sent_bytes} bytes sent)", flush=True)

    results = desk.flush(on_sent=report, on_progress=progress)
    for entry in pending[len(results):]:  # a relay out of reach stopped the round
        done += 1
        failures += 1
        print(f"[{done}/{total}] {entry.name}: kept in this desk's outbox, the relay will get it later "
              "(callrelay team flush)", flush=True)
    if not getattr(args, "wait", False) or not sent_ids:
        return failures
    finals = desk.wait(sent_ids, timeout_s=max(0.0, args.wait_timeout))
    for n, eid in enumerate(sent_ids, 1):
        sub = finals.get(eid) or {}
        status = sub.get("status") or "unknown"
        name = names.get(eid, eid)
        if status not in FINAL:
            failures += 1
            print(f"[{n}/{len(sent_ids)}] {name}: still {status} on the relay after {args.wait_timeout:g} s")
        elif status == h.FAILED:
            failures += 1
            cid = f" (correlation id {sub['error_correlation_id']})" if sub.get("error_correlation_id") else ""
            print(f"[{n}/{len(sent_ids)}] {name}: failed: {sub.get('error')}{cid}")
        else:
            url = (f"https://app.hubspot.com/contacts/{sub['portal_id']}/record/0-48/{sub['call_id']}"
                   if sub.get("portal_id") and sub.get("call_id") else "")
            cause = f": {sub.get('error')}" if status == h.NOT_TRANSCRIBED and sub.get("error") else ""
            print(f"[{n}/{len(sent_ids)}] {name}: {status}, call {sub.get('call_id')}{cause}  {url}".rstrip())
    return failures


def _team_totals(per_agent: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The whole team's totals (one row) from the totals per agent."""
    out: dict[str, Any] = {"team": "team", "total": 0, **{s: 0 for s in h.STATUSES}, "agents": len(per_agent)}
    for row in per_agent:
        for key in ("total", *h.STATUSES):
            out[key] += int(row.get(key, 0))
    return [out]


def _team_history(args: argparse.Namespace, desk: TeamDesk) -> int:
    """``callrelay history`` on a joined desk: the team's history from the relay (an agent's own
    submissions; a supervisor's: everyone's), in the single desk's forms."""
    from desktop_app.relay.client import RelayError

    params: dict[str, Any] = {"status": list(args.status or []), "since": args.since, "until": args.until,
                              "agent": args.agent, "owner": args.owner, "contact": args.contact, "text": args.text}
    params = {k: v for k, v in params.items() if v}
    with desk:
        try:
            if args.totals:
                for row in desk.totals(args.totals, params):
                    print(json.dumps(row) if args.json else "  ".join(f"{k}={v}" for k, v in row.items()))
                return 0
            if args.csv:
                sys.stdout.write(desk.csv(params))
                return 0
            if args.json:
                for sub in desk.history(params):
                    print(json.dumps(sub))
                return 0
            subs = list(desk.history(params))
        except RelayError as exc:
            print(f"callrelay history: {exc}", file=sys.stderr)
            return 1
    print(f"{'ID':>5}  {'CREATED':19}  {'STATUS':15}  {'CALL':12}  {'AGENT':10}  RECORDING / ERROR")
    for sub in subs:
        extra = f"  — {sub['error']}" if sub.get("error") else ""
        print(f"{sub['id']:>5}  {sub['created_at'][:19]:19}  {sub['status']:15}  {(sub['call_id'] or '-'):12}  "
              f"{sub['agent'][:10]:10}  {sub['recording']}{extra}")
    print(f"{len(subs)} submission(s) on the team relay")
    return 0
