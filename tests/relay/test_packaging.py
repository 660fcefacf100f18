"""The relay's clients stay out of the desk: no desk module imports them, the bundle excludes them, and the
``callrelay`` command still works (and says what is missing) where they are not installed."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

PACKAGE = Path(__file__).resolve().parents[2] / "desktop_app"
RELAY = PACKAGE / "relay"
RELAY_COMMANDS = PACKAGE / "commands" / "relay.py"  # the admin's commands, imported lazily when they run


def relay_files() -> list[Path]:
    return [*RELAY.rglob("*.py"), RELAY_COMMANDS]


def top_level_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def desk_imports() -> set[str]:
    relay = set(relay_files())
    return {n for f in PACKAGE.rglob("*.py") if f not in relay for n in top_level_imports(f)}


def relay_only_imports() -> set[str]:
    relay = {n for f in relay_files() for n in top_level_imports(f)}
    return relay - desk_imports() - set(sys.stdlib_module_names) - {"desktop_app"}


def test_the_relay_package_is_qt_free() -> None:
    for f in RELAY.rglob("*.py"):
        assert not top_level_imports(f) & {"PySide6", "shiboken6", "PyQt5", "PyQt6"}, f


def test_the_relays_clients_are_what_the_bundle_excludes(spec: dict[str, Any]) -> None:
    only = relay_only_imports()
    assert {"psycopg", "psycopg_pool", "boto3", "botocore"} <= only  # what the relay package uses today
    missing = only - set(spec["EXCLUDES"])
    assert not missing, f"build.spec must exclude {sorted(missing)}: the desk's bundle must not grow with them"


def test_without_the_relay_extra_the_command_says_what_to_install(tmp_path: Path) -> None:
    """As in the desk's bundle: psycopg and boto3 cannot be imported; `callrelay --help` still works and
    `callrelay relay agents` is one sentence, exit 1."""
    script = textwrap.dedent("""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("psycopg", "psycopg_pool", "boto3", "botocore"):
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        sys.meta_path.insert(0, Block())
        from desktop_app.cli import main
        sys.exit(main(sys.argv[1:]))
    """)
    run = tmp_path / "run.py"
    run.write_text(script)
    helped = subprocess.run([sys.executable, str(run), "--help"], capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0 and "relay" in helped.stdout
    out = subprocess.run([sys.executable, str(run), "relay", "agents", "--database", "postgresql://u@127.0.0.1:9/x"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert out.stderr.strip() == ("callrelay relay agents: Team mode needs the relay extra (psycopg is missing): "
                                  "pip install 'callrelay[relay]'.")
