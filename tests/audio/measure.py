"""Run a command as a child process and measure it: exit status, output, peak memory, and a time limit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT_DIR = Path(__file__).resolve().parents[2]

# The command runs under a small Python process that reports its peak memory (RUSAGE_CHILDREN) on a pipe.
# Measured from the test process instead, the peak would start at the test process's own: Linux hands a
# new program the memory high-water mark of the process it replaces (the forked test process).
_WRAPPER = """\
import os, resource, subprocess, sys
code = subprocess.call(sys.argv[2:])
os.write(int(sys.argv[1]), str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss).encode())
sys.exit(code if code >= 0 else 128 - code)
"""


@dataclass
class Run:
    returncode: int | None  # None when it was killed at the time limit
    stdout: str  # decoded as UTF-8; bytes that are not are kept as lone surrogates
    stderr: str
    peak_rss_mb: float  # the command's own peak resident set
    timed_out: bool


def callrelay(*args: str) -> list[str]:
    """The real ``callrelay`` command, as ``python -m desktop_app`` from this checkout."""
    return [sys.executable, "-m", "desktop_app", *args]


def run_measured(cmd: list[str], *, timeout: float, env: dict[str, str] | None = None) -> Run:
    """Run ``cmd`` (cwd: the checkout) and return what it did; killed after ``timeout`` seconds."""
    read_end, write_end = os.pipe()
    try:
        proc = subprocess.Popen([sys.executable, "-c", _WRAPPER, str(write_end), *cmd], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd=ROOT_DIR, env=env, pass_fds=(write_end,),
                                start_new_session=True)
        os.close(write_end)
        try:
            out, err = proc.communicate(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            timed_out = True
        peak = os.read(read_end, 64)
    finally:
        os.close(read_end)
    per_mb = 1024 * 1024 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB elsewhere
    # bytes that are not UTF-8 stay as lone surrogates: ``.encode("utf-8")`` then fails, as a check should
    return Run(None if timed_out else proc.returncode, out.decode("utf-8", "surrogateescape"),
               err.decode("utf-8", "surrogateescape"), int(peak or 0) / per_mb, timed_out)
