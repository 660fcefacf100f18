"""``callrelay relay …``: the team relay's commands (issue 17). So far the admin's: ``invite``, ``agents``,
``revoke``, each on the team database named by ``--database``, else ``CALLRELAY_DATABASE_URL``, else the
file ``database-url`` of systemd's credentials directory (``$CREDENTIALS_DIRECTORY``, LoadCredential;
a file others can read is refused). A database URL's password is never printed.

psycopg is imported only when a command runs (the desk's bundle leaves the ``relay`` extra out).
Exit codes: 0 done, 1 a problem with the work (database unreachable, no such agent…), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DATABASE_ENV = "CALLRELAY_DATABASE_URL"
CREDENTIAL_NAME = "database-url"
CLIENT_SECRET_ENV, CLIENT_SECRET_FILE = "CALLRELAY_HUBSPOT_CLIENT_SECRET", "hubspot-client-secret"
LINK_KEY_ENV, LINK_KEY_FILE = "CALLRELAY_LINK_KEY", "link-key"
STORAGE_ENV = "CALLRELAY_STORAGE"
S3_ENDPOINT_ENV = "CALLRELAY_S3_ENDPOINT"
PUBLIC_URL_ENV = "CALLRELAY_PUBLIC_URL"
APP_ID_ENV = "CALLRELAY_HUBSPOT_APP_ID"
ACCOUNT_ID_ENV = "CALLRELAY_HUBSPOT_ACCOUNT_ID"
# the pipeline's HubSpot credentials: the HUBSPOT_* variables `callrelay sandbox` prints (and the desk's
# hubspot/config.py reads), else these files of $CREDENTIALS_DIRECTORY
HUBSPOT_TOKEN_FILE, HUBSPOT_DEVELOPER_KEY_FILE = "hubspot-access-token", "hubspot-developer-api-key"


class UsageError(Exception):
    pass


class ProblemError(Exception):
    pass


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "relay",
        help="team mode: the relay that answers HubSpot for a whole call centre (admin commands)",
        description="Team mode's relay. The database comes from --database, else CALLRELAY_DATABASE_URL, else "
        "$CREDENTIALS_DIRECTORY/database-url (systemd LoadCredential).",
    )
    sub = p.add_subparsers(dest="relay_command", metavar="COMMAND")

    def database_option(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--database", metavar="URL",
                            help="the team database, postgresql://USER[:PASSWORD]@HOST[:PORT]/DBNAME")

    invite = sub.add_parser("invite", help="make a one-time invite for a desk (the code is the last line)",
                            description="Make a one-time invite code for agent NAME; a desk redeems it once "
                            "with `callrelay join RELAY_URL CODE`. The code is printed as the last line.")
    invite.add_argument("name", metavar="NAME", help="the agent's name as the team history shows it")
    invite.add_argument("--supervisor", action="store_true", help="a supervisor sees every agent's submissions")
    invite.add_argument("--valid-hours", type=float, default=72, metavar="H",
                        help="hours the code can be redeemed in (default 72)")
    database_option(invite)
    invite.set_defaults(func=run_invite)

    agents = sub.add_parser("agents", help="list the team's agents", description="List the team's agents.")
    agents.add_argument("--json", action="store_true", help="one JSON array")
    database_option(agents)
    agents.set_defaults(func=run_agents)

    revoke = sub.add_parser("revoke", help="revoke an agent's token at once",
                            description="Revoke agent NAME: their desk's token stops working at once and "
                            "their unused invites are cancelled.")
    revoke.add_argument("name", metavar="NAME")
    database_option(revoke)
    revoke.set_defaults(func=run_revoke)

    serve = sub.add_parser(
        "serve", help="run the relay: HubSpot's recording endpoint and the agents' API",
        description="Run the relay's HTTP service. It prints the recording endpoint template to register with "
        "HubSpot as its last line. Secrets come from the environment or $CREDENTIALS_DIRECTORY only: "
        f"{CLIENT_SECRET_ENV} (file {CLIENT_SECRET_FILE}), {LINK_KEY_ENV} (file {LINK_KEY_FILE}), the database "
        "URL, and the standard AWS_* variables for the S3 keys.")
    database_option(serve)
    serve.add_argument("--storage", metavar="URL", help=f"s3://BUCKET[/PREFIX] or file:DIR (else {STORAGE_ENV})")
    serve.add_argument("--s3-endpoint", metavar="URL",
                       help=f"the S3-compatible store's endpoint, e.g. https://minio.example:9000 (else {S3_ENDPOINT_ENV};"
                       " AWS's own when neither is given)")
    serve.add_argument("--s3-addressing", choices=("auto", "path", "virtual"), default="auto",
                       help="path-style or virtual-host bucket addressing (auto: virtual on AWS, path elsewhere)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8780, help="port to listen on (default 8780; 0 picks one)")
    serve.add_argument("--public-url", metavar="URL",
                       help=f"the HTTPS URL HubSpot and the desks reach this relay at (else {PUBLIC_URL_ENV})")
    serve.add_argument("--app-id", help=f"your HubSpot app's id (else {APP_ID_ENV})")
    serve.add_argument("--account-id", help="the externalAccountId your calls are logged with: the HubSpot "
                       f"portal id (else {ACCOUNT_ID_ENV})")
    serve.add_argument("--link-ttl-s", type=int, metavar="S",
                       help="how long a recording link stays valid (default: the relay.link_ttl_s setting, 3600)")
    serve.add_argument("--part-size", type=int, metavar="BYTES", default=0,
                       help="bytes per uploaded part (default and minimum with S3: 5 MiB)")
    serve.add_argument("--workers", type=int, default=2, metavar="N",
                       help="pipeline workers logging submissions in HubSpot, when HubSpot credentials are present "
                       "(HUBSPOT_ACCESS_TOKEN or $CREDENTIALS_DIRECTORY/hubspot-access-token; default 2, 0: none)")
    serve.add_argument("--lease-s", type=float, default=60.0, metavar="S",
                       help="how long a claimed submission stays this relay's without renewal (default 60)")
    serve.add_argument("--transcript-check-s", type=float, default=60.0, metavar="S",
                       help="seconds after ready of the first look for a transcript, doubling after (default 60)")
    serve.set_defaults(func=run_serve)

    p.set_defaults(func=lambda args: _usage(p))

    join = subparsers.add_parser(
        "join", help="join a team: redeem an invite at the team's relay",
        description="Redeem a one-time invite at the team's relay. The desk's token is kept in this computer's "
        "keyring and the relay's URL in the settings (team.relay_url).")
    join.add_argument("relay_url", metavar="RELAY_URL", help="the relay's URL, as your admin gave it")
    join.add_argument("code", metavar="CODE", help="the invite code")
    join.set_defaults(func=run_join)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def credential(env_name: str, file_name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """A secret from the variable ``env_name``, else the file ``file_name`` of systemd's credentials
    directory (``$CREDENTIALS_DIRECTORY``, LoadCredential, container secrets); None when neither holds
    it. A credential file that group or others may read is refused (`ProblemError`)."""
    env = os.environ if environ is None else environ
    if env.get(env_name, "").strip():
        return env[env_name].strip()
    creds = env.get("CREDENTIALS_DIRECTORY", "").strip()
    if not creds:
        return None
    path = Path(creds) / file_name
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ProblemError(f"The credential file {path} cannot be read: {exc.strerror or exc}.") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ProblemError(
            f"The credential file {path} can be read by other users (mode {stat.filemode(info.st_mode)}); "
            f"make it its owner's only (chmod 600 {path})."
        )
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ProblemError(f"The credential file {path} cannot be read: {exc}.") from None
    return text or None


def hubspot_config(app_id: str, account: str, client_secret: str | None,
                   environ: Mapping[str, str] | None = None) -> Any:
    """The pipeline's HubSpot account (a ``HubSpotConfig``), or None without an access token: the
    ``HUBSPOT_*`` variables as ``callrelay sandbox`` prints them, each secret else from its file in
    ``$CREDENTIALS_DIRECTORY`` (``credential``)."""
    from desktop_app.hubspot import config as hc

    env = os.environ if environ is None else environ
    token = credential(hc.ENV_ACCESS_TOKEN, HUBSPOT_TOKEN_FILE, env)
    if not token:
        return None
    values = {
        hc.ENV_URL: env.get(hc.ENV_URL, "").strip() or hc.HUBSPOT_API,
        hc.ENV_ACCESS_TOKEN: token,
        hc.ENV_APP_ID: app_id,
        hc.ENV_DEVELOPER_API_KEY: credential(hc.ENV_DEVELOPER_API_KEY, HUBSPOT_DEVELOPER_KEY_FILE, env) or "",
        hc.ENV_CLIENT_SECRET: client_secret or "",
        hc.ENV_PORTAL_ID: env.get(hc.ENV_PORTAL_ID, "").strip() or account,
    }
    return hc.config_from_env(values)


def database_url(arg: str | None, environ: Mapping[str, str] | None = None) -> str:
    """``--database``, else ``CALLRELAY_DATABASE_URL``, else ``$CREDENTIALS_DIRECTORY/database-url``."""
    if arg:
        return arg.strip()
    found = credential(DATABASE_ENV, CREDENTIAL_NAME, environ)
    if found:
        return found
    raise UsageError(
        f"No team database is named: give --database URL, set {DATABASE_ENV}, or put the URL in "
        f"$CREDENTIALS_DIRECTORY/{CREDENTIAL_NAME}."
    )


def _open(args: argparse.Namespace) -> Any:
    return _open_url(database_url(args.database))


def _open_url(url: str, max_size: int = 1) -> Any:
    try:
        from desktop_app.relay.db import TeamDB
    except ModuleNotFoundError as exc:
        raise ProblemError(
            f"Team mode needs the relay extra ({exc.name} is missing): pip install 'callrelay[relay]'."
        ) from None
    if not url.startswith(("postgresql://", "postgres://")) and "=" not in url:
        raise UsageError("The database URL must start with postgresql:// (postgresql://USER@HOST[:PORT]/DBNAME).")
    import psycopg

    try:
        psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error:
        raise UsageError("The database URL cannot be read: write postgresql://USER@HOST[:PORT]/DBNAME.") from None
    return TeamDB(url, min_size=1, max_size=max_size)


def _run(name: str, args: argparse.Namespace, work: Any) -> int:
    from_db: tuple[type[BaseException], ...] = ()
    try:
        from desktop_app.relay.db import DatabaseError

        from_db = (DatabaseError,)
    except ModuleNotFoundError:
        pass
    try:
        return int(work(args))
    except UsageError as exc:
        print(f"callrelay relay {name}: {exc}", file=sys.stderr)
        return 2
    except ProblemError as exc:
        print(f"callrelay relay {name}: {exc}", file=sys.stderr)
        return 1
    except from_db as exc:
        print(f"callrelay relay {name}: {exc}", file=sys.stderr)
        return 1


def run_invite(args: argparse.Namespace) -> int:
    def work(args: argparse.Namespace) -> int:
        import datetime as dt

        from desktop_app.relay.db import DatabaseError, check_name

        try:
            check_name(args.name)
        except DatabaseError as exc:
            raise UsageError(str(exc)) from None
        if not 0 < args.valid_hours <= 24 * 90:
            raise UsageError(f"--valid-hours must be more than 0 and at most {24 * 90}, not {args.valid_hours:g}.")
        role = "supervisor" if args.supervisor else "agent"
        with _open(args) as db:
            code = db.create_invite(args.name, role, ttl=dt.timedelta(hours=args.valid_hours))
        print(f"Invite for {args.name} ({role}), valid {args.valid_hours:g} h and once only. On the desk: "
              "callrelay join RELAY_URL CODE")
        print(code, flush=True)
        return 0

    return _run("invite", args, work)


def run_agents(args: argparse.Namespace) -> int:
    def work(args: argparse.Namespace) -> int:
        with _open(args) as db:
            agents = db.list_agents()
        if args.json:
            print(json.dumps([a.to_dict() for a in agents], indent=2))
            return 0
        if not agents:
            print("No agents yet: make an invite with `callrelay relay invite NAME`.")
            return 0
        width = max(len(a.name) for a in agents)
        for a in agents:
            state = f"revoked {a.revoked_at:%Y-%m-%d %H:%M}" if a.revoked_at else "active"
            print(f"{a.name:<{width}}  {a.role:<10}  joined {a.created_at:%Y-%m-%d %H:%M}  {state}")
        return 0

    return _run("agents", args, work)


def run_revoke(args: argparse.Namespace) -> int:
    def work(args: argparse.Namespace) -> int:
        with _open(args) as db:
            revoked = db.revoke(args.name)
        if not revoked:
            raise ProblemError(f"There is no active agent named {args.name!r} (`callrelay relay agents` lists them).")
        print(f"Revoked {args.name}: their desk's token no longer works.")
        return 0

    return _run("revoke", args, work)


def run_serve(args: argparse.Namespace) -> int:
    def work(args: argparse.Namespace) -> int:
        from desktop_app.relay.service import Relay, RelayOptions, wait_for_signals
        from desktop_app.relay.storage import S3Store

        env = os.environ
        storage, app_id, account = _serve_names(args, env)
        ttl = _serve_limits(args)
        url = database_url(args.database)
        client_secret = credential(CLIENT_SECRET_ENV, CLIENT_SECRET_FILE) or env.get("HUBSPOT_CLIENT_SECRET",
                                                                                      "").strip() or None
        hubspot = hubspot_config(app_id, account, client_secret) if args.workers else None
        link_key = credential(LINK_KEY_ENV, LINK_KEY_FILE)
        store, part_size = _serve_store(args, env, storage)
        from desktop_app.relay.workers import relay_name

        name = relay_name()
        db = _open_url(url, max_size=16 + 2 * args.workers)
        try:
            relay = Relay(db, store, RelayOptions(
                app_id=app_id, account_id=account, client_secret=client_secret, link_key=link_key,
                link_ttl_s=ttl, public_url=args.public_url or env.get(PUBLIC_URL_ENV) or None,
                part_size=part_size, name=name), host=args.host, port=args.port)
        except ValueError as exc:
            db.close()
            raise UsageError(str(exc)) from None
        except OSError as exc:
            db.close()
            raise ProblemError(f"Cannot listen on {args.host}:{args.port}: {exc.strerror or exc}.") from None
        _relay_log_to_stderr()
        if not client_secret:
            print(f"Warning: no HubSpot client secret ({CLIENT_SECRET_ENV}): HubSpot's request signatures are not "
                  "checked.", file=sys.stderr)
        if link_key is None and not isinstance(store, S3Store):
            print(f"Warning: no link key ({LINK_KEY_ENV}): recording links stop working when this relay restarts, "
                  "and other relays cannot answer them.", file=sys.stderr)
        print(f"Relay listening on {relay.local_url} (team database {db.where}, recordings in {store.url}).")
        workers = _serve_pipeline(args, relay, db, store, hubspot, name, app_id)
        print("Register this recording endpoint with your HubSpot app:" if hubspot is None else
              "The recording endpoint HubSpot calls:")
        print(relay.endpoint_template(), flush=True)
        try:
            if workers is not None:
                wait_for_signals(relay, serving=True)
            else:
                wait_for_signals(relay)
        finally:
            if workers is not None:
                workers.stop()
            db.close()
        return 0

    return _run("serve", args, work)


def _serve_names(args: argparse.Namespace, env: Mapping[str, str]) -> tuple[str, str, str]:
    """``relay serve``'s recordings store, HubSpot app id and account id (UsageError when one is not given)."""
    storage = (args.storage or env.get(STORAGE_ENV, "")).strip()
    if not storage:
        raise UsageError(f"No recordings store is named: give --storage s3://BUCKET[/PREFIX] or file:DIR, or set "
                         f"{STORAGE_ENV}.")
    app_id = (args.app_id or env.get(APP_ID_ENV, "") or env.get("HUBSPOT_APP_ID", "")).strip()
    account = (args.account_id or env.get(ACCOUNT_ID_ENV, "") or env.get("HUBSPOT_PORTAL_ID", "")).strip()
    if not app_id or not account:
        raise UsageError(f"The relay checks every request HubSpot makes against your app and account: give "
                         f"--app-id and --account-id (or set {APP_ID_ENV} and {ACCOUNT_ID_ENV}).")
    return storage, app_id, account


