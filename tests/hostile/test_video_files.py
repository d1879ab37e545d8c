"""Hostile video files and FFmpeg runs: a playlist or concat list uploaded as a "video" must not
pull other local files into a title, a hung FFmpeg must not hang a run, and a chatty one must not
fill memory."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import imageio_ffmpeg
import pytest

from netflix_assets.video.probe import UploadRejected, probe, validate_upload
from netflix_assets.video.testmedia import make_clip
from resources.ffmpeg import FFmpegError, FFmpegResource, harden_inputs

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


@pytest.fixture(scope="module")
def secret(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local video the attacker wants transcoded and published: any file FFmpeg can read."""
    return make_clip(tmp_path_factory.mktemp("private") / "private.mp4", "silent")


def playlists(folder: Path, secret: Path) -> dict[str, Path]:
    folder.mkdir(exist_ok=True)
    hls = f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n{secret}\n#EXT-X-ENDLIST\n"
    made = {
        "hls.m3u8": hls,
        # The same playlist under a video name: only the content decides.
        "trailer.mp4": hls,
        "list.ffconcat": f"ffconcat version 1.0\nfile '{secret}'\n",
    }
    for name, text in made.items():
        (folder / name).write_text(text)
    return {name: folder / name for name in made}


def test_probe_refuses_playlists_naming_what_they_are(tmp_path: Path, secret: Path) -> None:
    files = playlists(tmp_path / "up", secret)
    for name in ("hls.m3u8", "trailer.mp4"):
        with pytest.raises(UploadRejected, match=rf"'{name}' is an HLS playlist, not a video"):
            validate_upload(files[name])
    with pytest.raises(UploadRejected, match="is an FFmpeg concat list"):
        validate_upload(files["list.ffconcat"])
    assert probe(secret).container.startswith("mov")  # a real MP4 still opens


def test_ffmpeg_run_refuses_a_playlist_input(tmp_path: Path, secret: Path) -> None:
    """Before the fix, FFmpeg read the playlist's entries and wrote the private clip out."""
    files = playlists(tmp_path / "up", secret)
    ffmpeg = FFmpegResource()
    for name in ("hls.m3u8", "list.ffconcat"):
        out = tmp_path / f"{name}.out.mp4"
        cmd = [FFMPEG, "-hide_banner", "-nostdin", "-y", "-loglevel", "error"]
        with pytest.raises(FFmpegError, match="Invalid argument"):
            ffmpeg.run([*cmd, "-i", str(files[name]), "-c", "copy", str(out)])
        assert not out.exists() or out.stat().st_size == 0
    # A real source still transcodes through the same door.
    out = tmp_path / "ok.mp4"
    cmd = [FFMPEG, "-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-i", str(secret)]
    ffmpeg.run([*cmd, "-c", "copy", str(out)])
    assert out.stat().st_size > 0


def test_harden_inputs_leaves_explicit_formats_alone() -> None:
    cmd = ["ffmpeg", "-ss", "1", "-i", "a.mp4", "-f", "lavfi", "-i", "sine", "-f", "null", "-"]
    assert harden_inputs(cmd) == [
        "ffmpeg",
        "-ss",
        "1",
        "-format_whitelist",
        "mov,matroska,avi,mpegts,mxf",
        "-protocol_whitelist",
        "file",
        "-i",
        "a.mp4",
        "-f",
        "lavfi",
        "-i",
        "sine",
        "-f",
        "null",
        "-",
    ]


def _running(tag: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if tag.encode() in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def test_hung_ffmpeg_is_killed_at_its_time_limit() -> None:
    """A source that never ends (a real-time lavfi stream: what a stalled input looks like)."""
    tag = f"hung-{uuid.uuid4().hex[:8]}"
    cmd = [FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-f", "lavfi"]
    cmd += ["-i", "color=size=16x16:rate=5", "-metadata", f"title={tag}", "-f", "null", "-"]
    with pytest.raises(FFmpegError, match=r"longer than its 2s limit and was killed"):
        FFmpegResource(timeout_s=2).run(cmd)
    assert _running(tag) == []


def test_ffmpeg_log_is_kept_to_its_tail(tmp_path: Path) -> None:
    """At debug level FFmpeg logs far more than log_keep_bytes; run() returns only the end."""
    ffmpeg = FFmpegResource(log_keep_bytes=4096, stderr_tail_chars=500)
    cmd = [FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "debug", "-f", "lavfi"]
    cmd += ["-i", "testsrc2=size=64x48:rate=25:duration=2", "-f", "null", "-"]
    log = ffmpeg.run(cmd)
    assert 0 < len(log) <= 4096
    assert os.linesep in log
    with pytest.raises(FFmpegError) as failed:
        ffmpeg.run([*cmd[:-3], "-c:v", "no-such-encoder", "-f", "null", "-"])
    assert len(str(failed.value)) < 500 + 400
