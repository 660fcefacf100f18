"""``callrelay hubspot test`` and ``callrelay hubspot connect``.

``test`` reads the account as every command does (the ``HUBSPOT_*`` variables when set, else the
settings and the keyring), makes one request per capability an upload needs and prints one line each
(``ok`` or ``FAIL`` with the agent's sentence), then the scopes HubSpot named as missing. It fails
whatever would make an upload fail: the sign-in, the scopes (logging a call is checked with an empty
batch, which creates nothing), the external account id calls are logged under, the recording URL
setting, and the recording server HubSpot fetches from. Exit code 0 when everything works, 1 otherwise.

``connect`` saves an account into the settings and the keyring, as Settings does: it asks for each
value (secrets without echo), or reads from standard input the ``HUBSPOT_*=value`` lines that
``callrelay sandbox`` prints (with or without ``export``). Secrets are never taken as arguments.
"""

from __future__ import annotations

import argparse
import getpass
import os
import shlex
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from desktop_app.hubspot import config as cfg
from desktop_app.hubspot.errors import HubSpotError

KEYRING_UNAVAILABLE = (
    "The system keyring is unavailable (no Secret Service answers on this session, or it stays locked), and "
    "Call Relay keeps HubSpot's token and keys only there: install and start one (on Linux gnome-keyring, "
    "KeePassXC with its Secret Service integration, or KWallet) and run this again, or set the HUBSPOT_* "
    "variables in this shell instead.")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("hubspot", help="connect to HubSpot and check the connection",
                              description="Commands about the HubSpot account.")
    sub = p.add_subparsers(dest="hubspot_command", metavar="SUBCOMMAND", required=True)
    t = sub.add_parser("test", help="check everything an upload needs (writes nothing)",
                       description="Check the sign-in, the scopes, the external account id, the recording URL "
                                   "and the recording server: one line each, ok or FAIL with the reason. Exit 0 "
                                   "when an upload would work. Writes nothing to HubSpot.")
    t.set_defaults(func=run_test)
    c = sub.add_parser(
        "connect", help="save a HubSpot account into the settings and the keyring",
        description="Save the HubSpot account every command uses: the API URL and app id into the settings, "
                    "the private-app token, developer API key and client secret into the system keyring. "
                    "In a terminal it asks for each value (secrets are not shown). Otherwise it reads "
                    "HUBSPOT_NAME=value lines (with or without `export `) from standard input, as "
                    "`callrelay sandbox` prints them: `callrelay hubspot connect < sandbox.env`. Secrets are "
                    "never taken as arguments. The sign-in is checked with HubSpot before anything is saved.")
    c.add_argument("--no-check", action="store_true",
                   help="save without asking HubSpot first whether it accepts the sign-in")
    c.set_defaults(func=run_connect)


# -- hubspot test ------------------------------------------------------------------------------------
class CheckFailed(Exception):
    """A check that failed without a HubSpot error (the message says what to do)."""


def _env_in_use(env: Mapping[str, str]) -> bool:
    return any(env.get(name) for name in cfg.ENV_NAMES)


def run_test(args: argparse.Namespace) -> int:
    from desktop_app import keystore
    from desktop_app import settings as settings_mod

    try:
        conf = settings_mod.load()
        config = cfg.load_config(conf)
    except settings_mod.SettingsError as exc:
        print(f"callrelay hubspot test: {exc}", file=sys.stderr)
        return 1
    except keystore.KeyringUnavailable:
        print(f"callrelay hubspot test: {KEYRING_UNAVAILABLE}", file=sys.stderr)
        return 1
    from_env = _env_in_use(os.environ)
    kind = "sandbox" if config.is_sandbox else "HubSpot"
    source = "the HUBSPOT_* variables" if from_env else "the settings and the keyring"
    print(f"HubSpot: {config.base_url} ({kind}, {config.auth} sign-in, from {source})")
    failures = 0
    if not from_env and conf.get("hubspot.sandbox"):
        failures += 1
        print("FAIL  mode: sandbox mode is on (hubspot.sandbox): the app and `callrelay upload` log calls in the "
              "built-in emulator, not in this account; run `callrelay hubspot connect` or untick Sandbox in "
              "Settings.")
    if not (config.access_token or config.refresh_token):
        print("FAIL  sign-in: no HubSpot token is saved: run `callrelay hubspot connect`, or paste a private-app "
              "token (or sign in) in Settings.")
        print(f"{failures + 1} check(s) failed")
        return 1
    failed, missing = _run_checks(config)
    failures += failed
    if missing:
        print(f"missing scopes: {', '.join(missing)}")
    print("all checks passed" if not failures else f"{failures} check(s) failed")
    return 0 if not failures else 1


