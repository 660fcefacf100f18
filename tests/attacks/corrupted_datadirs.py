"""Corrupted data directories: damaged settings, history and catalogue files, a data directory that
cannot be written or is not a folder, a full disk — each met by real ``callrelay`` commands.

``attack(count, workdir)`` builds ``count`` damaged data directories, cycling through ``KINDS`` (a kind
met again is varied: other bytes, another cut, another wrong value), and runs real ``callrelay``
commands as subprocesses with ``CALLRELAY_HOME`` pointing there. A failure is a traceback on stderr, an
exit code other than 0, 1 or 2, a refusal that is not one line naming the damaged file, a command that
should still work (``history`` on a read-only data directory or a full disk) failing, a damaged file
that changed (SHA-256 before and after), or a command that hangs.

As root, permission bits stop nothing: where a kind needs a read-only or unreadable file the commands
run without root's file-access capabilities (``setpriv``), so the kernel refuses for real. A full disk
is a real small tmpfs mounted for the try and unmounted after; where mounting is refused (not root, no
CAP_SYS_ADMIN) the try is made with a file-size limit (RLIMIT_FSIZE) instead and says so in
``NOTES``. The tests in ``tests/test_datadir.py`` use the same kinds in-process.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import wave
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tests.attacks.common import Result

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 40.0  # a command that takes longer hangs
SERVE_TIMEOUT_S = 10.0  # `serve` on a damaged data directory must stop by itself within this
# a valid data directory that names no HubSpot account (`upload` and `resume` refuse for that reason
# when nothing else stops them) and no reachable HubSpot (`hubspot test` fails fast, offline)
BASE_SETTINGS = {"hubspot.sandbox": False, "hubspot.api_url": "http://127.0.0.1:9"}
HISTORY_ROWS = 3
NOTES: list[str] = []  # how the tries were made where the first means was refused

COMMANDS: dict[str, tuple[str, ...]] = {
    "history": ("history",),
    "history-json": ("history", "--json"),
    "upload": ("upload", "{wav}"),
    "resume": ("resume", "--no-transcripts"),
    "hubspot": ("hubspot", "test"),
    "serve": ("serve", "--port", "0", "--workers", "1"),
    "check": ("check", "{wav}"),
}


@dataclass(frozen=True)
class Kind:
    """One way a data directory is damaged. ``make(home, variant)`` damages a valid data directory and
    returns the path a refusal must name (None: no single file)."""

    name: str
    make: Callable[[Path, int], Path | None]
    commands: tuple[str, ...]
    refused_by: tuple[str, ...] = ()  # must exit 1 with one line on stderr naming the damaged path
    works_for: tuple[str, ...] = ()  # must exit 0 and list the history's rows
    restricted: bool = False  # run without root's file-access capabilities
    full_disk: bool = False
    home_is_damaged: bool = False  # the commands run with CALLRELAY_HOME set to the damaged path
    keyring: str = "keyring.backends.null.Keyring"  # no secrets, and never the user's keyring


# -- the valid data directory every kind starts from ---------------------------------------------------
def write_wav(path: Path, seconds: float = 1.0) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(bytes(range(256)) * int(seconds * 8000 * 4 / 256))
    return path


def make_template(home: Path) -> Path:
    """A valid data directory: settings, a history of a few submissions, a catalogue with one recording."""
    from desktop_app.server.recordings import RecordingStore
    from desktop_app.sync import history as h

    home.mkdir(parents=True, exist_ok=True)
    (home / "settings.json").write_text(json.dumps(BASE_SETTINGS), encoding="utf-8")
    with h.History(home / "history.sqlite3") as hist:
        for n in range(HISTORY_ROWS):
            hist.add_submission(recording_path=f"/calls/{n}.wav", recording_name=f"{n}.wav", external_id=f"ext-{n}",
                                details={"title": f"Call {n}"}, agent="ann", state="checked", status=h.FAILED)
    store = RecordingStore(home / "recordings", min_free_bytes=0)
    store.add(write_wav(home.parent / f"{home.name}-call.wav"))
    store.close()
    return home


# -- damage to one file ---------------------------------------------------------------------------------
Damage = Callable[[Path, int], None]  # (the file, the variant)
SETTINGS, HISTORY, CATALOGUE = "settings.json", "history.sqlite3", "recordings/catalog.sqlite3"


def on(relative: str, damage: Damage) -> Callable[[Path, int], Path]:
    """A kind's ``make``: ``damage`` done to the data directory's file ``relative``, which is returned."""
    def make(home: Path, variant: int) -> Path:
        damage(home / relative, variant)
        return home / relative
    return make


def _content(*choices: bytes) -> Damage:
    """The file's bytes replaced by one of ``choices`` (the variant picks)."""
    def damage(path: Path, variant: int) -> None:
        path.write_bytes(choices[variant % len(choices)])
    return damage


