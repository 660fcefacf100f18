"""Manual: the user states the public base URL (their own port forward or reverse proxy)."""

from __future__ import annotations

from typing import Any

from desktop_app.tunnel.base import Tunnel, TunnelConfigError


class ManualTunnel(Tunnel):
    name = "manual"

    def __init__(self, public_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.url = public_url

    def _open(self) -> str:
        if not self.url:
            raise TunnelConfigError("No public URL is set (setting server.public_url): give the https "
                                    "address where your port forward or reverse proxy reaches this computer.")
        return self.url
