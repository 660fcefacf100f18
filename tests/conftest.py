"""Test set-up shared by every test.

Qt runs offscreen (set before anything imports Qt); every test gets its own data directory through
``CALLRELAY_HOME`` so nothing touches the user's real settings, store, history or keyring entries.
"""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ.setdefault("QT_QUICK_BACKEND", "software")

from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402

TESTS_DIR = Path(__file__).resolve().parent
ROOT = TESTS_DIR.parent
SHARED = ROOT.parent / "shared"


@pytest.fixture(autouse=True)
def callrelay_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh data directory for each test; no HUBSPOT_* variables leak in from the caller."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("CALLRELAY_HOME", str(home))
    for name in list(os.environ):
        if name.startswith("HUBSPOT_"):
            monkeypatch.delenv(name)
    return home


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    """The pure functions and tables of ``build.spec``, executed without PyInstaller's globals."""
    namespace: dict[str, Any] = {"__name__": "build_spec", "SPECPATH": str(ROOT)}
    exec(compile((ROOT / "build.spec").read_text(encoding="utf-8"), "build.spec", "exec"), namespace)
    return namespace


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that use ``qtbot`` or live under tests/ui are GUI tests: ``-m "not gui"`` runs the core alone."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "qtbot" in fixtures or "/ui/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.gui)
