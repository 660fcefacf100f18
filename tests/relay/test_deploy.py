"""``deploy/``: the systemd unit, the environment file example and the container file run the relay as the
README says. The unit is checked by ``systemd-analyze verify`` (where it exists) and against the code: every
``LoadCredential`` is a secret the relay reads (found in ``desktop_app/relay`` by its calls to
``credential(ENV, FILE)``, or boto3's shared-credentials file) and every secret it reads is loaded. The
container's entrypoint is parsed by ``callrelay``'s own argparse. Then the relay is started the way the unit
starts it (its ``ExecStart`` arguments, its ``Environment=`` lines, the example environment file and a
credentials directory of 0600 files), serves a recording from SeaweedFS with the S3 keys from that
directory, and refuses, in one sentence, a credential file others can read."""

from __future__ import annotations

import ast
import configparser
import importlib
import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
import tomllib
from services import Seaweed
from test_storage import fetch

from desktop_app.cli import build_parser
from desktop_app.commands import relay as relay_cli
from desktop_app.relay.client import RelayClient
from desktop_app.relay.db import TeamDB
from desktop_app.server.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign_v3

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "callrelay-relay.service"
CONTAINERFILE = DEPLOY / "Containerfile"
ENV_EXAMPLE = DEPLOY / "relay.env.example"
ENDPOINT = "/retrieve/authenticated/recordings/"


# --- reading the files ------------------------------------------------------------------------------------
def unit_entries(path: Path = UNIT) -> list[tuple[str, str, str]]:
    """(section, key, value) of each line of a systemd unit, in order (keys repeat)."""
    section, entries = "", []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        entries.append((section, key.strip(), value.strip()))
    return entries


def service(key: str) -> list[str]:
    return [v for s, k, v in unit_entries() if s == "Service" and k == key]


def load_credentials() -> dict[str, str]:
    """LoadCredential=NAME:PATH → {NAME: PATH}."""
    return dict(v.split(":", 1) for v in service("LoadCredential"))


def unit_environment() -> dict[str, str]:
    return dict(v.split("=", 1) for v in service("Environment"))


def env_file(path: Path = ENV_EXAMPLE) -> dict[str, str]:
    out = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def credentials_the_relay_reads() -> dict[str, str]:
    """{FILE: ENV} of every ``credential(ENV, FILE)`` call in ``desktop_app/relay`` and the relay's command
    module, the names resolved through the module's constants (``A, B = "x", "y"`` included)."""
    found: dict[str, str] = {}
    sources = [*(ROOT / "desktop_app" / "relay").glob("*.py"), ROOT / "desktop_app" / "commands" / "relay.py"]
    for source in sorted(sources):
        tree = ast.parse(source.read_text())
        constants: dict[str, str] = {}
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value = node.targets[0], node.value
                if isinstance(target, ast.Name) and isinstance(value, ast.Constant) and isinstance(value.value, str):
                    constants[target.id] = value.value
                elif isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple):
                    for t, v in zip(target.elts, value.elts, strict=True):
                        if isinstance(t, ast.Name) and isinstance(v, ast.Constant) and isinstance(v.value, str):
                            constants[t.id] = v.value

        modules: dict[str, str] = {}  # alias → module, from every import in the file (function-level ones too)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules.update({a.asname or a.name: a.name for a in node.names})
            elif isinstance(node, ast.ImportFrom) and node.module:
                modules.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names})

        def resolve(arg: ast.expr, where: Path = source, constants: dict[str, str] = constants,
                    modules: dict[str, str] = modules) -> str:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                return arg.value
            if isinstance(arg, ast.Name) and arg.id in constants:
                return constants[arg.id]
            if isinstance(arg, ast.Attribute) and isinstance(arg.value, ast.Name) and arg.value.id in modules:
                value = getattr(importlib.import_module(modules[arg.value.id]), arg.attr, None)
                if isinstance(value, str):
                    return value
            raise AssertionError(f"{where}: a credential named by {ast.dump(arg)}, which this test cannot resolve")

        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and len(node.args) >= 2:
                func = node.func
                name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
                if name == "credential":
                    found[resolve(node.args[1])] = resolve(node.args[0])
    return found


def test_the_credential_scan_finds_what_the_relay_reads() -> None:
    """The scan above against the module it reads: if it missed these, the checks below would prove nothing."""
    read = credentials_the_relay_reads()
    assert read[relay_cli.CREDENTIAL_NAME] == relay_cli.DATABASE_ENV
    assert read[relay_cli.CLIENT_SECRET_FILE] == relay_cli.CLIENT_SECRET_ENV
    assert read[relay_cli.LINK_KEY_FILE] == relay_cli.LINK_KEY_ENV


