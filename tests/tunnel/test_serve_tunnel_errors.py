"""``callrelay serve --tunnel cloudflared`` with a ``tunnel.cloudflared_path`` that cannot run (not
executable, or built for another processor): one sentence on stderr, no traceback, and the server
keeps serving on this computer, as for every other tunnel that cannot work as configured."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from tunnel_helpers import Serve, foreign_program

FAKE_CLOUDFLARED = Path(__file__).with_name("fake_cloudflared.py")


def not_executable(path: Path) -> Path:
    path.write_bytes(FAKE_CLOUDFLARED.read_bytes())
    path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    return path


@pytest.mark.parametrize("make, reason", [(not_executable, "not executable"),
                                          (foreign_program, "not a program for this computer")],
                         ids=["not-executable", "wrong-architecture"])
def test_a_program_that_cannot_run(make: object, reason: str, callrelay_home: Path, tmp_path: Path) -> None:
    program = make(tmp_path / "cloudflared")  # type: ignore[operator]
    (callrelay_home / "settings.json").write_text(json.dumps({"tunnel.cloudflared_path": str(program),
                                                              "server.port": 0}))
    serve = Serve(["--tunnel", "cloudflared"])
    try:
        serve.wait_line("err", "Serving until interrupted", timeout=30)
        base = serve.local_url()
        assert requests.get(base + "/healthz", timeout=5).status_code == 200
        assert serve.proc.poll() is None
    finally:
        serve.stop()
    assert serve.proc.returncode == 0, serve.describe()
    errors = serve.stderr
    assert "Traceback" not in serve.describe()
    said = [line for line in errors if str(program) in line]
    assert len(said) == 1, errors
    assert reason in said[0] and "tunnel.cloudflared_path" in said[0] and "keeps serving" in said[0], said[0]


def test_a_flag_out_of_its_settings_bounds_is_a_usage_error() -> None:
    proc = subprocess.run([sys.executable, "-m", "desktop_app", "serve", "--port", "0", "--tunnel", "manual",
                           "--tunnel-check-interval", "0"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "--tunnel-check-interval" in proc.stderr and "at least 10" in proc.stderr
    assert "Traceback" not in proc.stderr and "Recording server listening" not in proc.stdout
