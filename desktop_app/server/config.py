"""The recording server's configuration, built from the settings in one place.

``ServerConfig.from_settings(settings, ...)`` reads the ``server.*`` settings (a command's flags win
where given); ``config.build(store)`` makes the ``RecordingServer``. The app's root (``Runtime``) and
``callrelay serve`` both build their server this way, so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from desktop_app.settings import Settings

if TYPE_CHECKING:
    from desktop_app.server.app import RecordingServer
    from desktop_app.server.recordings import RecordingStore


@dataclass(frozen=True)
class ServerConfig:
    """What a ``RecordingServer`` is started with (its keyword arguments, beside the store)."""

    host: str
    port: int
    public_url: str | None
    client_secret: str | None
    signature_mode: str
    link_ttl_s: float
    endpoint_prefix: str
    max_connections: int
    idle_timeout_s: float
    workers: int

    @classmethod
    def from_settings(cls, settings: Settings, *, client_secret: str | None = None, host: str | None = None,
                      port: int | None = None, public_url: str | None = None,
                      workers: int | None = None) -> ServerConfig:
        """The ``server.*`` settings, each keyword (a command-line flag, the sandbox's free port) winning
        over its setting when it is not None; ``client_secret`` is the HubSpot app's (signature checks)."""
        return cls(
            host=str(settings.get("server.host") if host is None else host),
            port=int(settings.get("server.port") if port is None else port),
            public_url=(settings.get("server.public_url") if public_url is None else public_url) or None,
            client_secret=client_secret or None,
            signature_mode=str(settings.get("server.signature")),
            link_ttl_s=float(settings.get("server.link_ttl_s")),
            endpoint_prefix=str(settings.get("server.endpoint_prefix")),
            max_connections=int(settings.get("server.max_connections")),
            idle_timeout_s=float(settings.get("server.idle_timeout_s")),
            workers=int(settings.get("server.workers") if workers is None else workers),
        )

    def build(self, store: RecordingStore) -> RecordingServer:
        """The server over ``store``, not started (ValueError for a setting it refuses)."""
        from desktop_app.server.app import RecordingServer

        return RecordingServer(store, **asdict(self))
