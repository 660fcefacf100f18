"""The tests' Whisper model (joined from two PyPI packages, checked by SHA-256) and calls spoken by espeak-ng."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from desktop_app.testing import whisper_model as model_fixture
from tests.audio import gen

SPEECH_RATE = 22050  # espeak-ng's output


@pytest.fixture(scope="session")
def whisper_model() -> Path:
    """The CTranslate2 Whisper-base folder `desktop_app.testing.whisper_model` joins; no model hub is reached."""
    os.environ["HF_HUB_OFFLINE"] = "1"  # faster-whisper goes through huggingface_hub: never online in tests
    try:
        return model_fixture.ensure_model()
    except model_fixture.ModelFixtureError as exc:
        pytest.fail(str(exc))


def say(text: str, voice: str) -> np.ndarray:
    """``text`` spoken by espeak-ng's ``voice``: float32 mono at SPEECH_RATE."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        pytest.fail("espeak-ng is needed for real voices (Debian: espeak-ng; scripts/system-deps test installs it)")
    wav = subprocess.run([exe, "-v", voice, "-s", "150", "--stdout", text], capture_output=True, check=True).stdout
    with wave.open(io.BytesIO(wav)) as w:
        assert w.getframerate() == SPEECH_RATE and w.getnchannels() == 1
        return (np.frombuffer(w.readframes(w.getnframes()), "<i2") / 32768.0).astype(np.float32)


@dataclass(frozen=True)
class Turn:
    channel: int
    text: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Call:
    path: Path
    turns: tuple[Turn, ...]

    def spoken(self, channel: int) -> str:
        return " ".join(t.text for t in self.turns if t.channel == channel)


def two_speaker_call(folder: Path, lines: list[tuple[int, str]], *, overlap_s: float = 0.6,
                     voices: tuple[str, str] = ("en-us+m3", "en-us+f3")) -> tuple[np.ndarray, tuple[Turn, ...]]:
    """Stereo float32 at SPEECH_RATE: each line said on its channel (1 caller, 2 recipient) by that channel's
    voice, each turn starting ``overlap_s`` before the previous one ends (the speakers talk over each other)."""
    clips = [(ch, text, say(text, voices[ch - 1])) for ch, text in lines]
    at = 0.5
    placed: list[tuple[int, int, np.ndarray]] = []
    turns: list[Turn] = []
    for ch, text, clip in clips:
        start = int(at * SPEECH_RATE)
        placed.append((ch, start, clip))
        turns.append(Turn(ch, text, start / SPEECH_RATE, (start + len(clip)) / SPEECH_RATE))
        at = (start + len(clip)) / SPEECH_RATE - overlap_s
    total = max(start + len(clip) for _, start, clip in placed) + SPEECH_RATE
    x = np.zeros((2, total), dtype=np.float32)
    for ch, start, clip in placed:
        x[ch - 1, start:start + len(clip)] += clip
    return x, tuple(turns)


def write_call(folder: Path, x: np.ndarray, turns: tuple[Turn, ...], kind: str) -> Call:
    """The call as a WAV: kind "pcm16k" (16-bit PCM, 16 kHz) or "mulaw8k" (G.711 µ-law, 8 kHz), converted
    by the ffmpeg program from a float WAV at espeak's rate (an independent resampler)."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        pytest.fail("ffmpeg is needed to make the test calls (scripts/system-deps test installs it)")
    src = gen.write_wav(folder / "spoken.wav", x, rate=SPEECH_RATE, kind="float", bits=32)
    out = folder / f"call-{kind}.wav"
    codec, rate = {"pcm16k": ("pcm_s16le", "16000"), "mulaw8k": ("pcm_mulaw", "8000")}[kind]
    subprocess.run([exe, "-nostdin", "-loglevel", "error", "-y", "-i", str(src), "-ar", rate, "-c:a", codec,
                    str(out)], check=True)
    return Call(out, turns)


_NUMBERS = {"0": "zero", "1": "one", "2": "two", "3": "three", "4": "four", "5": "five", "6": "six",
            "7": "seven", "8": "eight", "9": "nine", "10": "ten"}


_CONTRACTIONS = {"i'm": "i am", "it's": "it is", "that's": "that is", "we'll": "we will", "you're": "you are",
                 "can't": "can not", "cannot": "can not", "don't": "do not", "he'll": "he will"}


def words(text: str) -> list[str]:
    """Lower case, no punctuation, contractions spelt out, digits as words (so '4' and 'four' are one word)."""
    text = text.lower().replace("\u2019", "'")
    for short, full in _CONTRACTIONS.items():
        text = re.sub(rf"\b{re.escape(short)}\b", full, text)
    text = text.replace("'", "")
    out: list[str] = []
    for w in re.findall(r"[a-z]+|\d+", text):
        out.extend(_NUMBERS.get(w, w).split())
    return out


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / words of the reference: Levenshtein distance over words."""
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[len(hyp)] / max(1, len(ref))
