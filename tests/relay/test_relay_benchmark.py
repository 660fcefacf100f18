"""`benchmarks/relay.py` runs, on the session's PostgreSQL and SeaweedFS, at toy sizes, and prints its lines
and a verdict that agrees with its exit code (its timings are not judged here: the machine's load decides
them)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
from services import Postgres, Seaweed

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "relay.py"


def test_the_relay_benchmark_runs_and_prints_its_lines(postgres: Postgres, seaweed: Seaweed,
                                                       capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("bench_relay", BENCHMARK)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_relay", bench)
    spec.loader.exec_module(bench)
    rc = bench.main(["--parts", "endpoint,ingest", "--rate", "40", "--seconds", "0.5", "--known", "30",
                     "--files", "3", "--mb", "1", "--desks", "2"], services=(postgres, seaweed))
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert re.match(r"Team relay: relay serve .* on PostgreSQL \d+ and SeaweedFS", lines[0]), out
    assert lines[1].split() == ["measure", "relay", "reference", "ratio", "goal"]
    assert "endpoint, 40 req/s x 0.5 s" in out and "ingest 3 x 1 MB, 2 desks" in out
    for label in ("p50 (ms)", "p99 (ms)", "max (ms)", "server CPU per answer (ms)", "throughput (MB/s)"):
        (row,) = [line for line in lines if line.strip().startswith(label)]
        assert re.search(r"\d+\.\d\d?\s+\d+\.\d\d?\s+\d+\.\d\d", row), row
    assert "were not 200" not in out and "recordings were accepted" not in out  # every answer 200, all queued
    assert lines[-1] == ("goal met" if rc == 0 else "goal NOT met") and rc in (0, 1)
