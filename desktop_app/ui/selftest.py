"""``callrelay self-test`` (also ``callrelay --self-test``): the app proves it works where it runs.

Written for the PyInstaller bundle (``dist/Call Relay/callrelay --self-test``), where a missing
hidden import, Qt plugin or native library shows up only at run time; it runs from source too.
Each check prints one line, ``ok <check>`` or ``FAIL <check>: why``; the exit code is 0 only when
every check passed (1 otherwise, 2 for a usage error).

The checks run in a throw-away data directory (``CALLRELAY_HOME`` pointed at a temporary folder,
removed afterwards, with the keyring entries made under it), so the user's settings, store, history
and secrets are never touched.

The core never imports Qt; this module is the one exception besides ``ui/``, and only inside the
``window`` and ``player`` checks (imported there, at run time), since proving the GUI starts is
the point. Every other check runs without Qt.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.client
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
import traceback
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from desktop_app import paths
from desktop_app.server import fastpath

SAMPLE_SUFFIXES = (".wav", ".flac", ".mp4")


class CheckFailed(Exception):
    """A check found a problem; the message says what (one line)."""


@dataclass
class Check:
    name: str
    run: Callable[[], None]


def samples_dir() -> Path:
    return paths.resources_dir() / "samples"


def find_samples(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in SAMPLE_SUFFIXES and p.is_file())


# -- the checks -----------------------------------------------------------------------------------
def check_keyring() -> None:
    from desktop_app import keystore

    try:
        keystore.ensure_usable()
    except keystore.KeyringUnavailable as exc:
        raise CheckFailed(f"{exc} ({exc.detail})") from None  # for an administrator: which backend said what
    value = secrets.token_urlsafe(16)
    keystore.set(keystore.LINK_SIGNING_KEY, value)
    try:
        if keystore.get(keystore.LINK_SIGNING_KEY) != value:
            raise CheckFailed(f"the keyring ({keystore.backend_name()}) did not give back a secret just written")
    finally:
        keystore.delete(keystore.LINK_SIGNING_KEY)


def check_probe(path: Path) -> None:
    from desktop_app import audio

    result = audio.probe(path)
    errors = [f.message for f in result.findings if f.severity == "error"]
    if errors:
        raise CheckFailed("; ".join(errors))
    if not result.channels or result.channels < 2 or not result.duration_s:
        raise CheckFailed(f"read as {result.container}/{result.codec}, {result.channels} channel(s), "
                          f"{result.duration_s} s; a stereo recording was expected")


def check_analyse(path: Path) -> None:
    from desktop_app import audio

    try:
        found = audio.analyse(path)
    except Exception as exc:  # noqa: BLE001 - any decoder error is the finding
        raise CheckFailed(f"{type(exc).__name__}: {exc}") from None
    if found.duration_s < 0.5 or found.decode_errors:
        raise CheckFailed(f"decoded {found.duration_s:.2f} s with {found.decode_errors} damaged stretch(es)")
    if found.identical_channels or found.silent_channels:
        raise CheckFailed(f"the two speakers were not told apart (identical={found.identical_channels}, "
                          f"silent={found.silent_channels})")


def fetch_range(url: str, first: int, last: int) -> tuple[int, str, bytes]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=10)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request("GET", target, headers={"Range": f"bytes={first}-{last}"})
        answer = conn.getresponse()
        return answer.status, answer.getheader("Content-Range") or "", answer.read()
    finally:
        conn.close()


def health_pid(base_url: str) -> int:
    """Which serving process answered ``/healthz`` on a new connection."""
    with urllib.request.urlopen(f"{base_url}/healthz", timeout=10) as answer:
        return int(json.loads(answer.read())["pid"])


def check_server(sample: Path) -> None:
    from desktop_app.server import RecordingServer
    from desktop_app.server.recordings import RecordingStore

    store = RecordingStore()
    # two serving processes, as the app runs it: the worker is a spawned child, which in a bundle only
    # works through the entry point's freeze_support()
    server = RecordingServer(store, host="127.0.0.1", port=0, signing_key=secrets.token_urlsafe(32), workers=2)
    server.start()
    cpus = sorted(os.sched_getaffinity(0)) if server.steered else []
    try:
        if len(server.processes) != 2:
            raise CheckFailed("the server's worker process did not start (see the log)")
        stored = store.add(sample)
        data = sample.read_bytes()
        first, last = len(data) // 3, len(data) // 3 + 4095
        answered: set[int] = set()
        for attempt in range(100):  # new connections, until both processes have answered
            if server.steered:  # each process serves the connections that come in on its CPUs
                os.sched_setaffinity(0, {cpus[attempt % len(cpus)]})
            status, content_range, body = fetch_range(server.make_link(stored.sha256), first, last)
            if status != 206:
                raise CheckFailed(f"asked bytes {first}-{last}, got HTTP {status}")
            if content_range != f"bytes {first}-{last}/{len(data)}" or body != data[first:last + 1]:
                raise CheckFailed(f"asked bytes {first}-{last}, got {len(body)} bytes as {content_range!r}")
            answered.add(health_pid(server.local_url))
            if answered == set(server.processes):
                break
        else:
            raise CheckFailed(f"only process(es) {sorted(answered)} of {server.processes} answered")
    finally:
        if cpus:
            os.sched_setaffinity(0, cpus)
        server.stop()
        store.close()


def check_submission(sample: Path) -> None:
    from desktop_app import settings as settings_mod
    from desktop_app.hubspot.endpoints import CallDetails
    from desktop_app.runtime import Runtime

    runtime = Runtime(settings_mod.Settings(), sandbox=True)
    try:
        runtime.start()
        sandbox = runtime.sandbox
        if sandbox is None:
            raise CheckFailed("the sandbox did not start")
        owner = next((str(o["id"]) for o in sandbox.owners() if o.get("paid_seat")), "")
        contact = str(sandbox.contacts()[0]["id"])
        details = CallDetails(title="Call Relay self-test", timestamp=time.strftime("%Y-%m-%dT%H:%M:%S+00:00",
                                                                                    time.gmtime()),
                              duration_ms=3000, direction="OUTBOUND", owner_id=owner, contact_id=contact)
        sub = runtime.run_submission(runtime.submit(sample, details))
        if sub.status != "ready":
            raise CheckFailed(f"the submission ended {sub.status}: {sub.error}")
        fetch = sandbox.wait_for_fetch(sub.call_id or "", timeout=30)
        if fetch.status != "transcribed":
            raise CheckFailed(f"the sandbox fetched the recording but did not accept it: {fetch.reason} "
                              f"{fetch.detail}".strip())
    finally:
        runtime.stop()


def check_child_env() -> None:
    """A system program started the way the tunnel starts ssh/cloudflared sees no bundle library path."""
    from desktop_app.tunnel.process import LIBRARY_PATH_VARS, ChildProcess

    bundle = getattr(sys, "_MEIPASS", None)
    if os.name == "nt":
        # Windows finds DLLs through PATH and the loader, not LD_LIBRARY_PATH: nothing to clean.
        return
    done: list[int] = []
    child = ChildProcess(["/bin/sh", "-c", 'printf "%s=%s\\n" LD_LIBRARY_PATH "$LD_LIBRARY_PATH" '
                                           'DYLD_LIBRARY_PATH "$DYLD_LIBRARY_PATH"'],
                         on_exit=done.append)
    deadline = time.monotonic() + 10
    while child.running() and time.monotonic() < deadline:
        time.sleep(0.01)
    child.stop()
    seen = dict(line.split("=", 1) for line in child.output if "=" in line)
    if set(seen) != set(LIBRARY_PATH_VARS):
        raise CheckFailed(f"the child printed {child.output!r}")
    if bundle:
        leaked = [name for name, value in seen.items() if bundle in value]
        if leaked:
            raise CheckFailed(f"{', '.join(leaked)} of a child process still points into the bundle ({bundle})")


def check_fast_path() -> None:
    """The recording server's C fast path is built where it is meant to be (Linux): a failed build is
    said here, not passed over (the server still works without it, at about 1.6x the CPU per range)."""
    if fastpath.module is None and sys.platform == fastpath.BUILT_ON:
        raise CheckFailed(fastpath.status_line())


def check_ngrok() -> None:
    """The ngrok SDK's native module (the agent ships inside it) loads."""
    import ngrok

    if not callable(getattr(ngrok, "forward", None)):
        raise CheckFailed(f"the ngrok module loaded from {getattr(ngrok, '__file__', '?')} has no forward()")


