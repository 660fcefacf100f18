"""cloudflared: the user's own ``cloudflared`` program; a quick tunnel (URL read from its output) or a
named tunnel with the user's hostname. A real connection needs the internet and Cloudflare."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from desktop_app.tunnel.base import TunnelConfigError, TunnelError
from desktop_app.tunnel.providers._child import ChildTunnel, find_program

INSTALL_HINT = ("install cloudflared (https://developers.cloudflare.com/cloudflare-one/connections/"
                "connect-networks/downloads/) or set its path in the setting tunnel.cloudflared_path.")

QUICK_URL = re.compile(r"https://[a-z0-9][a-z0-9-]*\.trycloudflare\.com\b")
# "2025-01-28T06:14:50Z INF Registered tunnel connection connIndex=0 connection=… location=las01 protocol=quic"
REGISTERED = re.compile(r"\bINF (Registered tunnel connection|Connection [0-9a-f-]+ registered)\b")
# The lines cloudflared prints when a quick tunnel cannot be had (it then exits).
FATAL = re.compile(r"^(failed to (request|unmarshal|parse) quick Tunnel.*)$|\bERR (.+)$")


@dataclass(frozen=True)
class CloudflaredConfig:
    local_url: str  # http://127.0.0.1:PORT of the recording server
    program: str = "cloudflared"
    tunnel: str = ""  # named tunnel; empty for a quick tunnel
    hostname: str = ""  # the named tunnel's public hostname


def build_cloudflared_command(cfg: CloudflaredConfig, program: str) -> list[str]:
    if cfg.tunnel:
        if not cfg.hostname:
            raise TunnelConfigError("A named cloudflared tunnel needs its public hostname (setting "
                                    "tunnel.cloudflared_hostname), routed to the tunnel in Cloudflare's DNS.")
        return [program, "tunnel", "--no-autoupdate", "run", "--url", cfg.local_url, cfg.tunnel]
    return [program, "tunnel", "--no-autoupdate", "--url", cfg.local_url]


@dataclass
class CloudflaredOutput:
    """What cloudflared's output said so far."""

    url: str | None = None
    registered: bool = False
    error: str | None = None

    def feed(self, line: str) -> None:
        if self.url is None and (m := QUICK_URL.search(line)):
            self.url = m.group(0)
        if REGISTERED.search(line):
            self.registered = True
        if (m := FATAL.search(line.strip())) and self.error is None:
            self.error = m.group(1) or m.group(3)


class CloudflaredTunnel(ChildTunnel):
    name = "cloudflared"
    program_hint = INSTALL_HINT

    def __init__(self, cfg: CloudflaredConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cfg = cfg
        self.parsed = CloudflaredOutput()

    def _argv(self) -> Sequence[str]:
        program = find_program(self.cfg.program, self.name, self.program_hint)
        self.parsed = CloudflaredOutput()
        return build_cloudflared_command(self.cfg, program)

    def _on_line(self, line: str) -> None:
        self.parsed.feed(line)
        if self.parsed.registered and (self.cfg.tunnel or self.parsed.url):
            self._ready.set()

    def _public(self) -> str:
        if self.cfg.tunnel:
            host = self.cfg.hostname
            return host if host.startswith("https://") else "https://" + host
        assert self.parsed.url is not None
        return self.parsed.url

    def _failure(self, output: list[str], code: int | None) -> TunnelError:
        reason = self.parsed.error
        if reason and ("dial tcp" in reason or "lookup" in reason or "connection refused" in reason):
            return TunnelError(f"cloudflared cannot reach Cloudflare ({reason}); a cloudflared tunnel "
                               "needs the internet. The recording server keeps working on this computer.")
        if reason:
            return TunnelError(f"cloudflared failed: {reason}")
        return super()._failure(output, code)
