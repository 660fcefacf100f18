"""``callrelay serve --tunnel ssh`` as a user runs it: a real process, a real sshd, curl through the
tunnel, then Ctrl-C (SIGTERM): the ssh child must not outlive it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tunnel_helpers import Serve, Sshd, alive, curl_range, descendants, free_port, wait_for

from desktop_app.settings import Settings
from desktop_app.tunnel.probe import write_probe_wav

pytestmark = pytest.mark.needs_tool("sshd")


def test_serve_with_an_ssh_tunnel(sshd: Sshd, tmp_path: Path) -> None:
    remote = free_port()
    settings = Settings()
    settings.update({"tunnel.ssh_host": "127.0.0.1", "tunnel.ssh_port": sshd.port, "tunnel.ssh_user": sshd.user,
                     "tunnel.ssh_key": str(sshd.client_key), "tunnel.ssh_remote_port": remote,
                     "tunnel.ssh_public_url": f"http://127.0.0.1:{remote}", "hubspot.sandbox": True})
    settings.save()
    audio = write_probe_wav(tmp_path / "call.wav", seconds=0.5)
    serve = Serve(["--port", "0", "--tunnel", "ssh", "--share", str(audio)])
    try:
        public = serve.wait_line("out", "Public URL:")
        assert public == f"Public URL: http://127.0.0.1:{remote}"
        serve.wait_line("out", "Shared ")
        link = serve.wait_line("out", "http")
        assert link.startswith(f"http://127.0.0.1:{remote}/")
        assert curl_range(link, "0-3") == ("206", audio.read_bytes()[:4])
        ssh = [p for p in descendants(serve.proc.pid) if Path(f"/proc/{p}/comm").read_text().strip() == "ssh"]
        assert len(ssh) == 1
    finally:
        serve.stop(timeout=20)
    assert serve.proc.returncode == 0
    assert wait_for(lambda: not alive(ssh[0]), 5), "ssh outlived callrelay serve"


def test_serve_with_the_ssh_flags_the_readme_shows(sshd: Sshd, callrelay_home: Path, tmp_path: Path) -> None:
    """The README's ``--tunnel ssh --ssh-host … --ssh-user … --ssh-key … --ssh-remote-port … --tunnel-url …``
    with nothing in the settings but sandbox mode (plain http on loopback)."""
    remote = free_port()
    (callrelay_home / "settings.json").write_text(json.dumps({"hubspot.sandbox": True}))
    audio = write_probe_wav(tmp_path / "call.wav", seconds=0.5)
    serve = Serve(["--port", "0", "--tunnel", "ssh", "--ssh-host", "127.0.0.1", "--ssh-port", str(sshd.port),
                   "--ssh-user", sshd.user, "--ssh-key", str(sshd.client_key), "--ssh-remote-port", str(remote),
                   "--tunnel-url", f"http://127.0.0.1:{remote}", "--share", str(audio)])
    try:
        serve.wait_line("err", "Serving until interrupted")
        assert f"Public URL: http://127.0.0.1:{remote}" in serve.stdout
        link = serve.stdout[-1]
        assert link.startswith(f"http://127.0.0.1:{remote}/recordings/"), serve.describe()
        assert curl_range(link, "0-3") == ("206", audio.read_bytes()[:4])
    finally:
        took = serve.stop()
    assert serve.proc.returncode == 0, serve.describe()
    assert took < 2.5