# --- the systemd unit ---------------------------------------------------------------------------------
def test_every_loaded_credential_is_one_the_relay_reads_and_every_secret_it_reads_is_loaded(tmp_path: Path) -> None:
    loaded = load_credentials()
    read = credentials_the_relay_reads()
    environment = unit_environment()
    # S3 keys: boto3's standard shared-credentials file, pointed at the copy systemd makes (%d)
    through_boto3 = {value.removeprefix("%d/"): name for name, value in environment.items()
                     if value.startswith("%d/")}
    assert set(through_boto3.values()) <= {"AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE"}, through_boto3
    unknown = set(loaded) - set(read) - set(through_boto3)
    assert not unknown, f"LoadCredential names the relay never reads: {sorted(unknown)}"
    missing = set(read) - set(loaded)
    assert not missing, f"secrets the relay reads that the unit does not load: {sorted(missing)}"
    for name, path in loaded.items():
        assert path == f"/etc/callrelay/credentials/{name}", (name, path)

    # boto3 really takes the S3 keys from the file that variable names
    import boto3

    keys = tmp_path / "aws-credentials"
    keys.write_text("[default]\naws_access_key_id = AKIDEPLOYTEST\naws_secret_access_key = deploy-secret\n")
    variable = next(n for n in through_boto3.values())
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("AWS_")}
    try:
        os.environ[variable] = str(keys)
        found = boto3.session.Session().get_credentials()
    finally:
        os.environ.pop(variable, None)
        os.environ.update(saved)
    assert found is not None and found.access_key == "AKIDEPLOYTEST" and found.secret_key == "deploy-secret"


def test_the_unit_runs_the_relay_hardened_as_a_dedicated_user_with_no_secret_in_its_command_line() -> None:
    user = service("User")
    assert user and user[0] not in ("root", "0"), user
    for key, value in (("ProtectSystem", "strict"), ("NoNewPrivileges", "yes"), ("PrivateTmp", "yes"),
                       ("ProtectHome", "yes"), ("Restart", "on-failure")):
        assert service(key) == [value], (key, service(key))
    assert service("CapabilityBoundingSet") == [""]
    [command] = service("ExecStart")
    argv = shlex.split(command)
    assert Path(argv[0]).name == "callrelay" and argv[1:3] == ["relay", "serve"], argv
    args = build_parser().parse_args(argv[1:])
    assert args.func is relay_cli.run_serve
    assert args.database is None  # the URL (with its password) comes from the credentials directory
    assert service("EnvironmentFile") == ["/etc/callrelay/relay.env"]
    secret_envs = set(credentials_the_relay_reads().values()) | {"AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"}
    assert not secret_envs & set(unit_environment()), "a secret set in the unit's Environment="
    assert not secret_envs & set(env_file()), "a secret in the environment file example"


def test_every_variable_of_the_environment_file_is_one_the_relay_or_boto3_reads() -> None:
    """A misspelt or invented name would be ignored without a word: each is a ``CALLRELAY_*`` name the relay's
    command line reads (its module's constants) or a variable botocore's configuration reads."""
    from botocore.configprovider import BOTOCORE_DEFAUT_SESSION_VARIABLES as botocore_vars

    relay_reads = {node.value for source in ("commands/relay.py", "paths.py")
                   for node in ast.walk(ast.parse((ROOT / "desktop_app" / source).read_text()))
                   if isinstance(node, ast.Constant) and isinstance(node.value, str)
                   and node.value.startswith("CALLRELAY_") and node.value.isupper()}
    boto_reads = {spec[1] for spec in botocore_vars.values() if isinstance(spec[1], str)}
    boto_reads |= {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}
    for name in [*env_file(), *unit_environment()]:
        assert name in relay_reads | boto_reads, f"{name} is read by nothing"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    """As installed, with ExecStart pointing at this environment's ``callrelay`` (verify checks that it exists)."""
    program = Path(sys.executable).with_name("callrelay")
    assert program.exists(), program
    [command] = service("ExecStart")
    text = UNIT.read_text().replace(shlex.split(command)[0], str(program))
    unit = tmp_path / UNIT.name
    unit.write_text(text)
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=120)
    said = [line for line in (done.stdout + done.stderr).splitlines() if UNIT.name in line]
    assert done.returncode == 0 and not said, done.stdout + done.stderr

    # the same check refuses a misspelt option: it is not a rubber stamp
    (tmp_path / "bad").mkdir()
    bad = tmp_path / "bad" / UNIT.name
    bad.write_text(text.replace("ProtectSystem=strict", "ProtectSytem=strict"))
    worse = subprocess.run(["systemd-analyze", "verify", str(bad)], capture_output=True, text=True, timeout=120)
    assert "ProtectSytem" in worse.stdout + worse.stderr


