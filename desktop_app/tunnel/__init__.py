"""Tunnels: make the loopback recording server reachable by HubSpot over https, and prove it.

One interface (``Tunnel``: ``start``, ``stop``, ``public_url``, ``state``, ``last_error``,
listeners getting ``TunnelEvent``), four providers (ssh, ngrok, cloudflared, manual), the
reachability check run through the public URL, and ``RecordingUrlFollower`` that keeps HubSpot's
recording setting pointed at the current URL. Qt-free.
"""

from desktop_app.tunnel.base import Backoff, Tunnel, TunnelConfigError, TunnelError, TunnelEvent, TunnelState
from desktop_app.tunnel.factory import PROVIDERS, build_tunnel
from desktop_app.tunnel.process import clean_child_env
from desktop_app.tunnel.url_change import RecordingUrlFollower, endpoint_template
from desktop_app.tunnel.urls import InsecureUrlError, check_public_url
from desktop_app.tunnel.watchdog import CheckResult, ReachabilityCheck

__all__ = [
    "PROVIDERS",
    "Backoff",
    "CheckResult",
    "InsecureUrlError",
    "ReachabilityCheck",
    "RecordingUrlFollower",
    "Tunnel",
    "TunnelConfigError",
    "TunnelError",
    "TunnelEvent",
    "TunnelState",
    "build_tunnel",
    "check_public_url",
    "clean_child_env",
    "endpoint_template",
]
