"""Issue 18's fix traps: a fix never turns an error into a clean verdict unless its result really is clean."""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from desktop_app import paths
from desktop_app.audio import FixError, convert, inspect, merge_legs

from . import gen


@pytest.mark.parametrize("keep", [48, 200])
def test_converting_a_truncated_recording_never_makes_an_empty_file(folder: Path, x: np.ndarray, keep: int) -> None:
    """A WAV cut off after its first samples (silence before anyone spoke) once became a 0:00 FLAC."""
    cut = folder / "cut.wav"
    cut.write_bytes(gen.wav_bytes(x)[:keep])
    assert not inspect(cut).uploadable
    with pytest.raises(FixError, match="no audio worth uploading") as err:
        convert(cut)
    assert "cut.wav" in str(err.value) and "\n" not in str(err.value)
    assert not list(paths.fixes_dir().iterdir())  # nothing written, not even a temporary file
    assert cut.read_bytes() == gen.wav_bytes(x)[:keep]


def test_converting_a_cut_mp3_with_only_a_blip_left_is_refused(folder: Path, x: np.ndarray) -> None:
    raw = gen.encode(folder / "a.mp3", x, "mp3").read_bytes()
    cut = folder / "cut.mp3"
    cut.write_bytes(raw[: len(raw) // 20])
    with pytest.raises(FixError, match="no audio worth uploading"):
        convert(cut, folder.parent / "out.flac")
    assert not (folder.parent / "out.flac").exists()


def test_converting_a_truncated_recording_with_speech_left_still_works(folder: Path, x: np.ndarray) -> None:
    cut = folder / "cut.wav"
    cut.write_bytes(gen.wav_bytes(x)[: 44 + 8000 * 4 * 2])
    out = convert(cut)
    ins = inspect(out)
    assert ins.uploadable and ins.probe.duration_s == pytest.approx(2.0, abs=0.001)


# -- merge: a leg that holds both voices -----------------------------------------------------------------------
# Voices made like speech is (a glottal source whose pitch rises and falls, shaped by vowel formants that change
# each syllable), independently of the code under test: a man around 100-120 Hz, a woman around 180-220 Hz.
VOWELS = ((730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480), (570, 840, 2410))
MAN, WOMAN = 1.0, 1.17  # formant scale (a shorter vocal tract: higher formants)


def utterance(seconds: float, f0: float, formant_scale: float, seed: int, rate: int = gen.RATE) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    pitch = f0 * (1 + 0.12 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6))) * (1 - 0.1 * t / seconds)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    syllable = 0.2
    which = (t // syllable).astype(int)
    forms = np.array([VOWELS[i] for i in rng.integers(0, len(VOWELS), which.max() + 1)])[which] * formant_scale
    out = np.zeros(n)
    for k in range(1, int(3600 / f0) + 1):
        fk = k * pitch
        gain = sum(1.0 / (1 + ((fk - forms[:, j]) / (60 + 40 * j)) ** 2) * (1.0, 0.5, 0.25)[j] for j in range(3))
        out += np.where(fk < 3800, gain / k ** 0.8 * np.sin(k * phase), 0.0)
    envelope = (0.35 + 0.65 * np.sin(np.pi * (t % syllable) / syllable) ** 2) * np.minimum(1, np.minimum(t, seconds - t) / 0.03)
    y = out * envelope
    return 0.5 * y / np.abs(y).max()


def leg(turns: list[tuple[float, float, float]], seed: int = 0, rate: int = gen.RATE) -> np.ndarray:
    """Turns of (seconds, pitch, formant scale) with pauses between them, over a faint line noise."""
    parts = [np.zeros(int(0.3 * rate))]
    for i, (seconds, f0, scale) in enumerate(turns):
        parts += [utterance(seconds, f0, scale, seed + i, rate), np.zeros(int(0.45 * rate))]
    x = np.concatenate(parts)
    return (x + np.random.default_rng(seed).standard_normal(x.size) * 3e-4).astype(np.float32)


def conversation(seed: int = 0) -> np.ndarray:
    """A man and a woman taking turns, both on one channel (a PBX that recorded the call mixed down)."""
    return leg([(1.6, 112, MAN), (1.3, 215, WOMAN), (2.2, 118, MAN), (1.1, 205, WOMAN), (1.8, 108, MAN),
                (1.5, 222, WOMAN)], seed)


def one_voice(pitches: tuple[float, ...], scale: float = MAN, seed: int = 0) -> np.ndarray:
    """One speaker saying several sentences, each pitched a little differently (questions, emphasis)."""
    return leg([(1.2 + 0.2 * (i % 4), f0, scale) for i, f0 in enumerate(pitches)], seed)


@pytest.mark.parametrize("seed", [0, 5])
def test_merge_refuses_a_one_channel_leg_that_holds_both_voices(folder: Path, seed: int) -> None:
    both = gen.write_wav(folder / "caller.wav", conversation(seed)[None, :])
    other = gen.write_wav(folder / "recipient.wav", one_voice((100, 115, 108, 122), seed=9)[None, :])
    with pytest.raises(FixError, match="two different voices") as err:
        merge_legs(both, other, caller_start=0.0, recipient_start=0.0)
    assert "caller.wav" in str(err.value) and "never mixed" in str(err.value)
    with pytest.raises(FixError, match="recipient file caller.wav holds two different voices"):
        merge_legs(other, both, caller_start=0.0, recipient_start=0.0)
    assert not list(paths.fixes_dir().iterdir())


def test_merge_refuses_a_leg_whose_both_channels_hold_both_voices(folder: Path) -> None:
    x = conversation(3)
    twin = gen.write_wav(folder / "twin.wav", np.stack([x, x]))
    other = gen.write_wav(folder / "other.wav", one_voice((104, 121, 110, 127))[None, :])
    with pytest.raises(FixError, match="two different voices"):
        merge_legs(twin, other, caller_start=0.0, recipient_start=0.0)


@pytest.mark.parametrize("pitches, scale", [
    ((104, 121, 110, 127, 113, 98), MAN),
    ((90, 100, 110, 120, 130, 140), MAN),  # a lively speaker, half an octave from lowest to highest
    ((95, 135, 100, 140, 105, 130), MAN),
    ((190, 230, 205, 240, 200), WOMAN),
])
def test_merge_still_takes_one_voice_legs(folder: Path, pitches: tuple[float, ...], scale: float) -> None:
    a = gen.write_wav(folder / "caller.wav", one_voice(pitches, scale, seed=1)[None, :])
    b = gen.write_wav(folder / "recipient.wav", one_voice((205, 185, 225, 210), WOMAN, seed=2)[None, :])
    out = merge_legs(a, b, caller_start=0.0, recipient_start=0.5)
    assert inspect(out).uploadable


SENTENCES = ("Hello, thanks for calling, how can I help you today?", "I would like to ask about my last invoice.",
             "Sure, could you give me your account number please?", "It is four five six seven eight.",
             "Thank you, I can see the invoice here now.", "Why was I charged twice this month?")


def spoken(voices: tuple[str, str], rate: int = 22050) -> np.ndarray:
    """The sentences said in turn by two espeak-ng voices (the same voice twice: one speaker), one channel."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        pytest.fail("espeak-ng is needed for real voices (Debian: espeak-ng; scripts/system-deps test installs it)")
    parts = []
    for i, text in enumerate(SENTENCES):
        wav = subprocess.run([exe, "-v", voices[i % 2], "--stdout", text], capture_output=True, check=True).stdout
        with wave.open(io.BytesIO(wav)) as w:
            assert w.getframerate() == rate and w.getnchannels() == 1
            parts += [np.frombuffer(w.readframes(w.getnframes()), "<i2") / 32768.0, np.zeros(int(0.4 * rate))]
    return np.concatenate(parts).astype(np.float32)[None, :]


def test_merge_refuses_a_leg_where_two_real_voices_take_turns_and_takes_one_voice(folder: Path) -> None:
    rate = 22050
    recipient = gen.write_wav(folder / "recipient.wav", spoken(("en-us+f3", "en-us+f3")), rate=rate)
    both = gen.write_wav(folder / "both.wav", spoken(("en-us+m3", "en-us+f3")), rate=rate)
    with pytest.raises(FixError, match="caller file both.wav holds two different voices"):
        merge_legs(both, recipient, caller_start=0.0, recipient_start=0.0)
    caller = gen.write_wav(folder / "caller.wav", spoken(("en-us+m3", "en-us+m3")), rate=rate)
    out = merge_legs(caller, recipient, caller_start=0.0, recipient_start=2.0)
    assert inspect(out).uploadable