def _folder(path: Path, variant: int) -> None:
    path.unlink()
    path.mkdir()
    (path / "something").write_text("x")


def _loop(path: Path, variant: int) -> None:
    path.unlink()
    if variant % 2:
        (path.parent / "other.json").symlink_to(path)
        path.symlink_to(path.parent / "other.json")
    else:
        path.symlink_to(path)


def _unreadable(path: Path, variant: int) -> None:
    path.chmod(0)


def _read_only(path: Path, variant: int) -> None:
    path.chmod(0o444)


def _random_bytes(path: Path, variant: int) -> None:
    size = (100, 4096, 70_000)[variant % 3]
    path.write_bytes(hashlib.shake_256(f"{path.name}{variant}".encode()).digest(size))


def _truncated(path: Path, variant: int) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.truncate((size // 2, 4096 + 100, size // 3)[variant % 3])


def _garbled(path: Path, variant: int) -> None:
    """Bytes past the first page overwritten: SQLite may find the damage, or read garbage."""
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.seek(4096 + (variant * 7919) % max(1, size - 8192))
        fh.write(hashlib.shake_256(f"garble{variant}".encode()).digest(4096))


def _newer(path: Path, variant: int) -> None:
    db = sqlite3.connect(path)
    if variant % 2:  # in rollback-journal mode: opening it must not switch it to WAL either
        db.execute("PRAGMA journal_mode=DELETE")
    db.execute(f"PRAGMA user_version = {99 + variant}")
    db.close()


def _foreign(path: Path, variant: int) -> None:
    path.unlink()
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE contacts (name TEXT)")
    db.execute("INSERT INTO contacts VALUES ('someone else''s data')")
    db.commit()
    db.close()


def _bad_row(column: str, value: str) -> Damage:
    """One submission's text damaged (invalid UTF-8, details that are not JSON)."""
    def damage(path: Path, variant: int) -> None:
        db = sqlite3.connect(path)
        db.execute(f"UPDATE submissions SET {column} = {value} WHERE id = ?", (1 + variant % HISTORY_ROWS,))
        db.commit()
        db.close()
    return damage


# -- damage to the data directory --------------------------------------------------------------------
def _readonly_home(home: Path, variant: int) -> None:
    for folder, _dirs, files in os.walk(home):
        for name in files:
            (Path(folder) / name).chmod(0o444)
        Path(folder).chmod(0o555)


def _home_is_file(home: Path, variant: int) -> Path:
    shutil.rmtree(home)
    home.write_text("not a folder")
    return home


def _home_under_file(home: Path, variant: int) -> Path:
    shutil.rmtree(home)
    home.write_text("not a folder")
    return home / "callrelay"  # the command runs with CALLRELAY_HOME set here


def _nothing(home: Path, variant: int) -> None:
    return None  # the damage is elsewhere: the disk (``Kind.full_disk``), the keyring (``Kind.keyring``)


SETTINGS_USERS = ("upload", "resume", "hubspot", "serve")
DB_USERS = ("history", "history-json", "upload", "resume")
HISTORY_READERS = ("history", "history-json")
CATALOGUE_USERS = ("upload", "resume", "serve")
ALL = tuple(COMMANDS)

# Interleaved, so that a short run meets settings, history, catalogue and the data directory itself.
KINDS: tuple[Kind, ...] = (
    Kind("settings: not JSON", on(SETTINGS, _content(b"not json", b"{'single': 'quotes'}", b'{"server.port": 1,}')),
         ("upload", "hubspot", "serve"), refused_by=SETTINGS_USERS),
    Kind("history: random bytes", on(HISTORY, _random_bytes), DB_USERS, refused_by=DB_USERS),
    Kind("settings: deep nesting", on(SETTINGS, _content(b"[" * 100_000, b'{"a":' * 100_000)), ("resume", "serve"),
         refused_by=SETTINGS_USERS),
    Kind("catalogue: random bytes", on(CATALOGUE, _random_bytes), CATALOGUE_USERS,
         refused_by=CATALOGUE_USERS),
    Kind("settings: NaN or an infinity", on(SETTINGS, _content(b'{"server.idle_timeout_s": NaN}',
                                                         b'{"server.idle_timeout_s": Infinity}',
                                                         b'{"server.link_ttl_s": -Infinity}')),
         ("serve", "hubspot"), refused_by=SETTINGS_USERS),
    Kind("history: read-only data directory", _readonly_home, ("history", "history-json", "upload"),
         works_for=HISTORY_READERS, restricted=True),
    Kind("settings: invalid UTF-8", on(SETTINGS, _content(b'{"calls.agent": "\xff\xfe"}', b"\xc3\x28{}")),
         ("upload", "resume"), refused_by=SETTINGS_USERS),
    Kind("history: truncated", on(HISTORY, _truncated), HISTORY_READERS),
    Kind("data directory: a file", _home_is_file, ALL, refused_by=("history", "upload", "resume", "hubspot", "serve"),
         home_is_damaged=True),
    Kind("settings: a folder", on(SETTINGS, _folder), ("hubspot", "serve"), refused_by=SETTINGS_USERS),
    Kind("history: newer schema", on(HISTORY, _newer), DB_USERS, refused_by=DB_USERS),
    Kind("settings: unreadable", on(SETTINGS, _unreadable), ("upload", "hubspot"), refused_by=SETTINGS_USERS,
         restricted=True),
    Kind("history: full disk", _nothing, ("history", "history-json", "upload"), works_for=HISTORY_READERS,
         full_disk=True),
    Kind("settings: empty", on(SETTINGS, _content(b"", b"  \n")), ("resume", "hubspot"), refused_by=SETTINGS_USERS),
    Kind("history: a folder", on(HISTORY, _folder), DB_USERS, refused_by=DB_USERS),
    Kind("settings: JSON that is not an object", on(SETTINGS, _content(b"[]", b'"settings"', b"42", b"null", b"true")),
         ("upload", "serve"), refused_by=SETTINGS_USERS),
    Kind("catalogue: newer schema", on(CATALOGUE, _newer), CATALOGUE_USERS,
         refused_by=CATALOGUE_USERS),
    Kind("settings: unknown setting", on(SETTINGS, _content(b'{"server.prot": 8765}', b'{"hubspot": {"sandbox": true}}')),
         ("resume", "hubspot"), refused_by=SETTINGS_USERS),
    Kind("history: read-only file", on(HISTORY, _read_only), ("history", "history-json", "resume"),
         works_for=HISTORY_READERS, restricted=True),
    Kind("settings: wrong types", on(SETTINGS, _content(b'{"server.port": "8765"}', b'{"hubspot.sandbox": "yes"}',
                                                  b'{"calls.pbx_patterns": {}}', b'{"server.workers": 2.5}')),
         ("upload", "serve"), refused_by=SETTINGS_USERS),
    Kind("history: not JSON details", on(HISTORY, _bad_row("details", "'{not json'")), HISTORY_READERS,
         refused_by=HISTORY_READERS),
    Kind("settings: huge numbers", on(SETTINGS, _content(b'{"server.idle_timeout_s": 1e400}',
                                                   b'{"hubspot.daily_limit": ' + b"9" * 5000 + b"}",
                                                   b'{"server.port": 100000000000000000000000000000}')),
         ("hubspot", "serve"), refused_by=SETTINGS_USERS),
    Kind("history: another program's database", on(HISTORY, _foreign), DB_USERS, refused_by=DB_USERS),
    Kind("settings: a symlink loop", on(SETTINGS, _loop), ("resume", "serve"), refused_by=SETTINGS_USERS),
    Kind("catalogue: a folder", on(CATALOGUE, _folder), CATALOGUE_USERS, refused_by=CATALOGUE_USERS),
    Kind("settings: a name written twice", on(SETTINGS, _content(b'{"server.port": 1, "server.port": 2}')), ("upload", "hubspot"),
         refused_by=SETTINGS_USERS),
    Kind("history: text that is not UTF-8", on(HISTORY, _bad_row("recording_name", "CAST(X'FFFE41' AS TEXT)")), HISTORY_READERS,
         refused_by=HISTORY_READERS),
    Kind("data directory: under a file", _home_under_file, ("history", "upload", "hubspot"),
         refused_by=("history", "upload", "hubspot"), home_is_damaged=True),
    Kind("settings: null values", on(SETTINGS, _content(b'{"server.port": null}', b'{"calls.agent": null}')),
         ("resume", "serve"), refused_by=SETTINGS_USERS),
    Kind("history: garbled pages", on(HISTORY, _garbled), DB_USERS),
    Kind("catalogue: truncated", on(CATALOGUE, _truncated), CATALOGUE_USERS),
    Kind("settings: a byte-order mark (accepted)", on(SETTINGS, _content(b"\xef\xbb\xbf" + json.dumps(BASE_SETTINGS).encode())),
         ("upload", "check")),
    Kind("history: unreadable", on(HISTORY, _unreadable), DB_USERS, refused_by=DB_USERS, restricted=True),
    Kind("catalogue: unreadable", on(CATALOGUE, _unreadable), CATALOGUE_USERS,
         refused_by=CATALOGUE_USERS, restricted=True),
    Kind("keyring: none usable", _nothing, ("hubspot", "upload", "serve"), refused_by=("hubspot", "upload", "serve"),
         keyring="keyring.backends.fail.Keyring"),
)


# -- running the real command ---------------------------------------------------------------------------
def restricted_prefix() -> list[str]:
    """What makes a command meet permission bits as a user does: as root, drop the file-access capabilities."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if not setpriv:
        raise RuntimeError("setpriv (util-linux) is needed to drop root's file-access capabilities")
    drop = "-dac_override,-dac_read_search"
    return [setpriv, "--bounding-set", drop, "--inh-caps", drop]


@dataclass
class Run:
    command: str
    returncode: int | None  # None: it hung
    stdout: str
    stderr: str


def run(home: Path, command: str, wav: Path, *, restricted: bool = False, fsize: int | None = None,
        keyring: str = Kind.keyring) -> Run:
    """One real ``callrelay`` command against the data directory ``home``."""
    args = [a.format(wav=wav) for a in COMMANDS[command]]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUBSPOT_")}
    env.update(CALLRELAY_HOME=str(home), PYTHON_KEYRING_BACKEND=keyring)
    cmd = [*(restricted_prefix() if restricted else []), sys.executable, "-m", "desktop_app", *args]

    def limit() -> None:
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=limit if fsize is not None else None, start_new_session=True)
    timeout = SERVE_TIMEOUT_S if command == "serve" else TIMEOUT_S
    try:
        out, err = proc.communicate(timeout=timeout)
        return Run(command, proc.returncode, out, err)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return Run(command, None, out, err)


def rows_listed(run: Run) -> int:
    """How many submissions a ``history`` run printed (a JSON line, or a table row, each)."""
    if run.command == "history-json":
        return sum(line.startswith("{") for line in run.stdout.splitlines())
    return sum(line.endswith(".wav") for line in run.stdout.splitlines())


def digests(home: Path, damaged: Path | None) -> dict[Path, str]:
    """SHA-256 of the damaged file and of the data directory's files: the commands leave them as they are."""
    out: dict[Path, str] = {}
    names = ("settings.json", "history.sqlite3", "recordings/catalog.sqlite3")
    for path in {*(home / n for n in names), *([damaged] if damaged else [])}:
        with contextlib.suppress(OSError):  # a folder, a loop, no file: nothing to compare
            if path.is_file() and os.access(path, os.R_OK):
                out[path] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@contextlib.contextmanager
def full_disk(folder: Path, size_kb: int = 1024) -> Iterator[int | None]:
    """``folder`` on a real, small tmpfs that a filler file fills to the last byte; yields None. Where
    mounting is refused, yields the file-size limit to run the commands with instead."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(folder)], capture_output=True).returncode == 0
    if not mounted:
        note = "full disk: mounting a tmpfs was refused; RLIMIT_FSIZE stood in for it"
        if note not in NOTES:
            NOTES.append(note)
        yield 64 * 1024
        return
    try:
        yield None
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill(folder: Path) -> None:
    """Write a file in ``folder`` until its disk has no byte left."""
    with open(folder / "filler", "wb", buffering=0) as fh:
        for size in (1 << 16, 4096, 512, 1):
            with contextlib.suppress(OSError):
                while fh.write(b"\0" * size):
                    pass


# -- one try --------------------------------------------------------------------------------------------
def check(kind: Kind, damaged: Path | None, runs: list[Run], before: dict[Path, str], after: dict[Path, str],
          result: Result, label: str) -> None:
    for r in runs:
        where = f"{label}: `callrelay {' '.join(COMMANDS[r.command])}`"
        if r.returncode is None:
            result.fail(f"{where} hung (no end within {SERVE_TIMEOUT_S if r.command == 'serve' else TIMEOUT_S:g} s)")
            continue
        if "Traceback" in r.stderr:
            last = r.stderr.strip().splitlines()[-1]
            result.fail(f"{where} printed a traceback: {last[:200]}")
            continue
        if r.returncode not in (0, 1, 2):
            result.fail(f"{where} exited {r.returncode}: {r.stderr.strip()[-200:]}")
            continue
        if r.command in kind.refused_by:
            lines = [line for line in r.stderr.splitlines() if line.strip()]
            if r.returncode != 1 or len(lines) != 1 or (damaged is not None and str(damaged) not in lines[0]):
                named = f" naming {damaged.name}" if damaged is not None else ""
                result.fail(f"{where} did not refuse in one line{named} (exit {r.returncode}): "
                            f"{r.stderr.strip()[:300]!r}")
        if r.command in kind.works_for:
            rows = rows_listed(r)
            if r.returncode != 0 or rows != HISTORY_ROWS:
                result.fail(f"{where} should still list the {HISTORY_ROWS} submissions (exit {r.returncode}, "
                            f"{rows} rows): {r.stderr.strip()[:300]!r}")
    for path, digest in before.items():
        if after.get(path) != digest:
            result.fail(f"{label}: {path.name} was changed or removed")


def one_try(index: int, template: Path, workdir: Path, wav: Path, result: Result) -> None:
    kind = KINDS[index % len(KINDS)]
    variant = index // len(KINDS)
    label = f"try {index} ({kind.name}, variant {variant})"
    base = workdir / f"try{index:03d}"
    with contextlib.ExitStack() as stack:
        fsize = stack.enter_context(full_disk(base)) if kind.full_disk else None
        home = base / "home"
        shutil.copytree(template, home)
        try:
            damaged = kind.make(home, variant)
        except OSError as exc:
            result.fail(f"{label}: the damage could not be made: {exc}")
            return
        if kind.full_disk and fsize is None:
            fill(base)
        target = damaged if kind.home_is_damaged and damaged is not None else home
        before = digests(home, damaged)
        runs = [run(target, c, wav, restricted=kind.restricted, fsize=fsize, keyring=kind.keyring)
                for c in kind.commands]
        after = digests(home, damaged)
        check(kind, damaged, runs, before, after, result, label)
        if kind.restricted:  # let the clean-up remove what was made read-only
            for folder, _dirs, _files in os.walk(base):
                Path(folder).chmod(0o755)


def attack(count: int, workdir: Path, *, jobs: int = 0) -> Result:
    """``count`` damaged data directories, each met by the commands of its kind (several at once)."""
    result = Result("corrupted_datadirs")
    template = make_template(workdir / "template" / "home")
    wav = write_wav(workdir / "call.wav")
    jobs = jobs or max(2, min(6, (os.cpu_count() or 2) * 2))
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for future in [pool.submit(one_try, i, template, workdir, wav, result) for i in range(count)]:
            future.result()
    result.tries = count
    for note in NOTES:
        print(f"corrupted_datadirs: {note}", flush=True)
    return result

