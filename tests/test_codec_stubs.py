"""build.spec's codec stubs, proven on the venv's own PyAV: PyAV's video codec libraries (x264, x265,
SVT-AV1, libvpx, dav1d, libwebp) and GnuTLS are replaced by stubs in a copy of the ``av`` package, and
in a fresh Python with that copy first on ``sys.path`` ``import av`` loads (every symbol bound at once,
``LD_BIND_NOW``), WAV/FLAC/MP4/MP3/Ogg files are written and decoded to the samples put in, the app's
probe, analysis and conversion work, and opening a stubbed codec or an https URL fails with an FFmpeg
error.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the stubs are ELF shared objects (Linux)")


def run(argv: list[str]) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def installed_av() -> Path:
    import av

    return Path(av.__file__).resolve().parent.parent  # site-packages: av/ and av.libs/


@pytest.fixture(scope="module")
def stubbed(spec: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A copy of the installed av + av.libs with build.spec's stubs put in place of the originals."""
    site = installed_av()
    root = tmp_path_factory.mktemp("stubbed-av")
    shutil.copytree(site / "av", root / "av", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(site / "av.libs", root / "av.libs")
    files = {p.relative_to(root).as_posix(): str(p) for p in root.rglob("*")
             if p.is_file() and ".so" in p.name}
    stubs = spec["make_codec_stubs"](files, root / "stubs", run)
    before = {key: os.path.getsize(files[key]) for key in stubs}
    for key, stub in stubs.items():
        if stub is None:
            os.remove(files[key])
        else:
            shutil.copyfile(stub, files[key])
    return {"root": root, "stubs": stubs, "before": before, "site": site}


def run_python(root: Path, code: str) -> dict[str, Any]:
    """Run `code` in a fresh Python with the stubbed copy first on sys.path; it prints one JSON line."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LD_LIBRARY_PATH")}
    env.update(PYTHONPATH=os.pathsep.join([str(root), str(ROOT)]), LD_BIND_NOW="1")
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=env, cwd=root, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_the_video_libraries_are_replaced_by_small_stubs(stubbed: dict[str, Any]) -> None:
    stubs, before = stubbed["stubs"], stubbed["before"]
    stems = {Path(key).name.split("-")[0] for key in stubs}
    assert {"libx265", "libx264", "libSvtAv1Enc", "libvpx", "libdav1d", "libwebp", "libwebpmux", "libgnutls"} <= stems
    dropped = {Path(key).name.split("-")[0] for key, stub in stubs.items() if stub is None}
    assert dropped == {"libsharpyuv", "libnettle", "libhogweed", "libgmp", "libunistring"}, dropped
    libs = stubbed["root"] / "av.libs"
    for key, stub in stubs.items():
        path = stubbed["root"] / key
        if stub is None:  # only another stubbed library needed it (libwebp, libgnutls)
            assert not path.exists()
            continue
        assert path.stat().st_size < 32_000 < before[key], (key, path.stat().st_size, before[key])
    saved = sum(before.values()) - sum((stubbed["root"] / k).stat().st_size for k, s in stubs.items() if s)
    assert saved > 38e6, saved
    gnutls = next(libs.glob("libgnutls-*"))
    assert "GNUTLS_3_4" in run(["readelf", "-V", str(gnutls)])  # the versions libavformat asks for
    # kept: what `import av` links directly, and the audio codecs' libraries
    for kept in ("libavcodec", "libavformat", "libavutil", "libswresample", "libswscale", "libopus",
                 "libmp3lame", "libopencore-amrnb", "libopencore-amrwb"):
        found = list(libs.glob(kept + "-*"))
        assert found and found[0].stat().st_size == (stubbed["site"] / "av.libs" / found[0].name).stat().st_size


def test_a_stub_keeps_the_soname_and_the_size_of_data_symbols(spec: dict[str, Any], stubbed: dict[str, Any]) -> None:
    x264 = next((stubbed["root"] / "av.libs").glob("libx264-*"))
    real = stubbed["site"] / "av.libs" / x264.name
    assert spec["elf_dynamic"](x264, run)[0] == spec["elf_dynamic"](real, run)[0] == x264.name
    stub_syms = spec["elf_symbols"](x264, run, defined=True)
    real_syms = spec["elf_symbols"](real, run, defined=True)
    assert stub_syms["x264_levels"][1] == real_syms["x264_levels"][1] > 0  # data: same size
    avcodec = next((stubbed["root"] / "av.libs").glob("libavcodec-*"))
    imported = {n for n in spec["elf_symbols"](avcodec, run, defined=False) if n in real_syms}
    assert "x264_encoder_open_165" in imported and set(stub_syms) == imported  # exactly what libavcodec takes
    assert len(stub_syms) < len(real_syms) / 3


def test_a_stub_keeps_symbol_versions(spec: dict[str, Any], tmp_path: Path) -> None:
    """libvpl versions its symbols (LIBVPL_2.0); a stub of it carries the versions its importers ask for."""
    libs = installed_av() / "av.libs"
    real = next(libs.glob("libvpl-*"))
    importers = [next(libs.glob("libavutil-*")), next(libs.glob("libavcodec-*")), next(libs.glob("libavfilter-*"))]
    wanted = {}
    for path in importers:
        wanted.update({n: v for n, v in spec["elf_symbols"](path, run, defined=False).items() if n.startswith("MFX")})
    assert wanted and set(wanted.values()) == {"LIBVPL_2.0"}
    count = spec["build_stub"](real, tmp_path / real.name, importers, run)
    got = spec["elf_symbols"](tmp_path / real.name, run, defined=True)
    assert count == len(wanted)
    assert {n: v for n, (_t, _s, v) in got.items() if n.startswith("MFX")} == wanted
    assert "LIBVPL_2.0" in run(["readelf", "-V", str(tmp_path / real.name)])


DECODE = r"""
import json, os, sys
import numpy as np
import av

root = os.getcwd()
assert av.__file__.startswith(root), av.__file__
maps = {line.split()[-1] for line in open("/proc/self/maps") if "/av.libs/" in line}
loaded = {os.path.basename(p): os.path.getsize(p) for p in maps}

rate, seconds = 44100, 2
t = np.arange(rate * seconds) / rate
signal = np.stack([0.5 * np.sin(2 * np.pi * 440 * t), 0.25 * np.sin(2 * np.pi * 1000 * t)])
pcm16 = np.round(signal * 32767).astype(np.int16)

def write(path, fmt, codec, rate=rate):
    with av.open(path, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate, layout="stereo")
        x = signal if rate == 44100 else np.stack([0.5 * np.sin(2 * np.pi * 440 * np.arange(rate * seconds) / rate),
                                                   0.25 * np.sin(2 * np.pi * 1000 * np.arange(rate * seconds) / rate)])
        frame_fmt = stream.codec_context.format.name
        for i in range(0, x.shape[1], 1024):
            block = x[:, i:i + 1024]
            if frame_fmt in ("s16", "s16p"):
                block = np.round(block * 32767).astype(np.int16)
            elif frame_fmt in ("s32", "s32p"):
                block = np.round(block * 32767).astype(np.int32) << 16
            else:
                block = block.astype(np.float32)
            data = np.ascontiguousarray(block) if frame_fmt.endswith("p") else block.T.reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format=frame_fmt, layout="stereo")
            frame.sample_rate, frame.pts = rate, i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)

