"""``callrelay transcribe SUBMISSION|FILE [--post] [--json]``: one call's transcript, made on this computer.

FILE is a recording's path; SUBMISSION a history id (``callrelay history``), whose recording is transcribed.
Prints one ``[mm:ss] speaker: text`` line per utterance (channel 1 the caller, channel 2 the recipient, or
their names where the history knows them); with ``--json`` one JSON object a line: ``speaker``, ``channel``,
``start_ms``, ``end_ms``, ``text``. Progress goes to stderr for recordings of a minute or more; Ctrl-C
cancels (exit 130). ``--post`` posts the transcript to the call in HubSpot (``desktop_app.sync.transcripts``).
Exit 0 done, 1 the transcript cannot be made (one sentence on stderr), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from desktop_app.transcribe import Transcript

LONG_S = 60.0  # recordings at least this long show their progress on stderr
SIDES = {1: "caller", 2: "recipient"}


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "transcribe", help="transcribe a call on this computer (speech to text, one speaker per channel)",
        description="Transcribe a recording, or a submission's recording, on this computer with the Whisper "
                    "model in the transcribe.model_dir setting (the 'transcribe' extra: "
                    "pip install 'callrelay[transcribe]'). Nothing is downloaded.")
    p.add_argument("target", metavar="SUBMISSION|FILE", help="a recording file, or a submission's id in the history")
    p.add_argument("--json", action="store_true", help="one JSON object per utterance and line")
    p.add_argument("--post", action="store_true", help="post the transcript to the call in HubSpot")
    p.add_argument("--replace", action="store_true", help="with --post: replace a transcript posted before")
    p.add_argument("--from", dest="from_file", metavar="JSON",
                   help="with --post: post this (corrected) transcript instead of transcribing")
    p.add_argument("--model", metavar="DIR", help="the model folder (default: the transcribe.model_dir setting)")
    p.add_argument("--language", metavar="CODE",
                   help="the language, e.g. en (default: the transcribe.language setting, else detected)")
    p.set_defaults(func=run_transcribe)


def clock(ms: int) -> str:
    """``mm:ss`` (minutes go past 59 for calls longer than an hour)."""
    m, s = divmod(max(0, ms) // 1000, 60)
    return f"{m:02d}:{s:02d}"


def speaker_names(details: dict[str, Any], agent: str, labels: dict[str, str]) -> dict[int, str]:
    """Each channel's speaker: the agent on their side by the call's direction (OUTBOUND: the agent called),
    the contact on the other where its name is known; else ``caller`` and ``recipient``."""
    names = dict(SIDES)
    direction = str(details.get("direction") or "").upper()
    if direction not in ("INBOUND", "OUTBOUND"):
        return names
    agent_side, contact_side = (1, 2) if direction == "OUTBOUND" else (2, 1)
    if agent.strip():
        names[agent_side] = agent.strip()
    contact = labels.get(f"contact:{details.get('contact_id') or ''}", "").strip()
    if contact:
        names[contact_side] = contact
    return names


def _fail(message: str, code: int = 1) -> int:
    print(f"callrelay transcribe: {message}", file=sys.stderr)
    return code


def _recording(target: str) -> tuple[Path, dict[int, str]] | str:
    """The recording to transcribe and its speakers' names, or a sentence saying why there is none."""
    path = Path(target).expanduser()
    if path.exists():
        if not path.is_file():
            return f"{path} is a folder, not a recording."
        return path, dict(SIDES)
    if not target.isdigit():
        return f"{target} is neither a recording file nor a submission id (see `callrelay history`)."
    from desktop_app.sync import history as h

    with h.History.for_reading() as hist:
        sub = hist.get(int(target), with_steps=False)
        labels = hist.labels() if sub is not None else {}
    if sub is None:
        return f"There is no submission {target} in the history and no file of that name (see `callrelay history`)."
    recording = Path(sub.recording_path)
    if not recording.is_file():
        return (f"The recording of submission {sub.id} is no longer at {recording}: transcribe the file itself "
                "if it was moved.")
    return recording, speaker_names(sub.details, sub.agent, labels)


def _transcribe(path: Path, model_dir: str, language: str | None, long: bool) -> Transcript:
    """Run the engine on a worker thread so that Ctrl-C here sets its cancel event (it stops between segments)."""
    from desktop_app.transcribe import engine

    cancel = threading.Event()
    result: list[Transcript] = []
    failure: list[BaseException] = []
    shown = [-1]
    tty = sys.stderr.isatty()

    def progress(fraction: float) -> None:
        percent = int(fraction * 100)
        if long and (percent >= shown[0] + (1 if tty else 10) or percent == 100 and shown[0] < 100):
            shown[0] = percent
            print(f"\rtranscribing {path.name}: {percent}%" if tty else f"transcribing {path.name}: {percent}%",
                  end="" if tty and percent < 100 else "\n", file=sys.stderr, flush=True)

    def work() -> None:
        if hasattr(signal, "pthread_sigmask"):  # Ctrl-C reaches the main thread only, never CTranslate2's threads
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            result.append(engine.transcribe_recording(path, model_dir=model_dir, language=language,
                                                      progress=progress, cancel=cancel))
        except BaseException as exc:  # handed to the main thread, which raises it there
            failure.append(exc)

    def interrupted(_signum: int, _frame: Any) -> None:  # Ctrl-C: the engine stops after the current segment
        if not cancel.is_set():
            print("\ncallrelay transcribe: cancelling…" if tty else "callrelay transcribe: cancelling…",
                  file=sys.stderr, flush=True)
        cancel.set()

    worker = threading.Thread(target=work, name="transcribe", daemon=True)
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, interrupted) if main else None
    try:
        worker.start()
        while worker.is_alive():
            worker.join(0.2)
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)
    if failure:
        raise failure[0]
    return result[0]


def run_transcribe(args: argparse.Namespace) -> int:
    from desktop_app import settings as settings_mod
    from desktop_app.transcribe import engine

    if (args.replace or args.from_file) and not args.post:
        return _fail("--replace and --from go with --post.", 2)
    post: Any = None
    if args.post:
        from desktop_app.sync.transcripts import post_from_command

        post = post_from_command
    if args.post and args.from_file:  # a corrected transcript: nothing to transcribe
        return int(post(args))
    found = _recording(str(args.target))
    if isinstance(found, str):
        return _fail(found)
    path, names = found
    conf = settings_mod.load()
    model_dir = args.model or str(conf.get("transcribe.model_dir"))
    language = args.language if args.language is not None else str(conf.get("transcribe.language"))
    from desktop_app.audio.probe import probe

    duration = probe(path).duration_s or 0.0
    try:
        transcript = _transcribe(path, model_dir, language or None, duration >= LONG_S)
    except engine.Cancelled as exc:
        return _fail(str(exc), 130)
    for u in transcript.utterances:
        speaker = names.get(u.channel, f"channel {u.channel}")
        if args.json:
            print(json.dumps({"speaker": speaker, "channel": u.channel, "start_ms": u.start_ms,
                              "end_ms": u.end_ms, "text": u.text}, ensure_ascii=False))
        else:
            print(f"[{clock(u.start_ms)}] {speaker}: {u.text}")
    if not transcript.utterances and not args.json:
        print("(no speech found)", file=sys.stderr)
    if post is not None:
        sys.stdout.flush()
        args.transcript = transcript
        return int(post(args))
    return 0
