"""The recording server (Qt-free): HubSpot's recording endpoint, signed expiring links, exact Range
serving with sendfile, a health check and the access log. ``RecordingServer`` is the entry point,
``ServerConfig.from_settings`` its configuration from the settings;
``signature.sign_v3``/``verify_v3`` are HubSpot's request signature; ``accesslog.fetches_for`` tells
whether HubSpot came for a call's recording."""

from desktop_app.server.accesslog import Fetch, fetches_for
from desktop_app.server.app import RecordingServer
from desktop_app.server.config import ServerConfig
from desktop_app.server.signature import sign_v3, verify_v3

__all__ = ["Fetch", "RecordingServer", "ServerConfig", "fetches_for", "sign_v3", "verify_v3"]
