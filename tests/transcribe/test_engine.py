"""The local transcription engine (issue 20) on real audio: espeak-ng's voices, the real Whisper-base model
(joined from its two PyPI packages), faster-whisper on the CPU. No model hub is reached."""

from __future__ import annotations

import shutil
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from desktop_app.transcribe import Transcript, engine
from desktop_app.transcribe.engine import Cancelled, ModelError, TranscribeError, transcribe_recording
from tests.audio import gen
from tests.transcribe.conftest import SPEECH_RATE, Call, say, two_speaker_call, word_error_rate, write_call

# Caller (channel 1, a man's voice) and recipient (channel 2, a woman's), taking turns and talking over each other.
LINES = [(1, "Good morning, I am calling about the delivery of my new kitchen table."),
         (2, "Thank you for calling, I am sorry to hear that your order is late."),
         (1, "It was supposed to arrive last Tuesday, but nobody came to the house."),
         (2, "I can see the truck was delayed, we can bring it to you this week."),
         (1, "Yes please, I would like it delivered on Friday afternoon."),
         (2, "Of course, the driver will call you one hour before he arrives.")]


@pytest.fixture(scope="module")
def spoken_call(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, tuple]:
    folder = tmp_path_factory.mktemp("call")
    x, turns = two_speaker_call(folder, LINES)
    return folder, x, turns


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["pcm16k", "mulaw8k"])
def test_two_channel_call_is_transcribed_speaker_per_channel_in_time_order(
        kind: str, spoken_call: tuple[Path, np.ndarray, tuple], whisper_model: Path) -> None:
    folder, x, turns = spoken_call
    call = write_call(folder, x, turns, kind)
    seen: list[float] = []
    tr = transcribe_recording(call.path, model_dir=whisper_model, progress=seen.append)

    assert tr.language == "en"
    starts = [u.start_ms for u in tr.utterances]
    assert starts == sorted(starts), "utterances are in time order"
    # one utterance per turn, on the turn's channel, starting where the turn starts (the turns overlap)
    assert [u.channel for u in tr.utterances] == [t.channel for t in turns]
    for u, t in zip(tr.utterances, turns, strict=True):
        assert abs(u.start_ms / 1000 - t.start_s) < 0.75, (u, t)
        assert abs(u.end_ms / 1000 - t.end_s) < 0.75, (u, t)
        assert word_error_rate(t.text, u.text) <= 0.25, (u, t)
    for ch in (1, 2):
        said = " ".join(u.text for u in tr.utterances if u.channel == ch)
        wer = word_error_rate(call.spoken(ch), said)
        print(f"{kind} channel {ch}: WER {wer:.1%} ({said!r})")
        assert wer <= 0.10
    assert seen and seen[-1] == 1.0 and seen == sorted(seen), "progress only grows, up to 1"


def test_word_error_rate_counts_substitutions_insertions_and_deletions() -> None:
    assert word_error_rate("It is four five.", "it's 4 5") == 0.0
    assert word_error_rate("a b c d", "a x c") == 0.5  # one substituted, one deleted
    assert word_error_rate("a b", "a b c d") == 1.0  # two inserted


def short_call(folder: Path, rate: int = 16000) -> Call:
    x, turns = two_speaker_call(folder, [(1, "Hello, who is calling please?"), (2, "This is the bank.")])
    return write_call(folder, x, turns, "pcm16k" if rate == 16000 else "mulaw8k")


def test_language_set_is_used_and_not_detected(tmp_path: Path, whisper_model: Path) -> None:
    call = short_call(tmp_path)
    tr = transcribe_recording(call.path, model_dir=whisper_model, language="EN")
    assert tr.language == "en" and {u.channel for u in tr.utterances} == {1, 2}


