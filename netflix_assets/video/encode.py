"""Build the FFmpeg command that makes every rung of the ladder from one decode.

One process decodes the source once, normalises it to constant frame rate, `split`s the frames
and scales and encodes each branch, one file per rung. Keyframes are forced on a fixed 2-second
grid with scene-cut detection off, so every rung has closed GOPs starting at the same timestamps
and the packager can cut identical 2 s segments from all of them (ABR switching needs that).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from netflix_assets.video.ladder import AUDIO_KBPS, Rung

SEGMENT_SECONDS = 2
SOFTWARE_ENCODERS = {"h264": "libx264", "hevc": "libx265", "av1": "libsvtav1"}
NVENC_ENCODERS = {"h264": "h264_nvenc", "hevc": "hevc_nvenc", "av1": "av1_nvenc"}
DEFAULT_PRESETS = {"libx264": "veryfast", "libx265": "fast", "libsvtav1": "10"}
MAX_FPS = Fraction(60)


@dataclass(frozen=True)
class HardwareReport:
    """What this FFmpeg build can do on this machine; `*_usable` were tried, not assumed."""

    ffmpeg_version: str
    has_libvmaf: bool
    encoders: frozenset[str]
    nvenc_usable: bool
    nvdec_cuda_usable: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "ffmpeg_version": self.ffmpeg_version,
            "has_libvmaf": self.has_libvmaf,
            "encoders": sorted(self.encoders),
            "nvenc_usable": self.nvenc_usable,
            "nvdec_cuda_usable": self.nvdec_cuda_usable,
        }


SOFTWARE_ONLY = HardwareReport("unknown", True, frozenset(), False, False)


@dataclass(frozen=True)
class SourceInfo:
    """The few probe facts the command depends on (a ProbeResult satisfies this shape)."""

    fps: Fraction
    has_audio: bool
    bit_depth: int = 8
    rotation: int = 0
    is_vfr: bool = False
    nominal_fps: Fraction | None = None

    @classmethod
    def from_probe(cls, probe: dict[str, Any]) -> SourceInfo:
        """From ProbeResult.to_dict(), the form raw_upload records."""
        return cls(
            fps=Fraction(probe["fps"]),
            has_audio=probe["has_audio"],
            bit_depth=probe["bit_depth"],
            rotation=probe["rotation"],
            is_vfr=probe["is_vfr"],
            nominal_fps=Fraction(probe["nominal_fps"]),
        )

    @property
    def encode_fps(self) -> Fraction:
        """The rate every rung and every VMAF comparison uses."""
        if self.is_vfr:
            return output_fps(self.nominal_fps or self.fps, vfr=True)
        return output_fps(self.fps)


@dataclass
class EncodePlan:
    cmd: list[str]
    video_outputs: dict[str, Path]
    audio_output: Path | None
    encoder: str
    hardware_decode: bool
    fps: Fraction
    gop: int
    settings: dict[str, Any] = field(default_factory=dict)


STANDARD_RATES = tuple(
    Fraction(r)
    for r in ("15", "24000/1001", "24", "25", "30000/1001", "30", "48", "50", "60000/1001", "60")
)


def output_fps(source_fps: Fraction | float, vfr: bool = False) -> Fraction:
    """The constant frame rate to encode at.

    A constant-rate source keeps its exact rate (29.97 stays 30000/1001), capped at 60. A
    variable-rate source (phone footage) is snapped to the nearest standard rate to its nominal
    rate, because its average rate (say 300/19) is not one a player or a GOP grid should see."""
    fps = Fraction(source_fps) if source_fps else Fraction(30)
    if fps <= 0:
        fps = Fraction(30)
    if vfr:
        fps = min(STANDARD_RATES, key=lambda rate: abs(float(rate) - float(fps)))
    return min(fps, MAX_FPS)


def gop_frames(fps: Fraction) -> int:
    return max(1, math.ceil(float(fps) * SEGMENT_SECONDS))


def choose_encoder(codec: str, hw: HardwareReport) -> str:
    if codec not in SOFTWARE_ENCODERS:
        raise ValueError(f"unknown codec {codec!r}; choose one of {sorted(SOFTWARE_ENCODERS)}")
    if hw.nvenc_usable and NVENC_ENCODERS[codec] in hw.encoders:
        return NVENC_ENCODERS[codec]
    return SOFTWARE_ENCODERS[codec]


def _pix_fmt(codec: str, encoder: str, bit_depth: int) -> str:
    """H.264 stays 8-bit for device reach; HEVC and AV1 keep a 10-bit source's depth."""
    ten_bit = bit_depth > 8 and codec in ("hevc", "av1")
    if encoder.endswith("_nvenc"):
        return "p010le" if ten_bit else "nv12"
    return "yuv420p10le" if ten_bit else "yuv420p"


