"""``callrelay serve --tunnel ssh|ngrok|cloudflared|manual``: the flags and the tunnel in front of a server.

``add_tunnel_arguments(parser)`` adds the flags. ``prepare_for_serve(args, server, settings)`` builds
the ``--tunnel`` provider (the flags over the settings, through ``factory.from_settings``) with the
server's links following its public URL, not yet started: ``callrelay serve`` starts it in the
background and says what it does. ``start_for_serve(args, server, settings)`` also starts it, prints
the public URL and returns the tunnel (None without ``--tunnel`` or when the tunnel cannot work as
configured: the server then keeps serving on this computer, which ``cannot_start`` says).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, TextIO

from desktop_app.settings import Settings, SettingsError, validate
from desktop_app.tunnel.base import Tunnel, TunnelConfigError, TunnelEvent, TunnelState
from desktop_app.tunnel.factory import PROVIDERS, TunneledServer, from_settings

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
    """The settings the flags override; SettingsError (naming the flag) for a value its setting refuses."""
    out: dict[str, Any] = {}
    for dest, setting in FLAG_SETTINGS.items():
        value = getattr(args, dest, None)
        if dest == "tunnel_url" and value is None:
            value = getattr(args, "public_url", None)  # ``serve``'s own --public-url means the same
        if value is None:
            continue
        if setting is None:
            setting = "tunnel.ssh_public_url" if args.tunnel == "ssh" else "server.public_url"
        try:
            out[setting] = validate(setting, value)
        except SettingsError as exc:
            raise SettingsError(f"--{dest.replace('_', '-')}: {exc}") from None
    return out


def prepare_for_serve(
    args: argparse.Namespace,
    server: TunneledServer,
    settings: Settings,
    *,
    probe_url: Callable[[str], str] | None = None,
) -> Tunnel:
    """The ``--tunnel`` provider for ``server`` with the flags over the settings (``factory.from_settings``):
    checked through its public URL (with the probe recording), the server's links following it; not started."""
    return from_settings(args.tunnel, settings, server, overrides=overrides_from_args(args), probe_url=probe_url)


def state_line(event: TunnelEvent) -> str | None:
    """The line to print for a state change (starting and stopped are said by the caller)."""
    if event.kind != "state" or event.state in (TunnelState.STARTING, TunnelState.STOPPED):
        return None
    return f"tunnel {event.state}: {event.message}"


def why_not_started(error: object) -> str:
    """Why a tunnel cannot work as configured, and that the server goes on (the app shows this)."""
    text = str(error).strip()
    if not text.endswith((".", "!", "?")):
        text += "."
    return f"{text} The server keeps serving on this computer."


def cannot_start(provider: str, error: object) -> str:
    """The one sentence for a tunnel that cannot work as configured."""
    return f"The {provider} tunnel cannot start: {why_not_started(error)}"


def start_for_serve(
    args: argparse.Namespace,
    server: TunneledServer,
    settings: Settings,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    listeners: tuple[Callable[[TunnelEvent], None], ...] = (),
    probe_url: Callable[[str], str] | None = None,
) -> Tunnel | None:
    """Start the ``--tunnel`` provider for ``server`` and wait for its first open and check; see the
    module's docstring."""
    if not getattr(args, "tunnel", None):
        return None
    out = out or sys.stdout
    err = err or sys.stderr
    tunnel = prepare_for_serve(args, server, settings, probe_url=probe_url)

    def report(event: TunnelEvent) -> None:
        if event.kind == "url" and event.public_url:
            print(f"Public URL: {event.public_url}", file=out, flush=True)
        elif (line := state_line(event)) is not None:
            print(line, file=err, flush=True)

    tunnel.add_listener(report)
    for listener in listeners:
        tunnel.add_listener(listener)
    try:
        tunnel.start()
    except TunnelConfigError as exc:
        print(cannot_start(args.tunnel, exc), file=err, flush=True)
        return None
    return tunnel
