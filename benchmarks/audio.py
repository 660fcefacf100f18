"""Benchmark of recording inspection (issue 3): probe and analysis on a 60-minute stereo 8 kHz call.

Generates the call as WAV, FLAC and MP4 (AAC) in a temporary folder, plus 1-minute copies to show the
probe is flat with length, and prints one table against references measured on the same files:
probe vs ``ffprobe`` (subprocess) and vs ``pydub.AudioSegment.from_file``; analysis time and extra
memory next to the time PyAV takes merely to decode the file.

Goals: probe >= 50x faster than ffprobe and >= 1,000x faster than pydub's load, flat with length;
analysis >= 3,000x real time and >= 0.7x the speed of decoding alone, with < 32 MB extra memory.

    .venv/bin/python benchmarks/audio.py [--minutes 60] [--keep DIR]

Each analysis and decode runs three times, each in a fresh child process so its peak memory (the
resident set sampled every 2 ms) is its own; the table shows the best time and the largest memory.
Needs the ffmpeg/ffprobe programs for the references only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RATE = 8000


def call_minute(seed: int = 0) -> np.ndarray:
    """One minute of a two-speaker call (turns of speech-like bursts), int16 (2, n)."""
    n = RATE * 60
    t = np.arange(n) / RATE
    rng = np.random.default_rng(seed)
    out = np.zeros((2, n))
    for c, f0 in enumerate((180.0, 260.0)):
        tone = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6)) / k for k in (1, 2, 3)) / 1.84
        turn = ((t // 4) % 2 == c)  # four-second turns
        syllable = (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t) ** 2) * ((t % 0.9) < 0.6)
        out[c] = 0.5 * tone * syllable * turn + rng.normal(0, 0.001, n)
    return np.round(out * 32767).astype(np.int16)


def write_wav(path: Path, pcm: np.ndarray) -> None:
    import struct

    data = np.ascontiguousarray(pcm.T).tobytes()
    fmt = struct.pack("<HHIIHH", 1, 2, RATE, RATE * 4, 4, 16)
    with open(path, "wb") as fh:
        fh.write(b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt)
        fh.write(b"data" + struct.pack("<I", len(data)))
        fh.write(data)


def encode(path: Path, pcm: np.ndarray, fmt: str, codec: str, sample_fmt: str) -> None:
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=RATE, layout="stereo")
        stream.codec_context.format = sample_fmt
        stream.codec_context.open(strict=False)
        resampler = av.AudioResampler(format=sample_fmt, layout="stereo", rate=RATE,
                                      frame_size=stream.codec_context.frame_size or None)
        block = RATE * 10
        for i in range(0, pcm.shape[1], block):
            chunk = np.ascontiguousarray(pcm[:, i:i + block].T).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout="stereo")
            frame.sample_rate, frame.pts, frame.time_base = RATE, i, Fraction(1, RATE)
            for f in resampler.resample(frame):
                out.mux(stream.encode(f))
        for f in resampler.resample(None):
            out.mux(stream.encode(f))
        out.mux(stream.encode(None))


def make_files(folder: Path, minutes: int) -> dict[str, dict[str, Path]]:
    minute = call_minute()
    files: dict[str, dict[str, Path]] = {}
    for label, count in (("1 min", 1), (f"{minutes} min", minutes)):
        pcm = np.tile(minute, count)
        stem = folder / f"call-{count}m"
        files[label] = {"WAV": stem.with_suffix(".wav"), "FLAC": stem.with_suffix(".flac"),
                        "MP4": stem.with_suffix(".mp4")}
        write_wav(files[label]["WAV"], pcm)
        encode(files[label]["FLAC"], pcm, "flac", "flac", "s16")
        encode(files[label]["MP4"], pcm, "mp4", "aac", "fltp")
    return files


def timed(fn: object, repeat: int) -> float:
    """Median seconds of ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def child(mode: str, path: Path, runs: int = 3) -> dict[str, float]:
    """Run one analysis or decode in a fresh process, ``runs`` times; the best time, the largest extra memory."""
    results = []
    for _ in range(runs):
        proc = subprocess.run([sys.executable, __file__, "--child", mode, str(path)], capture_output=True,
                              text=True, check=True, cwd=ROOT)
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return {"seconds": min(r["seconds"] for r in results), "extra_mb": max(r["extra_mb"] for r in results),
            "duration": results[0]["duration"]}


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child_main(mode: str, path: str) -> None:
    import threading

    from desktop_app.audio import analyse, probe

    pr = probe(path)
    baseline = _rss_mb()
    peak = [baseline]
    done = threading.Event()

    def sample() -> None:  # the resident set's high-water mark during the run, sampled every 2 ms
        while not done.wait(0.002):
            peak[0] = max(peak[0], _rss_mb())

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    t0 = time.perf_counter()
    if mode == "analyse":
        analyse(path, probe_result=pr)
    else:
        with av.open(path) as c:
            for _ in c.decode(audio=0):
                pass
    elapsed = time.perf_counter() - t0
    done.set()
    watcher.join()
    peak[0] = max(peak[0], _rss_mb())
    print(json.dumps({"seconds": elapsed, "extra_mb": peak[0] - baseline, "duration": pr.duration_s or 0}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--keep", type=Path, help="generate into this folder and keep the files")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(*args.child)
        return 0

    from pydub import AudioSegment

    from desktop_app.audio import probe

    ffprobe = shutil.which("ffprobe")
    folder = args.keep or Path(tempfile.mkdtemp(prefix="callrelay-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        print(f"generating {args.minutes}-minute stereo 8 kHz call as WAV, FLAC, MP4 in {folder} ...", flush=True)
        files = make_files(folder, args.minutes)
        long_label = f"{args.minutes} min"
        rows = []
        verdicts = []
        for kind in ("WAV", "FLAC", "MP4"):
            short, path = files["1 min"][kind], files[long_label][kind]
            size_mb = path.stat().st_size / 1e6
            probe_short = timed(lambda p=short: probe(p), 200)
            probe_long = timed(lambda p=path: probe(p), 200)
            ff = timed(lambda p=path: subprocess.run(
                [ffprobe or "ffprobe", "-v", "error", "-show_streams", "-show_format", str(p)],
                capture_output=True, check=True), 5) if ffprobe else float("nan")
            t0 = time.perf_counter()
            seg = AudioSegment.from_file(str(path))
            pydub_s = time.perf_counter() - t0
            del seg
            decode = child("decode", path)
            ana = child("analyse", path)
            seconds = ana["duration"]
            rows.append((kind, size_mb, probe_short, probe_long, ff, pydub_s, decode["seconds"], ana["seconds"],
                         seconds / ana["seconds"], decode["seconds"] / ana["seconds"], ana["extra_mb"]))
            verdicts.append((kind, {
                "probe >= 50x ffprobe": ff / probe_long >= 50,
                "probe >= 1000x pydub": pydub_s / probe_long >= 1000,
                "probe flat (60 min <= 3x 1 min)": probe_long <= 3 * probe_short + 2e-5,
                "analysis >= 3000x real time": seconds / ana["seconds"] >= 3000,
                "analysis >= 0.7x decode": decode["seconds"] / ana["seconds"] >= 0.7,
                "extra memory < 32 MB": ana["extra_mb"] < 32,
            }))
        print()
        print(f"| {args.minutes}-min call | size | probe 1 min | probe {args.minutes} min | ffprobe | "
              "pydub load | PyAV decode alone | analysis | analysis × real time | analysis / decode speed "
              "| analysis extra memory |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            kind, size, ps, pl, ff, pd, dec, an, rt, ratio, mem = r
            print(f"| {kind} | {size:.0f} MB | {ps * 1e3:.3f} ms | {pl * 1e3:.3f} ms | {ff * 1e3:.0f} ms "
                  f"({ff / pl:,.0f}×) | {pd:.2f} s ({pd / pl:,.0f}×) | {dec:.2f} s | {an:.2f} s | {rt:,.0f}× | "
                  f"{ratio:.2f}× | {mem:.1f} MB |")
        print()
        for kind, checks in verdicts:
            failed = [name for name, ok in checks.items() if not ok]
            print(f"{kind}: " + ("all goals met" if not failed else "MISSED: " + "; ".join(failed)))
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
