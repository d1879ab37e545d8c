"""Probe a source with PyAV and reject uploads that cannot become a title.

The static FFmpeg build ships no ffprobe, and PyAV reads the same libavformat structures, so one
library answers both "what is this" and "is it whole".
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

MAX_DIMENSION = 8192
"""Wider or taller than 8K is a broken header or a still image, not a title."""

MIN_DIMENSION = 16
TRUNCATION_TOLERANCE = 0.6
"""A source decoding fewer than 60% of the frames its duration implies is treated as truncated."""

SOURCE_DEMUXERS = ("mov", "matroska", "avi", "mpegts", "mxf")
"""The containers a source may be (MP4/MOV, Matroska/WebM, AVI, MPEG-TS, MXF). Playlists (HLS,
DASH), concat lists and image sequences are refused: they make FFmpeg read other files, which
would then be transcoded and published."""

SOURCE_PROTOCOLS = "file"
"""A source is one local file; no http, no concat:, no subfile:, no pipe."""

SOURCE_OPEN_OPTIONS = {
    "format_whitelist": ",".join(SOURCE_DEMUXERS),
    "protocol_whitelist": SOURCE_PROTOCOLS,
}
"""libavformat options for opening a source, with PyAV here and on FFmpeg's command line."""


class UploadRejected(ValueError):
    """An upload that cannot be transcoded; the message names the cause for the studio."""


@dataclass(frozen=True)
class ProbeResult:
    path: str
    size_bytes: int
    container: str
    codec: str
    width: int
    height: int
    fps: Fraction
    nominal_fps: Fraction
    duration_s: float
    pix_fmt: str
    bit_depth: int
    rotation: int
    has_audio: bool
    audio_codec: str | None
    frame_count: int | None
    is_vfr: bool

    @property
    def display_width(self) -> int:
        """Width as a player shows it, after applying the display-matrix rotation."""
        return self.height if self.rotation % 180 else self.width

    @property
    def display_height(self) -> int:
        return self.width if self.rotation % 180 else self.height

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["fps"] = f"{self.fps.numerator}/{self.fps.denominator}"
        out["nominal_fps"] = f"{self.nominal_fps.numerator}/{self.nominal_fps.denominator}"
        out["display_width"] = self.display_width
        out["display_height"] = self.display_height
        return out


def _bit_depth(pix_fmt: str) -> int:
    """yuv420p10le -> 10; formats without a depth suffix are 8-bit."""
    for depth in (16, 14, 12, 10, 9):
        if f"p{depth}" in pix_fmt:
            return depth
    return 8


def _refused_format(path: Path) -> str | None:
    """What a file is when it is a format sources may not be: a playlist or list of files."""
    with open(path, "rb") as handle:
        head = handle.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"#EXTM3U"):
        return "an HLS playlist"
    if head.startswith(b"ffconcat"):
        return "an FFmpeg concat list"
    if b"<MPD" in head or (head.startswith(b"<?xml") and b"MPD" in head):
        return "a DASH manifest"
    return None


def _container_signature(path: Path) -> str | None:
    """The container a file's first bytes announce, to tell a cut-off video from a non-video."""
    with open(path, "rb") as handle:
        head = handle.read(12)
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide"):
        return "an MP4/QuickTime file"
    if head.startswith(b"\x1aE\xdf\xa3"):
        return "a Matroska/WebM file"
    if head.startswith(b"RIFF"):
        return "an AVI file"
    return None


def _normalise_rotation(degrees: float) -> int:
    return round(degrees) % 360


