"""Single desk, made safe (issue 17 item 3): a desk never silently re-points the recording URL something else
registered with HubSpot. Real processes against the sandbox: two desks (two data directories) run
``callrelay serve``; the second refuses, names the URL registered now and exits non-zero, until it is run with
``--take-over``; a desk re-points its own earlier URL freely. And the tunnel's follower, through the real
client, leaves another's URL as it is."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from desktop_app.hubspot.client import HubSpotClient
from desktop_app.hubspot.config import config_from_env
from desktop_app.hubspot.recording_url import OWN_URL_SETTING, RecordingUrlGuard, RecordingUrlTaken
from desktop_app.sandbox import Sandbox
from desktop_app.testing import CRASH_ENV
from desktop_app.tunnel import RecordingUrlFollower, endpoint_template

ENDPOINT_LINE = "Recording endpoint for HubSpot: "


def desk_env(home: Path, sb: Sandbox) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    return {**env, **sb.env(), "CALLRELAY_HOME": str(home)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Desk:
    """``callrelay serve --public-url`` of one data directory; ``endpoint`` once it serves, or ``code``/``err``
    when it refused and ended."""

    def __init__(self, env: dict[str, str], *extra: str) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "desktop_app", "serve", "--port", str(port), "--public-url", self.url,
             "--workers", "1", *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.endpoint: str | None = None
        self.out: list[str] = []
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.out.append(line.rstrip("\n"))
            if line.startswith(ENDPOINT_LINE):
                self.endpoint = line[len(ENDPOINT_LINE):].strip()
                break
        self.code: int | None = None
        self.err = ""
        if self.endpoint is None:
            self.code = self.proc.wait(60)
            self.err = self.proc.stderr.read() if self.proc.stderr else ""

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc.stderr and not self.proc.stderr.closed:
            self.err += self.proc.stderr.read()
        return int(self.proc.returncode)


def registered(sb: Sandbox) -> str | None:
    setting = sb.recording_setting()
    return None if setting is None else str(setting["urlToRetrieveAuthedRecording"])


def own_url(home: Path) -> str | None:
    path = home / "settings.json"
    return json.loads(path.read_text()).get(OWN_URL_SETTING) if path.exists() else None


def refused_naming(desk: Desk, current: str) -> None:
    sentences = [line for line in desk.err.splitlines() if line.strip()]
    assert desk.code == 1, (desk.code, desk.out, desk.err)
    said = [line for line in sentences if current in line]
    assert len(said) == 1 and said[0].startswith("callrelay serve: ") and "--take-over" in said[0], desk.err
    assert "Traceback" not in desk.err


def test_a_second_desks_serve_refuses_and_take_over_re_points(callrelay_home: Path, tmp_path: Path) -> None:
    home_a, home_b = callrelay_home, tmp_path / "desk-b"
    with Sandbox(port=0) as sb:
        env_a, env_b = desk_env(home_a, sb), desk_env(home_b, sb)
        a = Desk(env_a)
        try:
            assert a.endpoint == endpoint_template(a.url), (a.out, a.err)
            assert registered(sb) == a.endpoint  # nothing was registered: the first desk registers
            assert own_url(home_a) == a.endpoint

            b = Desk(env_b)  # a second desk: HubSpot's URL is desk A's
            refused_naming(b, a.endpoint)
            assert registered(sb) == a.endpoint  # left as it was
            assert own_url(home_b) is None

            b = Desk(env_b, "--take-over")
            try:
                assert b.endpoint == endpoint_template(b.url), (b.out, b.err)
                assert registered(sb) == b.endpoint
                assert own_url(home_b) == b.endpoint
            finally:
                assert b.stop() == 0, b.err
        finally:
            assert a.stop() == 0, a.err

        again = Desk(env_a)  # desk A starts again: the URL is B's now, not A's own
        refused_naming(again, str(b.endpoint))
        assert registered(sb) == b.endpoint

        b2 = Desk(env_b)  # desk B on another address: HubSpot holds B's own earlier URL, re-pointed freely
        try:
            assert b2.endpoint is not None and b2.endpoint != b.endpoint, (b2.out, b2.err)
            assert registered(sb) == b2.endpoint and own_url(home_b) == b2.endpoint
        finally:
            assert b2.stop() == 0, b2.err


def test_the_tunnels_follower_leaves_anothers_url_and_says_which(callrelay_home: Path) -> None:
    with Sandbox(port=0) as sb:
        other = "http://127.0.0.1:9/retrieve/authenticated/recordings/%s"
        HubSpotClient(config_from_env(sb.env())).register_recording_url(other)  # the team's relay, say
        mine: list[str] = []
        client = HubSpotClient(config_from_env(sb.env()))
        client.recording_url_guard = RecordingUrlGuard(own=lambda: "", remember=mine.append)
        records: list[dict[str, object]] = []
        entry = RecordingUrlFollower(client, record=records.append, allow_http=True).follow("http://127.0.0.1:8")
        assert entry is not None and entry["action"] == "failed" and other in str(entry["message"])
        assert registered(sb) == other and mine == []
        try:
            client.register_recording_url("http://127.0.0.1:8/r/%s")
        except RecordingUrlTaken as exc:
            assert exc.current == other and other in str(exc)
        else:
            raise AssertionError("register_recording_url re-pointed another's URL")
        assert registered(sb) == other

        asked: list[tuple[str, str]] = []
        client.recording_url_guard = RecordingUrlGuard(
            own=lambda: "", remember=mine.append, take_over=lambda current, wanted: asked.append((current, wanted))
            or True)
        entry = RecordingUrlFollower(client, record=records.append, allow_http=True).follow("http://127.0.0.1:8")
        wanted = endpoint_template("http://127.0.0.1:8")
        assert entry is not None and entry["action"] == "updated", entry
        assert asked == [(other, wanted)] and registered(sb) == wanted and mine == [wanted]


def test_serve_with_a_tunnel_refuses_anothers_url_in_one_sentence(callrelay_home: Path) -> None:
    """``--tunnel``: the follower finds another's URL; serve says which in one sentence and exits 1."""
    (callrelay_home / "settings.json").write_text(json.dumps({"hubspot.sandbox": True}))  # plain http on loopback
    other = "http://127.0.0.1:9/retrieve/authenticated/recordings/%s"
    with Sandbox(port=0) as sb:
        HubSpotClient(config_from_env(sb.env())).register_recording_url(other)
        port = free_port()
        done = subprocess.run(
            [sys.executable, "-m", "desktop_app", "serve", "--port", str(port), "--workers", "1", "--tunnel", "manual",
             "--tunnel-url", f"http://127.0.0.1:{port}"], env=desk_env(callrelay_home, sb), capture_output=True,
            text=True, timeout=120)
        assert registered(sb) == other
    assert done.returncode == 1, (done.stdout, done.stderr)
    naming = [line for line in done.stderr.splitlines() if other in line]
    assert len(naming) == 1 and naming[0].startswith("callrelay serve: "), done.stderr
    assert done.stderr.rstrip().splitlines()[-1] == naming[0] and "Traceback" not in done.stderr


