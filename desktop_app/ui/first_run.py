"""The first-run choice (issue 18): try the sandbox, use my own HubSpot account, or join my team.

Shown once, on the first start of a data directory (the ``ui.first_run_done`` setting remembers that
it was), and again from the window's menu (File → Set up…). "Use my own HubSpot account" is a
short guided set-up for a single desk: each value has a "Test" that runs the core's own check off the
UI thread (``hubspot connect``'s sign-in check and saving, ``check_app_id``,
``recording_registration_problem`` and the recording-settings read that ``hubspot test`` makes, the
recording URL rules for the tunnel's address). "Join my team" redeems an invite with
``relay.client.join``, as ``callrelay join RELAY_URL CODE`` does.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import (
    QComboBox,
    QCommandLinkButton,
    QDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from desktop_app import settings as settings_mod
from desktop_app.ui import tasks

log = logging.getLogger(__name__)

DONE = "ui.first_run_done"
CHOICE, ACCOUNT, TEAM = 0, 1, 2
RELAY_JOINED = ("From the next start, Upload & Log sends this desk's recordings to the relay, which logs the calls "
                "in HubSpot, and the History page shows the team's history.")


def needed(settings: settings_mod.Settings) -> bool:
    """Whether this is the first start of the data directory: the choice was never shown, and there is no
    settings file yet (a data directory set up before, by an earlier release or ``callrelay hubspot
    connect``, is not asked again; Set up… is there for it)."""
    return not settings.get(DONE) and not settings.path.exists()


# -- the checks (plain Python, run on a worker thread) ------------------------------------------------

def _titled_page(intro_html: str) -> tuple[QWidget, QVBoxLayout, QGridLayout]:
    """A page of the dialog: its introduction (wrapped), and a grid for its label/field rows."""
    page = QWidget()
    col = QVBoxLayout(page)
    intro = QLabel(intro_html)
    intro.setWordWrap(True)
    col.addWidget(intro)
    grid = QGridLayout()
    grid.setColumnStretch(1, 1)
    return page, col, grid

class StepFailed(Exception):
    """A check that did not pass; the message is the one sentence the user reads."""


def _account(api_url: str, token: str, app_id: str = "", developer_api_key: str = "") -> Any:
    from desktop_app.hubspot import connect

    try:
        return connect.Account(api_url=connect.check_api_url(api_url), app_id=connect.check_app_id(app_id.strip()),
                           access_token=token.strip(), developer_api_key=developer_api_key.strip(),
                           client_secret="")
    except connect.BadInput as exc:
        raise StepFailed(_sentence(str(exc))) from None


def check_token(api_url: str, token: str) -> str:
    """Sign in with the private-app token (one read-only request): ``hubspot connect``'s check."""
    from desktop_app.hubspot import connect
    from desktop_app.hubspot.errors import HubSpotError

    if not token.strip():
        raise StepFailed("Paste the private-app access token (HubSpot → Settings → Integrations → Private apps).")
    try:
        portal = connect.check_sign_in(_account(api_url, token))
    except HubSpotError as exc:
        raise StepFailed(exc.agent_message) from None
    return f"Signed in to portal {portal}."


def oauth_sign_in(api_url: str, client_id: str, client_secret: str, port: int) -> str:
    """Settings' "Sign in with HubSpot": the browser's authorization-code flow (the tokens go to the keyring),
    then one read-only request with the new token."""
    import dataclasses

    from desktop_app.hubspot import config as cfg
    from desktop_app.hubspot import oauth
    from desktop_app.hubspot.client import HubSpotClient
    from desktop_app.hubspot.errors import HubSpotError

    account = _account(api_url, "")
    if not client_id.strip() or not client_secret.strip():
        raise StepFailed("Write your HubSpot app's client id and client secret (developer account → Apps → your "
                         "app → Auth).")
    config = cfg.HubSpotConfig(api_url=account.api_url, auth="oauth", oauth_client_id=client_id.strip(),
                               client_secret=client_secret.strip(), oauth_redirect_port=port, read_timeout=15.0)
    try:
        tokens = oauth.sign_in(config)
        signed_in = dataclasses.replace(config, access_token=tokens.access_token,
                                        refresh_token=tokens.refresh_token, token_expires_at=tokens.expires_at)
        with HubSpotClient(signed_in) as client:
            portal = client.account_details().portal_id
    except HubSpotError as exc:
        raise StepFailed(exc.agent_message) from None
    return f"Signed in to portal {portal} (the tokens are in the system keyring)."