def probe(path: str | Path) -> ProbeResult:
    """Read container and stream facts. Raises UploadRejected if there is no decodable video."""
    path = Path(path)
    size = path.stat().st_size if path.exists() else 0
    if size == 0:
        raise UploadRejected(f"'{path.name}' is empty (zero bytes); upload the file again")
    try:
        container = av.open(str(path), options=SOURCE_OPEN_OPTIONS)
    except (av.error.InvalidDataError, av.error.FFmpegError) as exc:
        refused = _refused_format(path)
        if refused:
            raise UploadRejected(
                f"'{path.name}' is {refused}, not a video file; playlists and file lists are "
                "refused because they pull in other files; upload the video itself"
            ) from exc
        kind = _container_signature(path)
        if kind:
            raise UploadRejected(
                f"'{path.name}' is truncated or damaged: it starts like {kind} but its index "
                f"cannot be read ({exc.strerror or exc}); upload the complete file"
            ) from exc
        raise UploadRejected(
            f"'{path.name}' is not a video file in an accepted container "
            f"({', '.join(SOURCE_DEMUXERS)}): {exc.strerror or exc}"
        ) from exc
    with container:
        if not container.streams.video:
            raise UploadRejected(f"no video stream in '{path.name}'; upload the picture, not audio")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        fps = Fraction(stream.average_rate or stream.guessed_rate or stream.base_rate or 0)
        if stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        elif container.duration:
            duration = container.duration / av.time_base
        else:
            duration = 0.0
        rotation = 0
        try:
            first = next(container.decode(stream))
            rotation = _normalise_rotation(first.rotation or 0)
        except (StopIteration, av.error.FFmpegError):
            first = None
        audio = container.streams.audio
        base = stream.base_rate or fps
        return ProbeResult(
            path=str(path),
            size_bytes=size,
            container=container.format.name,
            codec=ctx.name,
            width=ctx.width,
            height=ctx.height,
            fps=fps,
            nominal_fps=Fraction(base or fps),
            duration_s=duration,
            pix_fmt=ctx.pix_fmt or "unknown",
            bit_depth=_bit_depth(ctx.pix_fmt or ""),
            rotation=rotation,
            has_audio=bool(audio),
            audio_codec=audio[0].codec_context.name if audio else None,
            frame_count=stream.frames or None,
            is_vfr=bool(base and fps and Fraction(base) != fps),
        )


def count_decodable_frames(path: str | Path) -> tuple[int, float]:
    """Read every video packet and decode every keyframe; returns (frames, last pts in seconds).

    Demuxing every packet finds a file that stops early (its packets are missing) at a fraction
    of a full decode's cost; decoding the keyframes finds damaged data without decoding the
    frames between them, which the transcode decodes anyway. An error on the way is a truncated
    or corrupt file, reported as UploadRejected."""
    path = Path(path)
    frames = 0
    last = 0.0
    try:
        with av.open(str(path), options=SOURCE_OPEN_OPTIONS) as container:
            stream = container.streams.video[0]
            for packet in container.demux(stream):
                if packet.size == 0:  # the flush packet at the end of the stream
                    continue
                frames += 1
                if packet.pts is not None:
                    last = max(last, float(packet.pts * stream.time_base))
                if packet.is_keyframe:
                    packet.decode()
    except av.error.FFmpegError as exc:
        raise UploadRejected(
            f"'{path.name}' is truncated or corrupt: reading failed after {frames} frames "
            f"({exc.strerror or exc}); upload the complete file"
        ) from exc
    return frames, last


def validate_upload(path: str | Path) -> ProbeResult:
    """Probe and read an upload whole; raise UploadRejected naming the cause if it is unusable.

    Reading every packet is what catches truncation: a cut-off MP4 often still opens and reports the
    duration from its header, but the frames behind that duration are missing."""
    path = Path(path)
    info = probe(path)
    if not (MIN_DIMENSION <= info.width <= MAX_DIMENSION) or not (
        MIN_DIMENSION <= info.height <= MAX_DIMENSION
    ):
        raise UploadRejected(
            f"absurd dimensions {info.width}x{info.height} in '{path.name}'; expected between "
            f"{MIN_DIMENSION} and {MAX_DIMENSION} pixels per side"
        )
    frames, _last = count_decodable_frames(path)
    if frames == 0:
        raise UploadRejected(f"'{path.name}' is truncated or corrupt: no frame decodes")
    if info.fps and info.duration_s > 0:
        expected = float(info.fps) * info.duration_s
        if frames < TRUNCATION_TOLERANCE * expected:
            raise UploadRejected(
                f"'{path.name}' is truncated: {frames} frames decode but its duration "
                f"{info.duration_s:.2f}s at {float(info.fps):.3f} fps implies ~{expected:.0f}"
            )
    return info


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks; the first 12 digits name a version."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