def _run_checks(config: cfg.HubSpotConfig) -> tuple[int, list[str]]:
    """Run every check against ``config``; (how many failed, the scopes HubSpot named as missing)."""
    from desktop_app.hubspot.client import HubSpotClient

    missing: list[str] = []
    failures = 0
    registered: list[str] = []  # the recording URL HubSpot has, once read
    with HubSpotClient(config) as client:
        def account() -> str:
            a = client.account_details()
            return f"portal {a.portal_id} ({a.account_type}, {a.time_zone})"

        def log_calls() -> str:
            client.check_may_log_calls()
            return "allowed (checked with an empty batch: nothing was created)"

        def external_account() -> str:
            value = client.external_account_id()
            where = "hubspot.external_account_id" if config.external_account_id else "the portal id"
            return f"calls are logged under {value} ({where})"

        def recording() -> str:
            if not config.app_id:
                raise CheckFailed("no app id is set (hubspot.app_id): the recording URL cannot be registered; "
                                  "run `callrelay hubspot connect` or set it in Settings")
            try:
                setting = client.get_recording_settings()
            except HubSpotError as exc:
                if exc.status == 401 and config.developer_api_key:
                    raise CheckFailed("HubSpot did not accept the developer API key (it registers the recording "
                                      "URL): copy it again from your HubSpot developer account") from None
                if exc.status in (401, 403) and not config.developer_api_key:
                    exc.agent_message += (" Or save the app's developer API key (`callrelay hubspot connect`): "
                                          "it registers the recording URL.")
                raise
            if setting is None:
                return "not registered yet (the first upload registers it)"
            registered.append(setting.url_to_retrieve_authed_recording)
            return setting.url_to_retrieve_authed_recording

        checks: list[tuple[str, Callable[[], str]]] = [
            ("account", account),
            ("owners", lambda: f"{len(client.owners())} owner(s)"),
            ("contacts", lambda: f"search works ({len(client.search_contacts_by_email('check@callrelay.invalid'))})"),
            ("calls", lambda: f"search works ({len(client.find_calls_by_external_id('callrelay-check'))})"),
            ("log calls", log_calls),
            ("dispositions", lambda: f"{len(client.call_dispositions())} call outcome(s)"),
            ("external account id", external_account),
            ("recording URL", recording),
            ("recording server", lambda: _recording_server(config, registered)),
        ]
        for name, check in checks:
            try:
                print(f"ok    {name}: {check()}")
            except HubSpotError as exc:
                failures += 1
                missing += [s for s in exc.missing_scopes if s not in missing]
                print(f"FAIL  {name}: {exc.agent_message}")
                if name == "account" or exc.policy_name == "DAILY" or exc.status == 401:
                    return failures, missing  # nothing else can work now
            except (CheckFailed, ValueError) as exc:
                failures += 1
                print(f"FAIL  {name}: {exc}")
        try:  # optional (transcribe.when): said, never counted as a failure
            client.check_may_post_transcripts()
            print("ok    transcripts: can be posted (checked with a transcript of no call: nothing was created)")
        except HubSpotError as exc:
            print(f"WARN  transcripts: {exc.agent_message}")
    return failures, missing


def _recording_server(config: cfg.HubSpotConfig, registered: list[str]) -> str:
    """The data directory's running recording server, and whether HubSpot can be pointed at it."""
    from desktop_app.hubspot.endpoints import validate_recording_url
    from desktop_app.sync.serverlink import NoServer, ServerLink

    try:
        link = ServerLink.discover()
    except NoServer as exc:
        raise CheckFailed(f"{exc} (Uploads need it: HubSpot fetches the recording from it.)") from None
    template = link.recording_endpoint_template()
    if not config.allows_http() and cfg.is_loopback_url(template):
        raise CheckFailed(f"its public URL {template} is on this computer only, where HubSpot cannot reach it: "
                          "start it with a tunnel (`callrelay serve --tunnel …`) or an https --public-url")
    validate_recording_url(template, allow_http=config.allows_http())  # what registering it refuses (ValueError)
    if registered and registered[0] != template:
        from desktop_app.hubspot.recording_url import RecordingUrlTaken, settings_guard

        try:
            settings_guard(False).check(registered[0], template, str(config.app_id))
        except RecordingUrlTaken as exc:
            raise CheckFailed(str(exc)) from None
        return f"{template} (the next upload registers it in place of {registered[0]}, this desk's earlier URL)"
    return f"{template}{' (registered)' if registered else ''}"


# -- hubspot connect ---------------------------------------------------------------------------------
class BadInput(ValueError):
    """Standard input that is not the account's ``HUBSPOT_*=value`` lines (the message names the line)."""


@dataclass(frozen=True)
class Account:
    api_url: str
    app_id: str
    access_token: str
    developer_api_key: str
    client_secret: str
    portal_id: str = ""


