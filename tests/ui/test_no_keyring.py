"""No keyring, still an app: the real ``callrelay gui`` on a real X server (Xvfb, the xcb platform) whose
session bus has no Secret Service at all (a private ``dbus-daemon`` with no service files, so nothing
can be activated either), as on a plain X session or a minimal window manager.

The window must come up in sandbox mode with the recording server running, say in one sentence that no
keyring is reachable and what to install (never the keyring library's own text), and carry a recording
through Upload & Log to ``ready``, with a link-signing key that lives in memory only (never in a file).
A real account without a keyring cannot work: the app says so and starts in sandbox mode all the same.

The app runs in a child process driven by a small script (``DRIVER``) that only does what an agent does
in the window (add a recording, wait for its checks and contact, click Upload & Log) and prints what
the window shows as JSON lines.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ui_helpers import speech, write_wav

from desktop_app import keystore
from desktop_app import settings as settings_mod

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

# Jane Doe in the sandbox's seeded contacts has +16175550142: the name prefills the numbers and the contact.
GOOD_NAME = "out-6175550142-6175550100-20261120-100000-1700000000.42.wav"

DRIVER = textwrap.dedent("""
    import json, sys
    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication
    app = QApplication(sys.argv[:1])
    from desktop_app import cli
    from desktop_app.ui.main_window import MainWindow

    recording = sys.argv[1] if len(sys.argv) > 1 else ""
    failed = []

    def say(**what):
        print(json.dumps(what), flush=True)

    def window():
        return next((w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow)), None)

    def shown(w):
        notice = getattr(w, "banner_notice", None)
        return {"visible": w.isVisible(), "banner": w.banner.isVisible(), "banner_text": w.banner_text.text(),
                "notice": notice.text() if notice is not None and notice.isVisible() else "",
                "hubspot": w.hubspot_state.text(), "server": w.server_state.text(),
                "sandbox": bool(getattr(w.runtime, "is_sandbox", False))}

    def when_up(tries=600):
        w = window()
        if w is None or not (w.runtime_up or failed):
            if w is not None and not getattr(w, "_watched", False):
                w._watched = True
                w.runtimeFailed.connect(failed.append)
            if tries:
                QTimer.singleShot(100, lambda: when_up(tries - 1))
            else:
                say(up=False, failed="the runtime neither started nor failed in 60 s", **shown(w))
                w.quit()
            return
        from desktop_app import keystore
        key = keystore.get(keystore.LINK_SIGNING_KEY) if w.runtime_up else None
        say(up=w.runtime_up, failed=failed[0] if failed else "", key=key or "", **shown(w))
        if not w.runtime_up or not recording:
            w.quit()
            return
        w.upload_page.add_paths([recording])
        QTimer.singleShot(100, upload_when_ready)

    def upload_when_ready(tries=600):
        w = window()
        panel = w.upload_page.panels[0] if w.upload_page.panels else None
        if panel is None or not panel.upload_button.isEnabled():
            if tries:
                QTimer.singleShot(100, lambda: upload_when_ready(tries - 1))
            else:
                say(submission=None, why=panel.blockers() if panel is not None else "no panel")
                w.quit()
            return
        panel.finished.connect(lambda sub: (say(submission=sub.status, error=sub.error or ""), w.quit()))
        QTest.mouseClick(panel.upload_button, Qt.MouseButton.LeftButton)

    QTimer.singleShot(0, when_up)
    code = cli.main(["gui"])
    say(exit=code)
    sys.exit(code)
""")

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={dir}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


@pytest.fixture
def bare_bus(tmp_path: Path) -> Iterator[str]:
    """The address of a session bus on which no Secret Service runs or can be activated (no service files)."""
    if shutil.which("dbus-daemon") is None:
        pytest.fail("dbus-daemon is missing: `make test` installs it (scripts/system-deps)")
    folder = tmp_path / "bus"
    folder.mkdir()
    config = folder / "session.conf"
    config.write_text(BUS_CONFIG.format(dir=folder), encoding="utf-8")
    bus = subprocess.Popen(["dbus-daemon", f"--config-file={config}", "--nofork", "--print-address=1"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert bus.stdout is not None
        address = bus.stdout.readline().strip()
        assert address.startswith("unix:"), "dbus-daemon did not start"
        yield address
    finally:
        bus.terminate()
        bus.wait(10)


def keyringless_env(display: str, bus: str, tmp_path: Path) -> dict[str, str]:
    """The environment of a plain X session: a session bus without a Secret Service, no keyring daemon."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY", "GNOME_KEYRING_CONTROL", "SSH_AUTH_SOCK",
                        "PYTHON_KEYRING_BACKEND", "CALLRELAY_IN_KEYRING")}
    for name in ("runtime", "data", "config"):
        (tmp_path / name).mkdir(exist_ok=True)
    env.update(DISPLAY=display, QT_QPA_PLATFORM="xcb", PYTHONPATH=str(ROOT), DBUS_SESSION_BUS_ADDRESS=bus,
               XDG_RUNTIME_DIR=str(tmp_path / "runtime"), XDG_DATA_HOME=str(tmp_path / "data"),
               XDG_CONFIG_HOME=str(tmp_path / "config"))
    return env


