"""Test helpers for the tunnel: a tiny origin server on loopback and a real sshd started per test."""

from __future__ import annotations

import getpass
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from desktop_app.tunnel import Tunnel, TunnelEvent

BROWSER_HINT = "Mozilla/"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


class Origin:
    """A small HTTP server standing in for the recording server: ``/healthz`` and ``/r/<name>``.

    ``ranges`` off makes it ignore Range (200 with the whole body); ``browser_warning`` makes it
    answer browser-looking requests with an HTML page, as ngrok's free plan does.
    """

    def __init__(self, payload: bytes = b"RIFF" + bytes(range(256)) * 4) -> None:
        self.payload = payload
        self.ranges = True
        self.browser_warning = False
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.public_url: str | None = None
        origin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                origin.requests.append((self.path, {k: v for k, v in self.headers.items()}))
                if origin.browser_warning and BROWSER_HINT in self.headers.get("User-Agent", ""):
                    body = b"<!DOCTYPE html><html><body>You are about to visit...</body></html>"
                    self._send(200, "text/html", body)
                elif self.path == "/healthz":
                    self._send(200, "application/json", json.dumps({"version": "test", "uptime": 1}).encode())
                elif self.path.startswith("/r/"):
                    m = re.match(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
                    if m and origin.ranges:
                        start = int(m.group(1))
                        end = int(m.group(2)) if m.group(2) else len(origin.payload) - 1
                        part = origin.payload[start:end + 1]
                        self._send(206, "application/octet-stream", part,
                                   {"Content-Range": f"bytes {start}-{end}/{len(origin.payload)}"})
                    else:
                        self._send(200, "application/octet-stream", origin.payload)
                else:
                    self._send(404, "text/plain", b"not found")

            def _send(self, status: int, ctype: str, body: bytes, extra: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def local_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # the bits of the recording server's interface the tunnel uses
    def set_public_url(self, url: str | None) -> None:
        self.public_url = url

    def make_link(self, sha256: str) -> str:
        return f"{self.public_url or self.local_url}/r/{sha256}?sig=abc"

    def probe_url(self, base: str) -> str:
        return f"{base.rstrip('/')}/r/probe"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (read from /proc), deepest last."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Sshd:
    """A real OpenSSH server on 127.0.0.1 with its own config, host key and one authorized client key."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.user = getpass.getuser()
        self.host_key = self.dir / "host_ed25519"
        self.client_key = self.dir / "client_ed25519"
        for key in (self.host_key, self.client_key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        (self.dir / "authorized_keys").write_text(Path(str(self.client_key) + ".pub").read_text())
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
        self.config = self.dir / "sshd_config"
        self.config.write_text("\n".join([
            "ListenAddress 127.0.0.1",
            f"Port {self.port}",
            f"HostKey {self.host_key}",
            f"PidFile {self.dir / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.dir / 'authorized_keys'}",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",
            "PermitRootLogin prohibit-password",
            f"AllowUsers {self.user}",
            "AllowTcpForwarding yes",
            "GatewayPorts clientspecified",
            "ClientAliveInterval 5",
            "LogLevel VERBOSE",
            "",
        ]))
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.dir / "sshd.log"

    def start(self) -> None:
        sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(self.config)], stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        if not wait_for(self._listening, 10):
            raise RuntimeError(f"sshd did not start: {self.log.read_text()}")

    def _listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def kill(self) -> None:
        """Kill sshd and every session it forked, as when the host goes away."""
        if self.proc is None:
            return
        pids = [self.proc.pid, *descendants(self.proc.pid)]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        self.proc = None
        wait_for(lambda: not any(alive(p) for p in pids), 5)


def collect_events(tunnel: Tunnel) -> list[TunnelEvent]:
    """A list that receives every event of ``tunnel`` from now on (from whatever thread)."""
    seen: list[TunnelEvent] = []
    lock = threading.Lock()

    def listener(event: TunnelEvent) -> None:
        with lock:
            seen.append(event)

    tunnel.add_listener(listener)
    return seen


def curl_range(url: str, byte_range: str = "0-0") -> tuple[str, bytes]:
    """curl, an independent client, asks ``url`` for ``byte_range``: the status code and the body."""
    out = subprocess.run(["curl", "-sS", "--noproxy", "*", "-r", byte_range, "-o", "-", "-w", "\n%{http_code}", url],
                         capture_output=True, timeout=20, check=True).stdout
    body, _, code = out.rpartition(b"\n")
    return code.decode(), body


class BlackHole:
    """A stalled network: a port that takes connections but never answers (never accepts them)."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = int(self._sock.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._sock.close()


class Serve:
    """``callrelay serve …`` run as a user runs it (``command`` for another form, e.g. through bash);
    both streams are read as they come, each line with the time it arrived."""

    def __init__(self, args: Sequence[str] = (), *, env: Mapping[str, str] | None = None, cwd: Path | None = None,
                 command: Sequence[str] | None = None) -> None:
        argv = list(command) if command is not None else [sys.executable, "-m", "desktop_app", "serve", *args]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=dict(env) if env is not None else None, cwd=cwd)
        self.out: list[tuple[float, str]] = []
        self.err: list[tuple[float, str]] = []
        self._readers = [threading.Thread(target=self._read, args=(stream, lines), daemon=True)
                         for stream, lines in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: object, lines: list[tuple[float, str]]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            lines.append((time.monotonic(), line.rstrip("\n")))

    @property
    def stdout(self) -> list[str]:
        return [line for _, line in list(self.out)]

    @property
    def stderr(self) -> list[str]:
        return [line for _, line in list(self.err)]

    def describe(self) -> str:
        return "stdout:\n" + "\n".join(self.stdout) + "\nstderr:\n" + "\n".join(self.stderr)

    def local_url(self) -> str:
        """The server's local address, from its first line."""
        return self.wait_line("out", "Recording server listening on ", timeout=20).rsplit(" ", 1)[1]

    def wait_line(self, stream: str, match: Callable[[str], bool] | str, timeout: float = 30.0) -> str:
        """The first line of ``stream`` (``out`` or ``err``) that ``match``es (a prefix, or a predicate)."""
        test = match if callable(match) else (lambda line: line.startswith(match))  # type: ignore[misc]
        lines = self.out if stream == "out" else self.err
        found: list[str] = []

        def seen() -> bool:
            found[:] = [line for _, line in list(lines) if test(line)]
            return bool(found) or self.proc.poll() is not None

        wait_for(seen, timeout)
        if not found:
            raise AssertionError(f"no {stream} line matching {match!r} within {timeout} s; {self.describe()}")
        return found[0]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> float:
        """Send ``sig`` and wait for the exit; the seconds it took."""
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            for reader in self._readers:
                reader.join(5)
        return time.monotonic() - t0


def foreign_program(path: Path) -> Path:
    """An executable built for another processor: this machine's ``true`` with another ELF machine
    field (x86-64 <-> AArch64), which the kernel refuses to run ("Exec format error")."""
    data = bytearray(Path(shutil.which("true") or "/bin/true").read_bytes())
    machine = int.from_bytes(data[18:20], "little")
    data[18:20] = (0xB7 if machine == 0x3E else 0x3E).to_bytes(2, "little")
    path.write_bytes(bytes(data))
    path.chmod(0o755)
    return path
