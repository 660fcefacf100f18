"""``callrelay serve``: run the recording server alone (headless) until interrupted.

With ``--tunnel`` the server answers on this computer at once while the tunnel opens in the
background, saying every few seconds what it waits for. The public URL, the endpoint for HubSpot and
the shared file's link are printed as soon as the tunnel has a public URL (or its first try at
opening failed), and again whenever the public URL changes. Ctrl-C or SIGTERM stops it promptly at
any moment. A tunnel that cannot work as
configured (a missing setting, a program that cannot run, plain http outside sandbox mode) is said
in one sentence, and the server keeps serving on this computer.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from desktop_app import keystore, settings
from desktop_app.hubspot.config import HubSpotConfig, load_config
from desktop_app.hubspot.recording_url import RecordingUrlGuard, RecordingUrlTaken, settings_guard
from desktop_app.server.app import RecordingServer
from desktop_app.server.config import ServerConfig
from desktop_app.server.recordings import RecordingStore, StoredRecording, StoreError
from desktop_app.tunnel.base import Tunnel, TunnelEvent, TunnelState
from desktop_app.tunnel.cli_support import (
    add_tunnel_arguments,
    cannot_start,
    overrides_from_args,
    prepare_for_serve,
    state_line,
)

PROGRESS_EVERY_S = 5.0  # while the tunnel opens, say what it waits for this often


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "serve",
        help="run the recording server that HubSpot fetches recordings from",
        description="Run the recording server headless until interrupted (Ctrl-C). Defaults come from "
        "the settings (server.host, server.port, server.public_url, tunnel.*).",
    )
    p.add_argument("--host", help="address to listen on (default: the server.host setting, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on; 0 picks a free one (default: server.port)")
    p.add_argument("--share", metavar="FILE", type=Path,
                   help="add FILE to the recording store and print its signed link as the last line")
    p.add_argument("--public-url", metavar="URL",
                   help="public base URL HubSpot reaches this server at (default: server.public_url)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="processes serving on the port (default: the server.workers setting, 2)")
    p.add_argument("--take-over", action="store_true",
                   help="point HubSpot's recording URL at this desk even when another desk or the team's relay "
                   "registered it (without it serve refuses, naming the URL registered now, and exits 1)")
    add_tunnel_arguments(p)
    p.set_defaults(func=run)


class Announcer:
    """Prints the public URL, the endpoint to register with HubSpot and the shared file's link (last):
    as soon as the tunnel has a public URL (or serving begins without one), then again each time the
    public URL changes."""

    def __init__(self, server: RecordingServer, shared: StoredRecording | None) -> None:
        self._server = server
        self._shared = shared
        self._lock = threading.Lock()
        self._printed = False
        self._url: str | None = None

    def announce(self) -> None:
        """Print the lines, unless they were printed for the current public URL already."""
        with self._lock:
            url = self._server.public_url
            if self._printed and url == self._url:
                return
            self._printed, self._url = True, url
            print(f"Public URL: {url or '(none: links point to the local address)'}", flush=True)
            print(f"Recording endpoint for HubSpot: {self._server.recording_endpoint_template()}", flush=True)
            if self._shared is not None:
                print(f"Shared {self._shared.filename} ({self._shared.size:,} bytes, sha256 {self._shared.sha256}); "
                      f"its link, valid {self._server.link_ttl_s:g} s:", flush=True)
                print(self._server.make_link(self._shared.sha256), flush=True)

    def __call__(self, event: TunnelEvent) -> None:
        """A tunnel listener (after the one that gives the server the tunnel's URL)."""
        if event.kind == "url":
            self.announce()


def has_account(hubspot: HubSpotConfig) -> bool:
    """An app id and a token or developer key: this desk can read and register HubSpot's recording URL."""
    return bool(hubspot.app_id and (hubspot.access_token or hubspot.developer_api_key or hubspot.refresh_token))


def follow_in_hubspot(tunnel: Tunnel, hubspot: HubSpotConfig, endpoint_prefix: str,
                      guard: RecordingUrlGuard | None = None) -> None:
    """With a HubSpot account configured (an app id and a token or developer key), keep HubSpot's
    recording setting pointed at the tunnel's public URL, each change written into the history; ``guard``
    decides whether a URL this desk did not register may be replaced."""
    if not has_account(hubspot):
        print("No HubSpot account is configured: register the recording endpoint printed below yourself, or "
              "let `callrelay upload` do it.", file=sys.stderr, flush=True)
        return
    from desktop_app.hubspot.client import HubSpotClient
    from desktop_app.sync.history import History
    from desktop_app.tunnel.url_change import keep_hubspot_pointed

    client = HubSpotClient(hubspot)
    client.recording_url_guard = guard
    keep_hubspot_pointed(tunnel, client, History(), endpoint_prefix)


def register_public_url(server: RecordingServer, hubspot: HubSpotConfig, guard: RecordingUrlGuard) -> None:
    """Without a tunnel but with a public URL and a HubSpot account: register the endpoint now, through
    ``guard`` (RecordingUrlTaken when another's URL is registered). Any other failure is said and serving
    goes on (``callrelay upload`` registers it again)."""
    from desktop_app.hubspot.client import HubSpotClient
    from desktop_app.hubspot.errors import HubSpotError

    client = HubSpotClient(hubspot)
    client.recording_url_guard = guard
    try:
        client.register_recording_url(server.recording_endpoint_template())
    except RecordingUrlTaken:
        raise
    except (HubSpotError, ValueError) as exc:
        print(f"The recording endpoint could not be registered with HubSpot now: {exc}", file=sys.stderr,
              flush=True)
    finally:
        client.close()


def open_tunnel(args: argparse.Namespace, server: RecordingServer, conf: settings.Settings, hubspot: HubSpotConfig,
                announcer: Announcer, stop: threading.Event, guard: RecordingUrlGuard | None = None) -> Tunnel | None:
    """Start the ``--tunnel`` provider in the background in front of ``server`` and wait, saying what it
    waits for, until its first try at opening ends or ``stop`` is set. The tunnel, or None when it
    cannot work as configured (said in one sentence; the server keeps serving)."""

    def report(event: TunnelEvent) -> None:
        if (line := state_line(event)) is not None:
            print(line, file=sys.stderr, flush=True)

    tunnel = prepare_for_serve(args, server, conf)
    tunnel.add_listener(report)
    tunnel.add_listener(announcer)
    follow_in_hubspot(tunnel, hubspot, conf["server.endpoint_prefix"], guard)
    print(f"Opening the {args.tunnel} tunnel… (Ctrl-C stops)", file=sys.stderr, flush=True)
    tunnel.start(wait=False)
    started = time.monotonic()
    next_note = PROGRESS_EVERY_S
    while not stop.wait(0.1) and tunnel.state is TunnelState.STARTING:
        elapsed = time.monotonic() - started
        if elapsed >= next_note:
            print(f"Still opening the {args.tunnel} tunnel ({elapsed:.0f} s): {tunnel.activity}…", file=sys.stderr,
                  flush=True)
            next_note += PROGRESS_EVERY_S
    if tunnel.state is TunnelState.STOPPED and not stop.is_set():
        print(cannot_start(args.tunnel, tunnel.last_error), file=sys.stderr, flush=True)
        tunnel.stop()
        return None
    return tunnel


class Refusals:
    """HubSpot's recording URL registered by another desk or the relay, and serve not told to take it over:
    what is registered is remembered and serving stops (said once, as serve's last line)."""

    def __init__(self, hubspot: HubSpotConfig, stop: threading.Event) -> None:
        self._hubspot = hubspot
        self._stop = stop
        self.refused: list[RecordingUrlTaken] = []

    def add(self, taken: RecordingUrlTaken) -> None:
        self.refused.append(taken)
        self._stop.set()

    def __call__(self, current: str, wanted: str) -> bool:
        """The guard's question (the tunnel's follower asks it): never take over; stop."""
        self.add(RecordingUrlTaken(current, wanted, str(self._hubspot.app_id)))
        return False


def server_config(args: argparse.Namespace, conf: settings.Settings, client_secret: str | None = None
                  ) -> ServerConfig | str:
    """The server's configuration, the flags over the settings (``ServerConfig.from_settings``, as the app
    builds it), or the sentence refusing a flag (exit 2)."""
    config = ServerConfig.from_settings(conf, client_secret=client_secret, host=args.host, port=args.port,
                                        public_url=args.public_url or None, workers=args.workers)
    if not 0 <= config.port <= 65535:
        return f"--port must be 0..65535, not {config.port}"
    if not 1 <= config.workers <= 16:
        return f"--workers must be 1..16, not {config.workers}"
    if args.tunnel:
        try:
            overrides_from_args(args)  # the tunnel flags, held to their settings' bounds
        except settings.SettingsError as exc:
            return str(exc)
    return config


def start_server(args: argparse.Namespace, config: ServerConfig
                 ) -> tuple[RecordingServer, StoredRecording | None] | None:
    """The started server and the ``--share``d recording; None after saying why it cannot start."""
    try:
        store = RecordingStore()
        shared = store.add(args.share) if args.share else None
        server = config.build(store)
    except (StoreError, keystore.KeyringUnavailable, ValueError) as exc:
        print(f"callrelay serve: {exc}", file=sys.stderr)
        return None
    try:
        server.start()
    except OSError as exc:
        print(f"callrelay serve: cannot listen on {config.host}:{config.port}: {exc.strerror or exc}",
              file=sys.stderr)
        return None
    return server, shared


def serve_until_stopped(args: argparse.Namespace, server: RecordingServer, conf: settings.Settings,
                        hubspot: HubSpotConfig, announcer: Announcer, stop: threading.Event,
                        refusals: Refusals, workers: int) -> None:
    """Open the tunnel (or register the public URL), announce, and serve until ``stop``; the tunnel is closed
    on the way out, whatever ends it."""
    guard = settings_guard(True if args.take_over else refusals)
    print(f"Recording server listening on {server.local_url}", flush=True)
    count = len(server.processes)
    print(f"Serving from {count} process{'es' if count > 1 else ''} (--workers {workers}).", file=sys.stderr,
          flush=True)
    tunnel: Tunnel | None = None
    try:
        if args.tunnel:
            tunnel = open_tunnel(args, server, conf, hubspot, announcer, stop, guard)
        elif server.public_url and has_account(hubspot):
            try:
                register_public_url(server, hubspot, guard)
            except RecordingUrlTaken as exc:
                refusals.add(exc)
        if not stop.is_set():
            announcer.announce()
            print("Serving until interrupted (Ctrl-C).", file=sys.stderr, flush=True)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        if tunnel is not None:
            tunnel.close()


def run(args: argparse.Namespace) -> int:
    try:
        conf = settings.load()
    except settings.SettingsError as exc:
        print(f"callrelay serve: {exc}", file=sys.stderr)
        return 1
    config = server_config(args, conf)
    if isinstance(config, str):
        print(f"callrelay serve: {config}", file=sys.stderr)
        return 2
    try:
        hubspot = load_config(conf)  # the HUBSPOT_* variables when set, else the settings and the keyring
    except keystore.KeyringUnavailable as exc:
        print(f"callrelay serve: {exc}", file=sys.stderr)
        return 1
    started = start_server(args, replace(config, client_secret=hubspot.client_secret or None))
    if started is None:
        return 1
    server, shared = started
    stop = threading.Event()
    # Ctrl-C and SIGTERM both stop cleanly (set explicitly: a shell may start us with SIGINT ignored)
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    refusals = Refusals(hubspot, stop)
    # the tunnel's follower logs the refusal too; serve says it once, below, as its last line
    logging.getLogger("desktop_app.tunnel.url_change").addFilter(lambda record: not refusals.refused)
    try:
        serve_until_stopped(args, server, conf, hubspot, Announcer(server, shared), stop, refusals, config.workers)
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if refusals.refused:
        print(f"callrelay serve: {refusals.refused[0]}", file=sys.stderr, flush=True)
        return 1
    print("Recording server stopped.", file=sys.stderr, flush=True)
    return 0