# --- the container file -----------------------------------------------------------------------------------
def containerfile() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    lines = CONTAINERFILE.read_text().replace("\\\n", " ").splitlines()
    for raw in lines:
        line = raw.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.setdefault(word.upper(), []).append(rest.strip())
    return out


def test_the_container_runs_callrelay_relay_serve_as_a_user_with_the_relay_extra() -> None:
    cf = containerfile()
    assert cf["FROM"][0].startswith("python:3.11-slim")
    entrypoint = json.loads(cf["ENTRYPOINT"][-1])
    cmd = json.loads(cf["CMD"][-1])
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert entrypoint[0] in project["scripts"]  # the console script pip installs
    args = build_parser().parse_args([*entrypoint[1:], *cmd])
    assert args.func is relay_cli.run_serve
    assert args.host == "0.0.0.0"
    assert str(args.port) in cf["EXPOSE"][-1].split()
    installs = " ".join(cf["RUN"])
    extras = [part.split("[", 1)[1].split("]", 1)[0] for part in shlex.split(installs) if "[" in part]
    assert extras and set(",".join(extras).split(",")) <= set(project["optional-dependencies"]), installs
    assert "relay" in ",".join(extras).split(",")
    assert cf["USER"] and cf["USER"][-1] not in ("root", "0")
    env = " ".join(cf.get("ENV", []))
    assert "CREDENTIALS_DIRECTORY=" in env
    for copied in cf["COPY"]:
        for source in shlex.split(copied)[:-1]:
            assert (ROOT / source).exists(), source


