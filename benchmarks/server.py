"""Benchmark: the recording server against nginx on the same file, loopback only.

    .venv/bin/python benchmarks/server.py [--size-mb 200] [--seconds 5]

Starts nginx (Debian package; a config written into a temp dir: loopback, ``sendfile on``,
``tcp_nopush off``, ``worker_processes auto``, its access log buffered as ours is, or off with
``--nginx-log off``) and the recording server (as ``callrelay serve`` runs it,
with ``--workers``, default the server.workers setting's) on one generated file, then prints in one
table: full-download throughput (curl, the median of 4 downloads per turn, the servers alternating), requests/s and
p50/p99 latency of random 64 KiB ranges with 8 and 64 connections (wrk, 2 threads), and the RSS
growth of the recording server's processes over the run. Goals (issue 4): full download >= 0.95x nginx; 64 KiB
ranges >= 0.5x nginx's rate with p99 <= 1.5x nginx's; RSS growth < 20 MB.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from desktop_app.settings import BY_NAME  # noqa: E402

DEFAULT_WORKERS = int(BY_NAME["server.workers"].default)
RANGE = 64 * 1024

SERVER_SNIPPET = """
import signal, sys, threading
from pathlib import Path
from desktop_app.server.recordings import RecordingStore
from desktop_app.server import RecordingServer
store = RecordingStore()
rec = store.add(Path(sys.argv[1]))
srv = RecordingServer(store, port=0, signing_key="benchmark-key", max_connections=1024,
                      workers=int(sys.argv[2]))
srv.start()
print(srv.make_link(rec.sha256), flush=True)
print(" ".join(map(str, srv.processes)), flush=True)
done = threading.Event()
signal.signal(signal.SIGTERM, lambda *a: done.set())
done.wait()
srv.stop()
"""

WRK_SCRIPT = """
math.randomseed(%(seed)d)
local size = %(size)d
local path = "%(path)s"
request = function()
  local first = math.random(0, size - %(range)d)
  return wrk.format("GET", path, {["Range"] = "bytes=" .. first .. "-" .. (first + %(range)d - 1)})
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_file(path: Path, size_mb: int) -> None:
    with open(path, "wb") as fh:
        for _ in range(size_mb):
            fh.write(os.urandom(1024 * 1024))


def start_nginx(tmp: Path, data: Path, access_log: bool) -> tuple[subprocess.Popen[bytes], str]:
    # The recording server writes an access-log line per request (the issue asks for it), buffered and
    # flushed each second; by default nginx does the same work: its combined log, 256 KiB buffer, 1 s.
    log_directive = f"access_log {tmp}/nginx/access.log combined buffer=256k flush=1s;" if access_log else "access_log off;"
    port = free_port()
    conf = tmp / "nginx.conf"
    (tmp / "nginx").mkdir()
    conf.write_text(textwrap.dedent(f"""
        worker_processes auto;
        daemon off;
        pid {tmp}/nginx/nginx.pid;
        error_log {tmp}/nginx/error.log warn;
        events {{ worker_connections 4096; }}
        http {{
            {log_directive}
            sendfile on;
            tcp_nopush off;
            tcp_nodelay on;
            keepalive_requests 1000000;
            client_body_temp_path {tmp}/nginx/body;
            proxy_temp_path {tmp}/nginx/proxy;
            fastcgi_temp_path {tmp}/nginx/fastcgi;
            uwsgi_temp_path {tmp}/nginx/uwsgi;
            scgi_temp_path {tmp}/nginx/scgi;
            default_type application/octet-stream;
            server {{
                listen 127.0.0.1:{port};
                root {data.parent};
            }}
        }}
    """))
    proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(tmp / "nginx")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/{data.name}"
    wait_http(url)
    return proc, url


def start_ours(tmp: Path, data: Path, workers: int) -> tuple[subprocess.Popen[str], str, list[int]]:
    env = dict(os.environ, CALLRELAY_HOME=str(tmp / "home"), PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", SERVER_SNIPPET, str(data), str(workers)], env=env,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http://127.0.0.1:"):
        raise SystemExit(f"the recording server did not start: {url!r}")
    pids = [int(p) for p in proc.stdout.readline().split()]
    if len(pids) != workers:
        raise SystemExit(f"the recording server serves from {len(pids)} processes, not {workers}")
    wait_http(url)
    return proc, url, pids


def wait_http(url: str) -> None:
    for _ in range(100):
        r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-r", "0-0", "-w", "%{http_code}", url],
                           capture_output=True, text=True)
        if r.stdout in ("200", "206"):
            return
        time.sleep(0.05)
    raise SystemExit(f"{url} does not answer")