def read(path):
    with av.open(path) as container:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=stream.rate)
        blocks = [f.to_ndarray() for frame in container.decode(stream) for f in resampler.resample(frame)]
        return stream.codec_context.name, stream.rate, np.concatenate(blocks, axis=1)

def tones(x, rate):
    out = []
    for ch in x:
        spectrum = np.abs(np.fft.rfft(ch[rate // 4: rate // 4 + rate]))  # one second: bin k is k Hz
        out.append([int(np.argmax(spectrum)), round(float(np.sqrt(np.mean(ch[rate // 4:-rate // 4] ** 2))), 3)])
    return out

result = {"loaded": loaded, "files": {}}
for name, fmt, codec, r in [("a.wav", "wav", "pcm_s16le", rate), ("a.flac", "flac", "flac", rate),
                            ("a.mp4", "mp4", "aac", rate), ("a.mp3", "mp3", "libmp3lame", rate),
                            ("a.ogg", "ogg", "libopus", 48000)]:
    write(name, fmt, codec, r)
    decoder, got_rate, x = read(name)
    entry = {"decoder": decoder, "rate": got_rate, "tones": tones(x, got_rate)}
    if fmt in ("wav", "flac"):
        entry["exact"] = bool(np.array_equal(np.round(x * 32768).astype(np.int32), pcm16.astype(np.int32)))
    result["files"][name] = entry

from desktop_app import audio
probe = audio.probe("a.mp4")
found = audio.analyse("a.mp4")
flac = audio.convert("a.mp4", os.path.join(root, "converted.flac"))
wav = audio.convert("a.flac", os.path.join(root, "converted.wav"))
result["app"] = {
    "probe": [probe.codec, probe.channels, round(probe.duration_s or 0, 1)],
    "analyse": [round(found.duration_s, 1), found.identical_channels, found.silent_channels],
    "converted.flac": read(str(flac))[0], "converted.wav": [read(str(wav))[0],
    bool(np.array_equal(np.round(read(str(wav))[2] * 32768).astype(np.int32), pcm16.astype(np.int32)))],
}
print(json.dumps(result))
"""


def test_audio_is_written_and_decoded_with_the_stubs_in_place(stubbed: dict[str, Any]) -> None:
    result = run_python(stubbed["root"], DECODE)
    for key, stub in stubbed["stubs"].items():  # the loaded copies are the stubs
        name = Path(key).name
        if stub is not None:
            assert 0 < result["loaded"][name] < 32_000, (name, result["loaded"].get(name))
    assert any(n.startswith("libavcodec") and size > 10e6 for n, size in result["loaded"].items())
    files = result["files"]
    assert {n: f["decoder"] for n, f in files.items()} == {
        "a.wav": "pcm_s16le", "a.flac": "flac", "a.mp4": "aac", "a.mp3": "mp3float", "a.ogg": "opus"}
    assert files["a.wav"]["exact"] and files["a.flac"]["exact"]  # lossless: the very samples
    for name, f in files.items():
        (f1, rms1), (f2, rms2) = f["tones"]
        assert abs(f1 - 440) <= 2 and abs(f2 - 1000) <= 2, (name, f["tones"])
        assert abs(rms1 - 0.354) < 0.02 and abs(rms2 - 0.177) < 0.02, (name, f["tones"])
    app = result["app"]
    assert app["probe"] == ["aac", 2, 2.0], app
    assert app["analyse"][0] == pytest.approx(2.0, abs=0.1) and app["analyse"][1:] == [False, []], app
    assert app["converted.flac"] == "flac" and app["converted.wav"] == ["pcm_s16le", True], app


OPEN_STUBBED = r"""
import json
from fractions import Fraction
import av

outcome = {}
for name, mode in [("libx264", "w"), ("libx265", "w"), ("libsvtav1", "w"), ("libvpx", "w"), ("libvpx-vp9", "w"),
                   ("libwebp", "w"), ("libwebp_anim", "w"), ("libdav1d", "r"), ("libvpx", "r"), ("libvpx-vp9", "r")]:
    ctx = av.CodecContext.create(name, mode)
    if mode == "w":
        ctx.width, ctx.height, ctx.pix_fmt, ctx.time_base = 64, 64, "yuv420p", Fraction(1, 25)
    try:
        ctx.open()
        outcome[f"{name}/{mode}"] = "opened"
    except av.FFmpegError as exc:
        outcome[f"{name}/{mode}"] = type(exc).__name__
# FFmpeg's own decoders stay the default for these formats (the stubbed libraries are never chosen)
outcome["default decoders"] = {c: av.Codec(c, "r").name for c in ("av1", "vp8", "vp9", "h264", "webp")}
print(json.dumps(outcome))
"""


def test_opening_a_stubbed_codec_fails_with_an_ffmpeg_error(stubbed: dict[str, Any]) -> None:
    outcome = run_python(stubbed["root"], OPEN_STUBBED)
    defaults = outcome.pop("default decoders")
    assert defaults == {"av1": "av1", "vp8": "vp8", "vp9": "vp9", "h264": "h264", "webp": "webp"}
    assert not [name for name, what in outcome.items() if what == "opened"], outcome


def test_substitute_codec_stubs_replaces_toc_entries(spec: dict[str, Any], tmp_path: Path) -> None:
    site = installed_av()
    toc = [(p.relative_to(site).as_posix(), str(p), "BINARY") for p in sorted((site / "av.libs").iterdir())]
    toc += [(p.relative_to(site).as_posix(), str(p), "EXTENSION") for p in sorted((site / "av").rglob("*.so"))]
    toc.append(("numpy.libs/libscipy_openblas64_-32a4b2a6.so", "/elsewhere/openblas.so", "BINARY"))
    out, line = spec["substitute_codec_stubs"](toc, tmp_path, run)
    changed = {dest: src for dest, src, _k in out if src != dict((d, s) for d, s, _ in toc)[dest]}
    assert {Path(d).name.split("-")[0] for d in changed} == {
        "libx265", "libx264", "libSvtAv1Enc", "libvpx", "libdav1d", "libwebp", "libwebpmux", "libgnutls"}
    assert all(Path(src).parent == tmp_path for src in changed.values())
    dropped = {Path(d).name.split("-")[0] for d, _s, _k in toc} - {Path(d).name.split("-")[0] for d, _s, _k in out}
    assert dropped == {"libsharpyuv", "libnettle", "libhogweed", "libgmp", "libunistring"}, dropped
    assert len(out) == len(toc) - 5 and "MB saved" in line
    for other in ("win32", "darwin"):
        assert spec["substitute_codec_stubs"](toc, tmp_path, run, platform=other)[0] is toc


HTTPS = r"""
import json, socket, threading, time
import av

server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(1)

def answer():  # a TCP peer that accepts and says something that is not TLS
    conn, _ = server.accept()
    conn.sendall(b"HTTP/1.1 200 OK" * 64)
    conn.recv(65536)
    conn.close()

threading.Thread(target=answer, daemon=True).start()
start = time.monotonic()
try:
    av.open(f"https://127.0.0.1:{server.getsockname()[1]}/call.wav", timeout=5)
    outcome = "opened"
except av.FFmpegError as exc:
    outcome = type(exc).__name__
print(json.dumps({"outcome": outcome, "seconds": time.monotonic() - start}))
"""


def test_an_https_url_fails_at_the_stubbed_handshake(stubbed: dict[str, Any]) -> None:
    """FFmpeg's TLS goes through the GnuTLS stub: the connection is made, the handshake fails cleanly."""
    result = run_python(stubbed["root"], HTTPS)
    # at once, with an error: not opened, and not the 5 s timeout (ExitError) of a retried handshake
    assert result["outcome"] not in ("opened", "ExitError") and result["seconds"] < 2, result


def test_what_only_a_stubbed_library_linked_is_left_out_of_the_closure(spec: dict[str, Any], tmp_path: Path) -> None:
    """libmvec is linked by libx265 alone; with x265 stubbed, linked_closure (fed PyAV's own NEEDED
    entries) no longer keeps it, while libz and libstdc++ (linked by kept libraries) stay."""
    from PyInstaller.depend.bindepend import get_imports

    site = installed_av()
    toc = [(p.relative_to(site).as_posix(), str(p), "BINARY") for p in sorted((site / "av.libs").iterdir())]
    toc += [(p.relative_to(site).as_posix(), str(p), "EXTENSION") for p in sorted((site / "av").rglob("*.so"))]
    system = {name: path for name, path in get_imports(str(next((site / "av.libs").glob("libx265-*"))))
              if path and name in ("libmvec.so.1", "libstdc++.so.6")}
    system.update({n: p for n, p in get_imports(str(next((site / "av.libs").glob("libavcodec-*")))) if n == "libz.so.1"})
    assert set(system) == {"libmvec.so.1", "libstdc++.so.6", "libz.so.1"}, system
    toc += [(name, path, "BINARY") for name, path in system.items()]  # top level: prunable
    stubbed, _line = spec["substitute_codec_stubs"](toc, tmp_path, run)
    needed = spec["linked_closure"](stubbed, spec["pyav_needed_imports"](stubbed, get_imports, run))
    assert needed >= {"libz.so.1", "libstdc++.so.6"} and "libmvec.so.1" not in needed, needed
    assert "libmvec.so.1" in spec["linked_closure"](stubbed, get_imports)  # ldd's view still has the real x265
