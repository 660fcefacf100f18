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
from pathlib import Path
from typing import Any

DATABASE_ENV = "CALLRELAY_DATABASE_URL"
CREDENTIAL_NAME = "database-url"


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

    p.set_defaults(func=lambda args: _usage(p))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def database_url(arg: str | None, environ: dict[str, str] | None = None) -> str:
    """``--database``, else ``CALLRELAY_DATABASE_URL``, else ``$CREDENTIALS_DIRECTORY/database-url``."""
    env = os.environ if environ is None else environ
    if arg:
        return arg.strip()
    if env.get(DATABASE_ENV, "").strip():
        return env[DATABASE_ENV].strip()
    creds = env.get("CREDENTIALS_DIRECTORY", "").strip()
    if creds:
        path = Path(creds) / CREDENTIAL_NAME
        try:
            info = path.stat()
        except FileNotFoundError:
            info = None
        except OSError as exc:
            raise ProblemError(f"The credential file {path} cannot be read: {exc.strerror or exc}.") from None
        if info is not None:
            if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise ProblemError(
                    f"The credential file {path} can be read by other users (mode {stat.filemode(info.st_mode)}); "
                    f"make it its owner's only (chmod 600 {path})."
                )
            try:
                text = path.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise ProblemError(f"The credential file {path} cannot be read: {exc}.") from None
            if text:
                return text
    raise UsageError(
        f"No team database is named: give --database URL, set {DATABASE_ENV}, or put the URL in "
        f"$CREDENTIALS_DIRECTORY/{CREDENTIAL_NAME}."
    )


def _open(args: argparse.Namespace) -> Any:
    url = database_url(args.database)
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
    return TeamDB(url, min_size=1, max_size=1)


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
