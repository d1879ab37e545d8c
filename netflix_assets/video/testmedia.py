"""Synthetic sources made with FFmpeg's lavfi generators, so tests and the demo need no downloads.

Each shape stresses one thing the pipeline must handle: a hard scene cut with film-grain-like
noise (keyframe grid must not follow the cut), odd dimensions, no audio, 10-bit, a display-matrix
rotation, and variable frame rate. Content moves (testsrc2 scrolls, mandelbrot zooms) so the
encoder and VMAF see real motion, not a still.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Shape:
    width: int
    height: int
    fps: int = 30
    seconds: float = 4.0
    audio: bool = True
    ten_bit: bool = False
    rotation: int = 0
    vfr: bool = False
    content: str = "cut"
    """cut: testsrc2, hard cut to a zooming mandelbrot; still: testsrc2's first frame held (a
    slide); grain: mandelbrot under heavy film-grain-like noise; pan: testsrc2 scrolling fast."""
    frames: int | None = None
    """Keep only the first N frames (a 1-frame video)."""


SHAPES: dict[str, Shape] = {
    "1080p": Shape(1920, 1080, seconds=2.0),
    "720p": Shape(1280, 720, seconds=3.0),
    "odd": Shape(961, 541, fps=25, seconds=3.0),
    "silent": Shape(960, 540, audio=False, seconds=3.0),
    "10bit": Shape(960, 540, ten_bit=True, seconds=3.0),
    "rotated": Shape(960, 540, rotation=90, seconds=3.0),
    "vfr": Shape(960, 540, vfr=True, seconds=4.0),
    # Below 480p: the fixed ladder keeps a single 234p rung for these.
    "272p": Shape(640, 272, fps=25, seconds=3.0),
    "240p": Shape(320, 240, fps=25, seconds=3.0, content="pan"),
    "portrait": Shape(272, 480, fps=25, seconds=2.0, audio=False),
    "still": Shape(640, 360, fps=25, seconds=3.0, content="still", audio=False),
    "grain": Shape(640, 360, fps=25, seconds=3.0, content="grain", audio=False),
    "short": Shape(480, 270, fps=25, seconds=1.0, audio=False),
    "one-frame": Shape(480, 270, fps=25, seconds=1.0, audio=False, frames=1),
}


def _content(shape: Shape, w: int, h: int) -> str:
    rate, secs = shape.fps, shape.seconds
    if shape.content == "still":
        first = f"testsrc2=size={w}x{h}:rate={rate}:duration={secs},trim=end_frame=1"
        return f"{first},tpad=stop_mode=clone:stop_duration={secs},trim=duration={secs}"
    if shape.content == "grain":
        zoom = f"mandelbrot=size={w}x{h}:rate={rate},trim=duration={secs}"
        return f"{zoom},noise=alls=20:allf=t"
    if shape.content == "pan":
        pan = f"testsrc2=size={w}x{h}:rate={rate}:duration={secs}"
        return f"{pan},scroll=horizontal=0.03:vertical=0.02,noise=alls=4:allf=t"
    half = secs / 2
    src = f"testsrc2=size={w}x{h}:rate={rate}:duration={half}"
    cut = f"mandelbrot=size={w}x{h}:rate={rate},trim=duration={half}"
    return f"{src}[a];{cut}[b];[a][b]concat=n=2:v=1:a=0,noise=alls=6:allf=t"


def _video_graph(shape: Shape) -> str:
    """The shape's content (default: testsrc2, a hard cut to a zooming mandelbrot, temporal
    noise over both) in its pixel format, size and frame timing."""
    # Generators snap odd sizes to even ones; make the next even size and crop to the odd one.
    w, h = shape.width + shape.width % 2, shape.height + shape.height % 2
    fmt = "yuv420p10le" if shape.ten_bit else ("yuv444p" if shape.width % 2 else "yuv420p")
    graph = f"{_content(shape, w, h)},format={fmt}"
    if shape.frames:
        graph += f",trim=end_frame={shape.frames}"
    if (w, h) != (shape.width, shape.height):
        graph += f",crop={shape.width}:{shape.height}:0:0"
    if shape.vfr:
        # First second at full rate, then every third frame: irregular frame durations.
        graph += ",select='lt(t\\,1)+not(mod(n\\,3))'"
    return graph + "[v]"


def make_clip(path: str | Path, shape: Shape | str, ffmpeg: str | None = None) -> Path:
    """Write a test clip of `shape` (a Shape or a SHAPES name) to `path` (an .mp4)."""
    if ffmpeg is None:
        import imageio_ffmpeg

        ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    if isinstance(shape, str):
        shape = SHAPES[shape]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(path.stem + ".unrotated.mp4") if shape.rotation else path
    cmd = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    if shape.audio:
        tone = f"sine=frequency=440:sample_rate=48000:duration={shape.seconds}"
        cmd += ["-f", "lavfi", "-i", tone]
    cmd += ["-filter_complex", _video_graph(shape), "-map", "[v]"]
    if shape.audio:
        cmd += ["-map", "0:a", "-c:a", "aac", "-b:a", "128k"]
    if shape.ten_bit:
        cmd += ["-c:v", "libx265", "-x265-params", "log-level=error", "-tag:v", "hvc1"]
        cmd += ["-crf", "20", "-preset", "ultrafast"]
    else:
        cmd += ["-c:v", "libx264", "-x264-params", "log-level=error"]
        cmd += ["-crf", "20", "-preset", "veryfast"]
    if shape.vfr:
        cmd += ["-fps_mode", "vfr"]
    cmd.append(str(staging))
    subprocess.run(cmd, check=True, capture_output=True)
    if shape.rotation:
        # A display matrix, as phones write it: coded landscape, shown portrait.
        subprocess.run(
            [
                *(ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y"),
                *("-display_rotation", str(shape.rotation), "-i", str(staging)),
                *("-c", "copy", str(path)),
            ],
            check=True,
            capture_output=True,
        )
        staging.unlink()
    return path
