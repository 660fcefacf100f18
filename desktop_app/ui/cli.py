"""``callrelay gui``: start the desktop app. Qt is imported only inside the handler."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    gui = sub.add_parser("gui", help="start the desktop app",
                         description="Start the Call Relay window (Upload & Log, Sync history, Settings).")
    gui.set_defaults(func=cmd_gui)


def cmd_gui(args: argparse.Namespace) -> int:
    from desktop_app.ui.app import main

    return main()
