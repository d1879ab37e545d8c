"""Package the rungs as CMAF: one set of fMP4 segments, an HLS master and a DASH MPD over them.

FFmpeg's HLS muxer cuts each rung into 2 s fMP4 segments (`-c copy`, so no re-encode) at the
keyframes the encoder forced on the same grid in every rung. The master playlist is written here
rather than by FFmpeg, because its BANDWIDTH must be the *measured* peak segment bitrate and its
CODECS the real profile/level of each stream, which FFmpeg's own master does not always give.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import m3u8

from netflix_assets.video.encode import SEGMENT_SECONDS

MASTER = "master.m3u8"
MPD = "manifest.mpd"
AUDIO_DIR = "audio"
AUDIO_GROUP = "aud"
INIT = "init.mp4"


@dataclass(frozen=True)
class VariantStats:
    name: str
    kind: str
    playlist: str
    width: int | None
    height: int | None
    fps: Fraction | None
    codecs: str
    peak_bps: int
    average_bps: int
    segment_count: int
    segment_durations: tuple[float, ...]
    bytes_total: int

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["fps"] = float(self.fps) if self.fps else None
        out["segment_durations"] = list(self.segment_durations)
        return out


def build_segment_command(
    ffmpeg: str,
    inputs: dict[str, Path],
    out_dir: str | Path,
    segment_seconds: int = SEGMENT_SECONDS,
) -> list[str]:
    """One FFmpeg process remuxing every rung (and the audio) into its own folder of segments."""
    out_dir = Path(out_dir)
    cmd = [ffmpeg, "-hide_banner", "-nostdin", "-y", "-loglevel", "error"]
    for path in inputs.values():
        cmd += ["-i", str(path)]
    for i, name in enumerate(inputs):
        folder = out_dir / name
        cmd += [
            "-map",
            f"{i}:0",
            "-c",
            "copy",
            "-f",
            "hls",
            "-hls_time",
            str(segment_seconds),
            "-hls_playlist_type",
            "vod",
            "-hls_segment_type",
            "fmp4",
            "-hls_flags",
            "independent_segments",
            "-hls_fmp4_init_filename",
            INIT,
            "-hls_segment_filename",
            str(folder / "seg_%05d.m4s"),
            str(folder / "playlist.m3u8"),
        ]
    return cmd


def codecs_string(path: str | Path | io.BytesIO) -> str:
    """RFC 6381 codec string read from the stream's decoder configuration record."""
    source = path if isinstance(path, io.BytesIO) else str(path)
    with av.open(source) as container:
        ctx = container.streams[0].codec_context
        data = bytes(ctx.extradata or b"")
        # The canonical name is the format (av1), not the decoder picked for it (libdav1d).
        name = getattr(ctx.codec, "canonical_name", None) or ctx.name
    if name == "h264" and len(data) >= 4 and data[0] == 1:
        return f"avc1.{data[1]:02x}{data[2]:02x}{data[3]:02x}"
    if name == "hevc" and len(data) >= 13:
        space = "" if data[1] >> 6 == 0 else "ABC"[(data[1] >> 6) - 1]
        tier = "H" if data[1] & 0x20 else "L"
        profile = data[1] & 0x1F
        compat = int.from_bytes(data[2:6], "big")
        compat_rev = int(f"{compat:032b}"[::-1], 2)
        constraints = list(data[6:12])
        while constraints and constraints[-1] == 0:
            constraints.pop()
        tail = "".join(f".{b:02X}" for b in constraints)
        return f"hvc1.{space}{profile}.{compat_rev:X}.{tier}{data[12]}{tail}"
    if name == "av1" and len(data) >= 3:
        profile, level = data[1] >> 5, data[1] & 0x1F
        tier = "H" if data[2] & 0x80 else "M"
        depth = 12 if data[2] & 0x20 else 10 if data[2] & 0x40 else 8
        return f"av01.{profile}.{level:02d}{tier}.{depth:02d}"
    if name == "aac" and data:
        return f"mp4a.40.{data[0] >> 3}"
    raise ValueError(f"cannot build a CODECS string for {name!r} in {path}")


def measure_variant(folder: Path, name: str, kind: str) -> VariantStats:
    """Peak and average bitrate from the real segment sizes and EXTINF durations."""
    playlist = m3u8.load(str(folder / "playlist.m3u8"))
    rates, durations, total_bytes = [], [], 0
    for seg in playlist.segments:
        size = (folder / seg.uri).stat().st_size
        total_bytes += size
        durations.append(float(seg.duration))
        rates.append(size * 8 / max(seg.duration, 1e-3))
    total_duration = sum(durations) or 1.0
    width = height = None
    fps = None
    with av.open(_joined(folder, playlist.segments[0].uri)) as container:
        stream = container.streams[0]
        if stream.type == "video":
            width, height = stream.codec_context.width, stream.codec_context.height
            fps = Fraction(stream.average_rate or stream.guessed_rate or 0) or None
    return VariantStats(
        name=name,
        kind=kind,
        playlist=f"{name}/playlist.m3u8",
        width=width,
        height=height,
        fps=fps,
        codecs=codecs_string(_joined(folder, playlist.segments[0].uri)),
        peak_bps=int(max(rates)),
        average_bps=int(total_bytes * 8 / total_duration),
        segment_count=len(durations),
        segment_durations=tuple(durations),
        bytes_total=total_bytes,
    )