def parse_env_lines(text: str) -> dict[str, str]:
    """``HUBSPOT_NAME=value`` lines (shell-quoted, optionally after ``export``), as ``callrelay sandbox``
    prints them. Blank lines and ``#`` comments are skipped; anything else is refused by line number, never
    quoting the value (it may be a secret)."""
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            raise BadInput(f"line {number} is not a NAME=value line (unbalanced quotes)") from None
        if words[:1] == ["export"]:
            words = words[1:]
        if not words:
            continue
        name, sep, value = words[0].partition("=")
        if len(words) != 1 or not sep:
            raise BadInput(f"line {number} is not a NAME=value line")
        if name not in cfg.ENV_NAMES:
            raise BadInput(f"line {number} sets {name[:40]!r}, which is not one of {', '.join(cfg.ENV_NAMES)}")
        values[name] = value.strip()
    return values


def account_from_env_lines(values: Mapping[str, str]) -> Account:
    if not values:
        raise BadInput("no HUBSPOT_* lines on standard input: pipe in the lines `callrelay sandbox` prints, or "
                       "run this in a terminal to be asked for each value")
    if not values.get(cfg.ENV_ACCESS_TOKEN):
        raise BadInput(f"{cfg.ENV_ACCESS_TOKEN} is missing: Call Relay signs in to the account with it")
    return Account(api_url=check_api_url(values.get(cfg.ENV_URL) or cfg.HUBSPOT_API),
                   app_id=check_app_id(values.get(cfg.ENV_APP_ID, "")), access_token=values[cfg.ENV_ACCESS_TOKEN],
                   developer_api_key=values.get(cfg.ENV_DEVELOPER_API_KEY, ""),
                   client_secret=values.get(cfg.ENV_CLIENT_SECRET, ""), portal_id=values.get(cfg.ENV_PORTAL_ID, ""))


def check_api_url(url: str) -> str:
    """The API base URL, or BadInput: https, or plain http to this computer (a sandbox)."""
    import urllib.parse

    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise BadInput("the HubSpot API URL must look like https://api.hubapi.com")
    if parts.scheme == "http" and not cfg.is_loopback_url(url):
        raise BadInput("the HubSpot API URL must be https:// (plain http only to this computer, for a sandbox)")
    return url.strip().rstrip("/")


def check_app_id(app_id: str) -> str:
    from desktop_app.hubspot import endpoints

    if not app_id:
        return ""
    try:
        return endpoints._app_id(app_id)
    except ValueError as exc:
        raise BadInput(str(exc)) from None


class Prompter:
    """Asks for each value in the terminal; secrets through getpass (not echoed)."""

    def __init__(self, out: TextIO, read_line: Callable[[], str], read_secret: Callable[[str], str]) -> None:
        self.out = out
        self.read_line = read_line
        self.read_secret = read_secret

    def ask(self, label: str, default: str, check: Callable[[str], str]) -> str:
        while True:
            shown = f" [{default}]" if default else ""
            self.out.write(f"{label}{shown}: ")
            self.out.flush()
            line = self.read_line()
            if not line:
                raise EOFError
            try:
                return check(line.strip() or default)
            except BadInput as exc:
                self.out.write(f"  {exc}\n")

    def ask_secret(self, label: str, saved: str, *, required: bool) -> str:
        hint = " (Enter keeps the saved one, - removes it)" if saved else ("" if required else " (Enter: none)")
        while True:
            value = self.read_secret(f"{label}{hint}: ").strip()
            if value == "-" and saved and not required:
                return ""
            value = value or saved
            if value or not required:
                return value
            self.out.write("  it is needed: paste it (it is not shown)\n")


def ask_account(current: Account, prompter: Prompter) -> Account:
    out = prompter.out
    out.write("Connect Call Relay to your HubSpot account. Secrets are not shown as you type; they are kept in "
              "the system keyring only.\n")
    url = prompter.ask("HubSpot API URL", current.api_url or cfg.HUBSPOT_API, check_api_url)
    token = prompter.ask_secret("Private-app access token", current.access_token, required=True)
    app_id = prompter.ask("Your HubSpot app's id (registers the recording URL)", current.app_id, check_app_id)
    dev_key = prompter.ask_secret("The app's developer API key", current.developer_api_key, required=False)
    secret = prompter.ask_secret("The app's client secret, to check HubSpot's request signatures",
                                 current.client_secret, required=False)
    return Account(api_url=url, app_id=app_id, access_token=token, developer_api_key=dev_key, client_secret=secret)


def _saved_account(conf: Any) -> Account:
    from desktop_app import keystore

    return Account(api_url=str(conf.get("hubspot.api_url")), app_id=str(conf.get("hubspot.app_id")),
                   access_token=keystore.get(keystore.HUBSPOT_ACCESS_TOKEN) or "",
                   developer_api_key=keystore.get(keystore.HUBSPOT_DEVELOPER_API_KEY) or "",
                   client_secret=keystore.get(keystore.HUBSPOT_CLIENT_SECRET) or "")