def test_what_the_container_copies_builds_the_package_with_the_relay_extra(tmp_path: Path) -> None:
    """The Containerfile's COPY lines, and nothing else, are enough to build the wheel its ``pip install``
    installs: the ``callrelay`` script, the relay's modules and the extra it names."""
    import zipfile

    context = tmp_path / "context"
    context.mkdir()
    for copied in containerfile()["COPY"]:
        *sources, _target = shlex.split(copied)
        for source in sources:
            (shutil.copytree if (ROOT / source).is_dir() else shutil.copy2)(
                ROOT / source, context / source)
    for junk in context.rglob("__pycache__"):
        shutil.rmtree(junk)
    out = tmp_path / "wheel"
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(context)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    [wheel] = out.glob("callrelay-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        entry = next(zf.read(n).decode() for n in names if n.endswith("entry_points.txt"))
        metadata = next(zf.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
    assert "callrelay = desktop_app.cli:main" in entry
    assert {"desktop_app/commands/relay.py", "desktop_app/relay/service.py", "desktop_app/relay/storage.py"} <= set(names)
    assert "Provides-Extra: relay" in metadata


# --- the relay started the way the unit starts it -----------------------------------------------------
def expand(value: str, creds: Path, state: Path) -> str:
    """The systemd specifiers the unit uses: %d (credentials directory), %S (state root), %%."""
    return value.replace("%%", "\0").replace("%d", str(creds)).replace("%S", str(state)).replace("\0", "%")


def unit_argv_and_env(creds: Path, state: Path, port: int, overrides: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    [command] = service("ExecStart")
    argv = shlex.split(command)
    argv[argv.index("--port") + 1] = str(port)
    env = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8", "CREDENTIALS_DIRECTORY": str(creds)}
    for key in ("PYTHONPATH", "CALLRELAY_KEYRING_BACKEND", "PYTHON_KEYRING_BACKEND", "DBUS_SESSION_BUS_ADDRESS"):
        if key in os.environ:
            env[key] = os.environ[key]
    env.update({k: expand(v, creds, state) for k, v in unit_environment().items()})
    env.update(env_file())
    env.pop("CALLRELAY_PUBLIC_URL", None)  # the test reaches it on loopback
    env.update(overrides)
    return [sys.executable, "-m", "desktop_app", *argv[1:]], env


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_credentials(creds: Path, database_url: str, seaweed: Seaweed) -> dict[str, str]:
    creds.mkdir(mode=0o700)
    values = {
        relay_cli.CREDENTIAL_NAME: database_url,
        relay_cli.CLIENT_SECRET_FILE: "hs-deploy-" + secrets.token_urlsafe(12),
        relay_cli.LINK_KEY_FILE: "link-deploy-" + secrets.token_urlsafe(24),
    }
    ini = configparser.ConfigParser()
    ini["default"] = {"aws_access_key_id": seaweed.access_key, "aws_secret_access_key": seaweed.secret_key}
    for name in load_credentials():
        path = creds / name
        if name in values:
            path.write_text(values[name] + "\n")
        else:
            with path.open("w") as fh:
                ini.write(fh)
        path.chmod(0o600)
    return values


def test_the_relay_started_as_the_unit_starts_it_serves_and_refuses_a_readable_credential(
    database_url: str, seaweed: Seaweed, bucket: str, tmp_path: Path
) -> None:
    creds, state = tmp_path / "credentials", tmp_path / "state"
    state.mkdir()
    values = write_credentials(creds, database_url, seaweed)
    port = free_port()
    app_id, account = env_file()["CALLRELAY_HUBSPOT_APP_ID"], env_file()["CALLRELAY_HUBSPOT_ACCOUNT_ID"]
    argv, env = unit_argv_and_env(creds, state, port, {
        "CALLRELAY_STORAGE": f"s3://{bucket}/team", "CALLRELAY_S3_ENDPOINT": seaweed.endpoint})
    assert not any(k in env for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"))  # keys only from the file
    log = tmp_path / "relay.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
        try:
            assert proc.stdout is not None
            lines: list[str] = []
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not (lines and lines[-1].endswith("/%s")):
                line = proc.stdout.readline()
                if not line:
                    raise AssertionError(f"the relay ended ({proc.wait()}): {log.read_text()}")
                lines.append(line.rstrip("\n"))
            base = f"http://127.0.0.1:{port}"
            assert lines[-1] == base + ENDPOINT + "%s", lines

            with TeamDB(database_url) as db:
                code = db.create_invite("deploy-desk", "agent")
            token = RelayClient(base).join(code)["token"]
            recording = tmp_path / "call.wav"
            recording.write_bytes(b"RIFF" + os.urandom(70_000))
            done = RelayClient(base, token).upload(recording, {"title": "deploy check"})
            url = f"{base}{ENDPOINT}{quote(done['external_id'])}?externalAccountId={account}&appId={app_id}"
            ts = int(time.time() * 1000)
            sig = sign_v3(values[relay_cli.CLIENT_SECRET_FILE], "GET", url, b"", ts)
            answer = requests.get(url, headers={SIGNATURE_HEADER: sig, TIMESTAMP_HEADER: str(ts)}, timeout=30)
            assert answer.status_code == 200, answer.text
            status, _, body = fetch(answer.json()["authenticatedUrl"], {"Range": "bytes=100-199"})
            assert status == 206 and body == recording.read_bytes()[100:200]
            wrong = sign_v3("not-the-secret", "GET", url, b"", ts)
            assert requests.get(url, headers={SIGNATURE_HEADER: wrong, TIMESTAMP_HEADER: str(ts)},
                                timeout=30).status_code == 401
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
    said = log.read_text()
    assert "Traceback" not in said
    assert not any(v in said for v in values.values()) and seaweed.secret_key not in said

    for name in values:  # each credential the relay reads, made readable by others in turn
        path = creds / name
        path.chmod(0o644)
        try:
            refused = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        finally:
            path.chmod(0o600)
        sentences = [line for line in refused.stderr.splitlines() if line.strip()]
        assert refused.returncode == 1, refused.stderr
        assert len(sentences) == 1 and str(path) in sentences[0] and "can be read by other users" in sentences[0], \
            refused.stderr
        assert f"chmod 600 {path}" in sentences[0]
        assert values[name] not in refused.stdout + refused.stderr


# --- the READMEs' team commands -------------------------------------------------------------------------
def callrelay_commands(text: str) -> list[list[str]]:
    """Each ``callrelay …`` command in ``text``'s ``sh`` blocks, continuation lines joined."""
    commands, fence, sh = [], False, False
    lines = text.replace("\\\n", " ").splitlines()
    for line in lines:
        if line.strip().startswith("```"):
            fence = not fence
            sh = fence and line.strip() == "```sh"
            continue
        if not sh:
            continue  # prose (names commands, not always whole) or a diagram
        words = shlex.split(line, comments=True)
        while words and (words[0] in ("sudo", "env") or words[0].startswith("-") or "=" in words[0]):
            words = words[1:]  # the command comes after sudo, env and VAR=value
        if words and Path(words[0]).name == "callrelay":
            commands.append(words[1:])
    return commands


def test_the_team_commands_the_readmes_show_parse_with_callrelays_own_arguments() -> None:
    readme = (ROOT / "README.md").read_text()
    team = readme[readme.index("## Team mode"):]
    team = team[: team.index("\n## ", 1)]
    commands = callrelay_commands(team) + callrelay_commands((DEPLOY / "README.md").read_text())
    parser = build_parser()
    seen = set()
    for argv in commands:
        args = parser.parse_args(argv)
        seen.add(" ".join(argv[:2]) if argv[0] == "relay" else argv[0])
        if argv[:2] == ["relay", "serve"]:
            assert args.storage and args.app_id and args.account_id and args.database is None, argv
    assert {"relay serve", "relay invite", "relay agents", "relay revoke", "join"} <= seen, seen
