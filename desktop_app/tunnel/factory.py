"""Build a tunnel from the settings (and command-line overrides)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from desktop_app.settings import Settings
from desktop_app.tunnel.base import Backoff, Tunnel, TunnelConfigError
from desktop_app.tunnel.providers.cloudflared import CloudflaredConfig, CloudflaredTunnel
from desktop_app.tunnel.providers.manual import ManualTunnel
from desktop_app.tunnel.providers.ngrok import NgrokConfig, NgrokTunnel
from desktop_app.tunnel.providers.ssh import SshConfig, SshTunnel
from desktop_app.tunnel.watchdog import ReachabilityCheck

PROVIDERS = ("ssh", "ngrok", "cloudflared", "manual")


def build_tunnel(
    provider: str,
    settings: Settings,
    *,
    local_port: int,
    local_host: str = "127.0.0.1",
    check: ReachabilityCheck | None = None,
    overrides: Mapping[str, Any] | None = None,
    backoff: Backoff | None = None,
) -> Tunnel:
    """The tunnel ``provider`` for a server on ``local_host:local_port``.

    ``overrides`` maps setting names to values that win over the settings file (command-line flags);
    plain-http public URLs are allowed only when ``hubspot.sandbox`` is on.
    """
    values = dict(overrides or {})

    def get(name: str) -> Any:
        return values[name] if values.get(name) not in (None, "") else settings.get(name)

    common: dict[str, Any] = {
        "check": check,
        "check_interval_s": float(get("tunnel.check_interval_s")),
        "allow_http": bool(get("hubspot.sandbox")),
        "backoff": backoff,
    }
    if provider == "ssh":
        cfg = SshConfig(
            host=get("tunnel.ssh_host"), user=get("tunnel.ssh_user"), key=get("tunnel.ssh_key"),
            port=int(get("tunnel.ssh_port")), remote_port=int(get("tunnel.ssh_remote_port")),
            public_url=get("tunnel.ssh_public_url"), local_port=local_port, local_host=local_host,
        )
        return SshTunnel(cfg, **common)
    if provider == "ngrok":
        return NgrokTunnel(NgrokConfig(local_addr=f"{local_host}:{local_port}", domain=get("tunnel.ngrok_domain")),
                           **common)
    if provider == "cloudflared":
        cf = CloudflaredConfig(local_url=f"http://{local_host}:{local_port}", program=get("tunnel.cloudflared_path"),
                               tunnel=get("tunnel.cloudflared_tunnel"), hostname=get("tunnel.cloudflared_hostname"))
        return CloudflaredTunnel(cf, **common)
    if provider == "manual":
        return ManualTunnel(get("server.public_url"), **common)
    raise TunnelConfigError(f"Unknown tunnel provider {provider!r}: one of {', '.join(PROVIDERS)}")
