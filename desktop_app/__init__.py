"""Call Relay: take call recordings into HubSpot, playable and transcribed."""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("callrelay")
except _metadata.PackageNotFoundError:  # running from a source tree or a bundle without metadata
    __version__ = "0.1.0"

APP_NAME = "Call Relay"
USER_AGENT = f"CallRelay/{__version__}"
