"""Benchmark of the installer (issue 9): the bundle's size and its start time to a shown window.

Builds two one-folder bundles of the same app into a temporary folder:
  * trimmed — ``build.spec`` (what ``make package`` ships);
  * plain  — ``pyinstaller --onedir --windowed`` of the same entry point, with only what the app needs
    to run at all (its subcommand modules, its data, ``resources/``), no exclusions, filters or strip.
Then prints each bundle's size and the time from starting ``callrelay self-test --only window`` to its
``ok window`` line (the main window created and shown, offscreen), over ``--runs`` starts: the first
start right after the build (the files are still in the page cache: the machine gives no way to drop
it without disturbing others), then the median of the rest. From source (the venv) for comparison.

Goals: trimmed ≤ 250 MB, start to shown window < 2 s.

    .venv/bin/python benchmarks/bundle.py [--runs 5] [--keep DIR]

Exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GOAL_MB = 250.0
GOAL_START_S = 2.0


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def breakdown(bundle: Path, top: int = 6) -> str:
    """The largest folders of a bundle's `_internal/` (what to look at for the next cut)."""
    inner = bundle / "_internal"
    if not inner.is_dir():
        return ""
    sizes = {p.name: folder_size(p) if p.is_dir() else p.stat().st_size
             for p in inner.iterdir() if not p.is_symlink()}
    files = sum(size for name, size in sizes.items() if not (inner / name).is_dir())
    parts = sorted(((size, name) for name, size in sizes.items() if (inner / name).is_dir()), reverse=True)[:top]
    return ", ".join(f"{name} {size / 1e6:.0f}" for size, name in parts) + f", top-level files {files / 1e6:.0f} (MB)"


def build_trimmed(work: Path) -> tuple[Path, float]:
    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
                    "--distpath", str(work / "dist-trimmed"), "--workpath", str(work / "build-trimmed"),
                    str(ROOT / "build.spec")], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return work / "dist-trimmed" / "Call Relay" / "callrelay", time.monotonic() - start


def build_plain(work: Path) -> tuple[Path, float]:
    spec: dict[str, object] = {"SPECPATH": str(ROOT), "__name__": "build_spec"}
    exec(compile((ROOT / "build.spec").read_text(encoding="utf-8"), "build.spec", "exec"), spec)
    entry = work / "callrelay_main.py"
    entry.write_text(str(spec["ENTRY"]), encoding="utf-8")
    sep = os.pathsep
    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN", "--onedir",
                    "--windowed", "--name", "callrelay", "--paths", str(ROOT),
                    "--collect-submodules", "desktop_app", "--collect-data", "desktop_app",
                    "--add-data", f"{ROOT / 'resources'}{sep}resources",
                    "--distpath", str(work / "dist-plain"), "--workpath", str(work / "build-plain"),
                    "--specpath", str(work), str(entry)], cwd=work, check=True, stdout=subprocess.DEVNULL)
    return work / "dist-plain" / "callrelay" / "callrelay", time.monotonic() - start


def time_to_window(argv: list[str], home: Path) -> float:
    """Seconds from starting the process to its ``ok window`` line."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["CALLRELAY_HOME"] = str(home)
    start = time.monotonic()
    proc = subprocess.Popen([*argv, "self-test", "--only", "window"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env, cwd=home)
    assert proc.stdout is not None
    seen = None
    for line in proc.stdout:
        if line.startswith(("ok window", "FAIL window")):
            seen = time.monotonic() - start
            if line.startswith("FAIL"):
                raise SystemExit(f"{argv[0]}: {line.strip()}")
    proc.wait()
    if seen is None:
        raise SystemExit(f"{argv[0]} printed no window line (exit {proc.returncode})")
    return seen


def starts(argv: list[str], runs: int, home: Path) -> tuple[float, float]:
    times = [time_to_window(argv, home) for _ in range(runs)]
    return times[0], statistics.median(times[1:] or times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", type=Path, default=None, help="build in DIR and leave the bundles there")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="callrelay-bundle-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    home = work / "home"
    home.mkdir(exist_ok=True)
    try:
        trimmed, t_build = build_trimmed(work)
        plain, p_build = build_plain(work)
        parts = breakdown(trimmed.parent)
        rows = [
            ("trimmed (build.spec)", folder_size(trimmed.parent), t_build, *starts([str(trimmed)], args.runs, home)),
            ("plain pyinstaller --onedir", folder_size(plain.parent), p_build, *starts([str(plain)], args.runs, home)),
            ("from source (venv)", None, None, *starts([sys.executable, "-m", "desktop_app"], args.runs, home)),
        ]
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{'bundle':<28} {'size':>9} {'build':>7} {'first start':>12} {'median start':>13}")
    for name, size, build, first, median in rows:
        size_s = f"{size / 1e6:.0f} MB" if size is not None else "-"
        build_s = f"{build:.0f} s" if build is not None else "-"
        print(f"{name:<28} {size_s:>9} {build_s:>7} {first:>10.2f} s {median:>11.2f} s")
    print(f"trimmed bundle's largest parts: {parts}")
    size, start = rows[0][1] or 0, rows[0][4]
    print(f"goal: size <= {GOAL_MB:.0f} MB ({'met' if size / 1e6 <= GOAL_MB else 'MISSED'}), "
          f"start to shown window < {GOAL_START_S:.0f} s ({'met' if start < GOAL_START_S else 'MISSED'}); "
          f"{args.runs} starts each, median of starts 2..{args.runs}")
    return 0 if size / 1e6 <= GOAL_MB and start < GOAL_START_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
