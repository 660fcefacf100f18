"""The ``callrelay`` command.

Each core package contributes its subcommands through a ``cli`` module with a
``register(subparsers)`` function; this module only assembles them. A subcommand's handler takes
the parsed arguments and returns the exit code (0 success, 1 a problem with the work, 2 usage).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from desktop_app import __version__

# The modules that add subcommands, in the order ``--help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "desktop_app.audio.cli",  # check, fix
    "desktop_app.server.cli",  # serve
    "desktop_app.sandbox.cli",  # sandbox
    "desktop_app.hubspot.cli",  # hubspot test
    "desktop_app.sync.cli",  # upload, resume, history
    "desktop_app.relay.cli",  # relay invite, relay agents, relay revoke
    "desktop_app.ui.cli",  # gui
    "desktop_app.ui.selftest",  # self-test
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callrelay",
        description="Call Relay: take call recordings into HubSpot, playable and transcribed.",
    )
    parser.add_argument("--version", action="version", version=f"callrelay {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):  # that part of the app is not built yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--self-test"]:  # the bundle's `callrelay --self-test` is the self-test subcommand
        argv[0] = "self-test"
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
