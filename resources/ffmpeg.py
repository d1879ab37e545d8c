"""FFmpeg: the binary, its thread budget and what hardware it can really use on this machine.

Every command runs with a time limit (a hung encode must not hang a run forever), its log kept
on disk with only the tail read back (a long run's log is not held in memory), and its file
inputs restricted to local files in the accepted source containers (an uploaded playlist must
not pull other files into a published title).
"""

from __future__ import annotations

import functools
import os
import re
import signal
import subprocess
import tempfile
from pathlib import Path

import imageio_ffmpeg
from dagster import ConfigurableResource
from pydantic import Field

from netflix_assets.video.encode import HardwareReport
from netflix_assets.video.probe import SOURCE_OPEN_OPTIONS


class FFmpegError(RuntimeError):
    """An FFmpeg command failed; the message carries the tail of its stderr."""


def _default_ffmpeg() -> str:
    return imageio_ffmpeg.get_ffmpeg_exe()


def harden_inputs(cmd: list[str]) -> list[str]:
    """`cmd` with every file input (`-i` without its own `-f`) limited to the file protocol and
    the source containers, so a playlist or concat list named as an input is refused by FFmpeg
    instead of read. Inputs with an explicit format (lavfi sources, a list the pipeline wrote
    itself) are the caller's own and left as they are."""
    out: list[str] = []
    since_input = 0  # where the current input's options begin in `out`
    i = 0
    while i < len(cmd):
        if cmd[i] == "-i" and i + 1 < len(cmd):
            options = out[since_input:]
            if "-f" not in options:
                for name, value in SOURCE_OPEN_OPTIONS.items():
                    if f"-{name}" not in options:
                        out += [f"-{name}", value]
            out += ["-i", cmd[i + 1]]
            since_input = len(out)
            i += 2
            continue
        out.append(cmd[i])
        i += 1
    return out


def _tail(log, limit: int) -> str:
    """The last `limit` bytes of an open log file, as text."""
    size = log.seek(0, os.SEEK_END)
    log.seek(max(0, size - limit))
    return log.read().decode("utf-8", "replace")


def _succeeds(cmd: list[str], timeout: float = 30) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=timeout).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@functools.lru_cache(maxsize=8)
def detect_hardware(ffmpeg_path: str) -> HardwareReport:
    """Ask the build what it has, then *try* NVENC and CUDA decode on tiny clips: a build that
    lists h264_nvenc on a machine without a GPU (like the static build here) must not be used."""

    def listing(flag: str) -> str:
        return subprocess.run(
            [ffmpeg_path, "-hide_banner", flag], capture_output=True, text=True, timeout=60
        ).stdout

    version = listing("-version").splitlines()[0]
    encoders = frozenset(re.findall(r"^\s*V\S*\s+(\S+)", listing("-encoders"), flags=re.M))
    filters = listing("-filters")
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
    timeout_s: float = Field(
        default=6 * 3600.0,
        description="Longest one FFmpeg command may run before it is killed and the step fails; "
        "raise it for feature-length titles on slow workers.",
    )
    log_keep_bytes: int = Field(
        default=64 * 1024, description="How much of the end of FFmpeg's log run() returns."
    )

    def probe_hardware(self) -> HardwareReport:
        return detect_hardware(self.ffmpeg_path)

    def run(self, cmd: list[str], timeout_s: float | None = None) -> str:
        """Run an FFmpeg command (inputs hardened, see harden_inputs); returns the last
        log_keep_bytes of its stderr. Raises FFmpegError on failure or after `timeout_s`
        (default: the resource's), killing the process."""
        cmd = harden_inputs(cmd)
        limit = self.timeout_s if timeout_s is None else timeout_s
        with tempfile.TemporaryFile() as log:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,  # its own process group, killed whole on timeout
            )
            try:
                returncode = proc.wait(timeout=limit)
            except subprocess.TimeoutExpired:
                returncode = None
            finally:
                if proc.poll() is None:  # timed out, or this thread was interrupted
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            tail = _tail(log, max(self.log_keep_bytes, self.stderr_tail_chars))
        command = f"command: {' '.join(cmd[:16])} ..."
        if returncode is None:
            raise FFmpegError(
                f"ffmpeg ran longer than its {limit:.0f}s limit and was killed; a hung input "
                f"or a title too long for FFmpegResource.timeout_s. Last log: "
                f"{tail[-self.stderr_tail_chars :].strip() or '(none)'}\n{command}"
            )
        if returncode != 0:
            excerpt = tail[-self.stderr_tail_chars :].strip()
            raise FFmpegError(
                f"ffmpeg exited with {returncode}: {excerpt or '(no stderr)'}\n{command}"
            )
        return tail[-self.log_keep_bytes :]
