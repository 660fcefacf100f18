"""The pure parts of build.spec: which Qt files the bundle keeps, which libraries it prunes and strips.

The spec is executed without PyInstaller's globals, which defines its functions and skips the build.
Building the bundle and running its self-test is ``make package-test``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from desktop_app import __version__

ROOT = Path(__file__).resolve().parent.parent


def pyside_dir() -> Path:
    import PySide6

    return Path(PySide6.__file__).parent


def qt_plugins() -> Path:
    base = pyside_dir()
    return base / "Qt" / "plugins" if (base / "Qt" / "plugins").is_dir() else base / "plugins"


def dest(path: Path) -> str:
    """Where PyInstaller puts an installed PySide6 file inside the bundle."""
    return "PySide6/" + path.relative_to(pyside_dir()).as_posix()


def kept_plugins(spec: dict[str, Any], folder: str) -> set[str]:
    """The installed PySide6's plugins of ``folder`` that the bundle keeps on this platform."""
    return {p.name for p in (qt_plugins() / folder).iterdir() if spec["keep_file"](dest(p))}


def test_the_installed_qt_plugins_are_filtered_to_what_the_app_uses(spec: dict[str, Any]) -> None:
    platforms = kept_plugins(spec, "platforms")
    wanted = {"linux": {"xcb", "offscreen"}, "darwin": {"cocoa", "offscreen"}, "win32": {"windows", "offscreen"}}
    stems = {name.split(".")[0].removeprefix("lib").removeprefix("q") for name in platforms}
    assert stems == wanted[spec["platform_key"]()], platforms
    assert not kept_plugins(spec, "multimedia")  # no backend: the player is QAudioSink fed by PyAV
    everything = {dest(p) for p in qt_plugins().rglob("*") if p.is_file()}
    kept = {rel for rel in everything if spec["keep_file"](rel)}
    for unwanted in ("wayland", "gtk3", "pdf", "virtualkeyboard", "qml", "webview", "sqldrivers", "tiff"):
        assert not [rel for rel in kept if unwanted in rel.lower()], unwanted
    assert len(kept) < len(everything) / 3, sorted(kept)


@pytest.mark.parametrize(("dest", "platform", "kept"), [
    ("PySide6/plugins/platforms/qwindows.dll", "win32", True),
    ("PySide6/plugins/platforms/qdirect2d.dll", "win32", False),
    ("PySide6/plugins/platforms/qoffscreen.dll", "win32", True),
    ("PySide6/Qt/plugins/platforms/libqcocoa.dylib", "darwin", True),
    ("PySide6/Qt/plugins/platforms/libqxcb.so", "darwin", False),
    ("PySide6/Qt/plugins/platforms/libqwayland.so", "linux", False),
    ("PySide6/Qt/plugins/platformthemes/libqgtk3.so", "linux", False),
    ("PySide6/Qt/plugins/imageformats/libqico.so", "linux", True),
    ("PySide6/Qt/plugins/imageformats/libqpdf.so", "linux", False),
    ("PySide6/Qt/plugins/multimedia/libffmpegmediaplugin.so", "linux", False),
    ("PySide6/Qt/plugins/multimedia/libgstreamermediaplugin.so", "linux", False),
    ("PySide6/plugins/multimedia/ffmpegmediaplugin.dll", "win32", False),
    ("PySide6/Qt/plugins/multimedia/libdarwinmediaplugin.dylib", "darwin", False),
    ("PySide6/Qt/lib/libQt6Multimedia.so.6", "linux", True),
    ("PySide6/QtMultimedia.abi3.so", "linux", True),
    ("PySide6/Qt/translations/qtbase_de.qm", "linux", False),
    ("PySide6/QtQml.abi3.so", "linux", False),
    ("PySide6/QtWidgets.abi3.so", "linux", True),
    ("PySide6/Qt/lib/libQt6Quick.so.6", "linux", True),  # a library: kept when linked (linked_closure)
    ("av.libs/libavcodec-5e6b81c2.so.62", "linux", True),
    ("numpy/_core/_multiarray_umath.cpython-311-x86_64-linux-gnu.so", "linux", True),
])
def test_keep_file(spec: dict[str, Any], dest: str, platform: str, kept: bool) -> None:
    assert spec["keep_file"](dest, platform) is kept


@pytest.mark.parametrize(("dest", "prunable"), [
    ("PySide6/Qt/lib/libQt6Core.so.6", True),
    ("PySide6/Qt/lib/libicudata.so.73", True),
    ("PySide6/Qt6Core.dll", True),
    ("PySide6/pyside6.abi3.dll", False),
    ("PySide6/QtCore.abi3.so", False),
    ("PySide6/Qt/plugins/platforms/libqxcb.so", False),
    ("libgtk-3.so.0", True),
    ("libpython3.11.so.1.0", False),
    ("_cffi_backend.cpython-311-x86_64-linux-gnu.so", False),
    ("av.libs/libx265-f5385bb8.so.216", False),
])
def test_is_prunable_library(spec: dict[str, Any], dest: str, prunable: bool) -> None:
    assert spec["is_prunable_library"](dest) is prunable


