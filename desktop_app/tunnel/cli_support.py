"""``callrelay serve --tunnel ssh|ngrok|cloudflared|manual``: the two calls ``serve`` makes.

``add_tunnel_arguments(parser)`` adds the flags; ``start_for_serve(args, server, settings)`` starts
the tunnel in front of the running server, points the server's links at the public URL (and keeps
doing so when it changes), prints the public URL and returns the tunnel (None without ``--tunnel``
or when the tunnel cannot work as configured: the server then keeps serving on this computer).
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Callable
from typing import Any, Protocol, TextIO

from desktop_app import settings as settings_mod
from desktop_app.settings import Settings
from desktop_app.tunnel.base import Tunnel, TunnelConfigError, TunnelEvent
from desktop_app.tunnel.factory import PROVIDERS, build_tunnel
from desktop_app.tunnel.probe import probe_link_factory
from desktop_app.tunnel.watchdog import ReachabilityCheck

# flag dest -> setting it overrides
FLAG_SETTINGS = {
    "tunnel_url": None,  # server.public_url or tunnel.ssh_public_url, by provider
    "ssh_host": "tunnel.ssh_host",
    "ssh_port": "tunnel.ssh_port",
    "ssh_user": "tunnel.ssh_user",
    "ssh_key": "tunnel.ssh_key",
    "ssh_remote_port": "tunnel.ssh_remote_port",
    "ngrok_domain": "tunnel.ngrok_domain",
    "cloudflared_path": "tunnel.cloudflared_path",
    "cloudflared_tunnel": "tunnel.cloudflared_tunnel",
    "cloudflared_hostname": "tunnel.cloudflared_hostname",
    "tunnel_check_interval": "tunnel.check_interval_s",
}


class _Server(Protocol):
    @property
    def port(self) -> int: ...

    def set_public_url(self, url: str | None) -> None: ...

    def make_link(self, sha256: str) -> str: ...


def add_tunnel_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the tunnel flags; a flag the parser already has (``serve``'s own ``--tunnel``) is kept."""
    group = parser.add_argument_group("tunnel", "make the server reachable by HubSpot (settings give the defaults)")
    taken = set(parser._option_string_actions)  # argparse's only list of its flags

    def add(flag: str, **kwargs: Any) -> None:
        if flag not in taken:
            group.add_argument(flag, **kwargs)

    add("--tunnel", choices=PROVIDERS, default=None,
        help="open this tunnel in front of the server and print its public URL")
    add("--tunnel-url", metavar="URL", help="public https base URL (manual; ssh: your reverse proxy)")
    add("--ssh-host", metavar="HOST")
    add("--ssh-port", metavar="PORT", type=int)
    add("--ssh-user", metavar="USER")
    add("--ssh-key", metavar="FILE", help="private key (key authentication only)")
    add("--ssh-remote-port", metavar="PORT", type=int, help="port opened on the SSH host")
    add("--ngrok-domain", metavar="DOMAIN", help="reserved ngrok domain (authtoken: keyring)")
    add("--cloudflared-path", metavar="PATH")
    add("--cloudflared-tunnel", metavar="NAME", help="named tunnel (default: a quick tunnel)")
    add("--cloudflared-hostname", metavar="HOST", help="the named tunnel's hostname")
    add("--tunnel-check-interval", metavar="SECONDS", type=int,
        help="seconds between reachability checks through the public URL")


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for dest, setting in FLAG_SETTINGS.items():
        value = getattr(args, dest, None)
        if dest == "tunnel_url" and value is None:
            value = getattr(args, "public_url", None)  # ``serve``'s own --public-url means the same
        if value is None:
            continue
        if setting is None:
            out["tunnel.ssh_public_url" if args.tunnel == "ssh" else "server.public_url"] = value
        else:
            out[setting] = value
    return out


def _default_probe(server: _Server) -> Callable[[str], str] | None:
    """The probe recording's link maker, from the server's store (or the default store)."""
    store = getattr(server, "store", None)
    if store is None:
        try:
            from desktop_app.sync.recordings import RecordingStore
        except ImportError:
            return None
        store = RecordingStore()
    return probe_link_factory(store, server)


def start_for_serve(
    args: argparse.Namespace,
    server: _Server,
    settings: Settings,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    listeners: tuple[Callable[[TunnelEvent], None], ...] = (),
    probe_url: Callable[[str], str] | None = None,
) -> Tunnel | None:
    """Start the ``--tunnel`` provider for ``server``; see the module's docstring."""
    if not getattr(args, "tunnel", None):
        return None
    out = out or sys.stdout
    err = err or sys.stderr
    probe = probe_url or _default_probe(server)
    tunnel = build_tunnel(args.tunnel, settings, local_port=server.port, check=ReachabilityCheck(probe),
                          overrides=overrides_from_args(args))

    def follow(event: TunnelEvent) -> None:
        if event.kind == "url" and event.public_url:
            server.set_public_url(event.public_url)
            print(f"Public URL: {event.public_url}", file=out, flush=True)
        elif event.kind == "state":
            print(f"tunnel {event.state}: {event.message}", file=err, flush=True)

    tunnel.add_listener(follow)
    for listener in listeners:
        tunnel.add_listener(listener)
    try:
        tunnel.start()
    except TunnelConfigError as exc:
        print(f"tunnel ({args.tunnel}) cannot start: {exc}\nThe server keeps serving on this computer.",
              file=err, flush=True)
        return None
    return tunnel


def open_for_server(provider: str, server: _Server) -> Tunnel | None:
    """The seam ``callrelay serve`` calls (``desktop_app.server.cli.open_tunnel``): start ``provider``
    as the settings describe it, in front of ``server``, keep ``server``'s public URL following the
    tunnel's, and return the tunnel (its ``close()`` stops it). State changes go to stderr. None
    when the tunnel cannot work as configured (said on stderr); the server keeps serving locally."""
    args = argparse.Namespace(tunnel=provider)
    return start_for_serve(args, server, settings_mod.load(), out=io.StringIO())
