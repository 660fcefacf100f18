"""Every ``callrelay serve …`` example in the README runs as written: the real parser takes it, then
bash runs the line as a user types it (the installed ``callrelay`` command, ``~`` expanded by the
shell, the comment left on) until it serves, and SIGTERM stops it at once.

The data directory's settings only move the default port to a free one (another test may hold 8765);
``cloudflared`` on PATH is the stand-in program; ``~/.ssh/callrelay`` is a key in a throw-away home."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tunnel_helpers import Serve

from desktop_app.cli import build_parser
from desktop_app.tunnel.probe import write_probe_wav

README = Path(__file__).resolve().parents[2] / "README.md"
FAKE_CLOUDFLARED = Path(__file__).with_name("fake_cloudflared.py")


def serve_examples() -> list[str]:
    """The README's ``callrelay serve`` command lines, continuation lines joined."""
    found: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", README.read_text(encoding="utf-8"), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.lstrip().startswith("callrelay serve"):
                found.append(line.strip())
    return found


EXAMPLES = serve_examples()


def example_id(line: str) -> str:
    return line.split("#")[0].removeprefix("callrelay serve").strip() or "(no flags)"


def test_the_readme_shows_serve_with_each_kind_of_tunnel() -> None:
    flags = " ".join(EXAMPLES)
    for needed in ("--tunnel ssh --ssh-host", "--tunnel manual --tunnel-url", "--tunnel cloudflared", "--share"):
        assert needed in flags, f"the README lost its example of {needed}"


@pytest.mark.parametrize("line", EXAMPLES, ids=example_id)
def test_the_parser_takes_the_example(line: str) -> None:
    argv = shlex.split(line, comments=True)
    assert argv[:2] == ["callrelay", "serve"]
    args = build_parser().parse_args(argv[1:])  # exits 2 on an unknown flag
    assert args.command == "serve"


@pytest.mark.parametrize("line", EXAMPLES, ids=example_id)
def test_the_example_runs_as_written(line: str, callrelay_home: Path, tmp_path: Path) -> None:
    (callrelay_home / "settings.json").write_text(json.dumps({"server.port": 0}))
    home, bin_dir, work = tmp_path / "home", tmp_path / "bin", tmp_path / "work"
    for d in (home / ".ssh", bin_dir, work):
        d.mkdir(parents=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(home / ".ssh" / "callrelay")],
                   check=True)
    shutil.copy(FAKE_CLOUDFLARED, bin_dir / "cloudflared")
    (bin_dir / "cloudflared").chmod(0o755)
    write_probe_wav(work / "call.wav")
    venv_bin = Path(sys.executable).parent  # where `pip install` put the callrelay command
    assert (venv_bin / "callrelay").exists()
    env = {**os.environ, "HOME": str(home), "PATH": f"{bin_dir}:{venv_bin}:{os.environ['PATH']}"}
    serve = Serve(command=["bash", "-c", line], env=env, cwd=work)
    try:
        serve.wait_line("err", "Serving until interrupted", timeout=30)
        serve.wait_line("out", "Recording endpoint for HubSpot: ")
    finally:
        took = serve.stop()
    text = serve.describe()
    assert serve.proc.returncode == 0, text
    assert "Traceback" not in text and "usage:" not in text, text
    assert took < 2.5, f"SIGTERM took {took:.1f} s; {text}"
