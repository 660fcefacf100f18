"""Benchmark of local transcription (issue 20): a 10-minute two-channel call, ours against faster-whisper alone.

    .venv/bin/python benchmarks/transcribe.py [--minutes 10] [--format pcm8k|pcm16k] [--rounds 2]
                                              [--model DIR] [--keep DIR]

Makes a call from espeak-ng's speech (different sentences on each channel, a man's voice on channel 1 and a
woman's on 2, turns with silences between them and now and then over each other), written as the app
receives it: a 16-bit PCM stereo WAV at 8 kHz (``--format pcm16k``: 16 kHz), in a temporary folder per run.

Ours: ``desktop_app.transcribe.engine.transcribe_recording`` on the WAV (PyAV decode per channel, resampled
to 16 kHz, each channel transcribed, the segments merged by time). Reference: faster-whisper run directly on
the same WAV, each channel taken the simplest way (``faster_whisper.decode_audio(path, split_stereo=True)``,
faster-whisper's own decoder and resampler), the same model, the same options (int8 on the CPU, the
default ``cpu_threads``, ``vad_filter=True``, ``word_timestamps=True``, ``beam_size=5``, the language
detected on the first channel transcribed and then set for the other, as ours does).

Each side runs in a fresh child process (so each peak is its own and the model load counts the same for
both); the model load is timed apart and is not in the transcription time. The sides alternate for
``--rounds`` rounds and the best time of each is compared: other work on a shared machine only slows runs.

    RTF per channel = transcription wall time / (channels x call duration)
    speed ratio     = reference time / our time          (goal >= 0.9x: our split and merge cost nothing)
    RTF goal        <= 0.15 with Whisper base            (ours, best round)
    peak memory     = the child's resident-set high-water mark (getrusage ru_maxrss): model, audio and all

Exit 0 when every goal is met, 1 when one is missed. The model is the tests' Whisper base
(``desktop_app.testing.whisper_model``, also run as ``scripts/whisper_test_model.py``) unless ``--model`` names another CTranslate2 Whisper folder; nothing is
downloaded. Needs espeak-ng.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SPEECH_RATE = 22050  # espeak-ng's output
VOICES = ("en-us+m3", "en-us+f3")  # channel 1 the caller, channel 2 the recipient
FORMATS = {"pcm8k": 8000, "pcm16k": 16000}
OPTIONS: dict[str, Any] = {"vad_filter": True, "word_timestamps": True, "beam_size": 5}  # as the engine's
GOAL_RATIO = 0.9
GOAL_RTF = 0.15

# Sentence parts: each channel says its own kind of thing (the caller asks, the recipient answers).
_NAMES = ["Anna", "Peter", "Maria", "John", "Laura", "David", "Sarah", "Thomas", "Emma", "Robert"]
_THINGS = ["kitchen table", "washing machine", "garden chair", "office desk", "bookshelf", "coffee maker",
           "bicycle", "winter coat", "printer", "sofa", "lamp", "mattress"]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
_CALLER = [
    "Good morning, my name is {name} and I am calling about my {thing}.",
    "I ordered a {thing} last {day} and it has not arrived yet.",
    "The {thing} came yesterday but one of the parts is broken.",
    "Could you tell me when the driver will come to my house?",
    "I would like the {thing} delivered on {day} afternoon if possible.",
    "My order number is {n1} {n2} {n3}, I think.",
    "Is it possible to send the money back to my card?",
    "I already called on {day} and nobody called me back.",
    "Thank you, that sounds good to me.",
    "Can I change the address for the delivery of the {thing}?",
    "I will be at home all day on {day}.",
    "Please send me an email when the {thing} leaves the store.",
]
_RECIPIENT = [
    "Thank you for calling, I am sorry to hear that your {thing} is late.",
    "Let me look at your order, it will only take a moment.",
    "I can see the truck was delayed, we can bring it to you on {day}.",
    "The driver will call you one hour before he arrives.",
    "I have sent a new {thing} today, it should be there by {day}.",
    "My colleague {name} will call you back this afternoon.",
    "Yes, we can return the money to your card within five days.",
    "Could you please spell your last name for me?",
    "I have changed the address, you will get an email in a few minutes.",
    "Is there anything else I can help you with today?",
    "We are very sorry, the {thing} should not have been damaged.",
    "I have written a note on your order so the team can see it.",
]
_NUMBERS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


# --- the call --------------------------------------------------------------------------------------

def say(text: str, voice: str) -> np.ndarray:
    """``text`` spoken by espeak-ng's ``voice``: float32 mono at SPEECH_RATE."""
    wav = subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "--stdout", text], capture_output=True,
                         check=True).stdout
    with wave.open(io.BytesIO(wav)) as w:
        return (np.frombuffer(w.readframes(w.getnframes()), "<i2") / 32768.0).astype(np.float32)


