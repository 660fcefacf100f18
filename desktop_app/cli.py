"""The ``callrelay`` command.

Each module of ``desktop_app.commands`` (and the GUI's ``ui.cli`` and ``ui.selftest``) adds its
subcommands through a ``register(subparsers)`` function; this module only assembles them. A subcommand's handler takes
the parsed arguments and returns the exit code (0 success, 1 a problem with the work, 2 usage).

Trouble a user can act on that reaches this far (a ``UserError``: a damaged settings file or history,
a data directory that cannot be written…; or no usable keyring) is printed as its one sentence, never
as a traceback. Output cut short by its reader (``callrelay history --json | head``) ends quietly.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from desktop_app import __version__
from desktop_app.commands import audio, hubspot, relay, sandbox, server, sync, transcribe
from desktop_app.errors import UserError
from desktop_app.server import fastpath
from desktop_app.ui import cli as gui
from desktop_app.ui import selftest

# The modules that add subcommands, in the order ``--help`` lists them.
COMMAND_MODULES = (
    audio,  # check, fix
    server,  # serve
    sandbox,  # sandbox
    hubspot,  # hubspot test
    sync,  # upload, resume, history
    relay,  # relay invite, relay agents, relay revoke
    transcribe,  # transcribe
    gui,  # gui
    selftest,  # self-test
)


class _Version(argparse.Action):
    """``--version``: the version, and whether the recording server's C fast path is built (and if
    not, why), each on its own line."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0,
                         help="show the version and whether the C fast path is built, and exit")

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        print(f"callrelay {__version__}\n{fastpath.status_line()}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callrelay",
        description="Call Relay: take call recordings into HubSpot, playable and transcribed.",
    )
    parser.add_argument("--version", action=_Version)
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _run(argv)
    except BrokenPipeError:
        # Python's documented way: point stdout at devnull so that the flush at exit does not fail again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _run(argv: Sequence[str] | None) -> int:
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
        code = int(args.func(args))
        sys.stdout.flush()  # a reader that went away shows here, where it can still be handled
        return code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if not is_user_error(exc):
            raise
        print(f"callrelay {args.command}: {exc}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 1))


def is_user_error(exc: BaseException) -> bool:
    """Whether ``exc`` is trouble a user can act on, its message one sentence saying what to do."""
    if isinstance(exc, UserError):
        return True
    keystore = sys.modules.get("desktop_app.keystore")  # only loaded when a command used the keyring
    return keystore is not None and isinstance(exc, keystore.KeyringUnavailable)
