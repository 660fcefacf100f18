#!/usr/bin/env python3
"""A stand-in for the ``cloudflared`` program: prints the lines the real one prints (formats copied
from cloudflared's source and its users' logs), chosen by FAKE_CLOUDFLARED_MODE:
quick (a quick tunnel with a fresh URL), named, offline (no internet), die (connects, then exits
after FAKE_CLOUDFLARED_UPTIME seconds, 0.5 by default), stall (a stalled network: asks for a quick
tunnel and never hears back). It records its command line in FAKE_CLOUDFLARED_ARGS when set. With
FAKE_CLOUDFLARED_GRACE it keeps running that many seconds after SIGTERM, as cloudflared does while
requests are in flight (its --grace-period, 30 s by default)."""

import os
import secrets
import signal
import sys
import time
import uuid


def log(level: str, msg: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    sys.stderr.write(f"{stamp} {level} {msg}\n")
    sys.stderr.flush()


def registered() -> None:
    log("INF", f"Registered tunnel connection connIndex=0 connection={uuid.uuid4()} event=0 "
               "ip=198.41.200.193 location=ams01 protocol=quic")


def grace(signum: int, frame: object) -> None:
    log("INF", "Initiating graceful shutdown due to signal terminated ...")
    time.sleep(float(os.environ["FAKE_CLOUDFLARED_GRACE"]))
    sys.exit(0)


if os.environ.get("FAKE_CLOUDFLARED_GRACE"):
    signal.signal(signal.SIGTERM, grace)
mode = os.environ.get("FAKE_CLOUDFLARED_MODE", "quick")
if os.environ.get("FAKE_CLOUDFLARED_ARGS"):
    with open(os.environ["FAKE_CLOUDFLARED_ARGS"], "a") as fh:
        fh.write(" ".join(sys.argv[1:]) + "\n")

if "run" in sys.argv:
    log("INF", f"Starting tunnel tunnelID={uuid.uuid4()}")
    log("INF", "Version 2025.1.0 (Checksum 8734f79dbdcb91e305fa48d837840c8c0d14f143ed390c516b86c2c292d9b368)")
    registered()
else:
    log("INF", "Thank you for trying Cloudflare Tunnel. Doing so, without a Cloudflare account, is a quick way "
               "to experiment and try it out.")
    log("INF", "Requesting new quick Tunnel on trycloudflare.com...")
    if mode == "stall":
        while True:
            time.sleep(1)
    if mode == "offline":
        sys.stderr.write('failed to request quick Tunnel: Post "https://api.trycloudflare.com/tunnel": dial tcp: '
                         "lookup api.trycloudflare.com: no such host\n")
        sys.exit(1)
    name = "-".join(secrets.choice(["buffalo", "marco", "cardiff", "motel", "pda", "cameron"]) for _ in range(3))
    url = f"https://{name}-{secrets.token_hex(2)}.trycloudflare.com"
    lines = ["Your quick Tunnel has been created! Visit it at (it may take some time to be reachable):", url]
    width = max(len(x) for x in lines) + 4
    log("INF", "+" + "-" * width + "+")
    for line in lines:
        log("INF", "|  " + line.ljust(width - 4) + "  |")
    log("INF", "+" + "-" * width + "+")
    log("INF", "Cannot determine default configuration path. No file [config.yml config.yaml] in [~/.cloudflared]")
    time.sleep(0.1)
    registered()
if mode == "die":
    time.sleep(float(os.environ.get("FAKE_CLOUDFLARED_UPTIME", "0.5")))
    log("ERR", 'Serve tunnel error error="connection with edge closed" connIndex=0')
    sys.exit(1)
while True:
    time.sleep(1)