def _joined(folder: Path, segment: str) -> io.BytesIO:
    """init + one media segment as an in-memory file PyAV can open."""
    return io.BytesIO((folder / INIT).read_bytes() + (folder / segment).read_bytes())


def write_master(
    package_dir: str | Path, video: list[VariantStats], audio: VariantStats | None
) -> Path:
    """HLS master playlist: BANDWIDTH and AVERAGE-BANDWIDTH are the measured video (+ audio)
    segment bitrates, as Apple's authoring spec requires."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    if audio:
        lines.append(
            f'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="{AUDIO_GROUP}",NAME="Main",LANGUAGE="und",'
            f'DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="{audio.playlist}"'
        )
    for v in sorted(video, key=lambda s: s.average_bps):
        peak = v.peak_bps + (audio.peak_bps if audio else 0)
        avg = v.average_bps + (audio.average_bps if audio else 0)
        codecs = f"{v.codecs},{audio.codecs}" if audio else v.codecs
        attrs = [
            f"BANDWIDTH={peak}",
            f"AVERAGE-BANDWIDTH={avg}",
            f"RESOLUTION={v.width}x{v.height}",
            f'CODECS="{codecs}"',
        ]
        if v.fps:
            attrs.append(f"FRAME-RATE={float(v.fps):.3f}")
        if audio:
            attrs.append(f'AUDIO="{AUDIO_GROUP}"')
        lines += [f"#EXT-X-STREAM-INF:{','.join(attrs)}", v.playlist]
    path = Path(package_dir) / MASTER
    path.write_text("\n".join(lines) + "\n")
    return path


def _iso_duration(seconds: float) -> str:
    return f"PT{seconds:.3f}S"


def write_mpd(
    package_dir: str | Path, video: list[VariantStats], audio: VariantStats | None
) -> Path:
    """A static DASH MPD (live-profile SegmentTemplate + SegmentTimeline) over the same files."""
    total = sum(video[0].segment_durations) if video else 0.0
    ns = "urn:mpeg:dash:schema:mpd:2011"
    mpd = ET.Element(
        "MPD",
        {
            "xmlns": ns,
            "type": "static",
            "profiles": "urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019",
            "mediaPresentationDuration": _iso_duration(total),
            "minBufferTime": _iso_duration(SEGMENT_SECONDS),
        },
    )
    period = ET.SubElement(mpd, "Period", {"id": "0", "start": "PT0S"})

    def add_set(
        content: str, mime: str, variants: list[VariantStats], extra: dict[str, str]
    ) -> None:
        aset = ET.SubElement(
            period,
            "AdaptationSet",
            {"contentType": content, "mimeType": mime, "segmentAlignment": "true", **extra},
        )
        for v in variants:
            attrs = {"id": v.name, "bandwidth": str(v.peak_bps), "codecs": v.codecs}
            if v.width:
                attrs |= {"width": str(v.width), "height": str(v.height)}
            if v.fps:
                attrs["frameRate"] = f"{v.fps.numerator}/{v.fps.denominator}"
            rep = ET.SubElement(aset, "Representation", attrs)
            tmpl = ET.SubElement(
                rep,
                "SegmentTemplate",
                {
                    "timescale": "1000",
                    "initialization": f"{v.name}/{INIT}",
                    "media": f"{v.name}/seg_$Number%05d$.m4s",
                    "startNumber": "0",
                },
            )
            timeline = ET.SubElement(tmpl, "SegmentTimeline")
            start = 0
            for d in v.segment_durations:
                ms = round(d * 1000)
                ET.SubElement(timeline, "S", {"t": str(start), "d": str(ms)})
                start += ms

    add_set("video", "video/mp4", sorted(video, key=lambda s: s.average_bps), {"startWithSAP": "1"})
    if audio:
        add_set("audio", "audio/mp4", [audio], {"lang": "und"})
    path = Path(package_dir) / MPD
    ET.ElementTree(mpd).write(path, encoding="utf-8", xml_declaration=True)
    return path


def package(
    ffmpeg_run: Any,
    ffmpeg: str,
    video_inputs: dict[str, Path],
    audio_input: Path | None,
    package_dir: str | Path,
) -> tuple[list[VariantStats], VariantStats | None]:
    """Segment every rung and the audio, measure them, write master.m3u8 and manifest.mpd.
    `ffmpeg_run` runs a command (FFmpegResource.run), so this stays free of process handling."""
    package_dir = Path(package_dir)
    inputs = dict(video_inputs)
    if audio_input:
        inputs[AUDIO_DIR] = audio_input
    for name in inputs:
        (package_dir / name).mkdir(parents=True, exist_ok=True)
    ffmpeg_run(build_segment_command(ffmpeg, inputs, package_dir))
    video = [measure_variant(package_dir / name, name, "video") for name in video_inputs]
    audio = measure_variant(package_dir / AUDIO_DIR, AUDIO_DIR, "audio") if audio_input else None
    write_master(package_dir, video, audio)
    write_mpd(package_dir, video, audio)
    return video, audio


def segment_keyframe_times(
    package_dir: str | Path, variants: list[str]
) -> dict[str, list[tuple[float, bool]]]:
    """Per rung, each segment's first video packet as (timestamp in seconds, is_keyframe).

    Equal lists across rungs with every flag True mean a player can switch at any boundary."""
    out: dict[str, list[tuple[float, bool]]] = {}
    for name in variants:
        folder = Path(package_dir) / name
        playlist = m3u8.load(str(folder / "playlist.m3u8"))
        starts = []
        for seg in playlist.segments:
            with av.open(_joined(folder, seg.uri)) as container:
                stream = container.streams.video[0]
                packet = next(p for p in container.demux(stream) if p.pts is not None)
                starts.append((round(float(packet.pts * stream.time_base), 3), packet.is_keyframe))
        out[name] = starts
    return out


BANDWIDTH_TOLERANCE = 0.10


def check_playlists(package_dir: str | Path) -> list[str]:
    """Problems with the written playlists, empty when they are right: every playlist parses
    with the m3u8 library, every variant carries BANDWIDTH, AVERAGE-BANDWIDTH, RESOLUTION,
    CODECS and FRAME-RATE, and both bandwidths are within 10% of figures measured here
    independently from the segment files on disk (peak and mean of size*8/EXTINF)."""
    package_dir = Path(package_dir)
    errors: list[str] = []
    try:
        master = m3u8.load(str(package_dir / MASTER))
    except Exception as exc:  # the parser raises several types; any of them is a failed check
        return [f"{MASTER} does not parse: {exc}"]
    if not master.is_variant or not master.playlists:
        return [f"{MASTER} lists no variants"]
    audio_peak = audio_avg = 0.0
    for media in master.media:
        if media.type == "AUDIO" and media.uri:
            audio_peak, audio_avg, _ = _measured(package_dir, media.uri, errors)
    for variant in master.playlists:
        info = variant.stream_info
        for attr in ("bandwidth", "average_bandwidth", "resolution", "codecs", "frame_rate"):
            if getattr(info, attr) in (None, ""):
                errors.append(f"{variant.uri}: missing {attr.upper().replace('_', '-')}")
        peak, avg, count = _measured(package_dir, variant.uri, errors)
        if not count:
            continue
        for label, declared, measured in (
            ("BANDWIDTH", info.bandwidth, peak + audio_peak),
            ("AVERAGE-BANDWIDTH", info.average_bandwidth, avg + audio_avg),
        ):
            if declared and abs(declared - measured) > BANDWIDTH_TOLERANCE * measured:
                errors.append(
                    f"{variant.uri}: {label}={declared} but the segments measure {measured:.0f}"
                )
    return errors


def _measured(package_dir: Path, uri: str, errors: list[str]) -> tuple[float, float, int]:
    """(peak bps, average bps, segment count) of one media playlist, from the files."""
    path = package_dir / uri
    try:
        playlist = m3u8.load(str(path))
    except Exception as exc:
        errors.append(f"{uri} does not parse: {exc}")
        return 0.0, 0.0, 0
    if not playlist.segments:
        errors.append(f"{uri} has no segments")
        return 0.0, 0.0, 0
    sizes = [(path.parent / s.uri).stat().st_size for s in playlist.segments]
    durations = [float(s.duration) for s in playlist.segments]
    peak = max(b * 8 / max(d, 1e-3) for b, d in zip(sizes, durations, strict=True))
    return peak, sum(sizes) * 8 / max(sum(durations), 1e-3), len(sizes)


def keyframe_alignment_errors(starts: dict[str, list[tuple[float, bool]]]) -> list[str]:
    """From segment_keyframe_times(): segments that do not start on a keyframe, and rungs whose
    segment start times differ from the first rung's (beyond one millisecond)."""
    errors: list[str] = []
    if not starts:
        return ["no rungs to compare"]
    names = list(starts)
    reference = [t for t, _ in starts[names[0]]]
    for name in names:
        times = [t for t, _ in starts[name]]
        errors += [
            f"{name} segment {i} starts at {t:.3f}s on a non-keyframe"
            for i, (t, key) in enumerate(starts[name])
            if not key
        ]
        if len(times) != len(reference) or any(
            abs(a - b) > 1e-3 for a, b in zip(times, reference, strict=False)
        ):
            errors.append(f"{name} segment starts {times} differ from {names[0]}'s {reference}")
    return errors