def check_app_id(app_id: str) -> str:
    from desktop_app.hubspot import connect

    if not app_id.strip():
        raise StepFailed("Write your HubSpot app's id (developer account → Apps): it registers the recording URL.")
    try:
        return f"App id {connect.check_app_id(app_id.strip())} looks right."
    except connect.BadInput as exc:
        raise StepFailed(_sentence(str(exc))) from None


def check_developer_key(api_url: str, token: str, app_id: str, developer_api_key: str,
                        oauth_client: tuple[str, str] | None = None) -> str:
    """What ``hubspot test`` checks for the recording URL: the key is there and HubSpot accepts it.
    ``oauth_client`` (client id, secret): signed in with OAuth, whose tokens are in the keyring."""
    from desktop_app import keystore
    from desktop_app.hubspot import config as cfg
    from desktop_app.hubspot.client import HubSpotClient, recording_registration_problem
    from desktop_app.hubspot.errors import HubSpotError

    account = _account(api_url, token, app_id, developer_api_key)
    if not account.app_id:
        raise StepFailed("Write and test the app id first: the developer API key is checked against it.")
    config = cfg.HubSpotConfig(api_url=account.api_url, access_token=account.access_token, app_id=account.app_id,
                               developer_api_key=account.developer_api_key, read_timeout=15.0)
    if oauth_client is not None:
        config = cfg.HubSpotConfig(
            api_url=account.api_url, auth="oauth", oauth_client_id=oauth_client[0], client_secret=oauth_client[1],
            access_token=keystore.get(keystore.HUBSPOT_ACCESS_TOKEN) or "",
            refresh_token=keystore.get(keystore.HUBSPOT_REFRESH_TOKEN) or "", app_id=account.app_id,
            developer_api_key=account.developer_api_key, read_timeout=15.0)
    problem = recording_registration_problem(config)
    if problem:
        raise StepFailed(problem)
    try:
        with HubSpotClient(config) as client:
            setting = client.get_recording_settings()
    except HubSpotError as exc:
        if exc.status == 401:
            raise StepFailed("HubSpot did not accept the developer API key: copy it again from your HubSpot "
                             "developer account (Apps → Get HubSpot API key).") from None
        raise StepFailed(exc.agent_message) from None
    if setting is None:
        return "HubSpot accepts the key; the first upload registers the recording URL."
    return f"HubSpot accepts the key; the recording URL is registered as {setting.url_to_retrieve_authed_recording}."


