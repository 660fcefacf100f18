"""Child processes: clean environment, own process group, nothing left behind."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tunnel_helpers import alive, wait_for

from desktop_app.tunnel import orphans
from desktop_app.tunnel.process import ChildProcess, clean_child_env


def test_frozen_restores_the_original_library_path() -> None:
    env = {"LD_LIBRARY_PATH": "/tmp/_MEI123", "LD_LIBRARY_PATH_ORIG": "/usr/local/lib", "PATH": "/bin"}
    assert clean_child_env(env, frozen=True) == {"LD_LIBRARY_PATH": "/usr/local/lib", "PATH": "/bin"}


def test_frozen_without_an_original_removes_the_bundle_path() -> None:
    env = {"LD_LIBRARY_PATH": "/tmp/_MEI123", "DYLD_LIBRARY_PATH": "/tmp/_MEI123", "HOME": "/root"}
    assert clean_child_env(env, frozen=True) == {"HOME": "/root"}


def test_not_frozen_keeps_the_environment() -> None:
    env = {"LD_LIBRARY_PATH": "/opt/lib", "LD_LIBRARY_PATH_ORIG": "/x"}
    out = clean_child_env(env, frozen=False)
    assert out == env and out is not env


def test_child_gets_the_clean_environment(tmp_path: Path) -> None:
    env = clean_child_env({**os.environ, "LD_LIBRARY_PATH": "/tmp/_MEIbundle"}, frozen=True)
    lines: list[str] = []
    child = ChildProcess(["sh", "-c", 'echo "lib=${LD_LIBRARY_PATH-unset}"'], on_line=lines.append, env=env)
    assert wait_for(lambda: not child.running() and bool(lines))
    expected = os.environ.get("LD_LIBRARY_PATH_ORIG") or "unset"
    assert lines == [f"lib={expected}"]


def test_stop_ends_the_child_and_its_grandchildren(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    # the grandchild ignores SIGTERM: stop() must escalate to SIGKILL on the whole group
    script = f"(trap '' TERM; sleep 60) & echo $! > {pidfile}; trap '' TERM; wait"
    child = ChildProcess(["sh", "-c", script])
    assert wait_for(lambda: pidfile.exists() and pidfile.read_text().strip() != "")
    grandchild = int(pidfile.read_text())
    assert alive(child.pid) and alive(grandchild)
    started = time.monotonic()
    child.stop(timeout=0.5)
    assert not alive(child.pid)
    assert wait_for(lambda: not alive(grandchild), 3)
    assert time.monotonic() - started < 5


def test_exit_of_the_child_is_reported() -> None:
    codes: list[int] = []
    ChildProcess(["sh", "-c", "exit 7"], on_exit=codes.append)
    assert wait_for(lambda: codes == [7])


def test_no_child_is_left_when_the_app_exits(tmp_path: Path) -> None:
    """A program that starts a child and exits without stopping it: the atexit hook ends the child."""
    pidfile = tmp_path / "child.pid"
    code = textwrap.dedent(f"""
        import pathlib, time
        from desktop_app.tunnel.process import ChildProcess
        child = ChildProcess(["sleep", "60"])
        pathlib.Path({str(pidfile)!r}).write_text(str(child.pid))
        time.sleep(0.2)
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
    pid = int(pidfile.read_text())
    assert wait_for(lambda: not alive(pid), 5), f"child {pid} was left behind"


def test_children_of_a_killed_app_are_stopped_by_the_next_one(tmp_path: Path) -> None:
    """SIGKILL skips atexit: the child survives its app; the next app's reap stops it."""
    pidfile = tmp_path / "child.pid"
    code = textwrap.dedent(f"""
        import os, pathlib, signal
        from desktop_app.tunnel.process import ChildProcess
        child = ChildProcess(["sleep", "60"])
        pathlib.Path({str(pidfile)!r}).write_text(str(child.pid))
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    subprocess.run([sys.executable, "-c", code], timeout=30)
    pid = int(pidfile.read_text())
    try:
        assert alive(pid), "the child should have outlived its killed app"
        mine = ChildProcess(["sleep", "60"])  # a child of a live app (this one) is left alone
        assert orphans.reap_orphans() == [pid]
        assert wait_for(lambda: not alive(pid), 5)
        assert mine.running()
        mine.stop()
        assert orphans.reap_orphans() == []
    finally:
        if alive(pid):
            os.kill(pid, 9)
