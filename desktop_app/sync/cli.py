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
from typing import Any

from desktop_app.sync import history as h

AUDIO_SUFFIXES = {".wav", ".flac", ".mp4", ".m4a", ".mp3", ".ogg", ".opus", ".webm", ".amr", ".gsm"}


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
    up.set_defaults(func=cmd_upload)

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
    hist.add_argument("--totals", choices=("day", "agent"), help="print totals instead of submissions")
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
    with h.History.for_reading() as hist:  # reading only: works on a read-only data directory too
        if args.totals:
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


def cmd_upload(args: argparse.Namespace) -> int:
    from desktop_app.runtime import SubmissionRefused

    files: list[Path] = list(args.files)
    if args.folder:
        if not args.folder.is_dir():
            print(f"callrelay upload: {args.folder} is not a folder", file=sys.stderr)
            return 2
        files += sorted(p for p in args.folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        print("callrelay upload: name a FILE or --folder DIR", file=sys.stderr)
        return 2
    try:
        manifest = _manifest(args.manifest)
    except (OSError, ValueError) as exc:
        print(f"callrelay upload: the manifest cannot be read: {exc}", file=sys.stderr)
        return 2
    common = {"from_number": args.from_number, "to_number": args.to_number, "contact": args.contact,
              "owner_id": args.owner, "title": args.title, "direction": args.direction, "notes": args.notes,
              "timestamp": args.timestamp}
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
        total = len(by_id)
        done = 0

        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
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
    return 1 if failures else 0


def _start_runtime(command: str) -> Any:
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
def _stopping(app: Any) -> Iterator[Any]:
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
