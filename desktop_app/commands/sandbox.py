"""``callrelay sandbox``: run the local HubSpot alone.

Prints, one per line, ``export HUBSPOT_URL=…``, ``export HUBSPOT_ACCESS_TOKEN=…``,
``export HUBSPOT_APP_ID=…``, ``export HUBSPOT_DEVELOPER_API_KEY=…``, ``export HUBSPOT_CLIENT_SECRET=…``,
``export HUBSPOT_PORTAL_ID=…`` (so that ``eval`` in a shell hands them to the commands it runs next, and
``callrelay hubspot connect`` can save them as an account), then serves until interrupted (Ctrl-C or
SIGTERM: exit 0).
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from desktop_app.sandbox.faults import FaultSpecError, parse_spec


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "sandbox",
        help="run a local HubSpot (offline demo and tests)",
        description="Run a local HubSpot emulator on loopback. Prints the HUBSPOT_* variables as `export` lines "
                    "(for eval, or for `callrelay hubspot connect` on standard input), then serves until "
                    "interrupted.",
        epilog="Fault SPEC: rules separated by ';', each TARGET:ACTION[xN][@K], e.g. 'calls.create:503x2;"
               "contacts.search:429;recordings.ready:lost;*:slow=0.5x*'. ACTION is an HTTP status (429 or "
               "429/DAILY for rate limits), reset, lost (done, then the connection drops), timeout[=S] or slow=S; "
               "xN fires N times (x* always), @K lets K matching requests through first.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port (default 0: a free one)")
    p.add_argument("--state", type=Path, default=None, metavar="FILE",
                   help="SQLite file keeping objects and credentials across restarts (default: memory only)")
    p.add_argument("--faults", default="", metavar="SPEC", help="fault rules (see below)")
    p.add_argument("--search-lag", type=float, default=None, metavar="SECONDS",
                   help="how long a record created through the API stays out of search results, as in HubSpot's "
                        "search index (default 2; 0: found at once)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from desktop_app.sandbox.server import Sandbox

    try:
        faults = parse_spec(args.faults) if args.faults else []
    except FaultSpecError as exc:
        print(f"callrelay sandbox: {exc}", file=sys.stderr)
        return 2
    lag = {} if args.search_lag is None else {"search_lag_s": max(0.0, args.search_lag)}
    sandbox = Sandbox(host=args.host, port=args.port, state_file=args.state, max_logged_requests=10_000, **lag)
    sandbox.faults.rules.extend(faults)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Installed before the variables are printed: whoever read them may stop us at once.
    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        try:
            sandbox.start()
        except OSError as exc:
            print(f"callrelay sandbox: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
            return 1
        for name, value in sandbox.env().items():
            print(f"export {name}={shlex.quote(value)}")  # exported: a plain NAME=value stays in the shell
        sys.stdout.flush()
        print(f"callrelay sandbox: serving on {sandbox.url}; Ctrl-C stops it", file=sys.stderr)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        sandbox.stop()
    return 0
