"""``callrelay check`` and ``callrelay fix``: output, JSON keys, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from desktop_app import paths
from desktop_app.audio import probe

from . import gen
from .conftest import ROOT_DIR, run_cli

KEYS = ["path", "container", "codec", "channels", "sample_rate", "bit_depth", "duration_s", "size_bytes",
        "uploadable", "problems"]


def test_check_json_gives_one_object_per_line_with_the_named_keys(capsys: pytest.CaptureFixture[str],
                                                                  folder: Path, x: np.ndarray) -> None:
    good = gen.write_wav(folder / "good.wav", x)
    mono = gen.encode(folder / "mono.flac", x[:1], "flac")
    code, out, _ = run_cli(capsys, "check", "--json", str(good), str(mono))
    assert code == 0  # a warning does not stop the upload
    lines = [json.loads(line) for line in out.splitlines()]
    assert [list(obj) for obj in lines] == [KEYS, KEYS]
    assert lines[0] == {"path": str(good), "container": "wav", "codec": "pcm_s16le", "channels": 2,
                        "sample_rate": 8000, "bit_depth": 16, "duration_s": 4.0,
                        "size_bytes": good.stat().st_size, "uploadable": True, "problems": []}
    assert lines[1]["problems"] == [{"code": "mono", "severity": "warning",
                                     "message": lines[1]["problems"][0]["message"]}]


def test_check_exits_1_when_any_file_is_refused(capsys: pytest.CaptureFixture[str], folder: Path,
                                                x: np.ndarray) -> None:
    good = gen.write_wav(folder / "good.wav", x)
    mp3 = gen.encode(folder / "a.mp3", x, "mp3")
    code, out, _ = run_cli(capsys, "check", str(good), str(mp3))
    assert code == 1
    lines = out.splitlines()
    assert lines[0].split() == ["FILE", "FORMAT", "CH", "RATE", "LENGTH", "VERDICT"]
    assert lines[1].split()[:5] == ["good.wav", "wav/pcm_s16le", "2", "8000", "0:04.0"]
    assert lines[1].endswith("ok")
    assert lines[2].startswith("a.mp3") and lines[2].endswith("blocked")
    assert "error   unsupported-format:" in lines[3]
    assert lines[-1] == "1 of 2 file(s) can be uploaded as they are."


def test_check_analyse_adds_what_only_the_samples_show(capsys: pytest.CaptureFixture[str], folder: Path,
                                                       x: np.ndarray) -> None:
    twin = gen.write_wav(folder / "twin.wav", np.stack([x[0], x[0]]))
    code, out, _ = run_cli(capsys, "check", "--json", str(twin))
    assert code == 0 and json.loads(out)["problems"] == []
    code, out, _ = run_cli(capsys, "check", "--json", "--analyse", str(twin))
    assert [p["code"] for p in json.loads(out)["problems"]] == ["identical-channels"]


@pytest.mark.parametrize("args", [["check"], ["check", "--bogus", "x.wav"], ["fix"], ["fix", "swap"],
                                  ["fix", "convert", "a.wav", "--to", "mp3"]])
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    code, _, err = run_cli(capsys, *args)
    assert code == 2 and "usage:" in err


def test_fix_commands(capsys: pytest.CaptureFixture[str], folder: Path, x: np.ndarray) -> None:
    src = gen.write_wav(folder / "call.wav", x)
    code, out, _ = run_cli(capsys, "fix", "swap", str(src))
    swapped = Path(out.strip())
    assert code == 0 and swapped.parent == paths.fixes_dir() and probe(swapped).container == "flac"
    code, out, _ = run_cli(capsys, "fix", "convert", str(src), "-o", str(folder.parent / "c.wav"))
    assert code == 0 and Path(out.strip()) == folder.parent / "c.wav"
    a = gen.write_wav(folder / "a.wav", x[:1])
    b = gen.write_wav(folder / "b.wav", x[1:])
    code, out, _ = run_cli(capsys, "fix", "merge", str(a), str(b), "--to", "wav", "--caller-start",
                           "2024-01-01T10:00:00", "--recipient-start", "2024-01-01T10:00:01")
    merged = Path(out.strip())
    assert code == 0 and probe(merged).channels == 2 and probe(merged).duration_s == pytest.approx(5.0)
    code, out, err = run_cli(capsys, "fix", "swap", str(a))
    assert code == 1 and out == "" and "two-channel" in err
    assert sorted(p.name for p in folder.iterdir()) == ["a.wav", "b.wav", "call.wav"]


def test_the_installed_command_runs(folder: Path, x: np.ndarray, tmp_path: Path) -> None:
    src = gen.write_wav(folder / "call.wav", x)
    env = dict(os.environ, CALLRELAY_HOME=str(tmp_path / "home"))
    proc = subprocess.run([sys.executable, "-m", "desktop_app", "check", "--json", str(src), str(folder / "nope")],
                          capture_output=True, text=True, cwd=ROOT_DIR, env=env, timeout=60)
    assert proc.returncode == 1, proc.stderr
    objs = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [o["uploadable"] for o in objs] == [True, False]