def video_codec_args(rung: Rung, encoder: str, fps: Fraction, preset: str | None) -> list[str]:
    """Rate control and GOP settings for one rung; identical GOP arguments on every rung."""
    gop = gop_frames(fps)
    if rung.crf is not None:
        # Capped CRF: constant quality, with a VBV so no stretch exceeds maxrate for long and
        # the HLS peak stays near what the plan declares. SVT-AV1 caps CRF the same way.
        quality = "-cq" if encoder.endswith("_nvenc") else "-crf"
        args = ["-c:v", encoder, quality, f"{rung.crf:g}"]
        if rung.maxrate_kbps > 0:  # 0: pure CRF (the planner's probes measure what CRF spends)
            args += ["-maxrate", f"{rung.maxrate_kbps}k", "-bufsize", f"{rung.bufsize_kbps}k"]
    else:
        args = ["-c:v", encoder, "-b:v", f"{rung.bitrate_kbps}k"]
    if rung.crf is None and encoder != "libsvtav1":
        # SVT-AV1 refuses a VBV in its VBR mode (it caps only CRF), so AV1 rungs are plain VBR.
        args += ["-maxrate", f"{rung.maxrate_kbps}k", "-bufsize", f"{rung.bufsize_kbps}k"]
    args += [
        "-g",
        str(gop),
        "-keyint_min",
        str(gop),
        "-force_key_frames",
        f"expr:gte(t,n_forced*{SEGMENT_SECONDS})",
        "-sc_threshold",
        "0",
    ]
    preset = preset or DEFAULT_PRESETS.get(encoder)
    if encoder == "libx264":
        args += ["-preset", preset, "-x264-params", "scenecut=0:open-gop=0"]
    elif encoder == "libx265":
        args += [
            "-preset",
            preset,
            "-x265-params",
            f"scenecut=0:open-gop=0:keyint={gop}:min-keyint={gop}:log-level=error",
            "-tag:v",
            "hvc1",
        ]
    elif encoder == "libsvtav1":
        args += ["-preset", preset, "-svtav1-params", f"keyint={gop}:scd=0"]
    elif encoder.endswith("_nvenc"):
        args += ["-preset", preset or "p5", "-rc", "vbr", "-forced-idr", "1", "-no-scenecut", "1"]
        if encoder == "hevc_nvenc":
            args += ["-tag:v", "hvc1"]
    return args


def _filtergraph(
    rungs: list[Rung], fps: Fraction, pix_fmt: str, cuda_frames: bool, hw_encode: bool
) -> str:
    fps_str = f"{fps.numerator}/{fps.denominator}"
    labels = "".join(f"[s{i}]" for i in range(len(rungs)))
    parts = [f"[0:v]fps={fps_str},setpts=PTS-STARTPTS,split={len(rungs)}{labels}"]
    for i, rung in enumerate(rungs):
        if cuda_frames:
            sw_fmt = "p010le" if pix_fmt in ("p010le", "yuv420p10le") else "nv12"
            chain = f"scale_cuda={rung.width}:{rung.height}:interp_algo=bicubic:format={sw_fmt}"
            if not hw_encode:
                chain += f",hwdownload,format={sw_fmt},format={pix_fmt}"
        else:
            chain = f"scale={rung.width}:{rung.height}:flags=bicubic,setsar=1,format={pix_fmt}"
        parts.append(f"[s{i}]{chain}[v{i}]")
    return ";".join(parts)


