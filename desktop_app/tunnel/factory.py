"""Build a tunnel from the settings (and command-line overrides).

``build_tunnel`` makes a provider's tunnel for a local port; ``from_settings`` makes the one in front of
a recording server, checked through its public URL with the probe recording and the server's links
following that URL (the app's root and ``callrelay serve`` both use it; not started).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from desktop_app.settings import Settings
from desktop_app.tunnel.base import Backoff, Tunnel, TunnelConfigError, TunnelEvent
from desktop_app.tunnel.probe import probe_link_factory
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


class _Store(Protocol):
    def add(self, path: Any) -> Any: ...


class TunneledServer(Protocol):
    """What ``from_settings`` needs of the recording server (``server.app.RecordingServer`` has it)."""

    @property
    def port(self) -> int: ...

    @property
    def store(self) -> _Store: ...

    def set_public_url(self, url: str | None) -> None: ...

    def make_link(self, sha256: str) -> str: ...


def from_settings(
    provider: str,
    settings: Settings,
    server: TunneledServer,
    *,
    overrides: Mapping[str, Any] | None = None,
    probe_url: Callable[[str], str] | None = None,
) -> Tunnel:
    """The tunnel ``provider`` (settings, with ``overrides`` winning) in front of ``server``, not started:
    checked through its public URL with the probe recording (added to the server's store), the server's links
    following the public URL it gets. TunnelConfigError for an unknown provider."""
    if probe_url is None:
        probe_url = probe_link_factory(server.store, server)
    tunnel = build_tunnel(provider, settings, local_port=server.port, check=ReachabilityCheck(probe_url),
                          overrides=overrides)

    def follow(event: TunnelEvent) -> None:
        if event.kind == "url" and event.public_url:
            server.set_public_url(event.public_url)

    tunnel.add_listener(follow)
    return tunnel
