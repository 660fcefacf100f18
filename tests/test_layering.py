"""The core stays free of Qt: no module of the core packages imports PySide6, shiboken or the UI."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "desktop_app"
CORE = ["audio", "commands", "hubspot", "openapi", "relay", "sandbox", "server", "sync", "transcribe", "tunnel"]
CORE_MODULES = ["runtime.py", "errors.py", "paths.py", "settings.py", "keystore.py", "__init__.py"]
FORBIDDEN = ("PySide6", "shiboken6", "desktop_app.ui", "PyQt5", "PyQt6")


def imports_of(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def core_files() -> list[Path]:
    files = [PACKAGE / name for name in CORE_MODULES]
    for pkg in CORE:
        files.extend(sorted((PACKAGE / pkg).rglob("*.py")))
    return [f for f in files if f.exists()]


@pytest.mark.parametrize("path", core_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_core_module_does_not_import_qt(path: Path) -> None:
    bad = [name for name in imports_of(path) if name.startswith(FORBIDDEN)]
    assert not bad, f"{path} imports {bad}: the core must stay Qt-free"


def test_the_checker_sees_a_qt_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import os\nfrom PySide6.QtCore import QObject\n")
    assert [n for n in imports_of(sample) if n.startswith(FORBIDDEN)] == ["PySide6.QtCore"]


def test_the_command_line_loads_no_qt_until_the_gui_starts() -> None:
    """``callrelay`` assembles every subcommand, the GUI's among them, without loading Qt (a relay
    host may have no Qt libraries at all)."""
    import subprocess
    import sys

    code = ("import sys; from desktop_app.cli import build_parser; build_parser(); "
            "print(sorted(m for m in sys.modules if m.startswith(('PySide6', 'shiboken6'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
