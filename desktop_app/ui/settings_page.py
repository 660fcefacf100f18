"""The Settings page, built from ``desktop_app.settings.DECLARED``.

Each declared setting becomes a widget of its type (bool: check box; choices: combo box; int and
float: spin boxes within the declared bounds; list: JSON text), with its description as the tooltip
and a line beneath. What an agent sets comes first (the HubSpot account, the tunnel, defaults for
calls); the rest sits in an Advanced section, folded away until asked for (or until one of its values
needs correcting), grouped by the declaration's section. The Tunnel group shows only the chosen
provider's fields, and "Test tunnel" runs the outside check (``tunnel.watchdog``) in a worker and
shows each step. Secrets are separate fields written to the keyring (never to the settings file);
the stored value is never shown back. Reading and writing the keyring (D-Bus) and testing the
connection or the tunnel run in workers.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app import keystore, phones
from desktop_app import settings as settings_mod
from desktop_app.ui import tasks

if TYPE_CHECKING:
    from desktop_app.hubspot.client import HubSpotClient
    from desktop_app.runtime import Runtime

HIDDEN_SECTIONS = ("Window",)
# Settings the app reads each time it uses them; any other change is taken up by a restart ("Restart now").
LIVE_SETTINGS = frozenset({"calls.agent"})
# What an agent sets, in this order; every other shown setting is in the Advanced section.
ACCOUNT = ("hubspot.sandbox", "hubspot.auth", "hubspot.app_id", "hubspot.oauth_client_id")
CALL_DEFAULTS = ("calls.agent", "calls.default_region", "calls.retention_days")
PROVIDER_FIELDS: dict[str, tuple[str, ...]] = {
    "ngrok": ("tunnel.ngrok_domain", keystore.NGROK_AUTHTOKEN),
    "cloudflared": ("tunnel.cloudflared_path", "tunnel.cloudflared_tunnel", "tunnel.cloudflared_hostname"),
    "ssh": ("tunnel.ssh_host", "tunnel.ssh_port", "tunnel.ssh_user", "tunnel.ssh_key", "tunnel.ssh_remote_port",
            "tunnel.ssh_public_url"),
    "manual": ("server.public_url",),
}
TUNNEL = ("tunnel.provider", *(n for names in PROVIDER_FIELDS.values() for n in names))
AGENT_GROUPS = (("HubSpot account", ACCOUNT), ("Tunnel", TUNNEL), ("Defaults for calls", CALL_DEFAULTS))
# The outside check's steps (``ReachabilityCheck.run``), in order, as "Test tunnel" shows them.
TUNNEL_STEPS = (
    ("healthz", "Health check: {base}/healthz answers"),
    ("range", "Seeking: a Range request for the probe recording gets 206 with one byte (HubSpot seeks)"),
    ("browser", "Playback: a browser fetching the probe recording gets audio, not an HTML page"),
)
SECRETS = (
    (keystore.HUBSPOT_ACCESS_TOKEN, "Private-app token", "HubSpot"),
    (keystore.HUBSPOT_CLIENT_SECRET, "App client secret", "HubSpot"),
    (keystore.HUBSPOT_DEVELOPER_API_KEY, "Developer API key", "HubSpot"),
    (keystore.NGROK_AUTHTOKEN, "ngrok authtoken", "Tunnel"),
)


def connection_report(client: HubSpotClient) -> list[str]:
    """What "Test connection" shows: the portal, then each capability the app needs and whether it works."""
    from desktop_app.hubspot.errors import HubSpotError

    lines: list[str] = []
    try:
        acct = client.account_details()
        lines.append(f"✓ Connected to portal {acct.portal_id} ({acct.account_type}, {acct.time_zone})")
    except HubSpotError as exc:
        return [f"✗ {exc.agent_message}"]
    checks = (
        ("Read owners", "crm.objects.owners.read", lambda: client.owners()),
        ("Search contacts", "crm.objects.contacts.read", lambda: client.search_contacts_by_name("zz-callrelay-test")),
        ("Read call outcomes", "crm.objects.contacts.read", lambda: client.call_dispositions()),
    )
    for label, scope, check in checks:
        try:
            check()
            lines.append(f"✓ {label} ({scope})")
        except HubSpotError as exc:
            missing = list(exc.missing_scopes)
            lines.append(f"✗ {label}: missing {', '.join(missing) or scope}" if exc.status == 403
                         else f"✗ {label}: {exc.agent_message}")
    return lines


def tunnel_report(base: str, result: Any) -> list[str]:
    """What "Test tunnel" shows for a ``watchdog.CheckResult`` on ``base``: the public URL, each step
    of the outside check (passed ✓, failed ✗ with the reason, or not run –), then the outcome."""
    order = [step for step, _label in TUNNEL_STEPS]
    failed = None if result.ok else (result.step if result.step in order else order[0])
    lines = [f"✓ Public URL: {base}"]
    for step, label in TUNNEL_STEPS:
        text = label.format(base=base)
        if failed is None or order.index(step) < order.index(failed):
            lines.append(f"✓ {text}")
        elif step == failed:
            lines.append(f"✗ {text}: {result.message}")
        else:
            lines.append(f"– {text}: not run")
    if failed is None:
        lines.append(f"✓ HubSpot can fetch recordings through {base}.")
    else:
        lines.append("✗ HubSpot cannot fetch recordings through this tunnel yet: fix the step marked ✗ "
                     "(see the tunnel settings above), save, and test again.")
    return lines


def tunnel_test(runtime: Runtime | None) -> list[str]:
    """Run the tunnel's outside check now (in a worker: it goes out to the network and back)."""
    from desktop_app.tunnel.probe import probe_link_factory
    from desktop_app.tunnel.watchdog import ReachabilityCheck

    server = runtime.server if runtime is not None else None
    if runtime is None or server is None:
        return ["✗ The recording server is not running, so there is nothing to reach from outside: save the "
                "settings and click Restart now, then test again."]
    tunnel = runtime.tunnel
    base = (tunnel.public_url if tunnel is not None else None) or server.public_url
    if not base:
        why = runtime.tunnel_problem or (
            f"the tunnel is {tunnel.state}" if tunnel is not None else "no tunnel runs and no public URL is set")
        return [f"✗ Public URL: none ({why.rstrip('.')}). Choose a provider and fill in its fields (or the "
                "public URL for manual), save, click Restart now, and test again."]
    result = tunnel.check_now() if tunnel is not None else None
    if result is None:  # no tunnel (a public URL stated in the settings), or one without its own check
        result = ReachabilityCheck(probe_link_factory(runtime.store, server)).run(base)
    return tunnel_report(base, result)


