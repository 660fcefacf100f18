"""The C fast path depends on no private layout of CPython's objects: ``_fastserve.c`` compiles
against the limited API (Python 3.11's stable ABI, ``Py_LIMITED_API``), where the macros that read
object fields directly (``PyBytes_AS_STRING``, ``PyTuple_GET_ITEM``...) do not exist."""

from __future__ import annotations

import shlex
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[2] / "desktop_app" / "server" / "_fastserve.c"


@pytest.mark.skipif(sys.platform != "linux", reason="the C fast path is built on Linux only")
def test_the_c_fast_path_compiles_against_the_limited_api(tmp_path: Path) -> None:
    cc = shlex.split(sysconfig.get_config_var("CC") or "cc")
    command = cc + ["-fPIC", "-O2", "-Wall", "-Werror", "-DPy_LIMITED_API=0x030B0000",
                    f"-I{sysconfig.get_paths()['include']}", "-c", str(SOURCE), "-o", str(tmp_path / "fastserve.o")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "fastserve.o").stat().st_size > 0