def build_ladder_command(
    source: str | Path,
    info: SourceInfo,
    rungs: list[Rung],
    out_dir: str | Path,
    codec: str = "h264",
    hw: HardwareReport = SOFTWARE_ONLY,
    ffmpeg: str = "ffmpeg",
    threads: int = 0,
    preset: str | None = None,
    prefer_hardware: bool = True,
    cpu_count: int | None = None,
) -> EncodePlan:
    """One decode, `split` into N scaled branches, one video file per rung plus an AAC file.

    CUDA decode is used only when it was proven to work and the source needs no rotation (the
    automatic rotation filter runs on system-memory frames). The N libx264 encoders already run
    in parallel, so each gets an equal share of the cores instead of its own full thread pool:
    on 2 cores with 8 rungs, one thread each measured about 10% faster than x264's default."""
    out_dir = Path(out_dir)
    fps = info.encode_fps
    encoder = choose_encoder(codec, hw) if prefer_hardware else SOFTWARE_ENCODERS[codec]
    hw_encode = encoder.endswith("_nvenc")
    cuda_frames = prefer_hardware and hw.nvdec_cuda_usable and info.rotation % 360 == 0
    pix_fmt = _pix_fmt(codec, encoder, info.bit_depth)

    cmd = [ffmpeg, "-hide_banner", "-nostdin", "-y", "-loglevel", "error"]
    if threads:
        cmd += ["-threads", str(threads)]
    if cuda_frames:
        cmd += ["-hwaccel", "cuda", "-hwaccel_output_format", "cuda"]
    cmd += ["-i", str(source)]
    cmd += ["-filter_complex", _filtergraph(rungs, fps, pix_fmt, cuda_frames, hw_encode)]

    encoder_threads = max(1, (cpu_count or os.cpu_count() or 2) // max(1, len(rungs)))
    per_output = ["-threads", str(encoder_threads)] if encoder == "libx264" else []
    outputs: dict[str, Path] = {}
    for i, rung in enumerate(rungs):
        target = out_dir / f"{rung.name}.mp4"
        outputs[rung.name] = target
        cmd += ["-map", f"[v{i}]", *video_codec_args(rung, encoder, fps, preset), *per_output]
        cmd += ["-an", "-f", "mp4", str(target)]

    audio_output = None
    if info.has_audio:
        audio_output = out_dir / "audio.mp4"
        cmd += ["-map", "0:a:0", *audio_args(), "-vn", "-f", "mp4", str(audio_output)]

    return EncodePlan(
        cmd=cmd,
        video_outputs=outputs,
        audio_output=audio_output,
        encoder=encoder,
        hardware_decode=cuda_frames,
        fps=fps,
        gop=gop_frames(fps),
        settings={
            "encoder": encoder,
            "preset": preset or DEFAULT_PRESETS.get(encoder, "p5"),
            "pix_fmt": pix_fmt,
            "fps": f"{fps.numerator}/{fps.denominator}",
            "gop_frames": gop_frames(fps),
            "segment_seconds": SEGMENT_SECONDS,
            "hardware_decode": cuda_frames,
            "encoder_threads": encoder_threads if per_output else "encoder default",
            "rate_control": (
                "capped CRF per rung (maxrate and bufsize from the plan)"
                if any(r.crf is not None for r in rungs)
                else "VBR with maxrate 1.5x, bufsize 2x"
            ),
        },
    )


def audio_args() -> list[str]:
    return ["-c:a", "aac", "-ac", "2", "-b:a", f"{AUDIO_KBPS}k", "-ar", "48000"]


def build_naive_commands(
    source: str | Path,
    info: SourceInfo,
    rungs: list[Rung],
    out_dir: str | Path,
    codec: str = "h264",
    ffmpeg: str = "ffmpeg",
    threads: int = 0,
    preset: str | None = None,
) -> list[list[str]]:
    """The baseline the one-decode command is measured against: one process (and one full
    decode) per rung, with the same filters and encoder settings; audio is its own process."""
    out_dir = Path(out_dir)
    fps = info.encode_fps
    encoder = SOFTWARE_ENCODERS[codec]
    pix_fmt = _pix_fmt(codec, encoder, info.bit_depth)
    fps_str = f"{fps.numerator}/{fps.denominator}"
    base = [ffmpeg, "-hide_banner", "-nostdin", "-y", "-loglevel", "error"]
    if threads:
        base += ["-threads", str(threads)]
    commands = []
    for rung in rungs:
        vf = (
            f"fps={fps_str},setpts=PTS-STARTPTS,"
            f"scale={rung.width}:{rung.height}:flags=bicubic,setsar=1,format={pix_fmt}"
        )
        commands.append(
            [
                *base,
                "-i",
                str(source),
                "-vf",
                vf,
                *video_codec_args(rung, encoder, fps, preset),
                "-an",
                "-f",
                "mp4",
                str(out_dir / f"{rung.name}.mp4"),
            ]
        )
    if info.has_audio:
        commands.append(
            [
                *base,
                "-i",
                str(source),
                "-vn",
                *audio_args(),
                "-f",
                "mp4",
                str(out_dir / "audio.mp4"),
            ]
        )
    return commands
