"""Damaged recordings: the real ``callrelay check --json --analyse`` and ``inspect()`` on damaged files.

Each try is one file made from a real recording (WAV: 16-bit PCM with a LIST chunk, 24-bit
extensible, µ-law, RF64; FLAC; MP4/AAC) by one seeded damage: a cut at a chunk, box, metadata-block
or frame boundary or anywhere; zeros or random bytes after the audio (some a sparse 200 MB); bytes
flipped in the header; chunk and box sizes made zero, huge or wrong; format chunks of odd sizes;
format fields zeroed or changed; FLAC metadata and frames damaged; MP4 boxes renamed; random bytes
named like a recording; empty and tiny files; a name that is not text.

The files go to the command in batches (a child process each, its peak memory measured), then to
``probe()`` and ``inspect()`` in this process. A failure is: a traceback or anything else on stderr
(the safety nets that turn a bug into a verdict log there), output that is not one valid JSON object
per file in order, a hang (``BATCH_TIMEOUT_S``), more than ``MAX_RSS_MB`` of memory, an exit status
other than 0/1 or not matching the verdicts, a damage that must show judged clean (uploadable with no
problem), ``probe()``/``inspect()`` raising or logging a warning, or ``inspect()`` disagreeing with
the command.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.attacks.common import Result
from tests.audio import gen
from tests.audio.measure import callrelay, run_measured

BATCH = 25
BATCH_TIMEOUT_S = 120.0
MAX_RSS_MB = 300.0
KEYS = {"path", "container", "codec", "channels", "sample_rate", "bit_depth", "duration_s", "size_bytes",
        "uploadable", "problems"}


@dataclass
class Source:
    """A clean recording and where its parts are: (name, start, end) of each chunk, box or block."""

    kind: str  # wav, flac, mp4
    ext: str
    data: bytes
    parts: list[tuple[str, int, int]]
    audio: tuple[int, int]  # the byte range of the audio itself (WAV data, FLAC frames, MP4 mdat)


@dataclass
class Damage:
    data: bytes
    must_show: bool  # a damage that must not be judged clean
    what: str
    sparse_zeros: int = 0  # zero bytes appended as a hole (a sparse file)


def _riff_parts(data: bytes, first: int = 12) -> list[tuple[str, int, int]]:
    parts, pos = [], first
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if cid == b"data" and size == 0xFFFFFFFF:  # RF64: the size is in ds64
            size = len(data) - pos - 8
        parts.append((cid.decode("latin-1"), pos, pos + 8 + size + (size & 1)))
        pos += 8 + size + (size & 1)
    return parts


def _mp4_parts(data: bytes, start: int = 0, end: int | None = None, depth: int = 0) -> list[tuple[str, int, int]]:
    parts, pos, end = [], start, len(data) if end is None else end
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if size < 8:
            break
        parts.append((kind.decode("latin-1"), pos, pos + size))
        if kind in (b"moov", b"trak", b"mdia", b"minf", b"stbl") and depth < 6:
            parts += _mp4_parts(data, pos + 8, pos + size, depth + 1)
        pos += size
    return parts


def _flac_parts(data: bytes) -> tuple[list[tuple[str, int, int]], int]:
    parts, pos = [], 4
    while True:
        last, length = data[pos] & 0x80, int.from_bytes(data[pos + 1:pos + 4], "big")
        parts.append((f"meta{data[pos] & 0x7F}", pos, pos + 4 + length))
        pos += 4 + length
        if last:
            break
    frames = [m.start() for m in re.finditer(b"\xff\xf8", data[pos:])]
    parts += [("frame", pos + a, pos + b) for a, b in zip(frames, frames[1:] + [len(data) - pos], strict=True)]
    return parts, pos


def sources(folder: Path) -> list[Source]:
    x = gen.call(3.0)
    out = []
    for data in (gen.wav_bytes(x, extra_chunk=True), gen.wav_bytes(x, bits=24, kind="extensible"),
                 gen.wav_bytes(x, kind="mulaw"), gen.wav_bytes(x, rf64=True)):
        parts = _riff_parts(data)
        (_, d0, d1), = [p for p in parts if p[0] == "data"]
        out.append(Source("wav", ".wav", data, parts, (d0 + 8, d1)))
    flac = gen.encode(folder / "src.flac", x, "flac").read_bytes()
    parts, start = _flac_parts(flac)
    out.append(Source("flac", ".flac", flac, parts, (start, len(flac))))
    mp4 = gen.encode(folder / "src.mp4", x, "aac").read_bytes()
    parts = _mp4_parts(mp4)
    (_, m0, m1), = [p for p in parts if p[0] == "mdat"]
    out.append(Source("mp4", ".mp4", mp4, parts, (m0 + 8, m1)))
    return out


# --- the damages --------------------------------------------------------------------------------------
# Each takes the seeded generator and a clean source and gives one damaged file. ``must_show`` is set only
# where the damage certainly changes what is heard or read: a flipped bit in a field players ignore is not.

def cut(rng: random.Random, s: Source) -> Damage:
    """Cut at a part's start or end, or anywhere, or a few bytes before the end."""
    points = sorted({p for _, a, b in s.parts for p in (a, b)} | {rng.randrange(1, len(s.data))}
                    | {len(s.data) - rng.randint(1, 3)})
    at = rng.choice([p for p in points if 0 < p < len(s.data)])
    # WAV: only a cut into the header or the samples loses something (a chunk after them is metadata)
    return Damage(s.data[:at], s.kind != "wav" or at < s.audio[1], f"cut at {at} of {len(s.data)}")


