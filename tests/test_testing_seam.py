"""The one testing seam (desktop_app.testing): the crash points end the process only where
CALLRELAY_CRASH_AT says, and no other production module reads the variable or ends the process itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from desktop_app import testing

PACKAGE = Path(testing.__file__).resolve().parent.parent
CHILD = "from desktop_app.testing import crash_point; crash_point('log_call', 'before'); print('alive', flush=True)"


@pytest.mark.parametrize(("crash_at", "code", "out"), [
    ("log_call:before", 137, ""),
    ("log_call:after", 0, "alive\n"),
    ("", 0, "alive\n"),
])
def test_a_crash_point_ends_the_process_only_where_the_variable_says(crash_at: str, code: int, out: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != testing.CRASH_ENV}
    if crash_at:
        env[testing.CRASH_ENV] = crash_at
    proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, timeout=60)
    assert (proc.returncode, proc.stdout) == (code, out)


def test_no_production_module_reads_a_test_hook_itself() -> None:
    """CALLRELAY_CRASH_AT and the history's bulk fill live in desktop_app/testing only."""
    offenders = []
    for source in sorted(PACKAGE.rglob("*.py")):
        if "testing" in source.relative_to(PACKAGE).parts:
            continue
        text = source.read_text(encoding="utf-8")
        for hook in ("CALLRELAY_CRASH_AT", "_crash_point", "for_benchmark"):
            if hook in text:
                offenders.append(f"{source.relative_to(PACKAGE)}: {hook}")
    assert offenders == []
