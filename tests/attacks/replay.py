"""Replay every attack class and print tries and failures per class.

    python -m tests.attacks.replay [--scale N]

``--scale`` multiplies each class's default count (1 = the counts of the original attack). Exit
status 0 when no class has a failure, 1 otherwise; the first failures of each class are printed.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
from pathlib import Path

from tests.attacks.common import Result

# (module, default count): the counts used when the app was first attacked
CLASSES: tuple[tuple[str, int], ...] = (
    ("tests.attacks.crafted_requests", 2000),
    ("tests.attacks.connection_floods", 4),
    ("tests.attacks.damaged_recordings", 200),
    ("tests.attacks.corrupted_datadirs", 40),
)


def run(scale: float = 1.0, only: str | None = None) -> list[Result]:
    results: list[Result] = []
    for name, count in CLASSES:
        if only and not name.endswith(only):
            continue
        module = importlib.import_module(name)
        with tempfile.TemporaryDirectory(prefix="callrelay-attack-") as tmp:
            result = module.attack(max(1, int(count * scale)), Path(tmp))
        results.append(result)
        print(result.line(), flush=True)
        for what in result.failures[:5]:
            print(f"  - {what}", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--only", help="run one class (the module's last name)")
    args = parser.parse_args(argv)
    results = run(args.scale, args.only)
    total = sum(r.tries for r in results)
    failed = sum(len(r.failures) for r in results)
    print(f"attacks: {total} tries, {failed} failures")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