def trailing(rng: random.Random, s: Source) -> Damage:
    size = rng.choice([1500, 20_000, 300_000, 3_000_000])
    zeros = rng.random() < 0.5
    extra = bytes(size) if zeros else rng.randbytes(size)
    if rng.random() < 0.1:  # a sparse hole of 200 MB (64 MB after a WAV, which reads it as audio)
        return Damage(s.data + extra, True, f"{size} bytes and a sparse hole after the audio",
                      sparse_zeros=(64 if s.kind == "wav" else 200) * 2**20)
    return Damage(s.data + extra, True, f"{size} {'zero' if zeros else 'random'} bytes after the audio")


def flip(rng: random.Random, s: Source) -> Damage:
    """Flip 1-4 random bytes in the header (everything before the audio) or in the MP4 index."""
    raw = bytearray(s.data)
    lo, hi = (0, s.audio[0]) if s.kind != "mp4" else max(((a, b) for n, a, b in s.parts if n == "moov"))
    spots = [rng.randrange(lo, hi) for _ in range(rng.randint(1, 4))]
    for i in spots:
        raw[i] ^= rng.randint(1, 255)
    return Damage(bytes(raw), False, f"bytes flipped at {spots}")


def size_field(rng: random.Random, s: Source) -> Damage:
    """A chunk's, box's or metadata block's size made zero, huge or wrong by a few bytes."""
    name, a, b = rng.choice([p for p in s.parts if p[0] != "frame"])
    raw = bytearray(s.data)
    true = b - a
    if s.kind == "wav":
        field, pack, head = slice(a + 4, a + 8), "<I", 8
    elif s.kind == "mp4":
        field, pack, head = slice(a, a + 4), ">I", 0
    else:
        field, pack, head = slice(a + 1, a + 4), ">I", 4
    old = int.from_bytes(raw[field], "little" if s.kind == "wav" else "big")
    new = rng.choice([0, 0xFFFFFF if s.kind == "flac" else 0xFFFFFFFF, old + rng.choice([-9, -2, 2, 7, 1000]),
                      old * 2 + 1])
    new = max(0, min(new, 0xFFFFFF if s.kind == "flac" else 0xFFFFFFFF))
    raw[field] = struct.pack(pack, new)[1:] if s.kind == "flac" else struct.pack(pack, new)
    last = b >= len(s.data)
    if s.kind == "wav":
        # a data size off by one is not a lost sample; a RF64's real data size is in ds64
        must = name != "data" or (abs(new - old) >= 2 and not (s.data[:4] == b"RF64" and old == 0xFFFFFFFF))
    elif s.kind == "mp4":
        # size 0 means "to the end of the file", which is right for the last box; inside moov, a wrong size
        # may only shift a box players do not need
        top = any(n in ("ftyp", "free", "mdat", "moov") and p == a for n, p, _ in s.parts)
        must = top and not (new == 0 and last) and name in ("ftyp", "mdat", "moov") and new != true
    else:
        must = new + head != true
    return Damage(bytes(raw), must, f"{name} size {old} -> {new}")