def check_tunnel(provider: str, public_url: str, settings: settings_mod.Settings) -> str:
    """Whether the chosen way in for HubSpot can work on this computer (the address, the program)."""
    from desktop_app import keystore
    from desktop_app.hubspot.endpoints import validate_recording_url

    if provider == "manual":
        base = public_url.strip().rstrip("/")
        if not base:
            raise StepFailed("Write the public https:// address that forwards to this computer's recording "
                             "server, or choose a tunnel program.")
        try:
            validate_recording_url(f"{base}{settings.get('server.endpoint_prefix')}/%s")
        except ValueError as exc:
            raise StepFailed(str(exc)) from None
        return f"HubSpot will fetch recordings from {base}."
    if provider == "cloudflared":
        program = str(settings.get("tunnel.cloudflared_path"))
        found = shutil.which(program)
        if not found:
            raise StepFailed(f"The cloudflared program ({program}) is not installed on this computer: install it "
                             "from Cloudflare, or choose another way in.")
        return f"cloudflared found at {found}; it opens a tunnel when Call Relay starts."
    if provider == "ngrok":
        try:
            saved = bool(keystore.get(keystore.NGROK_AUTHTOKEN)) or bool(os.environ.get("NGROK_AUTHTOKEN"))
        except keystore.KeyringUnavailable:
            saved = bool(os.environ.get("NGROK_AUTHTOKEN"))
        if not saved:
            raise StepFailed("No ngrok authtoken is saved: paste it in Settings → Tunnel (ngrok authtoken).")
        return "ngrok's authtoken is saved; ngrok opens a tunnel when Call Relay starts."
    if provider == "ssh":
        if not shutil.which("ssh"):
            raise StepFailed("The ssh program is not installed on this computer: install OpenSSH's client.")
        if not settings.get("tunnel.ssh_host") or not settings.get("tunnel.ssh_public_url"):
            raise StepFailed("Set the SSH host and its public https:// URL in Settings → Tunnel first.")
        return f"ssh forwards through {settings.get('tunnel.ssh_host')} when Call Relay starts."
    raise StepFailed(f"{provider!r} is not a way in that Call Relay knows.")


def save_account(settings: settings_mod.Settings, account: Any, provider: str, public_url: str,
                 oauth_client: tuple[str, str] | None = None) -> None:
    """``hubspot connect``'s saving: the secrets into the keyring, the rest into the settings. Signed in
    with OAuth (``oauth_client``: client id, secret), the tokens are in the keyring already."""
    from desktop_app import keystore
    from desktop_app.hubspot import connect

    if oauth_client is None:
        connect.save_secrets(account)
    else:
        keystore.set(keystore.HUBSPOT_CLIENT_SECRET, oauth_client[1])
        keystore.set(keystore.HUBSPOT_DEVELOPER_API_KEY, account.developer_api_key)
    settings.set("tunnel.provider", provider)
    if provider == "manual":
        settings.set("server.public_url", public_url.strip().rstrip("/"))
    settings.set(DONE, True)
    if oauth_client is None:
        connect.save_settings(settings, account)
    else:
        settings.update({"hubspot.api_url": account.api_url, "hubspot.app_id": account.app_id,
                         "hubspot.auth": "oauth", "hubspot.oauth_client_id": oauth_client[0],
                         "hubspot.sandbox": False})
        settings.save()


def _sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def _problem(exc: BaseException) -> str:
    """One sentence for anything a step or a save raised."""
    from desktop_app import keystore

    if isinstance(exc, keystore.KeyringUnavailable):  # the app's words (what to install or unlock), not the CLI's
        return (f"{_sentence(exc.reason)[:-1]}, and Call Relay keeps its secrets only there: {exc.fix}, "
                "then try again; nothing was saved.")
    if isinstance(exc, OSError):
        return f"The settings cannot be written ({exc.strerror or exc}); nothing was changed."
    return _sentence(str(exc) or type(exc).__name__)


# -- the dialog ---------------------------------------------------------------------------------------
class WrapLabel(QLabel):
    """A word-wrapped answer that always has room for all its lines at the width it is given (in a grid
    inside a dialog, a plain QLabel was laid out for fewer lines and its last ones were cut off or ran
    into the next row); the dialog grows to fit."""

    def __init__(self, text: str = "") -> None:
        super().__init__(text)
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.PlainText)

    def fit(self) -> None:
        self.setMinimumHeight(self.heightForWidth(self.width()) if self.text() else 0)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt's name
        super().setText(text)
        self.fit()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        if event.size().width() != event.oldSize().width():
            self.fit()