def test_a_silent_channel_gives_no_utterances(tmp_path: Path, whisper_model: Path) -> None:
    speech = say("Hello, is anybody there?", "en-us+m3")
    x = np.zeros((2, len(speech) + SPEECH_RATE), dtype=np.float32)
    x[1, SPEECH_RATE // 2:SPEECH_RATE // 2 + len(speech)] = speech
    path = gen.write_wav(tmp_path / "one-side.wav", x, rate=SPEECH_RATE)
    tr = transcribe_recording(path, model_dir=whisper_model)
    assert tr.utterances and {u.channel for u in tr.utterances} == {2}
    assert tr.language == "en"


def test_cancel_stops_with_a_clear_exception(tmp_path: Path, whisper_model: Path) -> None:
    call = short_call(tmp_path)
    cancel = threading.Event()
    seen: list[float] = []

    def progress(f: float) -> None:
        seen.append(f)
        if f > engine.DECODE_SHARE:  # the first segment is done: cancel
            cancel.set()

    with pytest.raises(Cancelled, match="cancelled"):
        transcribe_recording(call.path, model_dir=whisper_model, progress=progress, cancel=cancel)
    assert seen[-1] < 1.0
    cancel.set()
    with pytest.raises(Cancelled):  # set before: nothing is transcribed
        transcribe_recording(call.path, model_dir=whisper_model, cancel=cancel)


def test_one_transcription_at_a_time(tmp_path: Path, whisper_model: Path) -> None:
    call = short_call(tmp_path)
    events: list[tuple[str, float]] = []
    results: list[Transcript] = []

    def run(name: str) -> None:
        results.append(transcribe_recording(call.path, model_dir=whisper_model,
                                            progress=lambda f: events.append((name, f))))

    threads = [threading.Thread(target=run, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == 2 and results[0] == results[1]
    names = [n for n, _ in events]
    first = names[0]
    switch = names.index("b" if first == "a" else "a")
    assert set(names[:switch]) == {first} and first not in names[switch:], "the two runs did not interleave"
    assert events[switch - 1] == (first, 1.0)


# --- what the user can act on: one sentence, nothing changed --------------------------------------

def test_without_the_extra_one_sentence_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # as when the extra is not installed
    with pytest.raises(TranscribeError) as err:
        transcribe_recording(tmp_path / "x.wav", model_dir=tmp_path)
    assert "pip install 'callrelay[transcribe]'" in str(err.value)
    assert str(err.value).count(". ") == 0 and str(err.value).endswith(".")


@pytest.mark.parametrize("missing", ["model.bin", "config.json", "tokenizer.json", "vocabulary.txt"])
def test_a_model_folder_missing_a_file_is_named(tmp_path: Path, whisper_model: Path, missing: str) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    for f in whisper_model.iterdir():
        if f.name != missing:
            (folder / f.name).symlink_to(f)
    call = short_call(tmp_path)
    with pytest.raises(ModelError) as err:
        transcribe_recording(call.path, model_dir=folder)
    assert missing in str(err.value) and str(folder) in str(err.value)


def test_no_model_folder_set_or_not_there(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="transcribe.model_dir"):
        transcribe_recording(tmp_path / "x.wav", model_dir="")
    with pytest.raises(ModelError, match="does not exist"):
        transcribe_recording(tmp_path / "x.wav", model_dir=tmp_path / "nowhere")


def test_a_damaged_model_is_one_sentence(tmp_path: Path, whisper_model: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(whisper_model, folder, ignore=shutil.ignore_patterns("model.bin"))
    with open(whisper_model / "model.bin", "rb") as fh:
        (folder / "model.bin").write_bytes(fh.read(1 << 20))  # cut short
    call = short_call(tmp_path)
    with pytest.raises(ModelError, match="cannot be loaded"):
        transcribe_recording(call.path, model_dir=folder)


def test_a_damaged_recording_is_one_sentence(tmp_path: Path, whisper_model: Path) -> None:
    bad = tmp_path / "call.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(100))
    with pytest.raises(TranscribeError) as err:
        transcribe_recording(bad, model_dir=whisper_model)
    assert "\n" not in str(err.value) and not isinstance(err.value, Cancelled)


def test_a_wav_claiming_an_impossible_sample_rate_is_one_sentence(tmp_path: Path, whisper_model: Path) -> None:
    """A damaged header's rate (here 4,294,967,295 Hz) reaches the resampler, which cannot take it: one
    sentence, not PyAV's OverflowError."""
    data = bytearray(gen.wav_bytes(gen.call(0.5)))
    assert data[24:28] == gen.RATE.to_bytes(4, "little")  # the fmt chunk's sample rate
    data[24:28] = (0xFFFFFFFF).to_bytes(4, "little")
    bad = tmp_path / "call.wav"
    bad.write_bytes(bytes(data))
    with pytest.raises(TranscribeError) as err:
        transcribe_recording(bad, model_dir=whisper_model)
    assert "\n" not in str(err.value) and "sample rate" in str(err.value)