def wav_format(rng: random.Random, s: Source) -> Damage:
    """A WAV's format chunk: a field zeroed or changed, the tag damaged, or the chunk an odd size."""
    (_, a, b), = [p for p in s.parts if p[0] == "fmt "]
    raw = bytearray(s.data)
    body = a + 8
    choice = rng.randrange(6)
    if choice == 0:  # channels, rate, block align or bits zero
        off = rng.choice([2, 4, 12, 14])
        raw[body + off:body + off + (4 if off == 4 else 2)] = bytes(4 if off == 4 else 2)
        return Damage(bytes(raw), True, f"format field at +{off} zeroed")
    if choice == 1:  # the tag: 0, extensible in a 16-byte chunk, or unknown
        tag = rng.choice([0, 0xFFFE, 0x1234, 0x0002])
        fmt = bytes(raw[body:body + 16])
        fmt = struct.pack("<H", tag) + fmt[2:16]
        new = s.data[:a] + b"fmt " + struct.pack("<I", 16) + fmt + s.data[b:]
        return Damage(_resized_riff(new), tag != 0x0002 or s.data[body:body + 2] != b"\x02\x00",
                      f"format tag {tag:#06x} in a 16-byte chunk")
    if choice == 2:  # the channel count changed (the frame size no longer fits)
        ch = struct.unpack("<H", raw[body + 2:body + 4])[0]
        new_ch = rng.choice([1, 3, 255, 65535])
        raw[body + 2:body + 4] = struct.pack("<H", new_ch)
        return Damage(bytes(raw), new_ch != ch, f"channels {ch} -> {new_ch}")
    if choice == 3:  # an odd, well-formed size: extra bytes (18 with cbSize 0, 20, 17 with a pad byte)
        extra = rng.choice([b"\x00\x00", b"\x00\x00\x00\x00", b"\x00"])
        new_fmt = s.data[body:b] + extra
        pad = b"\x00" if len(new_fmt) & 1 else b""
        new = s.data[:a] + b"fmt " + struct.pack("<I", len(new_fmt)) + new_fmt + pad + s.data[b:]
        return Damage(_resized_riff(new), False, f"format chunk of {len(new_fmt)} bytes")
    if choice == 4:  # the rate: huge, tiny
        rate = rng.choice([1, 7, 4_000_000_000, 0xFFFFFFFF])
        raw[body + 4:body + 8] = struct.pack("<I", rate)
        return Damage(bytes(raw), False, f"sample rate {rate}")
    bits = rng.choice([0, 7, 12, 40, 64, 0xFFFF])
    raw[body + 14:body + 16] = struct.pack("<H", bits)
    return Damage(bytes(raw), True, f"bits per sample {bits}")


def _resized_riff(data: bytes) -> bytes:
    if data[:4] != b"RIFF":
        return data
    return data[:4] + struct.pack("<I", len(data) - 8) + data[8:]


def flac_frames(rng: random.Random, s: Source) -> Damage:
    """Frames overwritten (zeros or random), STREAMINFO damaged, or the last-block flag cleared."""
    raw = bytearray(s.data)
    choice = rng.randrange(3)
    if choice == 0:
        n = rng.randint(64, 4000)
        at = rng.randrange(s.audio[0], len(raw) - n)
        raw[at:at + n] = bytes(n) if rng.random() < 0.5 else rng.randbytes(n)
        return Damage(bytes(raw), True, f"{n} bytes of frames overwritten at {at}")
    if choice == 1:
        i = rng.randrange(8, 8 + 34)
        raw[i] = rng.randrange(256)
        return Damage(bytes(raw), False, f"STREAMINFO byte {i - 8} set to {raw[i]}")
    metas = [(a, b) for n, a, b in s.parts if n.startswith("meta")]
    a, _ = metas[-1]
    raw[a] &= 0x7F
    return Damage(bytes(raw), True, "the last metadata block not marked last")


