"""SSH reverse tunnel (``ssh -R``) to a host the user controls; their reverse proxy there gives https.

Key authentication only (BatchMode: never a password prompt), the host key pinned on first use in
the app's own known_hosts file, keep-alives so a dead link ends the process (and the tunnel
reconnects), and ExitOnForwardFailure so a taken remote port is an error, not a silent half-tunnel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from desktop_app import paths
from desktop_app.tunnel.base import TunnelConfigError, TunnelError
from desktop_app.tunnel.providers._child import ChildTunnel, find_program


def known_hosts_file() -> Path:
    """The app's own known_hosts: the SSH host's key is pinned here on first use."""
    return paths.data_dir() / "ssh_known_hosts"


@dataclass(frozen=True)
class SshConfig:
    host: str
    user: str
    key: str
    local_port: int
    remote_port: int
    public_url: str
    port: int = 22
    remote_bind: str = "127.0.0.1"  # the reverse proxy on the SSH host reaches the app here
    local_host: str = "127.0.0.1"
    keepalive_s: int = 15
    keepalive_count: int = 3
    connect_timeout_s: int = 10
    program: str = "ssh"


def build_ssh_command(cfg: SshConfig, ssh: str, known_hosts: Path) -> list[str]:
    """The ssh command line for ``cfg`` (pure: checked by tests without a network)."""
    if not cfg.host:
        raise TunnelConfigError("No SSH host is set (setting tunnel.ssh_host).")
    if not cfg.user:
        raise TunnelConfigError("No SSH user is set (setting tunnel.ssh_user).")
    if not cfg.key:
        raise TunnelConfigError("No SSH key file is set (setting tunnel.ssh_key); the tunnel uses key "
                                "authentication only.")
    forward = f"{cfg.remote_bind}:{cfg.remote_port}:{cfg.local_host}:{cfg.local_port}"
    options = {
        "BatchMode": "yes",
        "IdentitiesOnly": "yes",
        "PasswordAuthentication": "no",
        "KbdInteractiveAuthentication": "no",
        "StrictHostKeyChecking": "accept-new",
        "UserKnownHostsFile": str(known_hosts),
        "GlobalKnownHostsFile": "/dev/null",
        "ServerAliveInterval": str(cfg.keepalive_s),
        "ServerAliveCountMax": str(cfg.keepalive_count),
        "ExitOnForwardFailure": "yes",
        "ConnectTimeout": str(cfg.connect_timeout_s),
        "ControlMaster": "no",
        "ControlPath": "none",
    }
    argv = [ssh, "-N", "-T", "-v", "-F", "/dev/null", "-i", str(Path(cfg.key).expanduser()), "-p", str(cfg.port)]
    for name, value in options.items():
        argv += ["-o", f"{name}={value}"]
    argv += ["-R", forward, "--", f"{cfg.user}@{cfg.host}"]
    return argv


# Lines of ssh's own output that mean the configuration, not the network, is wrong: no retry helps.
_CONFIG_FAILURES = (
    ("REMOTE HOST IDENTIFICATION HAS CHANGED", "The SSH host's key differs from the one pinned on first "
     "use: possibly an attack, or the host was reinstalled. If you trust it, remove its line from {kh}."),
    ("Host key verification failed", "The SSH host's key could not be verified against {kh}."),
    ("Permission denied", "The SSH host refused the key: add the public key to the user's "
     "~/.ssh/authorized_keys on the host."),
    ("Bad owner or permissions", "ssh refuses the key file's permissions: make it readable by you only "
     "(chmod 600)."),
    ("UNPROTECTED PRIVATE KEY FILE", "ssh refuses the key file's permissions: make it readable by you "
     "only (chmod 600)."),
)
# Transient, with a hint: the port may still be held by the previous connection for a while.
_PORT_REFUSED = ("remote port forwarding failed", "the SSH host refused to open remote port {port} (still held "
                 "by an earlier connection, used by another program, or forwarding is not allowed there)")


# ssh's -v lines and its closing statistics, left out of messages
_NOISE = ("debug", "Transferred:", "Bytes per second:")


class SshTunnel(ChildTunnel):
    name = "ssh"
    program_hint = "install OpenSSH's client."

    def __init__(self, cfg: SshConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cfg = cfg
        self.open_timeout_s = cfg.connect_timeout_s + 10.0

    def _argv(self) -> Sequence[str]:
        if not self.cfg.public_url:
            raise TunnelConfigError("No public URL is set for the SSH tunnel (setting tunnel.ssh_public_url): "
                                    "give the https address of your reverse proxy on the SSH host.")
        if not urlsplit(self.cfg.public_url).scheme:
            raise TunnelConfigError(f"{self.cfg.public_url!r} is not a URL")
        if not Path(self.cfg.key).expanduser().is_file():
            raise TunnelConfigError(f"The SSH key file {self.cfg.key} does not exist.")
        ssh = find_program(self.cfg.program, self.name, self.program_hint)
        return build_ssh_command(self.cfg, ssh, known_hosts_file())

    def _on_line(self, line: str) -> None:
        if "remote forward success" in line or "All remote forwarding requests processed" in line:
            self._ready.set()

    def _public(self) -> str:
        return self.cfg.public_url

    def _failure(self, output: list[str], code: int | None) -> TunnelError:
        text = "\n".join(output)
        for marker, message in _CONFIG_FAILURES:
            if marker in text:
                return TunnelConfigError(message.format(kh=known_hosts_file()))
        if _PORT_REFUSED[0] in text:
            return TunnelError(_PORT_REFUSED[1].format(port=self.cfg.remote_port))
        lines = [ln for ln in output if ln.strip() and not ln.startswith(_NOISE)]
        tail = " / ".join(lines[-3:]) or "no output"
        where = f"{self.cfg.user}@{self.cfg.host}:{self.cfg.port}"
        if code is None:
            return TunnelError(f"ssh to {where} did not open the tunnel within {self.open_timeout_s:.0f} s: {tail}")
        return TunnelError(f"ssh to {where} ended (code {code}): {tail}")