def _probe_in_child(conn: Any, path: str) -> None:  # runs in the spawned helper process
    from desktop_app import audio

    conn.send(audio.probe(path).duration_s)
    conn.close()


def check_helper_process(sample: Path) -> None:
    """A ``spawn`` child process (the GUI inspects recordings in one) starts and answers. In a bundle this
    needs ``multiprocessing.freeze_support()`` in the entry point; without it the child re-runs the app."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_probe_in_child, args=(child, str(sample)), daemon=True)
    proc.start()
    child.close()
    try:
        if not parent.poll(30):
            raise CheckFailed(f"the helper process gave no answer in 30 s (exit code {proc.exitcode})")
        duration = parent.recv()
        if not duration or abs(float(duration) - 3.0) > 0.1:
            raise CheckFailed(f"the helper process read {sample.name} as {duration} s long")
    except EOFError:
        raise CheckFailed(f"the helper process ended without answering (exit code {proc.exitcode})") from None
    finally:
        proc.join(5)
        if proc.is_alive():
            proc.kill()
        parent.close()


def _qt_app() -> Any:
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    return app if app is not None else QApplication([sys.argv[0] if sys.argv else "callrelay"])


def _wait(app: Any, done: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.005)
    return done()


def check_window() -> None:
    app = _qt_app()
    from desktop_app import settings as settings_mod
    from desktop_app.ui import tasks
    from desktop_app.ui.main_window import MainWindow

    window = MainWindow(settings_mod.Settings(), None)
    try:
        window.show()
        if not _wait(app, lambda: bool(window.isVisible() and window.windowHandle()
                                       and window.windowHandle().isExposed()), 10):
            raise CheckFailed(f"the main window was not shown (platform {app.platformName()})")
        if window.tabs.count() != 3:
            raise CheckFailed(f"the main window has {window.tabs.count()} pages instead of 3")
    finally:
        window.quitting = True
        window.close()
        window.deleteLater()
        app.processEvents()
        tasks.shutdown(5.0)


def check_player(sample: Path) -> None:
    """The player's path: the sample decodes through the PCM source (PyAV) to its 3 s, the player widget is
    made, and Qt's audio output loads (``QMediaDevices``, ``QAudioSink``, no media backend needed). Where
    there is a sound output device the sink is opened with the sample's format (nothing is written: the
    self-test makes no sound); with none (CI, a server) that is not a failure, and stderr says so."""
    from desktop_app.audio.pcm import PcmSource

    with PcmSource(sample) as src:
        frames = sum(len(chunk) for chunk in src.chunks()) // src.frame_bytes
        rate, channels = src.rate, src.channels
    if abs(frames - 3 * rate) > 1:
        raise CheckFailed(f"the player's decoder read {sample.name} as {frames} frames at {rate} Hz "
                          f"({frames * 1000 / rate:.1f} ms) instead of 3000 ms")

    app = _qt_app()
    import shiboken6
    from PySide6.QtMultimedia import QAudioSink, QMediaDevices, QtAudio

    from desktop_app.ui.player import Player, pcm_format

    player = Player()
    player.set_source(sample, channels, 3.0)
    fmt = pcm_format(rate, channels)
    device = QMediaDevices.defaultAudioOutput()
    sink = QAudioSink(fmt) if device.isNull() else QAudioSink(device, fmt)
    try:
        if device.isNull():
            print("note player: no sound output device here; decoding and Qt's audio classes were checked, "
                  "no output was opened", file=sys.stderr, flush=True)
            return
        io = sink.start()
        if io is None or sink.error() != QtAudio.Error.NoError:
            raise CheckFailed(f"the sound output {device.description()!r} did not open for {rate} Hz, "
                              f"{channels} channel(s), 16-bit: {sink.error().name}")
    finally:
        shiboken6.delete(sink)  # ends the stream at once, as the player does
        player.deleteLater()
        app.processEvents()


def build_checks(samples: list[Path]) -> list[Check]:
    checks = [Check("keyring", check_keyring)]
    for path in samples:
        checks.append(Check(f"probe {path.name}", functools.partial(check_probe, path)))
        checks.append(Check(f"analyse {path.name}", functools.partial(check_analyse, path)))
    first = samples[0] if samples else None

    def needs_sample(func: Callable[[Path], None]) -> Callable[[], None]:
        def run() -> None:
            if first is None:
                raise CheckFailed("no sample recording to use")
            func(first)
        return run

    checks += [
        Check("server range", needs_sample(check_server)),
        Check("C fast path", check_fast_path),
        Check("sandbox submission", needs_sample(check_submission)),
        Check("ngrok", check_ngrok),
        Check("child environment", check_child_env),
        Check("helper process", needs_sample(check_helper_process)),
        Check("window", check_window),
        Check("player", needs_sample(check_player)),
    ]
    return checks


@contextlib.contextmanager
def scratch_home() -> Iterator[Path]:
    """A temporary data directory for the checks; its keyring entries and files are removed afterwards."""
    before = os.environ.get(paths.ENV_HOME)
    home = Path(tempfile.mkdtemp(prefix="callrelay-selftest-"))
    os.environ[paths.ENV_HOME] = str(home)
    try:
        yield home
    finally:
        with contextlib.suppress(Exception):
            from desktop_app import keystore

            for name in keystore.KNOWN:
                keystore.delete(name)
        if before is None:
            os.environ.pop(paths.ENV_HOME, None)
        else:
            os.environ[paths.ENV_HOME] = before
        shutil.rmtree(home, ignore_errors=True)


def run_checks(checks: list[Check], out: Callable[[str], None]) -> int:
    failed = 0
    for check in checks:
        try:
            check.run()
        except CheckFailed as exc:
            failed += 1
            out(f"FAIL {check.name}: {exc}")
        except Exception as exc:  # noqa: BLE001 - a broken bundle shows up here (ImportError, OSError…)
            failed += 1
            last = traceback.extract_tb(exc.__traceback__)[-1]
            out(f"FAIL {check.name}: {type(exc).__name__}: {exc} ({Path(last.filename).name}:{last.lineno})")
        else:
            out(f"ok {check.name}")
    return 1 if failed else 0


# -- the command ----------------------------------------------------------------------------------
def register(sub: Any) -> None:
    p = sub.add_parser(
        "self-test", help="check that this installation works (also: callrelay --self-test)",
        description="Open the main window offscreen, probe and analyse each bundled sample, fetch a range "
                    "from the recording server, run a sandbox submission end to end and check the keyring. "
                    "Prints 'ok CHECK' or 'FAIL CHECK: why' per check; exits 0 only if all pass.")
    p.add_argument("--samples", type=Path, default=None, metavar="DIR",
                   help="use the recordings in DIR instead of the bundled samples")
    p.add_argument("--only", action="append", default=[], metavar="CHECK",
                   help="run only the checks whose name starts with CHECK (repeatable), e.g. --only window")
    p.add_argument("--list", action="store_true", help="list the checks and exit")
    p.set_defaults(func=cmd_self_test)


def _print(line: str) -> None:
    stream = sys.stdout
    if stream is None:  # a windowed Windows executable has no console: use callrelay-cli.exe
        return
    print(line, file=stream, flush=True)


def cmd_self_test(args: argparse.Namespace) -> int:
    folder = args.samples or samples_dir()
    samples = find_samples(folder)
    checks = build_checks(samples)
    if args.only:
        unknown = [o for o in args.only if not any(c.name.startswith(o) for c in checks)]
        if unknown:
            print(f"callrelay self-test: no check named {', '.join(unknown)}; --list shows them", file=sys.stderr)
            return 2
        checks = [c for c in checks if any(c.name.startswith(o) for o in args.only)]
    if args.list:
        for check in checks:
            _print(check.name)
        return 0
    if not args.only:
        checks.insert(0, Check("samples", lambda: _check_samples(folder, samples)))
    with scratch_home():
        return run_checks(checks, _print)


def _check_samples(folder: Path, samples: list[Path]) -> None:
    """One sample of each supported format is there (the bundle's ``resources/samples``)."""
    missing = [s[1:].upper() for s in SAMPLE_SUFFIXES if not any(p.suffix.lower() == s for p in samples)]
    if missing:
        raise CheckFailed(f"no {'/'.join(missing)} sample recording in {folder}")