def mp4_boxes(rng: random.Random, s: Source) -> Damage:
    """A box renamed, or bytes flipped inside one box of the index."""
    name, a, b = rng.choice([p for p in s.parts if p[0] != "mdat"])
    raw = bytearray(s.data)
    if rng.random() < 0.5:
        new = rng.choice([b"xxxx", b"\x00\x00\x00\x00", b"free", b"mdat"])
        raw[a + 4:a + 8] = new
        must = name in ("moov", "trak", "mdia", "minf", "stbl", "stsd")  # the way to the audio's description
        return Damage(bytes(raw), must, f"box {name} renamed {new!r}")
    spots = [rng.randrange(a + 8, max(a + 9, b)) for _ in range(rng.randint(1, 3))]
    for i in spots:
        raw[i] ^= rng.randint(1, 255)
    return Damage(bytes(raw), False, f"bytes flipped in {name} at {spots}")


def junk(rng: random.Random, s: Source) -> Damage:
    """Random bytes, an empty file, or the first few bytes of a recording."""
    choice = rng.randrange(3)
    if choice == 0:
        return Damage(rng.randbytes(rng.choice([1, 100, 5000, 200_000])), True, "random bytes")
    if choice == 1:
        return Damage(b"", True, "empty")
    n = rng.randint(1, 64)
    return Damage(s.data[:n], True, f"the first {n} bytes")


def stacked(rng: random.Random, s: Source) -> Damage:
    """Two to four damages on top of each other, and some bytes flipped anywhere (crashes, not verdicts)."""
    current, what = s, []
    for _ in range(rng.randint(2, 4)):
        fn, kinds = DAMAGES[rng.choice([k for k in DAMAGES if k != "stacked"])]
        if current.kind not in kinds:
            continue
        try:
            damage = fn(rng, current)
        except (IndexError, ValueError, struct.error):  # the parts moved under an earlier damage
            continue
        what.append(damage.what)
        current = Source(s.kind, s.ext, damage.data, [p for p in s.parts if p[2] <= len(damage.data)] or s.parts,
                         s.audio)
        if not damage.data:
            break
    raw = bytearray(current.data)
    for _ in range(rng.randint(0, 8) if raw else 0):
        raw[rng.randrange(len(raw))] = rng.randrange(256)
    return Damage(bytes(raw), False, " + ".join(what) + " + flips")


DAMAGES: dict[str, tuple[Callable[[random.Random, Source], Damage], tuple[str, ...]]] = {
    "cut": (cut, ("wav", "flac", "mp4")),
    "trailing": (trailing, ("wav", "flac", "mp4")),
    "flip": (flip, ("wav", "flac", "mp4")),
    "size": (size_field, ("wav", "flac", "mp4")),
    "wav-format": (wav_format, ("wav",)),
    "flac-frames": (flac_frames, ("flac",)),
    "mp4-boxes": (mp4_boxes, ("mp4",)),
    "junk": (junk, ("wav", "flac", "mp4")),
    "stacked": (stacked, ("wav", "flac", "mp4")),
}


def make(count: int, folder: Path, seed: int = 15) -> list[tuple[Path, Damage]]:
    rng = random.Random(seed)
    srcs = sources(folder)
    made = []
    for i in range(count):
        kind = list(DAMAGES)[i % len(DAMAGES)]  # every kind of damage in turn, so a small run has them all
        damage_fn, kinds = DAMAGES[kind]
        src = rng.choice([s for s in srcs if s.kind in kinds])
        damage = damage_fn(rng, src)
        stem = f"{i:04d}-{kind}"
        if rng.random() < 0.05:  # a name from a system whose names are not UTF-8
            stem += os.fsdecode(b"-M\xfcller")
        path = folder / f"{stem}{src.ext}"
        with open(path, "wb") as fh:
            fh.write(damage.data)
            if damage.sparse_zeros:
                fh.truncate(len(damage.data) + damage.sparse_zeros)
        damage.data = b""  # on disk now: a long run must not hold every file in memory
        made.append((path, damage))
    return made


# --- the run -----------------------------------------------------------------------------------------

def _strict(value: str) -> Any:
    raise ValueError(f"{value} is not JSON")