@contextlib.contextmanager
def app_on(env: dict[str, str], *args: str) -> Iterator[subprocess.Popen[str]]:
    """``callrelay gui`` driven by DRIVER; killed at the end if it is still running."""
    app = subprocess.Popen([sys.executable, "-c", DRIVER, *args], env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield app
    finally:
        if app.poll() is None:
            app.kill()
        app.wait(10)


def read_json(app: subprocess.Popen[str], timeout: float = 90) -> dict[str, object]:
    """The driver's next line; fails if none comes within ``timeout`` or the app ended."""
    assert app.stdout is not None
    if not select.select([app.stdout], [], [], timeout)[0]:
        app.kill()
        raise AssertionError(f"the app said nothing for {timeout:g} s")
    line = app.stdout.readline()
    if not line:
        app.kill()
        raise AssertionError(f"the app ended: {app.stderr.read() if app.stderr else ''}")
    return dict(json.loads(line))


RAW = ("recommended backend", "keyrings.alt", "keyring.backends", "pypi.org", "Prompt dismissed", "backend ")


def assert_one_sentence_about_the_keyring(notice: str) -> None:
    assert notice, "the window does not say that no keyring is reachable"
    assert "keyring" in notice.lower() and "gnome-keyring" in notice and "KeePassXC" in notice, notice
    assert not any(raw in notice for raw in RAW), f"the keyring library's own text is shown: {notice}"
    body = notice.rstrip(".").replace("e.g.", "eg")
    assert notice.endswith(".") and ". " not in body, f"more than one sentence: {notice}"


def files_containing(text: str, *folders: Path) -> list[Path]:
    found = []
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file() and text.encode() in path.read_bytes():
                found.append(path)
    return found


def test_without_a_secret_service_the_app_starts_in_sandbox_mode_and_a_recording_reaches_ready(
        callrelay_home: Path, display: str, bare_bus: str, tmp_path: Path) -> None:
    recording = write_wav(tmp_path / GOOD_NAME, [speech(4, start=0.2, freq=220), speech(4, start=1.1, freq=340)])
    env = keyringless_env(display, bare_bus, tmp_path)
    with app_on(env, str(recording)) as app:
        up = read_json(app)
        assert up["up"] is True, f"the app did not start: {up}"
        assert up["visible"] and up["sandbox"] and up["banner"], up
        assert "Sandbox mode" in str(up["banner_text"]), up
        assert not any(raw in str(up["banner_text"]) for raw in RAW), up["banner_text"]
        assert_one_sentence_about_the_keyring(str(up["notice"]))
        assert "restart" in str(up["notice"]), "the notice does not say that links stop working after a restart"
        assert up["hubspot"] == "HubSpot: sandbox"
        assert str(up["server"]).startswith("Server: http://127.0.0.1:"), up["server"]
        key = str(up["key"])
        assert len(key) >= 32, "no link-signing key in this run"

        done = read_json(app, timeout=120)
        assert done["submission"] == "ready", done
        assert read_json(app, timeout=30) == {"exit": 0}
        assert app.wait(30) == 0
    # the key of this run lived in memory only
    assert files_containing(key, callrelay_home, tmp_path / "data", tmp_path / "config") == []


def test_a_real_account_without_a_keyring_says_so_and_starts_in_sandbox_mode(
        callrelay_home: Path, display: str, bare_bus: str, tmp_path: Path) -> None:
    settings = settings_mod.Settings()
    settings.set("hubspot.sandbox", False)
    settings.save()
    with app_on(keyringless_env(display, bare_bus, tmp_path)) as app:
        up = read_json(app)
        assert up["up"] is True, f"the app did not start: {up}"
        assert up["sandbox"] and up["banner"] and "Sandbox mode" in str(up["banner_text"]), up
        assert_one_sentence_about_the_keyring(str(up["notice"]))
        assert "account" in str(up["notice"]), up["notice"]
        assert str(up["server"]).startswith("Server: http://127.0.0.1:"), up["server"]
        assert read_json(app, timeout=30) == {"exit": 0}


def test_without_a_keyring_a_run_keeps_only_its_own_key_and_in_memory() -> None:
    why = keystore.KeyringUnavailable(keystore.MISSING, "the library's own words")
    assert str(why) == ("No keyring is reachable on this desktop session: install gnome-keyring or KeePassXC (with "
                        "its Secret Service integration on); secrets are never written to a file.")
    keystore.use_memory(why)
    try:
        key = keystore.get_or_create(keystore.LINK_SIGNING_KEY)
        assert keystore.get_or_create(keystore.LINK_SIGNING_KEY) == key == keystore.get(keystore.LINK_SIGNING_KEY)
        with pytest.raises(keystore.KeyringUnavailable) as refused:  # a person's secret: a real account cannot work
            keystore.set(keystore.HUBSPOT_ACCESS_TOKEN, "pat-na1-secret")
        assert str(refused.value) == str(why)
        assert keystore.get(keystore.HUBSPOT_ACCESS_TOKEN) is None
    finally:
        keystore.use_keyring()
    assert keystore.get(keystore.LINK_SIGNING_KEY) != key  # nothing of it reached the OS keyring


# -- `make run` (scripts/run-app): a keyring for the app where none is reachable -------------------------

RUN_APP = ROOT / "scripts" / "run-app"

# The command run-app runs here: whether a Secret Service holds its name on the bus it was given, and its pid.
SEE = textwrap.dedent("""
    import json, os
    from jeepney import DBus
    from jeepney.io.blocking import open_dbus_connection
    bus = open_dbus_connection("SESSION")
    owned = bus.send_and_get_reply(DBus().NameHasOwner("org.freedesktop.secrets")).body[0]
    pid = bus.send_and_get_reply(DBus().GetConnectionUnixProcessID("org.freedesktop.secrets")).body[0] if owned else 0
    print(json.dumps({"bus": os.environ["DBUS_SESSION_BUS_ADDRESS"], "owned": owned, "pid": pid}))
""")


def run_app_env(tmp_path: Path, bus: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "GNOME_KEYRING_CONTROL", "SSH_AUTH_SOCK", "DBUS_SESSION_BUS_ADDRESS",
                        "PYTHON_KEYRING_BACKEND", "CALLRELAY_IN_KEYRING", "CALLRELAY_RUN_APP_BUS")}
    for name in ("runtime", "data", "config"):
        (tmp_path / name).mkdir(exist_ok=True)
    env.update(XDG_RUNTIME_DIR=str(tmp_path / "runtime"), XDG_DATA_HOME=str(tmp_path / "data"),
               XDG_CONFIG_HOME=str(tmp_path / "config"), CALLRELAY_PYTHON=sys.executable)
    if bus is not None:
        env["DBUS_SESSION_BUS_ADDRESS"] = bus
    return env


