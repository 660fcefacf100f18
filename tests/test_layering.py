"""The layers hold: the core stays free of Qt (no module of the core packages imports PySide6, shiboken
or the UI), and no module of the app is in an import cycle. (The order of the layers is import-linter's
contract in pyproject.toml, which ``make test`` and ``make lint`` run as ``lint-imports``.)"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import grimp
import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "desktop_app"
CORE = ["audio", "commands", "hubspot", "openapi", "relay", "sandbox", "server", "sync", "testing", "transcribe", "tunnel"]
CORE_MODULES = ["runtime.py", "phones.py", "dbfile.py", "errors.py", "paths.py", "settings.py", "keystore.py", "__init__.py"]
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


# -- no import cycles ------------------------------------------------------------------------------------
# A cycle is a strongly connected component of more than one module in the import graph, every import
# counted: at module level, inside a function (a lazy import) and under TYPE_CHECKING alike.


def import_graph(package: str) -> grimp.ImportGraph:
    """The package's import graph (grimp), with its compiled extensions as modules of their own: grimp
    sees only .py files, so ``import pkg.sub._ext`` would otherwise count as an import of ``pkg.sub``."""
    graph = grimp.build_graph(package, cache_dir=None)
    root = Path(importlib.util.find_spec(package).origin).parent  # type: ignore[arg-type,union-attr]
    for ext in [*root.rglob("*.so"), *root.rglob("*.pyd")]:
        parent = ".".join((package, *ext.parent.relative_to(root).parts))
        name = f"{parent}.{ext.name.split('.')[0]}"
        graph.add_module(name)
        for importer in graph.find_modules_that_directly_import(parent):
            details = graph.get_import_details(importer=importer, imported=parent)
            if details and all(name in d["line_contents"] for d in details):
                graph.remove_import(importer=importer, imported=parent)
                for d in details:
                    graph.add_import(importer=importer, imported=name, line_number=d["line_number"],
                                     line_contents=d["line_contents"])
    return graph


def cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph.modules):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = stack[stack.index(node):]
                del stack[stack.index(node):]
                on_stack.difference_update(component)
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def describe(graph: grimp.ImportGraph, component: list[str]) -> str:
    lines = [f"import cycle among {', '.join(component)}:"]
    for importer in component:
        for imported in component:
            if graph.direct_import_exists(importer=importer, imported=imported):
                for d in graph.get_import_details(importer=importer, imported=imported):
                    lines.append(f"  {importer}:{d['line_number']}: {d['line_contents']}")
    return "\n".join(lines)


def test_no_module_of_the_app_is_in_an_import_cycle() -> None:
    graph = import_graph("desktop_app")
    assert "desktop_app.server.app" in graph.modules  # the graph is the app's, not an empty one
    found = cycles(graph)
    assert not found, "\n".join(describe(graph, component) for component in found)


def test_the_cycle_check_sees_a_cycle_through_a_lazy_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "cyclepkg"
    (pkg / "sub").mkdir(parents=True)
    for name, text in {
        "__init__.py": "",
        "a.py": "from cyclepkg import b\n",
        "b.py": "def later():\n    from cyclepkg.sub import c\n    return c\n",
        "sub/__init__.py": "",
        "sub/c.py": "import typing\nif typing.TYPE_CHECKING:\n    from cyclepkg import a\n",
        "d.py": "from cyclepkg import a\nfrom cyclepkg.sub import e\n",
        "sub/e.py": "",
    }.items():
        (pkg / name).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = import_graph("cyclepkg")
    assert cycles(graph) == [["cyclepkg.a", "cyclepkg.b", "cyclepkg.sub.c"]]
    assert "cyclepkg/b" not in describe(graph, cycles(graph)[0])
    assert "cyclepkg.b:2: from cyclepkg.sub import c" in describe(graph, cycles(graph)[0])
    (pkg / "sub" / "c.py").write_text("")  # the cycle broken: nothing is found
    assert cycles(import_graph("cyclepkg")) == []


def test_an_import_of_a_compiled_extension_is_not_one_of_its_package(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``import pkg._ext`` from pkg's own ``__init__``'s import chain is no cycle through ``pkg``."""
    pkg = tmp_path / "extpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from extpkg.app import App\n")
    (pkg / "app.py").write_text("from extpkg import fast\nclass App: ...\n")
    (pkg / "fast.py").write_text("try:\n    import extpkg._native as module\nexcept ImportError:\n    module = None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert cycles(import_graph("extpkg")) == [["extpkg", "extpkg.app", "extpkg.fast"]]  # grimp alone
    (pkg / "_native.cpython-311-x86_64-linux-gnu.so").write_bytes(b"")  # the extension is there
    graph = import_graph("extpkg")
    assert graph.direct_import_exists(importer="extpkg.fast", imported="extpkg._native")
    assert cycles(graph) == []


def test_resources_dir_is_in_paths_for_the_source_tree_and_the_bundle(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``paths`` (a foundation) finds the bundled files, so the UI and the self-test need no module of
    each other's for them."""
    from desktop_app import paths

    assert (paths.resources_dir() / "icons" / "callrelay.png").is_file()
    assert (paths.resources_dir() / "samples" / "sample-call.wav").is_file()
    monkeypatch.setattr("sys._MEIPASS", str(tmp_path), raising=False)
    assert paths.resources_dir() == tmp_path / "resources"


# -- no imports by name string ---------------------------------------------------------------------------
# An import written as a string (importlib.import_module, __import__, a `python -c "import …"` or
# `-m desktop_app.x` child) is one grimp and import-linter cannot see, so the layers could be dodged.
# A child process that starts the app's own entry point again is no such import; each one is listed here
# with the reason it is a string.
SPAWN_TARGETS_ALLOWED = {
    # "Restart now" starts a new process of the whole app through its entry point (desktop_app/__main__.py)
    ("ui/app.py", "desktop_app"),
}
_STRING_IMPORTERS = {"import_module", "__import__", "spec_from_file_location", "run_module", "run_path",
                     "SourceFileLoader"}


def imports_by_name(path: Path) -> list[str]:
    """Where ``path`` imports a module of ours by its name in a string (``name (line)`` each)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    rel = path.relative_to(PACKAGE).as_posix()
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in _STRING_IMPORTERS:
                found.append(f"{name}() (line {node.lineno})")
        elif isinstance(node, (ast.List, ast.Tuple)):
            words = [e.value if isinstance(e, ast.Constant) and isinstance(e.value, str) else None for e in node.elts]
            for flag, target in zip(words, words[1:], strict=False):
                if flag == "-m" and target and target.startswith("desktop_app") \
                        and (rel, target) not in SPAWN_TARGETS_ALLOWED:
                    found.append(f"-m {target} (line {node.lineno})")
                if flag == "-c" and target and "desktop_app" in target:
                    found.append(f"-c {target[:40]!r} (line {node.lineno})")
    return found


def test_no_module_of_the_app_imports_one_by_a_name_in_a_string() -> None:
    found = {str(p.relative_to(PACKAGE)): imports_by_name(p) for p in sorted(PACKAGE.rglob("*.py"))}
    assert len(found) > 100
    bad = {path: names for path, names in found.items() if names}
    assert not bad, f"imports by a name in a string, which the layer check cannot see: {bad}"


def test_the_name_string_check_sees_each_kind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(f"{__name__}.PACKAGE", tmp_path)
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import importlib, subprocess, sys\n"
        "audio = importlib.import_module('desktop_app.audio')\n"
        "ui = __import__('desktop_app.ui')\n"
        "subprocess.run([sys.executable, '-m', 'desktop_app.sandbox.fetcher'])\n"
        "subprocess.run((sys.executable, '-c', 'import desktop_app.audio'))\n"
        "subprocess.run([sys.executable, '-m', 'pip', '--version'])\n"
    )
    assert imports_by_name(sample) == ["import_module() (line 2)", "__import__() (line 3)",
                                       "-m desktop_app.sandbox.fetcher (line 4)",
                                       "-c 'import desktop_app.audio' (line 5)"]