def test_linked_closure_follows_links_from_what_is_kept(spec: dict[str, Any]) -> None:
    links = {
        "/s/qxcb.so": ["libQt6XcbQpa.so.6"], "/s/libQt6XcbQpa.so.6": ["libQt6Gui.so.6"],
        "/s/libQt6Gui.so.6": [], "/s/libgtk-3.so.0": ["libcairo.so.2"], "/s/libcairo.so.2": [],
        "/s/libQt6Wayland.so.6": ["libQt6Gui.so.6"],
    }
    toc = [("PySide6/Qt/plugins/platforms/libqxcb.so", "/s/qxcb.so", "BINARY")]
    toc += [(f"PySide6/Qt/lib/{n}", f"/s/{n}", "BINARY") for n in ("libQt6XcbQpa.so.6", "libQt6Gui.so.6",
                                                                   "libQt6Wayland.so.6")]
    toc += [(n, f"/s/{n}", "BINARY") for n in ("libgtk-3.so.0", "libcairo.so.2")]
    needed = spec["linked_closure"](toc, lambda src: [(n, f"/s/{n}") for n in links[src]])
    assert needed == {"libQt6XcbQpa.so.6", "libQt6Gui.so.6"}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads ELF links with ldd")
def test_without_the_multimedia_backend_qt_ffmpeg_and_quick_are_left_out(spec: dict[str, Any]) -> None:
    """The QtMultimedia binding (QAudioSink) links none of Qt's FFmpeg, Qml or Quick: only the FFmpeg
    backend plugin does (its video sink), so leaving the plugin out lets linked_closure drop them all."""
    from PyInstaller.depend.bindepend import get_imports

    root = qt_plugins().parent
    libs = [("PySide6/Qt/lib/" + p.name, str(p), "BINARY") for p in (root / "lib").glob("lib*.so*")]
    binding = [("PySide6/" + p.name, str(p), "EXTENSION") for p in pyside_dir().glob("QtMultimedia.*.so")]
    plugins = [("PySide6/Qt/plugins/multimedia/" + p.name, str(p), "BINARY")
               for p in (root / "plugins" / "multimedia").iterdir()]
    assert binding and plugins
    kept = [e for e in binding + plugins + libs if spec["keep_file"](e[0], "linux")]
    needed = spec["linked_closure"](kept, get_imports)
    assert "libQt6Multimedia.so.6" in needed, sorted(needed)
    unwanted = [n for n in needed if n.startswith(("libQt6Qml", "libQt6Quick", "libav", "libsw", "libQt6FFmpeg"))]
    assert not unwanted, unwanted
    with_backend = spec["linked_closure"](binding + plugins + libs, get_imports)  # what the plugin pulled in
    assert {"libQt6Quick.so.6", "libQt6Qml.so.6"} <= with_backend, sorted(with_backend)
    assert any(n.startswith("libavcodec") for n in with_backend), sorted(with_backend)


@pytest.mark.parametrize(("rel", "strip"), [
    ("_internal/libpython3.11.so.1.0", True),
    ("_internal/av/codec/context.abi3.so", True),
    ("_internal/python3.11/lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so", True),
    ("_internal/numpy.libs/libscipy_openblas64_-32a4b2a6.so", False),
    ("_internal/av.libs/libavcodec-5e6b81c2.so.62.28.102", False),
    ("_internal/PySide6/Qt/lib/libQt6Core.so.6", False),
    ("_internal/libcrypto.so.3", False),
    ("_internal/resources/samples/sample-call.wav", False),
])
def test_strippable(spec: dict[str, Any], rel: str, strip: bool) -> None:
    assert spec["strippable"](rel) is strip


def test_strip_debug_symbols_runs_strip_on_the_strippable_files_only(spec: dict[str, Any], tmp_path: Path) -> None:
    files = ["_internal/libpython3.11.so.1.0", "_internal/av/x.abi3.so", "_internal/numpy.libs/blas.so",
             "_internal/libz.so.1", "callrelay"]
    for rel in files:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"\0" * 100)
    calls: list[str] = []

    def fake_strip(argv: list[str]) -> None:
        calls.append(Path(argv[-1]).relative_to(tmp_path).as_posix())
        Path(argv[-1]).write_bytes(b"\0" * 40)

    assert spec["strip_debug_symbols"](tmp_path, fake_strip) == 120
    assert sorted(calls) == ["_internal/av/x.abi3.so", "_internal/libpython3.11.so.1.0"]


def test_version_and_windows_version_resource(spec: dict[str, Any]) -> None:
    assert spec["project_version"]() == __version__
    text = spec["windows_version_info"]("1.2.3rc4")
    assert "filevers=(1, 2, 3, 4)" in text and "StringStruct('ProductVersion', '1.2.3rc4')" in text
    assert "filevers=(2, 0, 0, 0)" in spec["windows_version_info"]("2")


def test_the_icons_the_spec_names_exist(spec: dict[str, Any]) -> None:
    icons = ROOT / "resources" / "icons"
    assert (icons / "callrelay.ico").read_bytes()[:4] == b"\0\0\1\0"
    assert (icons / "callrelay.icns").read_bytes()[:4] == b"icns"
    assert (icons / "callrelay.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_entry_point_starts_the_window_without_arguments(spec: dict[str, Any]) -> None:
    """The bundle's entry script maps no arguments to `gui` and drops macOS's -psn_ argument."""
    seen: list[list[str]] = []
    namespace: dict[str, Any] = {"__name__": "__main__"}
    entry = spec["ENTRY"].replace("from desktop_app.cli import main  # noqa: E402\n", "")
    for argv in (["callrelay"], ["callrelay", "-psn_0_12345"], ["callrelay", "--self-test"]):
        namespace.update(main=lambda args: seen.append(args) or 0, sys=sys)
        saved = sys.argv
        sys.argv = argv
        try:
            with pytest.raises(SystemExit):
                exec(compile(entry, "callrelay_main.py", "exec"), dict(namespace))
        finally:
            sys.argv = saved
    assert seen == [["gui"], ["gui"], ["--self-test"]]
