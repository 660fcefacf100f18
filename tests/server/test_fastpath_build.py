"""A C fast path that did not compile is said, never passed over: by the install (setup.py's warning,
the package installing all the same), by ``callrelay --version`` and by the self-test's check line."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from desktop_app.server import fastpath
from desktop_app.ui import selftest

ROOT = Path(__file__).resolve().parents[2]
# ``callrelay --version`` in a process where the extension does not import (as when it did not compile)
WITHOUT_C = ("import sys; sys.modules['desktop_app.server._fastserve'] = None; "
             "from desktop_app.cli import main; sys.exit(main(['--version']))")
WITH_C = "import sys; from desktop_app.cli import main; sys.exit(main(['--version']))"


def _version(code: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout.splitlines()


@pytest.mark.skipif(sys.platform != "linux", reason="the C fast path is built on Linux only")
def test_version_says_whether_the_c_fast_path_is_built() -> None:
    built = _version(WITH_C)
    assert built[0].startswith("callrelay ")
    assert built[1].startswith("C fast path: built")
    missing = _version(WITHOUT_C)
    assert missing[0] == built[0]
    assert missing[1].startswith("C fast path: NOT built, it did not compile when Call Relay was installed")
    assert "apt install gcc python3-dev" in missing[1]


@pytest.mark.skipif(sys.platform != "linux", reason="the C fast path is built on Linux only")
def test_the_self_test_has_a_check_line_for_the_c_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    checks = {c.name: c for c in selftest.build_checks([])}
    out: list[str] = []
    assert selftest.run_checks([checks["C fast path"]], out.append) == 0
    assert out == ["ok C fast path"]
    monkeypatch.setattr(fastpath, "module", None)
    monkeypatch.setattr(fastpath, "why_not", "it did not compile when Call Relay was installed")
    out.clear()
    assert selftest.run_checks([checks["C fast path"]], out.append) == 1
    assert out == [f"FAIL C fast path: {fastpath.status_line()}"]


@pytest.mark.skipif(sys.platform != "linux", reason="the C fast path is built on Linux only")
def test_an_install_without_a_c_compiler_warns_and_still_installs(tmp_path: Path) -> None:
    """The package built as pip installs it (a wheel, with build isolation), with ``CC=false``: the
    build says the C fast path did not compile, and the package is there without it."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "desktop_app", src / "desktop_app",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyd"))
    env = {**__import__("os").environ, "CC": "false"}
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(tmp_path / "out"), "."],
                          cwd=src, env=env, capture_output=True, text=True, timeout=600)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "WARNING: the recording server's C fast path (desktop_app/server/_fastserve.c) did not compile" in output
    (wheel,) = (tmp_path / "out").glob("callrelay-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "desktop_app/server/app.py" in names
    assert not [n for n in names if "_fastserve" in n and n.endswith((".so", ".pyd"))]