def run_app(env: dict[str, str]) -> tuple[dict[str, object], list[str]]:
    """run-app running SEE: what SEE saw, and the lines run-app said (its own, not the bus daemon's)."""
    done = subprocess.run([str(RUN_APP), sys.executable, "-c", SEE], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), [line for line in done.stderr.splitlines() if line.startswith("run-app:")]


def assert_gone(pid: int) -> None:
    deadline = time.monotonic() + 5
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{pid}").exists(), "the keyring started for the app outlived it"


def test_run_app_starts_gnome_keyring_on_a_session_bus_that_has_no_keyring(bare_bus: str, tmp_path: Path) -> None:
    seen, said = run_app(run_app_env(tmp_path, bare_bus))
    assert seen["bus"] == bare_bus and seen["owned"] is True, seen  # on the user's bus, not a private one
    keyrings = tmp_path / "data" / "keyrings"
    assert said == [f"run-app: no keyring on your session bus: started gnome-keyring for Call Relay until it quits "
                    f"(keyrings in {keyrings}; it asks for the keyring's password)"]
    assert keyrings.is_dir()  # gnome-keyring's own place under the user's data directory: they persist
    assert_gone(int(seen["pid"]))  # type: ignore[call-overload]


def test_run_app_without_a_session_bus_starts_a_private_one_with_gnome_keyring(tmp_path: Path) -> None:
    seen, said = run_app(run_app_env(tmp_path, None))
    assert seen["owned"] is True, seen
    assert said == [f"run-app: no session bus: started a private one with gnome-keyring for Call Relay until it "
                    f"quits (keyrings in {tmp_path / 'data' / 'keyrings'}; it asks for the keyring's password)"]
    assert_gone(int(seen["pid"]))  # type: ignore[call-overload]


def test_run_app_leaves_a_reachable_keyring_alone(bare_bus: str, tmp_path: Path) -> None:
    env = run_app_env(tmp_path, bare_bus)
    daemon = subprocess.Popen(["gnome-keyring-daemon", "--foreground", "--components=secrets"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not json.loads(subprocess.run([sys.executable, "-c", SEE], env=env, capture_output=True, text=True,
                                            timeout=30).stdout)["owned"]:
            assert time.monotonic() < deadline, "gnome-keyring did not take its name on the bus"
            time.sleep(0.1)
        seen, said = run_app(env)
        assert said == [] and seen["owned"] is True and seen["pid"] == daemon.pid, (seen, said)
    finally:
        daemon.terminate()
        daemon.wait(10)
