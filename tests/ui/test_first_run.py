"""The first-run choice (issue 18): sandbox, own HubSpot account (a guided set-up), or join my team.

Real parts: the HubSpot sandbox on loopback answers the set-up's checks, the keyring is the real one
(``scripts/with-keyring``), the settings are the data directory's file."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractButton, QComboBox, QLineEdit

from desktop_app import keystore, paths
from desktop_app import settings as settings_mod
from desktop_app.sandbox.server import Sandbox
from desktop_app.ui import first_run
from desktop_app.ui.main_window import MainWindow

RELAY_TESTS = Path(__file__).resolve().parent.parent / "relay"


@pytest.fixture
def sandbox():
    sb = Sandbox(port=0, search_lag_s=0).start()
    yield sb
    sb.stop()


def _saved() -> dict:
    path = paths.settings_file()
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _window(qtbot) -> MainWindow:
    window = MainWindow(settings_mod.Settings(), None, start=False)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window


def _dialog(qtbot) -> first_run.FirstRunDialog:
    dialog = first_run.FirstRunDialog(settings_mod.Settings())
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    return dialog


def test_the_first_start_offers_the_choice_once_and_set_up_shows_it_again(qtbot):
    window = _window(qtbot)
    window.first_run_if_needed()
    dialog = window.first_run_dialog
    qtbot.waitUntil(dialog.isVisible, timeout=3000)
    assert dialog.stack.currentIndex() == first_run.CHOICE
    qtbot.mouseClick(dialog.sandbox_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=3000)
    assert _saved()[first_run.DONE] is True and settings_mod.Settings().get("hubspot.sandbox") is True
    window.close()

    again = _window(qtbot)  # the next start of the same data directory: no choice offered
    again.first_run_if_needed()
    assert getattr(again, "first_run_dialog", None) is None
    menu_actions = [a for m in again.menuBar().actions() if m.menu() for a in m.menu().actions()]
    assert again.setup_action in menu_actions and again.setup_action.text().replace("&", "") == "Set up…"
    again.setup_action.trigger()
    qtbot.waitUntil(lambda: again.first_run_dialog.isVisible(), timeout=3000)


def test_a_data_directory_set_up_before_is_not_asked_again(qtbot):
    conf = settings_mod.Settings()  # as `callrelay hubspot connect` or an earlier release left it
    conf.set("hubspot.sandbox", False)
    conf.save()
    window = _window(qtbot)
    window.first_run_if_needed()
    assert getattr(window, "first_run_dialog", None) is None


def test_going_back_to_the_sandbox_from_an_account_offers_a_restart_instead_of_restarting_at_once(qtbot):
    conf = settings_mod.Settings()
    conf.update({"hubspot.sandbox": False, first_run.DONE: True})
    conf.save()
    dialog = _dialog(qtbot)
    restarts = []
    dialog.restartRequested.connect(lambda: restarts.append(True))
    qtbot.mouseClick(dialog.sandbox_button, Qt.MouseButton.LeftButton)
    assert _saved()["hubspot.sandbox"] is True
    assert restarts == [] and dialog.isVisible()  # the running uploads are not cut off by surprise
    assert "Restart" in dialog.choice_status.text() and dialog.choice_restart.isVisible()
    qtbot.waitUntil(dialog.choice_restart.hasFocus, timeout=3000)
    qtbot.keyClick(dialog.choice_restart, Qt.Key.Key_Space)
    assert restarts == [True]


def test_the_settings_page_shows_what_the_choice_saved_so_its_save_does_not_undo_it(qtbot):
    conf = settings_mod.Settings()
    conf.update({"hubspot.sandbox": False, first_run.DONE: True})
    conf.save()
    window = _window(qtbot)
    page = window.settings_page
    dialog = window.show_first_run()
    qtbot.waitUntil(dialog.isVisible, timeout=3000)
    qtbot.mouseClick(dialog.sandbox_button, Qt.MouseButton.LeftButton)
    assert _saved()["hubspot.sandbox"] is True
    assert page.widgets["hubspot.sandbox"].isChecked() and page.unsaved() == []
    assert page.save()
    assert _saved()["hubspot.sandbox"] is True


def test_closing_the_choice_still_counts_as_shown(qtbot):
    dialog = _dialog(qtbot)
    assert first_run.needed(settings_mod.Settings())
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=3000)
    assert not first_run.needed(settings_mod.Settings())


def test_every_control_has_a_screen_reader_name_and_the_keyboard_reaches_each_choice(qtbot):
    dialog = _dialog(qtbot)
    dialog.activateWindow()
    qtbot.waitUntil(dialog.sandbox_button.hasFocus, timeout=3000)
    seen = []
    for _ in range(3):
        seen.append(dialog.focusWidget())
        qtbot.keyClick(dialog.focusWidget(), Qt.Key.Key_Tab)
    assert seen == [dialog.sandbox_button, dialog.account_button, dialog.team_button]
    controls = [w for kind in (QAbstractButton, QLineEdit, QComboBox) for w in dialog.findChildren(kind)
                if w.parent() is not None and not w.inherits("QComboBoxPrivateContainer")]
    nameless = [w.objectName() or type(w).__name__ + ":" + getattr(w, "text", lambda: "")() for w in controls
                if not w.accessibleName() and not isinstance(w.parent(), QComboBox)]
    assert len(controls) > 12 and nameless == []

    qtbot.keyClick(dialog.account_button, Qt.Key.Key_Space)  # the set-up in the order of its steps
    qtbot.waitUntil(dialog.auth.hasFocus, timeout=3000)
    order = []
    for _ in range(10):
        order.append(dialog.focusWidget().accessibleName())
        qtbot.keyClick(dialog.focusWidget(), Qt.Key.Key_Tab)
    assert order == ["Sign in with", "Private-app access token", "Test the private-app access token", "App id",
                     "Test the app id", "Developer API key", "Test the developer API key", "Tunnel provider",
                     "Public https address", "Test the tunnel"]
    back = [b for b in dialog.findChildren(QAbstractButton)
            if b.accessibleName() == "Back to the three choices" and b.isVisible()]
    qtbot.mouseClick(back[0], Qt.MouseButton.LeftButton)
    assert dialog.stack.currentIndex() == first_run.CHOICE
    dialog.team_button.setFocus()
    qtbot.keyClick(dialog.team_button, Qt.Key.Key_Space)  # a choice opens by keyboard, focus in its first field
    assert dialog.stack.currentIndex() == first_run.TEAM
    qtbot.waitUntil(dialog.relay_url.hasFocus, timeout=3000)


def _test(qtbot, dialog, step, name):
    with qtbot.waitSignal(dialog.stepChecked, timeout=20000, check_params_cb=lambda n, _ok: n == name) as blocker:
        qtbot.mouseClick(step.test, Qt.MouseButton.LeftButton)
    return blocker.args[1], step.result.text()


def test_own_account_checks_each_value_with_hubspot_and_saves_it_as_connect_does(qtbot, sandbox):
    creds = sandbox.credentials
    dialog = _dialog(qtbot)
    qtbot.mouseClick(dialog.account_button, Qt.MouseButton.LeftButton)
    assert dialog.stack.currentIndex() == first_run.ACCOUNT
    dialog.api_url.setText(sandbox.url)
    assert not dialog.save_button.isEnabled()

    qtbot.keyClicks(dialog.token_edit, "pat-na1-not-a-token")
    ok, text = _test(qtbot, dialog, dialog.token, "token")
    assert not ok and "✗" in text and not dialog.save_button.isEnabled()
    dialog.token_edit.setText(creds.access_token)
    ok, text = _test(qtbot, dialog, dialog.token, "token")
    assert ok and f"portal {creds.portal_id}" in text and dialog.save_button.isEnabled()

    dialog.app_id_edit.setText("my app")
    assert _test(qtbot, dialog, dialog.app_id, "app id")[0] is False
    dialog.app_id_edit.setText(str(creds.app_id))
    assert _test(qtbot, dialog, dialog.app_id, "app id")[0] is True

    ok, text = _test(qtbot, dialog, dialog.dev_key, "developer key")  # none yet: what registering needs
    assert not ok and "developer API key" in text
    dialog.key_edit.setText("0000-wrong")
    ok, text = _test(qtbot, dialog, dialog.dev_key, "developer key")
    assert not ok and "did not accept the developer API key" in text
    dialog.key_edit.setText(creds.developer_api_key)
    ok, text = _test(qtbot, dialog, dialog.dev_key, "developer key")
    assert ok and "HubSpot accepts the key" in text

    dialog.provider.setCurrentText("manual")
    dialog.public_url.setText("http://127.0.0.1:8765")
    ok, text = _test(qtbot, dialog, dialog.tunnel, "tunnel")
    assert not ok and "127.0.0.1" in text
    label = dialog.tunnel.result  # a long answer is shown whole, not cut off nor run into the line below
    qtbot.waitUntil(lambda: label.height() >= label.heightForWidth(label.width()) > label.fontMetrics().height()
                    and label.geometry().bottom() < dialog.account_status.geometry().top(), timeout=3000)
    dialog.public_url.setText("https://recordings.example.com/")
    assert _test(qtbot, dialog, dialog.tunnel, "tunnel")[0] is True
    qtbot.keyClicks(dialog.public_url, "x")  # an edit after the test: that step is to be tested again
    assert not dialog.tunnel.ok and "tunnel" in dialog.account_status.text()
    dialog.public_url.setText("https://recordings.example.com/")
    assert _test(qtbot, dialog, dialog.tunnel, "tunnel")[0] is True
    assert "Every step passed" in dialog.account_status.text()

    with qtbot.waitSignal(dialog.finished_choice, timeout=10000):
        qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert dialog.restart_button.isVisible()
    saved = _saved()
    assert saved["hubspot.sandbox"] is False and saved["hubspot.api_url"] == sandbox.url
    assert saved["hubspot.app_id"] == str(creds.app_id) and saved[first_run.DONE] is True
    assert saved["server.public_url"] == "https://recordings.example.com" and saved["tunnel.provider"] == "manual"
    assert keystore.get(keystore.HUBSPOT_ACCESS_TOKEN) == creds.access_token
    assert keystore.get(keystore.HUBSPOT_DEVELOPER_API_KEY) == creds.developer_api_key
    assert creds.access_token not in paths.settings_file().read_text(encoding="utf-8")
    with qtbot.waitSignal(dialog.restartRequested, timeout=3000):
        qtbot.mouseClick(dialog.restart_button, Qt.MouseButton.LeftButton)


def test_own_account_signs_in_with_oauth_in_the_browser_instead_of_a_token(qtbot, sandbox, tmp_path, monkeypatch):
    """The browser is a small program named by ``BROWSER`` that follows the sandbox's authorize page to the
    loopback redirect, as a browser would (as in test_settings_page's sign-in test)."""
    import webbrowser

    creds = sandbox.credentials
    browser = tmp_path / "browser"
    browser.write_text(f"#!{sys.executable}\n"
                       "import sys, requests\n"
                       "r = requests.get(sys.argv[1], headers={'User-Agent': 'Mozilla/5.0 (test browser)'}, timeout=10)\n"
                       "sys.exit(0 if r.ok else 1)\n")
    browser.chmod(0o755)
    monkeypatch.setenv("BROWSER", f"{browser} %s")
    monkeypatch.setattr(webbrowser, "_tryorder", None)  # webbrowser reads BROWSER on its first use
    dialog = _dialog(qtbot)
    qtbot.mouseClick(dialog.account_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(dialog.auth.hasFocus, timeout=3000)
    dialog.api_url.setText(sandbox.url)
    dialog.auth.setCurrentIndex(1)
    assert dialog.oauth.field.isVisible() and not dialog.token.field.isVisible()
    assert "Sign in to save" in dialog.account_status.text() and not dialog.save_button.isEnabled()

    ok, text = _test(qtbot, dialog, dialog.oauth, "sign-in")  # nothing written yet
    assert not ok and "client id and client secret" in text
    dialog.client_id_edit.setText(creds.client_id)
    dialog.client_secret_edit.setText(creds.client_secret)
    ok, text = _test(qtbot, dialog, dialog.oauth, "sign-in")
    assert ok and f"portal {creds.portal_id}" in text and dialog.save_button.isEnabled()
    access, refresh = keystore.get(keystore.HUBSPOT_ACCESS_TOKEN), keystore.get(keystore.HUBSPOT_REFRESH_TOKEN)
    assert access and refresh and access not in text

    dialog.app_id_edit.setText(str(creds.app_id))
    dialog.key_edit.setText(creds.developer_api_key)
    ok, text = _test(qtbot, dialog, dialog.dev_key, "developer key")
    assert ok and "HubSpot accepts the key" in text
    with qtbot.waitSignal(dialog.finished_choice, timeout=10000):
        qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    saved = _saved()
    assert (saved["hubspot.auth"], saved["hubspot.oauth_client_id"], saved["hubspot.sandbox"]) == \
        ("oauth", creds.client_id, False)
    assert keystore.get(keystore.HUBSPOT_CLIENT_SECRET) == creds.client_secret
    assert keystore.get(keystore.HUBSPOT_REFRESH_TOKEN)  # the sign-in's, kept (connect's saving would drop it)
    assert creds.client_secret not in paths.settings_file().read_text(encoding="utf-8")


@pytest.fixture
def no_keyring():
    """This run goes on without a keyring, as the app does when none answers (sandbox mode)."""
    keystore.use_memory(keystore.KeyringUnavailable(keystore.MISSING, "test"))
    yield
    keystore.use_keyring()


def test_saving_an_account_without_a_keyring_says_what_to_install_and_changes_nothing(qtbot, sandbox, no_keyring):
    dialog = _dialog(qtbot)
    qtbot.mouseClick(dialog.account_button, Qt.MouseButton.LeftButton)
    dialog.api_url.setText(sandbox.url)
    dialog.token_edit.setText(sandbox.credentials.access_token)
    assert _test(qtbot, dialog, dialog.token, "token")[0] is True
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(dialog.save_button.isEnabled, timeout=10000)
    text = dialog.account_status.text()
    assert "No keyring is reachable" in text and "gnome-keyring" in text and "nothing was saved" in text
    assert "HUBSPOT_" not in text and "run this again" not in text  # the command line's advice, not the app's
    assert _saved() == {} and not dialog.restart_button.isVisible() and dialog.choice == ""


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_join_my_team_says_what_is_wrong_in_one_sentence_and_saves_nothing(qtbot):
    dialog = _dialog(qtbot)
    qtbot.mouseClick(dialog.team_button, Qt.MouseButton.LeftButton)
    qtbot.keyClicks(dialog.relay_url, "relay.example.com")
    qtbot.keyClicks(dialog.invite_code, "abc-123")
    qtbot.mouseClick(dialog.join_button, Qt.MouseButton.LeftButton)
    assert "is not a relay URL" in dialog.team_status.text()

    dialog.relay_url.setText(f"http://127.0.0.1:{_closed_port()}")
    qtbot.mouseClick(dialog.join_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(dialog.join_button.isEnabled, timeout=20000)
    text = dialog.team_status.text()
    assert "cannot be reached" in text and "Nothing was saved" in text and "Traceback" not in text
    assert "team.relay_url" not in _saved() and keystore.get(keystore.TEAM_RELAY_TOKEN) is None
    assert dialog.choice == ""


@pytest.fixture
def relay(tmp_path):
    """A real ``callrelay relay serve`` on loopback with its own PostgreSQL database (tests/relay's services)."""
    if str(RELAY_TESTS) not in sys.path:
        sys.path.insert(0, str(RELAY_TESTS))
    from services import Postgres
    from test_relay_service import ACCOUNT, APP_ID, RelayProcess, _env

    pg = Postgres()
    pg.start()
    try:
        database_url = pg.create_database()
        proc = RelayProcess(["--database", database_url, "--storage", f"file:{tmp_path / 'store'}",
                             "--app-id", APP_ID, "--account-id", ACCOUNT],
                            _env({"CALLRELAY_HUBSPOT_CLIENT_SECRET": "hs-client-secret-for-the-test",
                                  "CALLRELAY_LINK_KEY": "link-key-for-the-test"}), tmp_path / "relay.log")
        try:
            yield proc, database_url
        finally:
            proc.stop()
    finally:
        pg.stop()


def test_join_my_team_redeems_the_invite_and_says_upload_and_log_goes_to_the_relay(qtbot, relay):
    from desktop_app.relay.client import RelayClient
    from desktop_app.relay.db import TeamDB

    proc, database_url = relay
    with TeamDB(database_url) as db:
        code = db.create_invite("hal")
    dialog = _dialog(qtbot)
    qtbot.mouseClick(dialog.team_button, Qt.MouseButton.LeftButton)
    qtbot.keyClicks(dialog.relay_url, proc.url)
    qtbot.keyClicks(dialog.invite_code, code)
    with qtbot.waitSignal(dialog.finished_choice, timeout=30000):
        qtbot.keyClick(dialog.invite_code, Qt.Key.Key_Return)
    text = dialog.team_status.text()
    assert f"Joined the team at {proc.url} as hal (agent)" in text and "does not log calls" not in text
    assert "Upload & Log sends this desk's recordings to the relay" in text
    token = keystore.get(keystore.TEAM_RELAY_TOKEN)
    assert token and token not in text and code not in text
    assert RelayClient(proc.url, token).submissions() == []  # the desk's token works at the relay
    saved = _saved()
    assert saved["team.relay_url"] == proc.url and saved[first_run.DONE] is True
    assert token not in paths.settings_file().read_text(encoding="utf-8")
    assert dialog.team_done.isVisible()
    qtbot.keyClick(dialog.team_done, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=3000)