class Step:
    """One row of the guided set-up: a field, its Test button and the answer beneath."""

    def __init__(self, grid: QGridLayout, row: int, label: str, field: QWidget, name: str, help_text: str) -> None:
        self.field = field
        self.label = QLabel(label)
        self.label.setBuddy(field)
        field.setAccessibleName(name)
        field.setAccessibleDescription(help_text)
        field.setToolTip(help_text)
        self.test = QPushButton("Test")
        self.test.setAccessibleName(f"Test the {name[:1].lower() + name[1:]}")
        self.result = WrapLabel()
        self.result.setAccessibleName(f"{name} check")
        self.result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.ok = False
        self.task: tasks.Task | None = None
        grid.addWidget(self.label, row * 2, 0)
        grid.addWidget(field, row * 2, 1)
        grid.addWidget(self.test, row * 2, 2)
        grid.addWidget(self.result, row * 2 + 1, 1, 1, 2)

    def set_visible(self, visible: bool) -> None:
        for w in (self.label, self.field, self.test, self.result):
            w.setVisible(visible)

    def show(self, ok: bool, text: str) -> None:
        self.ok = ok
        self.result.setText(("✓ " if ok else "✗ ") + text)
        self.result.setStyleSheet("color: #1e8449;" if ok else "color: #b03a2e;")

    def reset(self) -> None:
        self.ok = False
        self.result.setText("")
        if self.task is not None:
            self.task.cancel()
            self.task = None