def test_an_upload_from_a_desk_whose_url_was_taken_over_fails_naming_it(callrelay_home: Path,
                                                                       tmp_path: Path) -> None:
    """Desk A serves and registered; desk B takes over; A's next upload does not take it back: the submission
    fails with the sentence naming B's URL, and HubSpot keeps B's."""
    from sync_helpers import history, write_call

    home_b = tmp_path / "desk-b"
    with Sandbox(port=0) as sb:
        env_a, env_b = desk_env(callrelay_home, sb), desk_env(home_b, sb)
        a = Desk(env_a)
        try:
            assert registered(sb) == a.endpoint
            b = Desk(env_b, "--take-over")
            try:
                assert registered(sb) == b.endpoint
                up = subprocess.run([sys.executable, "-m", "desktop_app", "upload",
                                     str(write_call(tmp_path / "call.wav")), "--contact", "jane.doe@example.com"],
                                    env=env_a, capture_output=True, text=True, timeout=180)
                assert registered(sb) == b.endpoint
            finally:
                b.stop()
        finally:
            a.stop()
        assert sb.calls() == []
    assert up.returncode == 1, (up.stdout, up.stderr)
    assert str(b.endpoint) in up.stdout + up.stderr and "Traceback" not in up.stderr
    [sub] = history(env_a)
    assert sub["status"] == "failed" and str(b.endpoint) in json.dumps(sub)


def test_a_long_lived_client_reads_again_before_each_replacement(callrelay_home: Path) -> None:
    """The app's client lives for hours: what it read (or wrote) an hour ago is not what HubSpot holds now.
    Another desk takes over in between; the next replacement, even without a read just before, refuses."""
    with Sandbox(port=0) as sb:
        mine: list[str] = []
        client = HubSpotClient(config_from_env(sb.env()))
        client.recording_url_guard = RecordingUrlGuard(own=lambda: mine[-1] if mine else "", remember=mine.append)
        first, second = "http://127.0.0.1:8/a/%s", "http://127.0.0.1:8/b/%s"
        client.register_recording_url(first)
        other = "http://127.0.0.1:9/retrieve/authenticated/recordings/%s"
        HubSpotClient(config_from_env(sb.env())).update_recording_settings(other)  # another desk, meanwhile
        try:
            client.update_recording_settings(second)
        except RecordingUrlTaken as exc:
            assert exc.current == other
        else:
            raise AssertionError("a stale read let another's URL be replaced")
        assert registered(sb) == other and mine == [first]
