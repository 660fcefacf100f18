"""Real media clients reading recordings over HTTP: curl, ffprobe, ffmpeg seeking with -ss."""

from __future__ import annotations

import json
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest
from server_helpers import write_encoded, write_wav

from desktop_app.server import RecordingServer
from desktop_app.server.accesslog import read_entries
from desktop_app.server.recordings import RecordingStore, StoredRecording

pytestmark = pytest.mark.needs_tool("ffprobe")


def test_curl_ranges_and_head(server: RecordingServer, stored: StoredRecording, blob: Path, tmp_path: Path) -> None:
    link = server.make_link(stored.sha256)
    out = subprocess.run(["curl", "-sS", "--noproxy", "*", "-r", "1000-1999", link], capture_output=True,
                         check=True, timeout=30).stdout
    assert out == blob.read_bytes()[1000:2000]
    head = subprocess.run(["curl", "-sS", "--noproxy", "*", "-I", link], capture_output=True, text=True,
                          check=True, timeout=30).stdout
    assert head.startswith("HTTP/1.1 200") and "content-length: 300000" in head.lower()
    # resume a download cut short, as curl -C - does
    target = tmp_path / "partial.wav"
    target.write_bytes(blob.read_bytes()[:123_456])
    subprocess.run(["curl", "-sS", "--noproxy", "*", "-C", "-", "-o", str(target), link], check=True, timeout=30)
    assert target.read_bytes() == blob.read_bytes()


def ffprobe(url: str) -> dict[str, object]:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,channels:format=duration",
                          "-of", "json", url], capture_output=True, text=True, check=True, timeout=60).stdout
    data = json.loads(out)
    return {"codec": data["streams"][0]["codec_name"], "channels": data["streams"][0]["channels"],
            "duration": float(data["format"]["duration"])}


@pytest.mark.parametrize(("name", "codec"), [("call.wav", "pcm_s16le"), ("call.flac", "flac"), ("call.mp4", "aac")])
def test_ffprobe_reads_each_format_over_http(store: RecordingStore, server: RecordingServer, tmp_path: Path,
                                             name: str, codec: str) -> None:
    path = tmp_path / name
    if name.endswith(".wav"):
        write_wav(path, seconds=3.0)
    else:
        write_encoded(path, "flac" if name.endswith(".flac") else "aac", seconds=3.0)
    rec = store.add(path)
    info = ffprobe(server.make_link(rec.sha256))
    assert info["codec"] == codec and info["channels"] == 2
    assert abs(float(info["duration"]) - 3.0) < 0.1  # type: ignore[arg-type]
    server.access_log.flush()
    assert any(e.get("sha256") == rec.sha256 and e["status"] in (200, 206) for e in read_entries())


def test_ffmpeg_seeks_into_a_wav_with_a_range_request(store: RecordingStore, server: RecordingServer,
                                                      tmp_path: Path) -> None:
    rate = 44100  # 3.5 MB: a jump of 2 MB is beyond what ffmpeg reads through instead of seeking
    src = write_wav(tmp_path / "long.wav", seconds=20.0, rate=rate)
    rec = store.add(src)
    out = subprocess.run(["ffmpeg", "-v", "error", "-ss", "12", "-i", server.make_link(rec.sha256), "-t", "1",
                          "-f", "s16le", "-acodec", "pcm_s16le", "-"], capture_output=True, check=True,
                         timeout=60).stdout
    with wave.open(str(src)) as w:
        frames = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).reshape(-1, 2)
    got = np.frombuffer(out, dtype=np.int16).reshape(-1, 2)
    assert len(got) == rate
    assert np.array_equal(got, frames[12 * rate : 13 * rate])
    server.access_log.flush()
    starts = [int(e["range"].split("=")[1].split("-")[0]) for e in read_entries()
              if e.get("sha256") == rec.sha256 and e.get("range")]
    assert any(s >= 12 * rate * 4 for s in starts), starts  # it jumped with a Range, not by reading through


def test_ffmpeg_decodes_a_flac_from_the_middle(store: RecordingStore, server: RecordingServer, tmp_path: Path) -> None:
    src = write_encoded(tmp_path / "long.flac", "flac", seconds=20.0)
    rec = store.add(src)
    out = subprocess.run(["ffmpeg", "-v", "error", "-ss", "10", "-i", server.make_link(rec.sha256), "-t", "2",
                          "-f", "s16le", "-acodec", "pcm_s16le", "-"], capture_output=True, check=True,
                         timeout=60).stdout
    assert len(out) == 2 * 44100 * 2 * 2
    server.access_log.flush()
    ranges = [e["range"] for e in read_entries() if e.get("sha256") == rec.sha256 and e.get("range")]
    assert any(not r.startswith("bytes=0-") for r in ranges), ranges
