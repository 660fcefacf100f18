"""The Settings page: built from the declarations, validated, saved to the file and the keyring."""

from __future__ import annotations

import json

from PySide6.QtCore import Qt

from desktop_app import keystore, paths
from desktop_app import settings as settings_mod
from desktop_app.ui.settings_page import SettingsPage


def test_every_declared_setting_has_a_widget_except_window_state(qtbot):
    page = SettingsPage(settings_mod.Settings())
    qtbot.addWidget(page)
    shown = set(page.widgets)
    declared = {s.name for s in settings_mod.DECLARED}
    assert shown == {n for n in declared if not n.startswith("ui.")}
    port = page.widgets["server.port"]
    assert (port.minimum(), port.maximum()) == (0, 65535)
    assert page.widgets["tunnel.provider"].count() == len(settings_mod.BY_NAME["tunnel.provider"].choices)


def test_saving_writes_the_file_and_rejects_a_bad_value_where_it_is(qtbot):
    page = SettingsPage(settings_mod.Settings())
    qtbot.addWidget(page)
    page.show()
    page.widgets["calls.default_region"].setText("XX")
    assert page.save() is False
    assert page.errors["calls.default_region"].isVisible()
    assert not paths.settings_file().exists()
    page.widgets["calls.default_region"].setText("GB")
    page.widgets["server.port"].setValue(9123)
    page.widgets["tunnel.provider"].setCurrentText("ssh")
    page.widgets["calls.pbx_patterns"].setPlainText("not json")
    assert page.save() is False and page.errors["calls.pbx_patterns"].isVisible()
    page.widgets["calls.pbx_patterns"].setPlainText("[]")
    with qtbot.waitSignal(page.saved, timeout=5000):
        assert page.save() is True
    stored = json.loads(paths.settings_file().read_text())
    assert stored["calls.default_region"] == "GB" and stored["server.port"] == 9123
    assert stored["tunnel.provider"] == "ssh"
    assert settings_mod.Settings().get("server.port") == 9123


def test_a_secret_goes_to_the_keyring_and_is_never_shown_back(qtbot):
    page = SettingsPage(settings_mod.Settings())
    qtbot.addWidget(page)
    qtbot.waitUntil(lambda: page.secrets_stored is not None, timeout=5000)
    assert page.secrets_problem == ""  # a real keyring (scripts/with-keyring)
    field = page.secret_fields[keystore.HUBSPOT_ACCESS_TOKEN]
    field.setText("pat-na1-secret-value")
    with qtbot.waitSignal(page.secretsLoaded, timeout=10000):
        page.save()
    assert keystore.get(keystore.HUBSPOT_ACCESS_TOKEN) == "pat-na1-secret-value"
    assert field.text() == "" and "stored in the keyring" in field.placeholderText()
    assert "pat-na1" not in paths.settings_file().read_text()


def test_the_tunnel_state_shows_its_url_and_last_check(qtbot):
    from desktop_app.tunnel.watchdog import CheckResult

    page = SettingsPage(settings_mod.Settings())
    qtbot.addWidget(page)
    page.show_tunnel("degraded", "the public URL answered 502", "https://calls.example.com",
                     CheckResult(reachable=True, ok=False, message="HTTP 502 from the public URL", step="fetch"))
    text = page.tunnel_state.text()
    assert text.splitlines() == ["degraded: the public URL answered 502", "Public URL: https://calls.example.com",
                                 "Last check: ✗ HTTP 502 from the public URL"]


def test_sign_in_with_hubspot_through_the_browser(qtbot, tmp_path, monkeypatch):
    """"Sign in with HubSpot (OAuth)…" against the sandbox's OAuth server: the page saves the settings,
    opens the system browser on the authorize page (``webbrowser``, here a small program named by
    ``BROWSER`` that follows the redirect as a browser would), receives the code on the loopback
    redirect and stores the tokens in the keyring; the page says so."""
    import sys
    import webbrowser

    from desktop_app.sandbox import Sandbox

    sb = Sandbox(port=0).start()
    try:
        settings = settings_mod.Settings()
        settings.update({"hubspot.api_url": sb.url, "hubspot.auth": "oauth", "hubspot.sandbox": True,
                         "hubspot.oauth_client_id": sb.credentials.client_id,
                         "hubspot.app_id": str(sb.credentials.app_id)})
        settings.save()
        keystore.set(keystore.HUBSPOT_CLIENT_SECRET, sb.credentials.client_secret)
        browser = tmp_path / "browser"
        browser.write_text(f"#!{sys.executable}\n"
                           "import sys, requests\n"
                           "r = requests.get(sys.argv[1], headers={'User-Agent': 'Mozilla/5.0 (test browser)'}, "
                           "timeout=10)\n"
                           "sys.exit(0 if r.ok else 1)\n")
        browser.chmod(0o755)
        monkeypatch.setenv("BROWSER", f"{browser} %s")
        monkeypatch.setattr(webbrowser, "_tryorder", None)  # webbrowser reads BROWSER on its first use
        page = SettingsPage(settings)
        qtbot.addWidget(page)
        page.show()
        qtbot.waitUntil(lambda: page.secrets_stored is not None, timeout=5000)
        assert keystore.get(keystore.HUBSPOT_ACCESS_TOKEN) is None
        qtbot.mouseClick(page.signin_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: page.test_result.text().startswith(("✓", "✗")), timeout=30000)
        assert page.test_result.text() == "✓ Signed in to HubSpot. Restart to use it."
        access, refresh = keystore.get(keystore.HUBSPOT_ACCESS_TOKEN), keystore.get(keystore.HUBSPOT_REFRESH_TOKEN)
        assert access and refresh
        assert [r.alias for r in sb.requests if r.alias.startswith("oauth.")] == ["oauth.authorize", "oauth.token"]
        assert access not in paths.settings_file().read_text() and refresh not in page.test_result.text()
    finally:
        sb.stop()
