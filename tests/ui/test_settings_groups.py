"""Issue 18's Settings screen: what an agent sets (account, tunnel, defaults for calls), an Advanced section,
only the chosen tunnel provider's fields, and "Test tunnel" running the outside check step by step."""

from __future__ import annotations

import threading
import types

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGroupBox

from desktop_app import keystore
from desktop_app import settings as settings_mod
from desktop_app.server.app import RecordingServer
from desktop_app.server.recordings import RecordingStore
from desktop_app.ui.settings_page import SettingsPage


@pytest.fixture
def page(qtbot):
    page = SettingsPage(settings_mod.Settings())
    qtbot.addWidget(page)
    page.resize(900, 700)
    page.show()
    qtbot.waitExposed(page)
    return page


def _titles(page: SettingsPage) -> list[str]:
    return [box.title() for box in page.inner.findChildren(QGroupBox) if box.isVisibleTo(page)]


def test_settings_are_grouped_into_what_an_agent_sets_and_advanced(page):
    assert _titles(page) == ["HubSpot account", "Tunnel", "Defaults for calls"]
    assert page.advanced_button.isVisible() and not page.advanced_button.isChecked()
    for name in ("hubspot.sandbox", "tunnel.provider", "calls.default_region", "calls.agent"):
        assert page.widgets[name].isVisible(), name
    for name in ("server.link_ttl_s", "server.port", "hubspot.api_url", "calls.pbx_patterns", "team.relay_url"):
        assert not page.widgets[name].isVisible(), name
    page.advanced_button.click()
    assert page.advanced.isVisible() and page.advanced_button.isChecked()
    for name in ("server.link_ttl_s", "server.port", "hubspot.api_url", "calls.pbx_patterns", "team.relay_url"):
        assert page.widgets[name].isVisible(), name


def test_a_bad_value_in_the_advanced_section_opens_it_and_shows_the_error(page):
    page.widgets["calls.pbx_patterns"].setPlainText("not json")
    assert not page.advanced.isVisible()
    assert page.save() is False
    assert page.advanced.isVisible() and page.errors["calls.pbx_patterns"].isVisible()


@pytest.mark.parametrize("provider, shown, hidden", [
    ("ssh", ["tunnel.ssh_host", "tunnel.ssh_user", "tunnel.ssh_key", "tunnel.ssh_public_url"],
     ["tunnel.ngrok_domain", "tunnel.cloudflared_path", "server.public_url"]),
    ("ngrok", ["tunnel.ngrok_domain"], ["tunnel.ssh_host", "tunnel.cloudflared_tunnel", "server.public_url"]),
    ("cloudflared", ["tunnel.cloudflared_path", "tunnel.cloudflared_tunnel", "tunnel.cloudflared_hostname"],
     ["tunnel.ssh_host", "tunnel.ngrok_domain"]),
    ("manual", ["server.public_url"], ["tunnel.ssh_host", "tunnel.ngrok_domain", "tunnel.cloudflared_path"]),
])
def test_only_the_chosen_tunnel_providers_fields_are_shown(page, provider, shown, hidden):
    page.widgets["tunnel.provider"].setCurrentText(provider)
    for name in shown:
        assert page.widgets[name].isVisible(), name
    for name in hidden:
        assert not page.widgets[name].isVisible(), name
    assert page.secret_fields[keystore.NGROK_AUTHTOKEN].isVisible() == (provider == "ngrok")


@pytest.fixture
def running(callrelay_home):
    """The app's real recording server and store on loopback, as the runtime holds them (no tunnel)."""
    store = RecordingStore()
    server = RecordingServer(store, host="127.0.0.1", port=0)
    server.start()
    server.set_public_url(server.local_url)
    yield types.SimpleNamespace(server=server, store=store, tunnel=None, tunnel_problem="")
    server.stop()


def _test_tunnel(qtbot, page: SettingsPage) -> list[str]:
    with qtbot.waitSignal(page.tunnelTested, timeout=20000) as blocker:
        qtbot.mouseClick(page.test_tunnel_button, Qt.MouseButton.LeftButton)
        assert page.tunnel_test_result.text().startswith("Testing")  # the click returned: the check runs elsewhere
    lines: list[str] = blocker.args[0]
    assert page.tunnel_test_result.text() == "\n".join(lines)
    return lines


def test_test_tunnel_runs_the_outside_check_off_the_ui_thread_and_shows_each_step(qtbot, page, running):
    seen: list[str] = []
    real = running.server.make_link

    def make_link(sha: str) -> str:
        seen.append(threading.current_thread().name)
        return real(sha)

    running.server.make_link = make_link
    page.set_runtime(running)
    lines = _test_tunnel(qtbot, page)
    assert seen and threading.main_thread().name not in seen
    base = running.server.local_url
    assert lines[0] == f"✓ Public URL: {base}"
    assert [line[:1] for line in lines[1:4]] == ["✓", "✓", "✓"]
    assert "/healthz" in lines[1] and "Range" in lines[2] and "browser" in lines[3]
    assert lines[-1].startswith("✓ HubSpot can fetch recordings through")


def test_test_tunnel_names_the_step_that_failed_and_skips_the_rest(qtbot, page, running):
    running.server.set_public_url(running.server.local_url + "/elsewhere")  # a proxy that maps the wrong path
    page.set_runtime(running)
    lines = _test_tunnel(qtbot, page)
    assert lines[1].startswith("✗ ") and "/healthz" in lines[1] and "404" in lines[1]
    assert lines[2].startswith("– ") and lines[3].startswith("– ") and "not run" in lines[2]
    assert lines[-1].startswith("✗ HubSpot cannot fetch recordings")


def test_test_tunnel_without_a_running_server_says_what_to_do(qtbot, page):
    lines = _test_tunnel(qtbot, page)
    assert len(lines) == 1 and lines[0].startswith("✗ ") and "Restart now" in lines[0]


def test_test_tunnel_says_unsaved_tunnel_changes_are_not_what_was_tested(qtbot, page, running):
    page.set_runtime(running)
    page.widgets["tunnel.provider"].setCurrentText("ssh")
    lines = _test_tunnel(qtbot, page)
    assert "unsaved tunnel changes" in lines[0] and lines[1].startswith("✓ Public URL:")
    assert page.test_tunnel_button.isEnabled()