def _tty_line() -> str:
    return sys.stdin.readline()


def _tty_secret(prompt: str) -> str:
    return getpass.getpass(prompt, stream=sys.stderr)


def run_connect(args: argparse.Namespace) -> int:
    from desktop_app import keystore
    from desktop_app import settings as settings_mod

    def fail(message: str, code: int = 1) -> int:
        print(f"callrelay hubspot connect: {message}", file=sys.stderr)
        return code

    try:
        conf = settings_mod.load()
    except settings_mod.SettingsError as exc:
        return fail(str(exc))
    try:
        keystore.ensure_usable()
        if sys.stdin.isatty():
            account = ask_account(_saved_account(conf), Prompter(sys.stderr, _tty_line, _tty_secret))
        else:
            account = account_from_env_lines(parse_env_lines(sys.stdin.read()))
    except keystore.KeyringUnavailable:
        return fail(KEYRING_UNAVAILABLE)
    except BadInput as exc:
        return fail(f"{exc}; nothing was saved.", 2)
    except EOFError:
        print(file=sys.stderr)
        return fail("cancelled; nothing was saved.")
    portal = ""
    if not args.no_check:
        try:
            portal = _check_sign_in(account)
        except HubSpotError as exc:
            return fail(f"{exc.agent_message} Nothing was saved (--no-check saves without asking HubSpot).")
    try:
        save_secrets(account)
    except keystore.KeyringUnavailable:
        return fail(KEYRING_UNAVAILABLE)
    try:
        save_settings(conf, account)
    except OSError as exc:
        return fail(f"the settings file {conf.path} cannot be written ({exc.strerror or exc}); the secrets are in "
                    "the keyring, run this again once it can be written.")
    where = f"portal {portal} at {account.api_url}" if portal else account.api_url
    kept = ["the token", *(["the developer API key"] if account.developer_api_key else []),
            *(["the client secret"] if account.client_secret else [])]
    kept_text = ", ".join(kept[:-1]) + " and " + kept[-1] if len(kept) > 1 else kept[0]
    print(f"Saved the HubSpot account ({where}): the API URL and app id in {conf.path}, {kept_text} in the "
          "system keyring.")
    if account.portal_id and portal and account.portal_id != portal:
        print(f"Note: {cfg.ENV_PORTAL_ID} said {account.portal_id}, but this token belongs to portal {portal}.",
              file=sys.stderr)
    if not account.app_id or not account.developer_api_key:
        print("Note: without the app id and its developer API key the recording URL cannot be registered, so "
              "uploads fail; run this again with them.", file=sys.stderr)
    if _env_in_use(os.environ):
        print("Note: HUBSPOT_* variables are set in this shell, and they override the saved account; unset them "
              "to use it.", file=sys.stderr)
    from desktop_app.hubspot.client import TRANSCRIPTS_NEED_OAUTH

    print(f"Note: {TRANSCRIPTS_NEED_OAUTH}")  # connect saves a private-app token (transcribe.when needs OAuth)
    print("Check everything an upload needs with `callrelay hubspot test`.")
    return 0


def save_secrets(account: Account) -> None:
    """Keep the account's secrets in the keyring (KeyringUnavailable when it cannot); a refresh token left
    by an earlier OAuth sign-in is removed (it belongs to another account)."""
    from desktop_app import keystore

    keystore.set(keystore.HUBSPOT_ACCESS_TOKEN, account.access_token)
    keystore.delete(keystore.HUBSPOT_REFRESH_TOKEN)
    keystore.set(keystore.HUBSPOT_DEVELOPER_API_KEY, account.developer_api_key)
    keystore.set(keystore.HUBSPOT_CLIENT_SECRET, account.client_secret)


def save_settings(conf: Any, account: Account) -> None:
    """Write the account's API URL and app id into the settings, sandbox mode off (OSError when it cannot)."""
    conf.update({"hubspot.api_url": account.api_url, "hubspot.app_id": account.app_id,
                 "hubspot.auth": "private-app", "hubspot.sandbox": False})
    conf.save()


def _check_sign_in(account: Account) -> str:
    """The portal id of the account the token signs in to (one read-only request), or HubSpotError."""
    from desktop_app.hubspot.client import HubSpotClient

    config = cfg.HubSpotConfig(api_url=account.api_url, access_token=account.access_token, app_id=account.app_id,
                               developer_api_key=account.developer_api_key, client_secret=account.client_secret,
                               read_timeout=15.0)
    with HubSpotClient(config) as client:
        return str(client.account_details().portal_id)