def _serve_limits(args: argparse.Namespace) -> int:
    """Check ``relay serve``'s numeric options (UsageError); the recording links' lifetime in seconds
    (--link-ttl-s, else the setting ``relay.link_ttl_s``)."""
    from desktop_app import settings

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be 0 to 65535, not {args.port}.")
    ttl = args.link_ttl_s
    if ttl is None:
        try:
            ttl = int(settings.load().get("relay.link_ttl_s"))
        except (settings.SettingsError, OSError, ValueError) as exc:
            raise ProblemError(f"The settings file cannot be used: {exc}.") from None
    if not 60 <= ttl <= 7 * 24 * 3600:
        raise UsageError(f"--link-ttl-s must be 60 to 604800 seconds, not {ttl}.")
    if not 0 <= args.workers <= 64:
        raise UsageError(f"--workers must be 0 to 64, not {args.workers}.")
    if not 3 <= args.lease_s <= 3600:
        raise UsageError(f"--lease-s must be 3 to 3600 seconds, not {args.lease_s:g}.")
    if not 0 <= args.transcript_check_s <= 86400:
        raise UsageError(f"--transcript-check-s must be 0 to 86400 seconds, not {args.transcript_check_s:g}.")
    return int(ttl)


def _serve_store(args: argparse.Namespace, env: Mapping[str, str], storage: str) -> tuple[Any, int]:
    """The recordings store named by ``storage`` and the upload part size it takes (UsageError)."""
    from desktop_app.relay.storage import MIN_PART_SIZE, S3Store, StorageError, open_store

    try:
        store = open_store(storage, endpoint_url=(args.s3_endpoint or env.get(S3_ENDPOINT_ENV) or None),
                           addressing=args.s3_addressing)
    except StorageError as exc:
        raise UsageError(str(exc)) from None
    part_size = args.part_size or MIN_PART_SIZE
    if isinstance(store, S3Store) and part_size < MIN_PART_SIZE:
        raise UsageError(f"--part-size must be at least {MIN_PART_SIZE} bytes with an S3 store.")
    if part_size < 1024:
        raise UsageError("--part-size must be at least 1024 bytes.")
    return store, int(part_size)


