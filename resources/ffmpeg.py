"""FFmpeg: the binary, its thread budget and what hardware it can really use on this machine."""

from __future__ import annotations

import functools
import os
import re
import subprocess
import tempfile
from pathlib import Path

import imageio_ffmpeg
from dagster import ConfigurableResource
from pydantic import Field

from netflix_assets.video.encode import HardwareReport


class FFmpegError(RuntimeError):
    """An FFmpeg command failed; the message carries the tail of its stderr."""


def _default_ffmpeg() -> str:
    return imageio_ffmpeg.get_ffmpeg_exe()


def _succeeds(cmd: list[str], timeout: float = 30) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=timeout).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@functools.lru_cache(maxsize=8)
def detect_hardware(ffmpeg_path: str) -> HardwareReport:
    """Ask the build what it has, then *try* NVENC and CUDA decode on tiny clips: a build that
    lists h264_nvenc on a machine without a GPU (like the static build here) must not be used."""
    version = subprocess.run(
        [ffmpeg_path, "-hide_banner", "-version"], capture_output=True, text=True
    ).stdout.splitlines()[0]
    enc_out = subprocess.run(
        [ffmpeg_path, "-hide_banner", "-encoders"], capture_output=True, text=True
    ).stdout
    encoders = frozenset(re.findall(r"^\s*V\S*\s+(\S+)", enc_out, flags=re.M))
    filters = subprocess.run(
        [ffmpeg_path, "-hide_banner", "-filters"], capture_output=True, text=True
    ).stdout
    base = [ffmpeg_path, "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    tiny = ["-f", "lavfi", "-i", "testsrc2=size=256x144:rate=25:duration=0.2"]
    nvenc = "h264_nvenc" in encoders and _succeeds(
        [*base, *tiny, "-c:v", "h264_nvenc", "-f", "null", "-"]
    )
    with tempfile.TemporaryDirectory() as tmp:
        clip = str(Path(tmp) / "tiny.mp4")
        made = _succeeds([*base, *tiny, "-c:v", "libx264", "-pix_fmt", "yuv420p", clip])
        nvdec = made and _succeeds(
            [
                *base,
                "-hwaccel",
                "cuda",
                "-hwaccel_output_format",
                "cuda",
                "-i",
                clip,
                "-vf",
                "scale_cuda=128:72",
                "-f",
                "null",
                "-",
            ]
        )
    return HardwareReport(
        ffmpeg_version=version,
        has_libvmaf=" libvmaf " in filters,
        encoders=encoders,
        nvenc_usable=nvenc,
        nvdec_cuda_usable=nvdec,
    )


class FFmpegResource(ConfigurableResource):
    """The FFmpeg binary the pipeline runs. `prefer_hardware` uses NVENC/CUDA only where
    probe_hardware() proved they work, so the same config runs on GPU and CPU workers."""

    ffmpeg_path: str = Field(
        default_factory=_default_ffmpeg, description="FFmpeg binary (default: imageio-ffmpeg's)."
    )
    threads: int = Field(default=0, description="-threads for FFmpeg; 0 lets FFmpeg decide.")
    vmaf_threads: int = Field(
        default_factory=lambda: os.cpu_count() or 2, description="libvmaf n_threads."
    )
    prefer_hardware: bool = True
    codec: str = Field(default="h264", description="Ladder codec: h264, hevc or av1.")
    preset: str | None = Field(default=None, description="Encoder preset; None: encoder default.")
    stderr_tail_chars: int = 2000

    def probe_hardware(self) -> HardwareReport:
        return detect_hardware(self.ffmpeg_path)

    def run(self, cmd: list[str], timeout_s: float | None = None) -> str:
        """Run an FFmpeg command; returns stderr (FFmpeg's log). Raises FFmpegError on failure."""
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        if proc.returncode != 0:
            tail = proc.stderr[-self.stderr_tail_chars :].strip()
            raise FFmpegError(
                f"ffmpeg exited with {proc.returncode}: {tail or '(no stderr)'}\n"
                f"command: {' '.join(cmd[:12])} ..."
            )
        return proc.stderr
