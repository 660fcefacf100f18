"""faster-whisper is an optional extra: nothing imports it until a transcription starts, the installer
leaves it out unless the user adds it, and `pip install 'callrelay[transcribe]'` declares it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import tomllib

from tests.conftest import ROOT

TRANSCRIBE_ONLY = {"faster_whisper", "ctranslate2", "onnxruntime", "tokenizers", "huggingface_hub"}


def test_the_command_loads_without_importing_the_engine() -> None:
    code = ("import sys; from desktop_app.cli import build_parser; build_parser(); "
            "import desktop_app.transcribe.engine; "
            f"print(sorted(m for m in {sorted(TRANSCRIBE_ONLY)!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_the_bundle_excludes_the_engine_unless_the_user_adds_it(spec: dict[str, Any]) -> None:
    assert TRANSCRIBE_ONLY <= set(spec["EXCLUDES"])
    env = dict(os.environ, CALLRELAY_BUNDLE_TRANSCRIBE="1")
    code = ("import sys; ns = {'__name__': 'build_spec', 'SPECPATH': sys.argv[1]}; "
            "exec(compile(open(sys.argv[1] + '/build.spec').read(), 'build.spec', 'exec'), ns); "
            "print(sorted(set(ns['EXCLUDES']) & set(sys.argv[2:])))")
    out = subprocess.run([sys.executable, "-c", code, str(ROOT), *TRANSCRIBE_ONLY], capture_output=True,
                         text=True, check=True, env=env)
    assert out.stdout.strip() == "[]"


def test_the_extra_is_declared() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert any(dep.startswith("faster-whisper") for dep in project["optional-dependencies"]["transcribe"])
    assert not any("whisper" in dep for dep in project["dependencies"])


def test_settings_are_declared() -> None:
    from desktop_app.settings import BY_NAME, SettingsError, validate

    assert BY_NAME["transcribe.when"].default == "never"
    assert BY_NAME["transcribe.when"].choices == ("never", "not-transcribed", "always")
    assert validate("transcribe.model_dir", "/models/base") == "/models/base"
    assert validate("transcribe.language", "") == ""
    try:
        validate("transcribe.when", "sometimes")
    except SettingsError as exc:
        assert "never, not-transcribed, always" in str(exc)
    else:
        raise AssertionError("an unknown transcribe.when was accepted")


def test_the_test_model_script_checks_hashes(tmp_path: Path, whisper_model: Path) -> None:
    """A folder that is not whole is joined again; a file that differs from the hashes written in the repo
    is refused in one sentence (exit 1)."""
    env = dict(os.environ, CALLRELAY_TEST_CACHE=str(tmp_path))
    script = str(ROOT / "scripts" / "whisper_test_model.py")
    ok = subprocess.run([sys.executable, script], capture_output=True, text=True, env=env)
    assert ok.returncode == 0 and ok.stdout.strip() == str(tmp_path / "whisper-base")
    (tmp_path / "whisper-base" / "config.json").write_text("{}")  # not whole: joined again
    again = subprocess.run([sys.executable, script], capture_output=True, text=True, env=env)
    assert again.returncode == 0 and (tmp_path / "whisper-base" / "config.json").stat().st_size > 2
    wrong = ("import runpy, sys; from desktop_app.testing import whisper_model as m; "
             "m.EXPECTED['vocabulary.txt'] = '0' * 64; runpy.run_path(sys.argv[1], run_name='__main__')")
    bad = subprocess.run([sys.executable, "-c", wrong, script], capture_output=True, text=True, env=env)
    assert bad.returncode == 1 and "vocabulary.txt has SHA-256" in bad.stderr and bad.stderr.count("\n") == 1
