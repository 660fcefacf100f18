"""A bounded run of the C fast path's differential fuzz (benchmarks/fuzz_fastpath.py, a million
requests there): generated requests, valid and not, split and pipelined, go to a server with the C
path and one without; the bytes answered and the access-log lines must be the same."""

from __future__ import annotations

import importlib.util
import os
import random
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _fuzz_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzz_fastpath", ROOT / "benchmarks" / "fuzz_fastpath.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fuzz_fastpath"] = module
    spec.loader.exec_module(module)
    return module


fuzz_fastpath = _fuzz_module()


@pytest.fixture(autouse=True)
def _own_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLRELAY_HOME", os.environ.get("CALLRELAY_HOME", ""))  # the fuzz sets its own; undone


@pytest.mark.parametrize("seed", [20261204, random.randrange(1 << 32)])
def test_the_c_path_answers_generated_requests_as_the_general_path(seed: int) -> None:
    print(f"fuzz seed {seed}")  # shown with -s, and in the failure's report
    found: list[str] = []
    done, diffs, c_answered = fuzz_fastpath.fuzz(2500, seed, report=found.append)
    assert diffs == 0, f"seed {seed}: {diffs} differences; the first:\n" + "\n".join(found)
    assert done >= 2500
    assert c_answered > done // 20, "the C path answered too few of the generated requests to test it"


def test_the_comparison_sees_a_one_byte_difference(tmp_path: Path) -> None:
    """The fuzz can fail: a C path that writes one byte more is caught."""
    pair = fuzz_fastpath.Pair(tmp_path)
    try:
        http = pair.sides[0].http
        real = http.fast_raw

        def one_more(conn: object, data: bytes) -> int:
            done = int(real(conn, data))
            if done:
                os.write(conn.fd, b"!")  # type: ignore[attr-defined]
            return done

        http.fast_raw = one_more
        link = pair.links[2]
        same, c, general = pair.compare([f"GET {link} HTTP/1.1\r\nRange: bytes=0-9\r\n\r\n".encode()])
        assert c.c_answered == 1 and general.c_answered == 0
        assert not same
    finally:
        pair.close()