def _read_secrets() -> dict[str, bool]:
    return {name: bool(keystore.get(name)) for name, _l, _s in SECRETS}


def _write_secrets(values: dict[str, str]) -> None:
    for name, value in values.items():
        keystore.set(name, value)


class SettingsPage(QWidget):
    saved = Signal()
    tested = Signal(list)
    tunnelTested = Signal(list)  # the lines "Test tunnel" shows, one per step
    secretsLoaded = Signal()
    restartRequested = Signal()  # "Restart now": the app (ui/app.py) stops and starts again with the new settings

    def __init__(self, settings: settings_mod.Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.runtime: Runtime | None = None
        self.widgets: dict[str, QWidget] = {}
        self.secret_fields: dict[str, QLineEdit] = {}
        self.errors: dict[str, QLabel] = {}
        self.secrets_stored: dict[str, bool] | None = None  # None until the keyring was read
        self.secrets_problem = ""

        inner = QWidget()
        col = QVBoxLayout(inner)
        self.rows: dict[str, tuple[QFormLayout, int]] = {}  # where each setting's (or secret's) row is
        placed: dict[str, QFormLayout] = {}
        for title, names in AGENT_GROUPS:
            box = QGroupBox(title)
            form = QFormLayout(box)
            col.addWidget(box)
            for name in names:
                placed[name] = form
        self.advanced_button = QToolButton()
        self.advanced_button.setText("Advanced settings")
        self.advanced_button.setCheckable(True)
        self.advanced_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_button.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced_button.setToolTip("The recording server, HubSpot's API limits, file-name patterns and team "
                                        "settings: usually left as they are.")
        col.addWidget(self.advanced_button)
        self.advanced = QWidget()
        adv_col = QVBoxLayout(self.advanced)
        adv_col.setContentsMargins(0, 0, 0, 0)
        col.addWidget(self.advanced)
        self.advanced.hide()
        sections: dict[str, QFormLayout] = {}
        for decl in settings_mod.DECLARED:
            if decl.section in HIDDEN_SECTIONS:
                continue
            if decl.name not in placed and decl.section not in sections:
                box = QGroupBox(decl.section)
                sections[decl.section] = QFormLayout(box)
                adv_col.addWidget(box)
        agent_first = [settings_mod.BY_NAME[n] for _t, names in AGENT_GROUPS for n in names if n in settings_mod.BY_NAME]
        for decl in agent_first + [d for d in settings_mod.DECLARED if d.name not in placed]:
            if decl.section in HIDDEN_SECTIONS:
                continue
            form = placed.get(decl.name) or sections[decl.section]
            widget = self._widget_for(decl)
            widget.setToolTip(decl.description)
            widget.setAccessibleName(decl.name)
            widget.setAccessibleDescription(decl.description)
            self.widgets[decl.name] = widget
            help_text = QLabel(decl.description)
            help_text.setWordWrap(True)
            help_text.setStyleSheet("color: palette(placeholder-text); font-size: small;")
            error = QLabel("")
            error.setStyleSheet("color: #c0392b;")
            error.hide()
            self.errors[decl.name] = error
            cell = QVBoxLayout()
            cell.setSpacing(1)
            cell.addWidget(widget)
            cell.addWidget(help_text)
            cell.addWidget(error)
            form.addRow(setting_label(decl.name), cell)
            self.rows[decl.name] = (form, form.rowCount() - 1)
        for name, label, _section in SECRETS:
            field = QLineEdit()
            field.setEchoMode(QLineEdit.EchoMode.Password)
            field.setPlaceholderText("checking the keyring…")
            field.setAccessibleName(label)
            field.setToolTip("Kept in the system keyring, never in a file. Leave empty to keep what is stored.")
            self.secret_fields[name] = field
            form = placed.get(name) or placed["hubspot.sandbox"]
            form.addRow(label, field)
            self.rows[name] = (form, form.rowCount() - 1)
        account, tunnel_form = placed["hubspot.sandbox"], placed["tunnel.provider"]

        self.test_button = QPushButton("&Test connection")
        self.signin_button = QPushButton("Sign in with HubSpot (OAuth)…")
        self.test_result = QLabel("")
        self.test_result.setWordWrap(True)
        self.test_result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row = QHBoxLayout()
        row.addWidget(self.test_button)
        row.addWidget(self.signin_button)
        row.addStretch(1)
        account.addRow(row)
        account.addRow(self.test_result)
        self.tunnel_state = QLabel("Tunnel: not started")
        self.tunnel_state.setWordWrap(True)
        tunnel_form.addRow("State", self.tunnel_state)
        self.test_tunnel_button = QPushButton("Test t&unnel")
        self.test_tunnel_button.setToolTip("Fetch the server's health and a probe recording through the public URL, "
                                           "as HubSpot and a browser would, and show each step.")
        self.tunnel_test_result = QLabel("")
        self.tunnel_test_result.setWordWrap(True)
        self.tunnel_test_result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.tunnel_test_result.setAccessibleName("Tunnel test steps")
        trow = QHBoxLayout()
        trow.addWidget(self.test_tunnel_button)
        trow.addStretch(1)
        tunnel_form.addRow(trow)
        tunnel_form.addRow(self.tunnel_test_result)
        col.addStretch(1)

        self.inner = inner
        self.scroll_area = scroll = QScrollArea()
        scroll.setAccessibleName("Settings")  # a Tab stop: a screen reader names it
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)
        self.save_button = QPushButton("&Save")
        self.revert_button = QPushButton("Re&vert")
        self.restart_button = QPushButton("&Restart now")
        self.restart_button.setToolTip("Stop Call Relay and start it again with the saved settings.")
        self.restart_button.hide()
        self.status = QLabel("")
        self.status.setWordWrap(True)
        bottom = QHBoxLayout()
        bottom.addWidget(self.status, 1)
        bottom.addWidget(self.restart_button)
        bottom.addWidget(self.revert_button)
        bottom.addWidget(self.save_button)
        outer = QVBoxLayout(self)
        outer.addWidget(scroll, 1)
        outer.addLayout(bottom)

        self.save_button.clicked.connect(self.save)
        self.revert_button.clicked.connect(self.load)
        self.test_button.clicked.connect(self.test_connection)
        self.signin_button.clicked.connect(self.sign_in)
        self.restart_button.clicked.connect(self.restartRequested.emit)
        self.test_tunnel_button.clicked.connect(self.test_tunnel)
        self.advanced_button.toggled.connect(self._show_advanced)
        provider = self.widgets["tunnel.provider"]
        assert isinstance(provider, QComboBox)
        provider.currentTextChanged.connect(lambda _t: self._show_provider_fields())
        self._loading = False
        for widget in self.widgets.values():
            _changed_signal(widget).connect(lambda *_a: self._show_unsaved())
        for field in self.secret_fields.values():
            field.textChanged.connect(lambda _t: self._show_unsaved())
        self.load()

    # -- widgets ---------------------------------------------------------------------------------
    @staticmethod
    def _widget_for(decl: settings_mod.Setting) -> QWidget:
        if decl.type is bool:
            return QCheckBox()
        if decl.choices:
            combo = QComboBox()
            combo.addItems(list(decl.choices))
            return combo
        if decl.type is int:
            spin = QSpinBox()
            spin.setRange(int(decl.minimum if decl.minimum is not None else -2**31),
                          int(min(decl.maximum if decl.maximum is not None else 2**31 - 1, 2**31 - 1)))
            return spin
        if decl.type is float:
            dspin = QDoubleSpinBox()
            dspin.setDecimals(1)
            dspin.setRange(decl.minimum if decl.minimum is not None else -1e9,
                           decl.maximum if decl.maximum is not None else 1e9)
            return dspin
        if decl.type is list:
            text = QPlainTextEdit()
            text.setTabChangesFocus(True)
            text.setFixedHeight(60)
            return text
        return QLineEdit()

    def _set(self, name: str, value: Any) -> None:
        w = self.widgets[name]
        if isinstance(w, QCheckBox):
            w.setChecked(bool(value))
        elif isinstance(w, QComboBox):
            w.setCurrentText(str(value))
        elif isinstance(w, (QSpinBox, QDoubleSpinBox)):
            w.setValue(value)
        elif isinstance(w, QPlainTextEdit):
            w.setPlainText(json.dumps(value, indent=1) if value else "")
        elif isinstance(w, QLineEdit):
            w.setText(str(value))

    def _get(self, name: str) -> Any:
        w = self.widgets[name]
        if isinstance(w, QCheckBox):
            return w.isChecked()
        if isinstance(w, QComboBox):
            return w.currentText()
        if isinstance(w, (QSpinBox, QDoubleSpinBox)):
            return w.value()
        if isinstance(w, QPlainTextEdit):
            text = w.toPlainText().strip()
            return json.loads(text) if text else []
        assert isinstance(w, QLineEdit)
        return w.text().strip()

    def load(self) -> None:
        self._loading = True
        try:
            for name in self.widgets:
                self._set(name, self.settings.get(name))
                self.errors[name].hide()
            for field in self.secret_fields.values():
                field.clear()
        finally:
            self._loading = False
        self._show_provider_fields()
        tasks.run_task(_read_secrets, owner=self, name="read-secrets", on_result=self._secrets_read,
                       on_error=lambda e: self._secrets_read({}, str(e)))
        self.status.setText("")
        self.status.setStyleSheet("")

    def _secrets_read(self, stored: dict[str, bool], problem: str = "") -> None:
        self.secrets_stored, self.secrets_problem = stored, problem
        for name, field in self.secret_fields.items():
            field.setPlaceholderText(problem or ("•••••• stored in the keyring" if stored.get(name) else "not set"))
        self.secretsLoaded.emit()

    # -- unsaved changes -------------------------------------------------------------------------
    def unsaved(self) -> list[str]:
        """The settings (and secrets) changed on the page and not saved yet."""
        out = []
        for name in self.widgets:
            try:
                changed = self._get(name) != self.settings.get(name)
            except (ValueError, TypeError):  # half-typed JSON of a list: a change
                changed = True
            if changed:
                out.append(name)
        return out + [name for name, field in self.secret_fields.items() if field.text()]

    def _show_unsaved(self) -> None:
        if self._loading:
            return
        labels = {name: label for name, label, _s in SECRETS}
        names = [labels.get(n) or setting_label(n) for n in self.unsaved()]
        if names:
            self.status.setText("● Unsaved changes: " + ", ".join(names) + ". Save or Revert.")
            self.status.setStyleSheet("color: #b9770e; font-weight: bold;")
        elif self.status.text().startswith("●"):
            self.status.setText("")
        if not names:
            self.status.setStyleSheet("")

    # -- what is shown ---------------------------------------------------------------------------
    def _show_advanced(self, shown: bool) -> None:
        self.advanced.setVisible(shown)
        self.advanced_button.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)

    def _show_provider_fields(self) -> None:
        """Only the chosen tunnel provider's fields; a public URL stated for another provider stays in sight,
        since it wins over the tunnel."""
        chosen = self._get("tunnel.provider")
        for provider, names in PROVIDER_FIELDS.items():
            for name in names:
                shown = provider == chosen
                if name == "server.public_url" and not shown:
                    shown = bool(self.settings.get(name) or self._get(name))
                form, row = self.rows[name]
                form.setRowVisible(row, shown)

    def show_account(self) -> None:
        """Bring the HubSpot account settings into sight ("Use a real account…"): the sandbox switch at
        the top of the view with the token and the sign-in below it, and the switch focused."""
        box = self.widgets["hubspot.sandbox"]
        layout = self.inner.layout()
        if layout is not None:
            layout.activate()
        top = box.mapTo(self.inner, box.rect().topLeft()).y()
        self.scroll_area.verticalScrollBar().setValue(max(0, top - 24))
        box.setFocus(Qt.FocusReason.OtherFocusReason)

    # -- saving ----------------------------------------------------------------------------------
    def values(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The values as entered, each checked against its declaration; errors shown where they are."""
        good: dict[str, Any] = {}
        bad: dict[str, str] = {}
        for name in self.widgets:
            try:
                good[name] = settings_mod.validate(name, self._get(name))
            except (settings_mod.SettingsError, ValueError) as exc:
                bad[name] = str(exc)
        region = str(good.get("calls.default_region", "US"))
        if "calls.default_region" in good and not phones.known_region(region):
            bad["calls.default_region"] = f"{region!r} is not a region phonenumbers knows (two letters, e.g. US)."
        for name, label in self.errors.items():
            label.setText(bad.get(name, ""))
            label.setVisible(name in bad)
        if any(self.advanced.isAncestorOf(self.widgets[name]) for name in bad):
            self.advanced_button.setChecked(True)  # a value to correct is never folded away
        return good, bad

    def save(self) -> bool:
        good, bad = self.values()
        if bad:
            self.status.setText(f"✗ {len(bad)} setting(s) need correcting (marked in red).")
            return False
        changed = [name for name, value in good.items() if value != self.settings.get(name)]
        secrets = {name: f.text() for name, f in self.secret_fields.items() if f.text()}
        restart = bool(secrets) or any(name not in LIVE_SETTINGS for name in changed)
        self.settings.update(good)
        self.settings.save()
        if secrets:
            tasks.run_task(_write_secrets, secrets, owner=self, name="write-secrets",
                           on_result=lambda _r: self._secrets_saved(restart),
                           on_error=lambda e: self.status.setText(f"✗ The keyring could not be written: {e}"))
        else:
            self._secrets_saved(restart)
        return True

    def _secrets_saved(self, restart: bool = False) -> None:
        self._loading = True
        try:
            for f in self.secret_fields.values():
                f.clear()
        finally:
            self._loading = False
        self.status.setStyleSheet("")
        if restart or self.restart_button.isVisibleTo(self):
            self.restart_button.show()
            self.status.setText("✓ Saved. The server, tunnel and HubSpot account take the new settings when "
                                "Call Relay restarts: click Restart now (or they apply on the next start).")
        else:
            self.status.setText("✓ Saved.")
        tasks.run_task(_read_secrets, owner=self, name="read-secrets", on_result=self._secrets_read,
                       on_error=lambda e: self._secrets_read({}, str(e)))
        self.saved.emit()

    # -- connection ------------------------------------------------------------------------------
    def set_runtime(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def test_connection(self) -> tasks.Task:
        self.test_result.setText("Testing…")
        runtime = self.runtime

        def test() -> list[str]:
            if runtime is not None and runtime.client is not None:
                return connection_report(runtime.client)
            from desktop_app.hubspot.client import HubSpotClient
            from desktop_app.hubspot.config import load_config

            with HubSpotClient(load_config(self.settings)) as client:
                return connection_report(client)

        return tasks.run_task(test, owner=self, name="test-connection", on_result=self._tested,
                              on_error=lambda e: self._tested([f"✗ {e}"]))

    def _tested(self, lines: list[str]) -> None:
        self.test_result.setText("\n".join(lines))
        self.tested.emit(lines)

    def test_tunnel(self) -> tasks.Task:
        """"Test tunnel": the outside check through the running tunnel's public URL, each step shown."""
        self.test_tunnel_button.setEnabled(False)
        changed = [n for n in self.unsaved() if n in TUNNEL]
        self.tunnel_test_result.setText("Testing the tunnel from the outside…")
        note = (["Tested the running tunnel: your unsaved tunnel changes apply after Save and Restart now."]
                if changed else [])
        return tasks.run_task(tunnel_test, self.runtime, owner=self, name="test-tunnel", pool=tasks.long_pool(),
                              on_result=lambda lines: self._tunnel_tested(note + list(lines)),
                              on_error=lambda e: self._tunnel_tested([f"✗ The tunnel could not be tested: {e}"]))

    def _tunnel_tested(self, lines: list[str]) -> None:
        self.test_tunnel_button.setEnabled(True)
        self.tunnel_test_result.setText("\n".join(lines))
        self.tunnelTested.emit(lines)

    def sign_in(self) -> None:
        from desktop_app.hubspot.config import load_config
        from desktop_app.hubspot.oauth import sign_in

        if not self.save():
            return
        self.test_result.setText("Waiting for the sign-in in your browser…")
        tasks.run_task(lambda: sign_in(load_config(self.settings)), owner=self, name="oauth-sign-in", pool=tasks.long_pool(),
                       on_result=lambda t: self._signed_in(),
                       on_error=lambda e: self.test_result.setText(f"✗ {getattr(e, 'agent_message', e)}"))

    def _signed_in(self) -> None:
        self.test_result.setText("✓ Signed in to HubSpot. Restart to use it.")
        self.restart_button.show()

    def show_tunnel(self, state: str, message: str, url: str | None = None, last_check: Any = None) -> None:
        """The tunnel's live state: its public URL and the last reachability check."""
        lines = [f"{state}: {message}" if message else state]
        if url:
            lines.append(f"Public URL: {url}")
        if last_check is not None:
            mark = "✓" if getattr(last_check, "ok", False) else "✗"
            lines.append(f"Last check: {mark} {getattr(last_check, 'message', '')}")
        self.tunnel_state.setText("\n".join(lines))


_WORDS = {"url": "URL", "api": "API", "id": "ID", "ssh": "SSH", "oauth": "OAuth", "ttl": "TTL", "pbx": "PBX",
          "10s": "10 s", "s": "(s)", "ngrok": "ngrok"}


def setting_label(name: str) -> str:
    """``server.link_ttl_s`` → "Link TTL (s)": the declared name, readable."""
    words = [_WORDS.get(w, w) for w in name.split(".", 1)[-1].split("_")]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def _changed_signal(widget: QWidget) -> Any:
    """The signal a settings widget sends when the user changes its value."""
    if isinstance(widget, QCheckBox):
        return widget.toggled
    if isinstance(widget, QComboBox):
        return widget.currentTextChanged
    if isinstance(widget, (QSpinBox, QDoubleSpinBox)):
        return widget.valueChanged
    if isinstance(widget, QPlainTextEdit):
        return widget.textChanged
    assert isinstance(widget, QLineEdit)
    return widget.textChanged

