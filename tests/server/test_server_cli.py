"""``callrelay serve`` as a user runs it: a real process, its printed link, Ctrl-C."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from server_helpers import from_each_cpu, on_cpu

from desktop_app import paths


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "desktop_app", "serve", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def read_link(proc: subprocess.Popen[str]) -> tuple[list[str], str]:
    assert proc.stdout is not None
    lines: list[str] = []
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if line.startswith("Shared "):
            link = proc.stdout.readline().rstrip("\n")
            lines.append(link)
            return lines, link
    raise AssertionError(f"no link printed: {lines}; stderr: {proc.stderr.read() if proc.stderr else ''}")


def test_serve_share_prints_the_link_last_and_stops_on_ctrl_c(blob: Path) -> None:
    proc = start("--port", "0", "--share", str(blob))
    try:
        lines, link = read_link(proc)
        r = requests.get(link, headers={"Range": "bytes=0-99"}, timeout=10)
        assert r.status_code == 206 and r.content == blob.read_bytes()[:100]
        info = json.loads((paths.run_dir() / "server.json").read_text())
        assert info["pid"] == proc.pid and link.startswith(info["local_url"] + "/recordings/")
        assert requests.get(info["local_url"] + "/healthz", timeout=5).json()["status"] == "ok"
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert (lines + out.splitlines())[-1] == link  # nothing printed after the link on stdout
    assert not (paths.run_dir() / "server.json").exists()
    assert "Traceback" not in err


def test_serve_public_url_and_sigterm(blob: Path) -> None:
    proc = start("--port", "0", "--share", str(blob), "--public-url", "https://calls.example.com/relay/")
    try:
        lines, link = read_link(proc)
        assert "Public URL: https://calls.example.com/relay" in lines
        assert "Recording endpoint for HubSpot: https://calls.example.com/relay/retrieve/authenticated/recordings/%s" \
            in lines
        assert link.startswith("https://calls.example.com/relay/recordings/")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
    assert proc.returncode == 0


def test_serve_reports_a_taken_port_and_a_missing_file(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "desktop_app", "serve", "--port", str(port)],
                              capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "desktop_app", "serve", "--port", "0", "--share",
                           str(tmp_path / "nope.wav")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "nope.wav" in proc.stderr and "Traceback" not in proc.stderr


def test_serve_uses_the_settings(blob: Path) -> None:
    from desktop_app.settings import Settings

    s = Settings()
    s.update({"server.port": 0, "server.public_url": "https://from-settings.example.com"})
    s.save()
    proc = start("--share", str(blob))
    try:
        _, link = read_link(proc)
        assert link.startswith("https://from-settings.example.com/recordings/")
        t0 = time.monotonic()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
    assert proc.returncode == 0 and time.monotonic() - t0 < 5


def test_serve_workers_flag(blob: Path) -> None:
    """``--workers N`` serves from N processes on the one port; Ctrl-C stops them all."""
    proc = start("--port", "0", "--share", str(blob), "--workers", "3")
    try:
        _, link = read_link(proc)
        base = link.split("/recordings/")[0]
        pids: set[int] = set()
        for cpu in from_each_cpu(300):  # new connections, from each CPU in turn, until every process has answered
            with on_cpu(cpu), requests.Session() as s:
                pids.add(s.get(f"{base}/healthz", timeout=5).json()["pid"])
            if len(pids) == 3:
                break
        assert len(pids) == 3 and proc.pid in pids
        with requests.Session() as s:
            assert s.get(link, headers={"Range": "bytes=10-19"}, timeout=5).content == blob.read_bytes()[10:20]
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "Serving from 3 processes (--workers 3)." in err
    children = pids - {proc.pid}
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in children):
        time.sleep(0.05)
    assert not any(Path(f"/proc/{pid}").exists() for pid in children), "a worker outlived `callrelay serve`"
    bad = subprocess.run([sys.executable, "-m", "desktop_app", "serve", "--port", "0", "--workers", "0"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--workers must be 1..16, not 0" in bad.stderr
