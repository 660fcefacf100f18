"""Fixtures for the UI tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest
from ui_helpers import fill_history

from desktop_app import paths
from desktop_app.sync import history as h


@pytest.fixture
def history(callrelay_home):
    with h.History() as hist:
        yield hist


@pytest.fixture(scope="session")
def _history_100k_file(tmp_path_factory):
    """A history file with 100,000 submissions, written once per test run."""
    path = tmp_path_factory.mktemp("big") / "history.sqlite3"
    with h.History(path) as hist:
        fill_history(hist, 100_000)
    return path


@pytest.fixture
def history_100k(callrelay_home, _history_100k_file):
    """This test's own copy of the 100,000-row history, as its data directory's history."""
    shutil.copy2(_history_100k_file, paths.history_db())
    with h.History() as hist:
        yield hist


@pytest.fixture(scope="session", autouse=True)
def sound_server(tmp_path_factory):
    """A real PulseAudio server of this test run, with a null sink: the player's sound goes there.

    Qt picks its audio service once per process, on its first use, so this runs before any test of
    the GUI (session scope, autouse) and every player of the run talks to it, never to the desktop's
    speakers. ``QT_AUDIO_BACKEND=pulseaudio`` keeps Qt off PipeWire where the machine has it. The
    null sink renders in 2-second blocks while only one stream plays, which delays the start of a
    new stream by up to 2 s; a low-latency stream of silence (``pacat``) keeps it ticking every few
    ms, as a sound card does. Works as root (with a warning from pulseaudio).
    """
    exe, pacat = shutil.which("pulseaudio"), shutil.which("pacat")
    assert exe and pacat, "the player tests need pulseaudio and pacat (scripts/system-deps test installs them)"
    runtime = tmp_path_factory.mktemp("pulse")
    socket = runtime / "native"
    env = dict(os.environ, XDG_RUNTIME_DIR=str(runtime), PULSE_RUNTIME_PATH=str(runtime), HOME=str(runtime),
               PULSE_STATE_PATH=str(runtime / "state"))
    env.pop("PULSE_SERVER", None)
    log = (runtime / "pulseaudio.log").open("wb")
    server = subprocess.Popen(
        [exe, "--daemonize=no", "--exit-idle-time=-1", "--disallow-exit", "-n", "--use-pid-file=no",
         "--log-target=stderr", "--load=module-null-sink sink_name=callrelay_test",
         f"--load=module-native-protocol-unix socket={socket} auth-anonymous=1"],
        env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    deadline = time.monotonic() + 15
    while not socket.exists() and server.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    if not socket.exists():
        server.kill()
        server.wait()
        raise AssertionError(f"pulseaudio did not start: {(runtime / 'pulseaudio.log').read_text(errors='replace')}")
    client_env = {"PULSE_SERVER": f"unix:{socket}", "QT_AUDIO_BACKEND": "pulseaudio"}
    keepalive = subprocess.Popen([pacat, "--latency-msec=10", "--rate=8000", "--channels=1", "--format=s16le",
                                  "/dev/zero"], env=dict(env, **client_env), stdin=subprocess.DEVNULL,
                                 stdout=log, stderr=log)
    time.sleep(0.2)
    if keepalive.poll() is not None:
        server.kill()
        server.wait()
        raise AssertionError(f"pacat could not play to the test's pulseaudio: "
                             f"{(runtime / 'pulseaudio.log').read_text(errors='replace')}")
    before = {name: os.environ.get(name) for name in client_env}
    os.environ.update(client_env)
    try:
        yield f"unix:{socket}"
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        for proc in (keepalive, server):
            proc.terminate()
        for proc in (keepalive, server):
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


@pytest.fixture
def display() -> Iterator[str]:
    """A fresh Xvfb display (``:N``)."""
    if shutil.which("Xvfb") is None:
        pytest.fail("Xvfb is missing: `make test` installs it (scripts/system-deps test)")
    read, write = os.pipe()
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                            pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as fh:
        number = fh.readline().strip()
    try:
        assert number.isdigit(), "Xvfb did not start"
        yield f":{number}"
    finally:
        xvfb.terminate()
        xvfb.wait(10)
