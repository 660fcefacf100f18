"""Whether the recording server's C fast path (``_fastserve.c``, built on Linux by setup.py) is here,
and if not, why: said by ``callrelay --version``, the self-test and the install (setup.py), never
passed over in silence. Without it the general path answers every request, at about 1.6 times the
CPU per range (measured in-process: ~28 against ~17 us per 64 KiB range, the client's side included)."""

from __future__ import annotations

import sys
import types

BUILT_ON = "linux"  # the systems setup.py builds it on

module: types.ModuleType | None
why_not = ""
try:
    import desktop_app.server._fastserve as module
except ImportError as exc:
    module = None
    if sys.platform != BUILT_ON:
        why_not = "it is built on Linux only"
    elif isinstance(exc, ModuleNotFoundError) and exc.name == "desktop_app.server._fastserve":
        why_not = "it did not compile when Call Relay was installed (no C compiler or Python headers?)"
    else:
        why_not = f"it does not load: {exc}"


def status_line() -> str:
    """One line: the C fast path is built, or not and why (and what to do on Linux)."""
    if module is not None:
        return "C fast path: built (the recording server answers single ranges in C)"
    line = f"C fast path: NOT built, {why_not}; the general path answers every request, at about 1.6x the CPU per range"
    if sys.platform == BUILT_ON:
        line += ". To build it: install gcc and Python's headers (Debian: apt install gcc python3-dev) and install again"
    return line
