"""``callrelay check`` and ``callrelay fix``.

check FILE... [--json] [--analyse]
    A table (or, with --json, one JSON object per line per file). Exit 0 when every file can be
    uploaded as it is, 1 when any needs a fix or is refused, 2 for usage errors.
fix swap SRC [-o OUT] [--to flac|wav]
fix merge CALLER RECIPIENT [-o OUT] [--to flac|wav] [--caller-start T] [--recipient-start T]
fix convert SRC [-o OUT] [--to flac|wav]
    Writes a new file (by default into the data directory's ``fixed`` folder), prints its path.
    Exit 0 done, 1 the fix cannot be made (the reason on stderr), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from desktop_app.audio.model import Inspection


def register(subparsers: Any) -> None:
    check = subparsers.add_parser(
        "check", help="say what recordings really are and whether HubSpot can play and transcribe them",
        description="Inspect recordings: format from the bytes, verdicts, whether each can be uploaded.")
    check.add_argument("files", nargs="+", metavar="FILE")
    check.add_argument("--json", action="store_true", help="one JSON object per line per file")
    check.add_argument("--analyse", "--analyze", action="store_true",
                       help="also decode the audio: levels, silent or identical channels, damage")
    check.set_defaults(func=run_check)

    fix = subparsers.add_parser("fix", help="write a fixed copy of a recording (the original is kept)",
                                description="Write a fixed copy of a recording; the original is never touched.")
    kinds = fix.add_subparsers(dest="fix_kind", metavar="FIX", required=True)
    swap = kinds.add_parser("swap", help="exchange channels 1 and 2")
    swap.add_argument("src", metavar="FILE")
    merge = kinds.add_parser("merge", help="two one-leg files into one stereo file (caller on channel 1)")
    merge.add_argument("caller", metavar="CALLER_FILE")
    merge.add_argument("recipient", metavar="RECIPIENT_FILE")
    merge.add_argument("--caller-start", type=_when, metavar="T",
                       help="when the caller's leg starts (ISO date-time or seconds); default: from the file name")
    merge.add_argument("--recipient-start", type=_when, metavar="T",
                       help="when the recipient's leg starts (ISO date-time or seconds)")
    conv = kinds.add_parser("convert", help="convert to FLAC (lossless) or WAV, channels kept")
    conv.add_argument("src", metavar="FILE")
    for p in (swap, merge, conv):
        p.add_argument("-o", "--output", metavar="OUT", help="output file (default: the data directory's "
                       "'fixed' folder)")
        p.add_argument("--to", choices=("flac", "wav"), help="output format (default: from OUT, else flac)")
        p.set_defaults(func=run_fix)


def _when(text: str) -> datetime | float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date-time or a number of seconds: {text!r}") from None


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    m, s = divmod(seconds, 60)
    return f"{int(m)}:{s:04.1f}"


def _row(ins: Inspection) -> list[str]:
    p = ins.probe
    fmt = f"{p.container}/{p.codec}" if p.container and p.codec else (p.container or "-")
    if not ins.uploadable:
        verdict = "blocked"
    elif any(q.severity == "warning" for q in ins.problems):
        verdict = "ok, with warnings"
    else:
        verdict = "ok"
    return [Path(p.path).name or p.path, fmt, str(p.channels or "-"), str(p.sample_rate or "-"),
            _clock(p.duration_s), verdict]


def run_check(args: argparse.Namespace) -> int:
    from desktop_app.audio.verdicts import inspect

    results = []
    out = sys.stdout
    encoding = out.encoding or "utf-8"
    for name in args.files:
        ins = inspect(name, analyse=args.analyse)
        results.append(ins)
        if args.json:
            out.write(_json_line(ins.to_dict(), encoding) + "\n")
            out.flush()
    if not args.json:
        header = ["FILE", "FORMAT", "CH", "RATE", "LENGTH", "VERDICT"]
        rows = [[_shown(c, encoding) for c in _row(r)] for r in results]
        widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(len(header))]
        out.write("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip() + "\n")
        for ins, row in zip(results, rows, strict=True):
            out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")
            for problem in ins.problems:
                out.write(_shown(f"    {problem.severity:<7} {problem.code}: {problem.message}", encoding) + "\n")
        ok = sum(r.uploadable for r in results)
        out.write(f"{ok} of {len(results)} file(s) can be uploaded as they are.\n")
    return 0 if all(r.uploadable for r in results) else 1


def _json_line(obj: dict[str, Any], encoding: str) -> str:
    """One JSON object; escaped (``\\udcff``) where it cannot be written as it is: a file name whose bytes
    are not text (or not in the terminal's encoding), which would otherwise make the line invalid."""
    text = json.dumps(obj, ensure_ascii=False)
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        return json.dumps(obj)
    return text


def _shown(text: str, encoding: str) -> str:
    """``text`` as the terminal can print it (undecodable bytes of a file name as ``\\udcff`` escapes)."""
    return text.encode(encoding, "backslashreplace").decode(encoding)


def run_fix(args: argparse.Namespace) -> int:
    from desktop_app.audio.fixes import FixError, convert, merge_legs, swap_channels

    try:
        if args.fix_kind == "swap":
            path = swap_channels(args.src, args.output, fmt=args.to)
        elif args.fix_kind == "merge":
            path = merge_legs(args.caller, args.recipient, args.output, caller_start=args.caller_start,
                              recipient_start=args.recipient_start, fmt=args.to)
        else:
            path = convert(args.src, args.output, fmt=args.to)
    except FixError as exc:
        print(f"callrelay fix {args.fix_kind}: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0
