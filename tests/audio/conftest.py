"""Fixtures for the audio tests: generated calls and a helper that runs ``callrelay`` in-process."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from desktop_app import cli

from . import gen

ROOT_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture
def x() -> np.ndarray:
    """A 4-second two-speaker call: caller (ch 1) from 0.3 s, recipient (ch 2) from 1.0 s."""
    return gen.call(4.0)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "recordings"
    d.mkdir()
    return d


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        code = cli.main(list(args))
    except SystemExit as exc:  # argparse usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def check_json(capsys: pytest.CaptureFixture[str], *files: Path | str, analyse: bool = False) -> list[dict[str, Any]]:
    args = ["check", "--json", *map(str, files)] + (["--analyse"] if analyse else [])
    code, out, err = run_cli(capsys, *args)
    assert code in (0, 1), err
    return [json.loads(line) for line in out.splitlines()]


def ffprobe(path: Path) -> dict[str, Any]:
    """The independent reference: ffprobe's description of the first audio stream and the format."""
    exe = shutil.which("ffprobe")
    assert exe, "ffprobe is needed as the reference (scripts/system-deps test installs it)"
    out = subprocess.run([exe, "-v", "error", "-print_format", "json", "-show_streams", "-show_format", str(path)],
                         capture_output=True, text=True, check=True).stdout
    data = json.loads(out)
    audio = [s for s in data["streams"] if s["codec_type"] == "audio"]
    return {"stream": audio[0] if audio else None, "format": data["format"], "streams": data["streams"]}