def full_download(url: str, size: int) -> float:
    """One download of the whole file, in GB/s (curl to /dev/null)."""
    r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{size_download} %{speed_download}", url],
                       capture_output=True, text=True, check=True)
    got, speed = r.stdout.split()
    if int(got) != size:
        raise SystemExit(f"{url}: downloaded {got} bytes of {size}")
    return float(speed) / 1e9


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk_ranges(url: str, size: int, connections: int, seconds: int, tmp: Path) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms) of random 64 KiB ranges."""
    path = "/" + url.split("/", 3)[3]
    script = tmp / f"ranges-{connections}.lua"
    script.write_text(WRK_SCRIPT % {"seed": 42, "size": size, "path": path, "range": RANGE})
    out = subprocess.run(["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency",
                          "-s", str(script), url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"wrk saw errors:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"\s50%\s+([\d.]+)(us|ms|s)\b", out)
    p99 = re.search(r"\s99%\s+([\d.]+)(us|ms|s)\b", out)
    assert p50 and p99, out
    return rps, _ms(*p50.groups()), _ms(*p99.groups())


def rss_mb(pids: list[int]) -> float:
    """Resident memory of all the server's processes."""
    total = 0.0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) / 1024
    return total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=200)
    ap.add_argument("--seconds", type=int, default=5, help="duration of each wrk run")
    ap.add_argument("--workers", type=int, default=DEFAULT_WORKERS,
                    help="the recording server's serving processes (default: the server.workers setting's default)")
    ap.add_argument("--nginx-log", choices=("buffered", "off"), default="buffered",
                    help="nginx's access log: buffered like ours (default, the same work per request) or off")
    ap.add_argument("--rounds", type=int, default=3, help="turns each server takes (each measure's median is shown)")
    args = ap.parse_args()
    for tool in ("nginx", "wrk", "curl"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is needed (Debian: ./scripts/system-deps bench)")
    with tempfile.TemporaryDirectory(prefix="callrelay-bench-") as tmp_s:
        tmp = Path(tmp_s)
        tmp.chmod(0o755)  # nginx's workers run as another user when started by root
        data = tmp / "data" / "recording.wav"
        data.parent.mkdir(mode=0o755)
        make_file(data, args.size_mb)
        size = data.stat().st_size
        nginx, nginx_url = start_nginx(tmp, data, args.nginx_log == "buffered")
        ours, our_url, our_pids = start_ours(tmp, data, args.workers)
        servers = (("nginx", nginx_url), ("callrelay", our_url))
        try:
            for _, url in servers:  # warm the page cache and both servers
                full_download(url, size)
                wrk_ranges(url, size, 8, 1, tmp)
            rss_start = rss_mb(our_pids)
            # Other work on the machine skews single runs: the two servers take turns.
            results: dict[str, dict[object, object]] = {name: {} for name, _ in servers}
            downloads: dict[str, list[float]] = {name: [] for name, _ in servers}
            for _ in range(args.rounds):
                # a single download swings between ~1.5 and ~5 GB/s here with where the scheduler puts
                # curl and the server: the two take turns, one download each, several times, and the
                # median of all of them is compared (a best-of compares outliers)
                for _ in range(4):
                    for name, url in servers:
                        downloads[name].append(full_download(url, size))
                for name, url in servers:
                    res = results[name]
                    for c in (8, 64):
                        res.setdefault(c, []).append(wrk_ranges(url, size, c, args.seconds, tmp))  # type: ignore[attr-defined]
            rss_growth = rss_mb(our_pids) - rss_start
            # each measure's median over the turns, for both servers alike
            for name, _ in servers:
                results[name]["full"] = statistics.median(downloads[name])
                for c in (8, 64):
                    runs = results[name][c]
                    results[name][c] = tuple(statistics.median(r[i] for r in runs) for i in range(3))  # type: ignore[attr-defined]
        finally:
            ours.terminate()
            nginx.terminate()
            ours.wait(10)
            nginx.wait(10)

    n, o = results["nginx"], results["callrelay"]
    print(f"Recording server vs nginx: {size / 2**20:.0f} MiB file, loopback, {os.cpu_count()} cores, "
          f"wrk -t2, random {RANGE // 1024} KiB ranges, {args.seconds} s runs, medians of {args.rounds} turns; "
          f"nginx: worker_processes auto, access log {args.nginx_log}; callrelay: --workers {args.workers}")
    print(f"{'measure':<34}{'nginx':>14}{'callrelay':>14}{'ratio':>8}  goal")
    nf, of = float(n["full"]), float(o["full"])  # type: ignore[arg-type]
    print(f"{'full download (GB/s, curl, median)':<34}{nf:>14.2f}{of:>14.2f}{of / nf:>8.2f}  >= 0.95")
    for c in (8, 64):
        nr, n50, n99 = n[c]  # type: ignore[misc]
        orr, o50, o99 = o[c]  # type: ignore[misc]
        print(f"{f'64 KiB ranges, {c} conns (req/s)':<34}{nr:>14,.0f}{orr:>14,.0f}{orr / nr:>8.2f}  >= 0.5")
        print(f"{'  p50 latency (ms)':<34}{n50:>14.2f}{o50:>14.2f}{o50 / n50:>8.2f}")
        print(f"{'  p99 latency (ms)':<34}{n99:>14.2f}{o99:>14.2f}{o99 / n99:>8.2f}  <= 1.5")
    print(f"{'callrelay RSS growth (MB)':<34}{'':>14}{rss_growth:>14.1f}{'':>8}  < 20")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