class _Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record.getMessage())


def attack(count: int, workdir: Path) -> Result:
    from desktop_app.audio import CODES, inspect, probe

    result = Result("damaged_recordings")
    folder = workdir / "recordings"
    folder.mkdir(parents=True, exist_ok=True)
    made = make(count, folder)
    env = dict(os.environ, CALLRELAY_HOME=str(workdir / "home"))
    warnings = _Warnings()
    logger = logging.getLogger("desktop_app")
    logger.addHandler(warnings)
    try:
        for start in range(0, len(made), BATCH):
            batch = made[start:start + BATCH]
            objects = _run_batch(batch, env, result)
            for (path, damage), obj in zip(batch, objects, strict=True):
                result.tries += 1
                label = f"{path.name} ({damage.what})"
                if obj is None:
                    continue  # the batch failed as a whole: already told
                _judge(obj, damage, label, result, CODES)
                warnings.records.clear()
                try:
                    probe(path)
                    mine = inspect(path, analyse=True).to_dict()
                except Exception as exc:  # noqa: BLE001 - what the attack looks for
                    result.fail(f"{label}: inspect() raised {type(exc).__name__}: {exc}")
                    continue
                if warnings.records:
                    result.fail(f"{label}: a safety net caught it in-process: {warnings.records[0]}")
                if mine != obj:
                    result.fail(f"{label}: inspect() says {mine} but the command said {obj}")
    finally:
        logger.removeHandler(warnings)
    return result


def _run_batch(batch: list[tuple[Path, Damage]], env: dict[str, str], result: Result) -> list[dict[str, Any] | None]:
    names = [p.name for p, _ in batch]
    run = run_measured(callrelay("check", "--json", "--analyse", *map(str, (p for p, _ in batch))),
                       timeout=BATCH_TIMEOUT_S, env=env)
    nothing: list[dict[str, Any] | None] = [None] * len(batch)
    if run.timed_out:
        result.fail(f"check did not finish in {BATCH_TIMEOUT_S:.0f} s on {names}")
        return nothing
    if run.stderr:
        result.fail(f"check wrote to stderr on {names}: {run.stderr[-2000:]}")
    if run.peak_rss_mb > MAX_RSS_MB:
        result.fail(f"check used {run.peak_rss_mb:.0f} MB (over {MAX_RSS_MB:.0f}) on {names}")
    try:
        run.stdout.encode("utf-8")
    except UnicodeEncodeError:
        result.fail(f"check printed bytes that are not UTF-8 on {names}")
    lines = run.stdout.splitlines()
    if len(lines) != len(batch):
        result.fail(f"check printed {len(lines)} lines for {len(batch)} files ({names}), exit {run.returncode}")
        return nothing
    objects: list[dict[str, Any] | None] = []
    for (path, damage), line in zip(batch, lines, strict=True):
        try:
            obj = json.loads(line, parse_constant=_strict)
        except ValueError as exc:
            result.fail(f"{path.name} ({damage.what}): invalid JSON ({exc}): {line[:300]}")
            objects.append(None)
            continue
        if not isinstance(obj, dict) or set(obj) != KEYS or os.fsencode(obj["path"]) != os.fsencode(str(path)):
            result.fail(f"{path.name} ({damage.what}): not the object for this file: {line[:300]}")
            objects.append(None)
            continue
        objects.append(obj)
    expected = 0 if all(o is not None and o["uploadable"] for o in objects) else 1
    if run.returncode != expected:
        result.fail(f"check exited {run.returncode}, not {expected}, on {names}")
    return objects


def _judge(obj: dict[str, Any], damage: Damage, label: str, result: Result, codes: dict[str, str]) -> None:
    problems = obj["problems"]
    for p in problems:
        if p.get("code") not in codes or p.get("severity") not in ("error", "warning", "info") \
                or not str(p.get("message", "")).endswith("."):
            result.fail(f"{label}: a malformed problem {p}")
    if obj["uploadable"] != all(p.get("severity") != "error" for p in problems):
        result.fail(f"{label}: uploadable is {obj['uploadable']} with problems {problems}")
    if damage.must_show and obj["uploadable"] and not problems:
        result.fail(f"{label}: judged clean")
