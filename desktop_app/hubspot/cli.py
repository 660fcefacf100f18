"""``callrelay hubspot test``: check the HubSpot connection and say what is missing.

Reads the account as every command does (the ``HUBSPOT_*`` variables when set, else the settings
and the keyring), makes one read-only request per capability the app needs and prints one line
each (``ok`` or ``FAIL`` with the agent's sentence), then the scopes HubSpot named as missing.
Exit code 0 when everything works, 1 otherwise. Writes nothing to HubSpot.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from desktop_app.hubspot.errors import HubSpotError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("hubspot", help="check the connection to HubSpot",
                              description="Commands about the HubSpot account.")
    sub = p.add_subparsers(dest="hubspot_command", metavar="SUBCOMMAND", required=True)
    t = sub.add_parser("test", help="check the sign-in, the scopes and the recording URL (read-only)",
                       description="Make one read-only request per capability Call Relay needs and report "
                                   "what works, what fails and which scopes are missing.")
    t.set_defaults(func=run_test)


def run_test(args: argparse.Namespace) -> int:
    from desktop_app.hubspot.client import HubSpotClient
    from desktop_app.hubspot.config import load_config

    config = load_config()
    kind = "sandbox" if config.is_sandbox else "HubSpot"
    print(f"HubSpot: {config.base_url} ({kind}, {config.auth} sign-in)")
    missing: list[str] = []
    failures = 0
    with HubSpotClient(config) as client:
        def account() -> str:
            a = client.account_details()
            return f"portal {a.portal_id} ({a.account_type}, {a.time_zone})"

        def recording() -> str:
            if not config.app_id:
                raise ValueError("no app id is set (hubspot.app_id): the recording URL cannot be registered")
            setting = client.get_recording_settings()
            return setting.url_to_retrieve_authed_recording if setting else "not registered yet"

        checks: list[tuple[str, Callable[[], str]]] = [
            ("account", account),
            ("owners", lambda: f"{len(client.owners())} owner(s)"),
            ("contacts", lambda: f"search works ({len(client.search_contacts_by_email('check@callrelay.invalid'))})"),
            ("calls", lambda: f"search works ({len(client.find_calls_by_external_id('callrelay-check'))})"),
            ("dispositions", lambda: f"{len(client.call_dispositions())} call outcome(s)"),
            ("recording URL", recording),
        ]
        for name, check in checks:
            try:
                print(f"ok    {name}: {check()}")
            except HubSpotError as exc:
                failures += 1
                missing += [s for s in exc.missing_scopes if s not in missing]
                print(f"FAIL  {name}: {exc.agent_message}")
                if exc.policy_name == "DAILY" or exc.status == 401:
                    break  # nothing else can work now
            except ValueError as exc:
                failures += 1
                print(f"FAIL  {name}: {exc}")
    if missing:
        print(f"missing scopes: {', '.join(missing)}")
    print("all checks passed" if not failures else f"{failures} check(s) failed")
    return 0 if not failures else 1