def _relay_log_to_stderr() -> None:
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    relay_log = logging.getLogger("desktop_app.relay")
    relay_log.addHandler(handler)
    relay_log.setLevel(logging.INFO)
    relay_log.propagate = False


def _serve_pipeline(args: argparse.Namespace, relay: Any, db: Any, store: Any, hubspot: Any, name: str,
                    app_id: str) -> Any:
    """Start the pipeline's workers when there are HubSpot credentials (their handle, else None)."""
    if hubspot is not None:
        from desktop_app.relay.workers import start_pipeline
        from desktop_app.sync.pipeline import RetryPolicy

        policy = RetryPolicy(transcript_first_check_s=args.transcript_check_s,
                             in_flight_s=hubspot.read_timeout + hubspot.connect_timeout)
        relay.start()  # HubSpot may fetch as soon as the endpoint is registered
        workers = start_pipeline(db, store, relay.endpoint_template(), hubspot, name=name, workers=args.workers,
                                 lease_s=args.lease_s, policy=policy)
        print(f"Pipeline: {args.workers} workers log the team's submissions in HubSpot account "
              f"{hubspot.portal_id} (app {app_id}); the recording endpoint is registered with the app.")
        return workers
    if args.workers:
        print("No HubSpot credentials (HUBSPOT_ACCESS_TOKEN or $CREDENTIALS_DIRECTORY/hubspot-access-token): "
              "submissions stay queued until a relay with them runs.", file=sys.stderr)
    return None


def run_join(args: argparse.Namespace) -> int:
    from desktop_app import keystore, settings
    from desktop_app.relay.client import RelayError, join

    try:
        joined = join(args.relay_url, args.code)
    except ValueError as exc:
        print(f"callrelay join: {exc}", file=sys.stderr)
        return 2
    except (RelayError, keystore.KeyringUnavailable, settings.SettingsError, OSError) as exc:
        print(f"callrelay join: {exc}", file=sys.stderr)
        return 1
    print(f"Joined the team at {joined['url']} as {joined['name']} ({joined['role']}); this desk's token is in "
          "the keyring.")
    return 0