class FirstRunDialog(QDialog):
    """The three ways to start. ``finished_choice`` carries "sandbox", "account" or "team" once one is done."""

    finished_choice = Signal(str)
    restartRequested = Signal()  # a new account or sandbox mode takes a restart; the app restarts itself
    stepChecked = Signal(str, bool)  # (step, passed): for the tests and the screen reader's live region

    def __init__(self, settings: settings_mod.Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.choice = ""
        self.setWindowTitle("Set up Call Relay")
        self.setAccessibleName("Set up Call Relay")
        self.setMinimumWidth(640)
        self.stack = QStackedWidget()
        self.stack.addWidget(self._choice_page())
        self.stack.addWidget(self._account_page())
        self.stack.addWidget(self._team_page())
        col = QVBoxLayout(self)
        col.addWidget(self.stack)
        self.stack.currentChanged.connect(self._page_shown)
        self.sandbox_button.setFocus()

    def event(self, event: QEvent) -> bool:
        handled = super().event(event)
        if event.type() == QEvent.Type.LayoutRequest:
            QTimer.singleShot(0, self, self._grow)
        return handled

    def _grow(self) -> None:
        """Grow to the height the layout needs at this width: a dialog's minimum height is taken without
        asking its wrapped labels how many lines they need at the real width."""
        layout = self.layout()
        needed = layout.totalHeightForWidth(self.width()) if layout is not None and layout.hasHeightForWidth() else -1
        if needed > self.height():
            self.resize(self.width(), needed)

    # -- the choice ------------------------------------------------------------------------------------
    def _choice_page(self) -> QWidget:
        page = QWidget()
        col = QVBoxLayout(page)
        title = QLabel("<h2>Welcome to Call Relay</h2>How would you like to start? You can come back here later: "
                       "File menu, Set up…")
        title.setWordWrap(True)
        col.addWidget(title)
        self.sandbox_button = QCommandLinkButton(
            "Try the &sandbox", "Log calls in a HubSpot emulator on this computer: the whole flow, safely, "
            "with no account.")
        self.account_button = QCommandLinkButton(
            "Use my &own HubSpot account", "A single desk: a short set-up checks your token (or OAuth sign-in), "
            "app id, developer key and tunnel as you enter them.")
        self.team_button = QCommandLinkButton(
            "&Join my team", "Your team runs a Call Relay relay: enter its address and the invite code your "
            "admin gave you.")
        for button, name in ((self.sandbox_button, "Try the sandbox"),
                             (self.account_button, "Use my own HubSpot account"),
                             (self.team_button, "Join my team")):
            button.setAccessibleName(name)
            button.setAccessibleDescription(button.description())
            col.addWidget(button)
        col.addStretch(1)
        self.choice_status = WrapLabel()
        self.choice_status.setAccessibleName("Set-up status")
        col.addWidget(self.choice_status)
        self.choice_restart = QPushButton("&Restart now")
        self.choice_restart.setAccessibleName("Restart Call Relay in sandbox mode")
        self.choice_restart.hide()
        self.choice_restart.clicked.connect(self.restartRequested.emit)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.choice_restart)
        col.addLayout(row)
        self.sandbox_button.clicked.connect(self.choose_sandbox)
        self.account_button.clicked.connect(lambda: self.stack.setCurrentIndex(ACCOUNT))
        self.team_button.clicked.connect(lambda: self.stack.setCurrentIndex(TEAM))
        return page

    def _page_shown(self, index: int) -> None:
        first = {CHOICE: self.sandbox_button, ACCOUNT: self.auth, TEAM: self.relay_url}[index]
        first.setFocus()

    def _back_row(self, *buttons: QPushButton) -> QHBoxLayout:
        row = QHBoxLayout()
        back = QPushButton("← &Back")
        back.setAccessibleName("Back to the three choices")
        back.clicked.connect(lambda: self.stack.setCurrentIndex(CHOICE))
        row.addWidget(back)
        row.addStretch(1)
        for b in buttons:
            row.addWidget(b)
        return row

    def choose_sandbox(self) -> None:
        was_sandbox = bool(self.settings.get("hubspot.sandbox"))
        try:
            self.settings.set("hubspot.sandbox", True)
            self.settings.set(DONE, True)
            self.settings.save()
        except (OSError, settings_mod.SettingsError) as exc:
            self.choice_status.setText(_problem(exc))
            return
        self.choice = "sandbox"
        self.finished_choice.emit("sandbox")
        if was_sandbox:
            self.accept()
            return
        # The running app logs in the account until it restarts: say so, and let the user pick the moment.
        self.choice_status.setText("Sandbox mode is saved. Restart Call Relay to use it (uploads under way "
                                   "finish first, or resume on the next start).")
        self.choice_restart.show()
        self.choice_restart.setFocus()

    # -- my own account --------------------------------------------------------------------------------
    def _account_page(self) -> QWidget:
        page, col, grid = _titled_page("<b>Your own HubSpot account</b> — test each value as you enter it. Secrets go to the "
                       "system keyring only.")

        self.api_url = QLineEdit(str(self.settings.get("hubspot.api_url")))
        self.api_url.setAccessibleName("HubSpot API URL")
        self.api_url.setToolTip("https://api.hubapi.com for HubSpot itself.")
        api_label = QLabel("HubSpot &API URL")
        api_label.setBuddy(self.api_url)
        grid.addWidget(api_label, 0, 0)
        grid.addWidget(self.api_url, 0, 1, 1, 2)

        self.auth = QComboBox()
        self.auth.addItems(["Private-app token", "OAuth sign-in in the browser"])
        self.auth.setCurrentIndex(1 if self.settings.get("hubspot.auth") == "oauth" else 0)
        self.auth.setAccessibleName("Sign in with")
        auth_label = QLabel("Sign in &with")
        auth_label.setBuddy(self.auth)
        grid.addWidget(auth_label, 1, 0)
        grid.addWidget(self.auth, 1, 1, 1, 2)

        token = QLineEdit()
        token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token_edit, self.app_id_edit, self.key_edit = token, QLineEdit(), QLineEdit()
        self.token = Step(grid, 1, "1. &Token", token, "Private-app access token",
                          "HubSpot → Settings → Integrations → Private apps → your app → Access token.")
        oauth_box = QWidget()
        orow = QHBoxLayout(oauth_box)
        orow.setContentsMargins(0, 0, 0, 0)
        self.client_id_edit = QLineEdit(str(self.settings.get("hubspot.oauth_client_id")))
        self.client_id_edit.setPlaceholderText("client id")
        self.client_id_edit.setAccessibleName("OAuth client id")
        self.client_secret_edit = QLineEdit()
        self.client_secret_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.client_secret_edit.setPlaceholderText("client secret")
        self.client_secret_edit.setAccessibleName("OAuth client secret")
        orow.addWidget(self.client_id_edit, 1)
        orow.addWidget(self.client_secret_edit, 1)
        self.oauth = Step(grid, 1, "1. &Sign-in", oauth_box, "OAuth sign-in",
                          "Your HubSpot app's client id and secret (developer account → Apps → your app → Auth); "
                          "the browser opens on HubSpot's sign-in.")
        self.oauth.test.setText("Sign &in…")
        self.oauth.test.setAccessibleName("Sign in with HubSpot in the browser")
        app_id = self.app_id_edit
        app_id.setText(str(self.settings.get("hubspot.app_id")))
        self.app_id = Step(grid, 2, "2. App &id", app_id, "App id",
                           "Your HubSpot app's id (developer account → Apps).")
        key = self.key_edit
        key.setEchoMode(QLineEdit.EchoMode.Password)
        self.dev_key = Step(grid, 3, "3. &Developer key", key, "Developer API key",
                            "The developer account's API key (Apps → Get HubSpot API key): it registers the "
                            "recording URL.")
        tunnel = QWidget()
        trow = QHBoxLayout(tunnel)
        trow.setContentsMargins(0, 0, 0, 0)
        self.provider = QComboBox()
        self.provider.addItems(list(settings_mod.BY_NAME["tunnel.provider"].choices))
        self.provider.setCurrentText(str(self.settings.get("tunnel.provider")))
        self.provider.setAccessibleName("Tunnel provider")
        self.public_url = QLineEdit(str(self.settings.get("server.public_url")))
        self.public_url.setPlaceholderText("https://recordings.example.com")
        self.public_url.setAccessibleName("Public https address")
        trow.addWidget(self.provider)
        trow.addWidget(self.public_url, 1)
        self.tunnel = Step(grid, 4, "4. T&unnel", tunnel, "Tunnel",
                           "How HubSpot reaches this computer's recording server: your own https address "
                           "(manual), cloudflared, ngrok or ssh.")
        col.addLayout(grid)
        col.addStretch(1)
        self.account_status = WrapLabel("Test the token to save.")
        self.account_status.setAccessibleName("Set-up status")
        col.addWidget(self.account_status)
        self.save_button = QPushButton("&Save and use this account")
        self.save_button.setAccessibleName("Save and use this account")
        self.save_button.setEnabled(False)
        self.restart_button = QPushButton("&Restart now")
        self.restart_button.setAccessibleName("Restart Call Relay with this account")
        self.restart_button.hide()
        col.addLayout(self._back_row(self.save_button, self.restart_button))

        self.token.test.clicked.connect(lambda: self._run(self.token, "token", check_token, self.api_url.text(),
                                                          token.text()))
        self.oauth.test.clicked.connect(lambda: self._run(
            self.oauth, "sign-in", oauth_sign_in, self.api_url.text(), self.client_id_edit.text(),
            self.client_secret_edit.text(), int(self.settings.get("hubspot.oauth_redirect_port")),
            pool=tasks.long_pool()))
        self.auth.currentIndexChanged.connect(self._auth_changed)
        for edit in (self.client_id_edit, self.client_secret_edit):
            edit.textEdited.connect(lambda _t: self._changed(self.oauth, self.dev_key))
            edit.returnPressed.connect(self.oauth.test.click)
        self.app_id.test.clicked.connect(lambda: self._run(self.app_id, "app id", check_app_id, app_id.text()))
        self.dev_key.test.clicked.connect(lambda: self._run(self.dev_key, "developer key", check_developer_key,
                                                            self.api_url.text(), token.text(), app_id.text(),
                                                            key.text(), self._oauth_client()))
        self.tunnel.test.clicked.connect(lambda: self._run(self.tunnel, "tunnel", check_tunnel,
                                                           self.provider.currentText(), self.public_url.text(),
                                                           self.settings))
        for field, steps in ((self.api_url, (self.token, self.dev_key)), (token, (self.token, self.dev_key)),
                             (app_id, (self.app_id, self.dev_key)), (key, (self.dev_key,)),
                             (self.public_url, (self.tunnel,))):
            field.textEdited.connect(lambda _t, steps=steps: self._changed(*steps))
        self.provider.currentTextChanged.connect(self._provider_changed)
        for edit in (token, app_id, key, self.public_url):
            step = {token: self.token, app_id: self.app_id, key: self.dev_key, self.public_url: self.tunnel}[edit]
            edit.returnPressed.connect(step.test.click)
        self.save_button.clicked.connect(self.save_account)
        self.restart_button.clicked.connect(self.restartRequested.emit)
        self._provider_changed(self.provider.currentText())
        self._auth_changed()
        return page

    def _oauth_client(self) -> tuple[str, str] | None:
        if self.auth.currentIndex() != 1:
            return None
        return self.client_id_edit.text().strip(), self.client_secret_edit.text().strip()

    def _auth_changed(self, _index: int = 0) -> None:
        oauth = self.auth.currentIndex() == 1
        self.token.set_visible(not oauth)
        self.oauth.set_visible(oauth)
        self._changed(self.token, self.oauth, self.dev_key)

    @property
    def signed_in(self) -> bool:
        return self.oauth.ok if self.auth.currentIndex() == 1 else self.token.ok

    def _provider_changed(self, provider: str) -> None:
        self.public_url.setVisible(provider == "manual")
        self._changed(self.tunnel)

    def _changed(self, *steps: Step) -> None:
        for step in steps:
            step.reset()
        self._update_save()

    def _update_save(self) -> None:
        self.save_button.setEnabled(self.signed_in)
        if not self.signed_in:
            self.account_status.setText("Sign in to save." if self.auth.currentIndex() == 1 else
                                        "Test the token to save.")
            return
        left = [name for step, name in ((self.app_id, "app id"), (self.dev_key, "developer key"),
                                        (self.tunnel, "tunnel")) if not step.ok]
        self.account_status.setText("Every step passed: save to use this account." if not left else
                                    f"The sign-in works. Not yet checked: {', '.join(left)} (uploads need them).")

    def _run(self, step: Step, name: str, check: Callable[..., str], *args: Any, pool: Any = None) -> None:
        step.reset()
        step.result.setText("Waiting for the sign-in in your browser…" if name == "sign-in" else "Checking…")
        step.result.setStyleSheet("")

        def done(text: str) -> None:
            step.task = None
            step.show(True, text)
            self._update_save()
            self.stepChecked.emit(name, True)

        def failed(exc: BaseException) -> None:
            step.task = None
            step.show(False, _problem(exc))
            self._update_save()
            self.stepChecked.emit(name, False)

        step.task = tasks.run_task(check, *args, on_result=done, on_error=failed, owner=self,
                                   name=f"first-run-{name}", pool=pool)

    def save_account(self) -> None:
        try:
            account = _account(self.api_url.text(), self.token_edit.text(), self.app_id_edit.text(),
                               self.key_edit.text())
        except StepFailed as exc:
            self.account_status.setText(str(exc))
            return
        self.save_button.setEnabled(False)
        self.account_status.setText("Saving…")
        provider, public_url, oauth_client = self.provider.currentText(), self.public_url.text(), self._oauth_client()

        def saved(_r: object) -> None:
            self.choice = "account"
            self.account_status.setText("Saved: the token and keys are in the system keyring, the rest in the "
                                        "settings. Restart Call Relay to log calls in this account.")
            self.restart_button.show()
            self.restart_button.setFocus()
            self.finished_choice.emit("account")

        def failed(exc: BaseException) -> None:
            self.account_status.setText(_problem(exc))
            self.save_button.setEnabled(True)

        tasks.run_task(save_account, self.settings, account, provider, public_url, oauth_client, on_result=saved,
                       on_error=failed, owner=self, name="first-run-save")

    # -- join my team ----------------------------------------------------------------------------------
    def _team_page(self) -> QWidget:
        page, col, grid = _titled_page("<b>Join my team</b> — your admin makes an invite on the relay "
                       "(<code>callrelay relay invite NAME</code>) and gives you its address and code.")
        self.relay_url = QLineEdit(str(self.settings.get("team.relay_url")))
        self.relay_url.setPlaceholderText("https://relay.example.com")
        self.relay_url.setAccessibleName("Relay address")
        self.invite_code = QLineEdit()
        self.invite_code.setAccessibleName("Invite code")
        for row, (text, field) in enumerate((("Relay &address", self.relay_url), ("Invite &code", self.invite_code))):
            label = QLabel(text)
            label.setBuddy(field)
            grid.addWidget(label, row, 0)
            grid.addWidget(field, row, 1)
        col.addLayout(grid)
        self.team_status = WrapLabel()
        self.team_status.setAccessibleName("Joining status")
        col.addWidget(self.team_status)
        col.addStretch(1)
        self.join_button = QPushButton("&Join")
        self.join_button.setAccessibleName("Join the team")
        self.team_done = QPushButton("&Done")
        self.team_done.setAccessibleName("Done")
        self.team_done.hide()
        col.addLayout(self._back_row(self.join_button, self.team_done))
        self.join_button.clicked.connect(self.join_team)
        self.invite_code.returnPressed.connect(self.join_button.click)
        self.team_done.clicked.connect(self.accept)
        return page

    def join_team(self) -> None:
        from desktop_app.relay import client as relay_client

        url, code = self.relay_url.text(), self.invite_code.text()
        try:
            url = relay_client.check_relay_url(url)
        except ValueError as exc:
            self.team_status.setText(str(exc))
            return
        if not code.strip():
            self.team_status.setText("Write the invite code your admin gave you.")
            return
        self.join_button.setEnabled(False)
        self.team_status.setText(f"Joining {url}…")

        def joined(answer: dict[str, Any]) -> None:
            self.settings.set("team.relay_url", str(answer["url"]))  # join() wrote it to the file too
            self.settings.set(DONE, True)
            try:
                self.settings.save()
            except OSError as exc:
                log.warning("first run: saving settings after joining: %s", exc)
            who = f" as {answer['name']} ({answer.get('role') or 'agent'})" if answer.get("name") else ""
            self.choice = "team"
            self.team_status.setText(f"Joined the team at {answer['url']}{who}. {RELAY_JOINED}")
            self.invite_code.clear()
            self.join_button.hide()
            self.team_done.show()
            self.team_done.setFocus()
            self.finished_choice.emit("team")

        def failed(exc: BaseException) -> None:
            text = _problem(exc)
            self.team_status.setText(text if "nothing was saved" in text.lower() else text + " Nothing was saved.")
            self.join_button.setEnabled(True)

        tasks.run_task(relay_client.join, url, code, on_result=joined, on_error=failed, owner=self,
                       name="first-run-join")

    # -- closing ---------------------------------------------------------------------------------------
    def done(self, result: int) -> None:
        """However it closes, the choice was offered: it is not shown again on the next start."""
        if not self.settings.get(DONE):
            try:
                self.settings.set(DONE, True)
                self.settings.save()
            except OSError as exc:
                log.warning("first run: cannot remember the choice was shown: %s", exc)
        super().done(result)