def sentence(rng: random.Random, channel: int) -> str:
    template = rng.choice(_CALLER if channel == 1 else _RECIPIENT)
    return template.format(name=rng.choice(_NAMES), thing=rng.choice(_THINGS), day=rng.choice(_DAYS),
                           n1=rng.choice(_NUMBERS), n2=rng.choice(_NUMBERS), n3=rng.choice(_NUMBERS))


def make_call(minutes: float, seed: int = 20) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Stereo float32 (2, n) at SPEECH_RATE, ``minutes`` long: turns of one to three sentences on alternating
    channels, 0.3-2.5 s of silence between turns, one turn in five starting before the other one ends."""
    rng = random.Random(seed)
    total = int(minutes * 60 * SPEECH_RATE)
    x = np.zeros((2, total), dtype=np.float32)
    said: list[tuple[int, str]] = []
    cache: dict[tuple[int, str], np.ndarray] = {}
    at, channel = int(0.5 * SPEECH_RATE), 1
    while at < total:
        for _ in range(rng.randint(1, 3)):
            text = sentence(rng, channel)
            if (channel, text) not in cache:
                cache[(channel, text)] = say(text, VOICES[channel - 1])
            clip = cache[(channel, text)][: max(0, total - at)]
            x[channel - 1, at:at + len(clip)] += clip
            said.append((channel, text))
            at += len(clip) + int(rng.uniform(0.2, 0.6) * SPEECH_RATE)
            if at >= total:
                break
        gap = -0.8 if rng.random() < 0.2 else rng.uniform(0.3, 2.5)  # talking over each other, or a pause
        at += int(gap * SPEECH_RATE)
        channel = 3 - channel
    return x, said


def write_call(path: Path, x: np.ndarray, rate: int) -> float:
    """``x`` resampled by PyAV to ``rate`` and written as a 16-bit PCM stereo WAV; its duration in seconds."""
    import av

    resampler = av.AudioResampler(format="s16", layout="stereo", rate=rate)
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x), format="fltp", layout="stereo")
    frame.sample_rate = SPEECH_RATE
    pcm = [f.to_ndarray().reshape(-1) for f in resampler.resample(frame) + resampler.resample(None)]
    data = np.concatenate(pcm).astype("<i2")  # interleaved L R L R ...
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data.tobytes())
    return len(data) / 2 / rate


# --- the two sides, each in a child process -------------------------------------------------------

def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child_main(side: str, path: str, model_dir: str) -> None:
    result: dict[str, Any] = {"side": side}
    if side == "ours":
        from desktop_app.transcribe import engine

        t0 = time.perf_counter()
        engine._model(engine.check_model_dir(model_dir))  # loaded and kept: transcribe_recording reuses it
        result["load_s"] = time.perf_counter() - t0
        result["rss_after_load_mb"] = _rss_mb()
        t1 = time.perf_counter()
        tr = engine.transcribe_recording(path, model_dir=model_dir)
        result["seconds"] = time.perf_counter() - t1
        texts = {ch: " ".join(u.text for u in tr.utterances if u.channel == ch) for ch in (1, 2)}
        result["language"] = tr.language
    else:
        import faster_whisper

        t0 = time.perf_counter()
        model = faster_whisper.WhisperModel(model_dir, device="cpu", compute_type="int8", local_files_only=True)
        result["load_s"] = time.perf_counter() - t0
        result["rss_after_load_mb"] = _rss_mb()
        t1 = time.perf_counter()
        channels = faster_whisper.decode_audio(path, split_stereo=True)
        language: str | None = None
        texts = {}
        for ch, audio in enumerate(channels, 1):
            segments, info = model.transcribe(audio, language=language, **OPTIONS)
            texts[ch] = " ".join(s.text.strip() for s in segments)
            language = language or info.language
        result["seconds"] = time.perf_counter() - t1
        result["language"] = language
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    result["words"] = {ch: len(t.split()) for ch, t in texts.items()}
    print(json.dumps(result))


def run_side(side: str, path: Path, model_dir: Path) -> dict[str, Any]:
    env = dict(os.environ, HF_HUB_OFFLINE="1")  # never a model hub
    proc = subprocess.run([sys.executable, __file__, "--child", side, str(path), str(model_dir)],
                          capture_output=True, text=True, cwd=ROOT, env=env)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"The {side} run failed ({tail}).")
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def test_model() -> Path:
    from desktop_app.testing import whisper_model

    try:
        return whisper_model.ensure_model()
    except whisper_model.ModelFixtureError as exc:
        raise SystemExit(str(exc)) from None


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        one, five, fifteen = os.getloadavg()
        return f"load average: {one:.2f}, {five:.2f}, {fifteen:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the call (default 10)")
    parser.add_argument("--format", choices=sorted(FORMATS), default="pcm8k",
                        help="16-bit PCM stereo WAV at 8 kHz (default, as call centres record) or 16 kHz")
    parser.add_argument("--rounds", type=int, default=2, help="turns each side takes, alternating (best kept)")
    parser.add_argument("--model", type=Path, help="a CTranslate2 Whisper model folder (default: the tests' base)")
    parser.add_argument("--keep", type=Path, help="make the call in this folder and keep it")
    parser.add_argument("--child", nargs=3, metavar=("SIDE", "FILE", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(*args.child)
        return 0
    if args.minutes <= 0 or args.rounds < 1:
        parser.error("--minutes must be above 0 and --rounds at least 1")
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is needed to speak the call (Debian: ./scripts/system-deps test installs it).")
    model_dir = args.model or test_model()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="callrelay-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    rate = FORMATS[args.format]
    try:
        print(f"speaking a {args.minutes:g}-minute two-channel call with espeak-ng into {folder} ...", flush=True)
        path = folder / f"call-{args.format}.wav"
        x, said = make_call(args.minutes)
        duration = write_call(path, x, rate)
        spoken = {ch: sum(len(t.split()) for c, t in said if c == ch) for ch in (1, 2)}
        print(f"call: {duration:.1f} s, 16-bit PCM stereo {rate // 1000} kHz, {len(said)} sentences, "
              f"words spoken per channel {spoken[1]} / {spoken[2]}; model {model_dir}", flush=True)
        print(f"before: {uptime()}", flush=True)
        runs: dict[str, list[dict[str, Any]]] = {"ours": [], "faster-whisper": []}
        for n in range(args.rounds):
            for side in ("ours", "faster-whisper") if n % 2 == 0 else ("faster-whisper", "ours"):
                r = run_side("ours" if side == "ours" else "reference", path, model_dir)
                runs[side].append(r)
                print(f"  round {n + 1} {side:<14} {r['seconds']:7.1f} s  (model load {r['load_s']:.1f} s, "
                      f"peak {r['peak_mb']:.0f} MB, words {r['words']['1']} / {r['words']['2']})", flush=True)
        print(f"after:  {uptime()}")
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)

    best = {side: min(r["seconds"] for r in rs) for side, rs in runs.items()}
    peak = {side: max(r["peak_mb"] for r in rs) for side, rs in runs.items()}
    load = {side: min(r["load_s"] for r in rs) for side, rs in runs.items()}
    loaded = {side: max(r["rss_after_load_mb"] for r in rs) for side, rs in runs.items()}
    rtf = {side: best[side] / (2 * duration) for side in runs}
    ratio = best["faster-whisper"] / best["ours"]
    print()
    print(f"Transcription of a {duration / 60:.1f}-minute two-channel call ({args.format}), {os.cpu_count()} cores, "
          f"best of {args.rounds} alternating rounds; RTF per channel = wall time / (2 x {duration:.0f} s)")
    print(f"{'measure':<36}{'faster-whisper':>16}{'ours':>12}  goal")
    print(f"{'transcription wall time (s)':<36}{best['faster-whisper']:>16.2f}{best['ours']:>12.2f}")
    print(f"{'RTF per channel':<36}{rtf['faster-whisper']:>16.3f}{rtf['ours']:>12.3f}  <= {GOAL_RTF}")
    print(f"{'speed ratio (reference / ours)':<36}{'':>16}{ratio:>11.2f}x  >= {GOAL_RATIO}x")
    print(f"{'model load (s, not in the time)':<36}{load['faster-whisper']:>16.1f}{load['ours']:>12.1f}")
    print(f"{'RSS after the model load (MB)':<36}{loaded['faster-whisper']:>16.0f}{loaded['ours']:>12.0f}")
    print(f"{'peak memory, RSS high-water (MB)':<36}{peak['faster-whisper']:>16.0f}{peak['ours']:>12.0f}")
    missed = [name for name, ok in ((f"speed ratio >= {GOAL_RATIO}x", ratio >= GOAL_RATIO),
                                    (f"RTF <= {GOAL_RTF}", rtf["ours"] <= GOAL_RTF)) if not ok]
    print("all goals met" if not missed else "MISSED: " + "; ".join(missed))
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
