"""``callrelay serve``: run the recording server alone (headless) until interrupted."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Protocol

from desktop_app import keystore, settings
from desktop_app.hubspot.config import HubSpotConfig, load_config
from desktop_app.server.app import RecordingServer
from desktop_app.sync.recordings import RecordingStore, StoreError

TUNNEL_CHOICES = ("ssh", "ngrok", "cloudflared", "manual")


class TunnelHandle(Protocol):
    def close(self) -> None: ...


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "serve",
        help="run the recording server that HubSpot fetches recordings from",
        description="Run the recording server headless until interrupted (Ctrl-C). Defaults come from "
        "the settings (server.host, server.port, server.public_url).",
    )
    p.add_argument("--host", help="address to listen on (default: the server.host setting, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on; 0 picks a free one (default: server.port)")
    p.add_argument("--share", metavar="FILE", type=Path,
                   help="add FILE to the recording store and print its signed link as the last line")
    p.add_argument("--public-url", metavar="URL",
                   help="public base URL HubSpot reaches this server at (default: server.public_url)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="processes serving on the port (default: the server.workers setting, 2)")
    p.add_argument("--tunnel", choices=TUNNEL_CHOICES,
                   help="open a tunnel so HubSpot can reach the server (manual: use --public-url)")
    p.set_defaults(func=run)


def open_tunnel(provider: str, server: RecordingServer) -> TunnelHandle | None:
    """Open ``provider``'s tunnel in front of ``server`` (``desktop_app.tunnel.open_for_server`` keeps the
    server's public URL following it); ``manual`` opens nothing (the public URL is stated)."""
    if provider == "manual":
        return None
    from desktop_app.tunnel import open_for_server

    handle: TunnelHandle | None = open_for_server(provider, server)
    return handle


def follow_in_hubspot(tunnel: Any, hubspot: HubSpotConfig, endpoint_prefix: str) -> None:
    """With a HubSpot account configured (an app id and a token or developer key), keep HubSpot's
    recording setting pointed at the tunnel's public URL, each change written into the history."""
    if not (hubspot.app_id and (hubspot.access_token or hubspot.developer_api_key or hubspot.refresh_token)):
        print("No HubSpot account is configured: register the recording endpoint printed below yourself, or "
              "let `callrelay upload` do it.", file=sys.stderr, flush=True)
        return
    from desktop_app.hubspot.client import HubSpotClient
    from desktop_app.sync.history import History
    from desktop_app.tunnel.url_change import keep_hubspot_pointed

    keep_hubspot_pointed(tunnel, HubSpotClient(hubspot), History(), endpoint_prefix)


def run(args: argparse.Namespace) -> int:
    try:
        conf = settings.load()
    except settings.SettingsError as exc:
        print(f"callrelay serve: {exc}", file=sys.stderr)
        return 1
    host = args.host if args.host is not None else conf["server.host"]
    port = args.port if args.port is not None else conf["server.port"]
    if not 0 <= port <= 65535:
        print(f"callrelay serve: --port must be 0..65535, not {port}", file=sys.stderr)
        return 2
    workers = args.workers if args.workers is not None else conf["server.workers"]
    if not 1 <= workers <= 16:
        print(f"callrelay serve: --workers must be 1..16, not {workers}", file=sys.stderr)
        return 2
    public_url = args.public_url or conf["server.public_url"] or None
    try:
        hubspot = load_config(conf)  # the HUBSPOT_* variables when set, else the settings and the keyring
    except keystore.KeyringUnavailable as exc:
        print(f"callrelay serve: {exc}", file=sys.stderr)
        return 1
    try:
        store = RecordingStore()
        shared = store.add(args.share) if args.share else None
        server = RecordingServer(
            store,
            host=host,
            port=port,
            public_url=public_url,
            client_secret=hubspot.client_secret or None,
            signature_mode=conf["server.signature"],
            link_ttl_s=conf["server.link_ttl_s"],
            endpoint_prefix=conf["server.endpoint_prefix"],
            max_connections=conf["server.max_connections"],
            idle_timeout_s=conf["server.idle_timeout_s"],
            workers=workers,
        )
    except (StoreError, keystore.KeyringUnavailable, ValueError) as exc:
        print(f"callrelay serve: {exc}", file=sys.stderr)
        return 1
    try:
        server.start()
    except OSError as exc:
        print(f"callrelay serve: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1

    stop = threading.Event()
    # Ctrl-C and SIGTERM both stop cleanly (set explicitly: a shell may start us with SIGINT ignored)
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    tunnel: TunnelHandle | None = None
    try:
        if args.tunnel:
            tunnel = open_tunnel(args.tunnel, server)
            if tunnel is not None:
                follow_in_hubspot(tunnel, hubspot, conf["server.endpoint_prefix"])
        print(f"Recording server listening on {server.local_url}", flush=True)
        count = len(server.processes)
        print(f"Serving from {count} process{'es' if count > 1 else ''} (--workers {workers}).", file=sys.stderr,
              flush=True)
        print(f"Public URL: {server.public_url or '(none: links point to the local address)'}", flush=True)
        print(f"Recording endpoint for HubSpot: {server.recording_endpoint_template()}", flush=True)
        if shared is not None:
            print(f"Shared {shared.filename} ({shared.size:,} bytes, sha256 {shared.sha256}); its link, "
                  f"valid {server.link_ttl_s:g} s:", flush=True)
            print(server.make_link(shared.sha256), flush=True)
        print("Serving until interrupted (Ctrl-C).", file=sys.stderr, flush=True)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        if tunnel is not None:
            tunnel.close()
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("Recording server stopped.", file=sys.stderr, flush=True)
    return 0
