"""Per-title encoding plan: probe the title's complexity on short samples, then pick its ladder.

1. Samples: a few short windows spread over the title, moved to start at a scene change when
   one is near and never straddling one (a title shorter than a few seconds is its own sample).
   Together they are an eighth of the title (at most 3 windows of 2 s), so the probes' cost
   follows the title's length. They are cut once into a lossless file at the encode frame
   rate, the reference every probe is encoded from and scored against.
2. Grid: every probe resolution (the source's own size always among them, none larger) at a
   few CRFs, all from one decode; each scored with libvmaf at the display size.
3. Search: the CRF of the top rung is refined at its resolution until the samples score within
   one VMAF of the target or two probes 3 CRF apart bracket it (ab-av1's `crf-search`, with
   interpolation instead of bisection).
4. Ladder: hull.select_ladder on all points; each rung is capped CRF, maxrate = CAP_FACTOR x the
   planned bitrate, bufsize twice that.

FFmpeg runs through a `run(cmd)` callable (the FFmpeg resource's), so this module stays free of
Dagster. Every encoder runs single-threaded with fixed sample positions, so the same input gives
the same plan.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from netflix_assets.video import hull, quality
from netflix_assets.video.encode import (
    SOFTWARE_ENCODERS,
    SourceInfo,
    gop_frames,
    video_codec_args,
)
from netflix_assets.video.hull import PlanError, ProbePoint

__all__ = ["PlanError"]  # raised here, defined with the ladder maths
from netflix_assets.video.ladder import Rung, rung_name, size_for_short_side

Runner = Callable[[list[str]], Any]

PROBE_SHORT_SIDES = (2160, 1440, 1080, 720, 540, 360, 234, 180, 144)
"""Candidate probe sizes (short side) below the source's own; the ladder's sizes plus two small
ones so a sub-480p source still gets rungs below its own size."""

CRF_GRID = {"h264": (25, 32, 40), "hevc": (27, 34, 42), "av1": (34, 44, 54)}
"""The CRFs probed, at every size: on a fast 1080p pan the 540p probe at CRF 25 beat the 720p
curve at its bitrate by 8 VMAF, so smaller sizes need their low CRF too. Content that needs a
lower CRF for the target is found by the search, which extrapolates past the grid."""
CRF_LIMITS = {"h264": (8.0, 51.0), "hevc": (8.0, 51.0), "av1": (10.0, 63.0)}
CAP_FACTOR = 2.0
"""maxrate over planned average bitrate: a CRF encode spends more on hard scenes, within this."""

PROBE_THREADS = 2
"""x264 threads shared by the probes of one process (a constant, so plans do not depend on the
machine's core count)."""
SCENE_THRESHOLD = 0.35
SEARCH_TOLERANCE = 1.0
"""VMAF from the target at which the top rung's CRF search stops (it is then interpolated)."""
SEARCH_BRACKET = 3.0
"""CRF span of probes bracketing the target at which the search stops."""
SMALL_DISPLAY_PIXELS = 640 * 480
LONE_OVERSHOOT = 2.0
"""CRFs the search goes past its extrapolation from a lone probe (one past it from two)."""
SMALL_SEARCH_SPREAD = 1.5
"""On a display this small a search round probes the predicted CRF and SMALL_SEARCH_SPREAD
either side of it: there a round's cost is mostly its two process starts, not its frames (a
320x240 probe encodes and scores in about 0.1 s of CPU each), so three probes a round end
the search in one round where one probe a round took three."""
MIN_WINDOW_SECONDS = 0.5
WHOLE_TITLE_SECONDS = 4.0
"""Titles up to this long are probed whole: their share of samples would be shorter than one
window."""
DECODE_ONE_THREAD = ["-threads", "1"]
"""Decoder threads for the sample cut and every probe process: their frames are few and decoded
beside many encoders or libvmaf instances, and a decoder's own threads cost CPU seconds to
sync (4-9 % of an 8 s title's probes); the output is the same. The scene pass, which decodes
the whole title, keeps its threads."""
MAGICYUV_BIT_DEPTH = 8
"""Samples of 8-bit sources are kept as MagicYUV (lossless, decoded about 8x faster than FFV1,
and decoded once per probe process); deeper sources keep FFV1, which stores 10 bits."""
RAW_SAMPLES_BYTES = 256 * 2**20
"""8-bit samples up to this size (25 frames of 1080p are 78 MB) are stored uncompressed:
every probe process (two a round) then reads them instead of decoding MagicYUV, about 0.09 s
of CPU a process at 1080p, and the cut skips the MagicYUV encode. Larger samples (titles from
about 27 s at 1080p, or 4K) stay MagicYUV, to bound the disk a plan uses."""


@dataclass(frozen=True)
class PlanSettings:
    codec: str = "h264"
    preset: str | None = None
    target_vmaf: float = 95.0
    floor_vmaf: float = 40.0
    step: float = 1.75
    max_rungs: int | None = None
    max_bits_per_pixel: float = 1.0
    samples: int = 3
    sample_seconds: float = 2.0
    sample_share: float = 0.125
    probe_resolutions: int = 4
    search_steps: int = 3
    vmaf_subsample: int = 3
    vmaf_frames: int = 16
    vmaf_threads: int = 1
    """libvmaf threads per probe: a round scores every probe in one process, one libvmaf each,
    and a thread pool per probe cost about 13 % more CPU seconds than one thread (a 1080p
    round, 7.4 against 6.4 s)."""


@dataclass
class Plan:
    rungs: list[Rung]
    points: list[ProbePoint]
    hull: list[ProbePoint]
    windows: list[tuple[float, float]]
    probe_seconds: float
    commands: list[list[str]] = field(default_factory=list)

    @property
    def top(self) -> Rung:
        return max(self.rungs, key=lambda r: r.bitrate_kbps)


def sample_windows(
    duration: float,
    cuts: list[float],
    samples: int = 3,
    seconds: float = 2.0,
    share: float = 0.125,
) -> list[tuple[float, float]]:
    """(start, end) windows in seconds, together `share` of the title (at least one window of
    MIN_WINDOW_SECONDS, at most `samples` windows of `seconds`): as many windows as that share
    holds at MIN_WINDOW_SECONDS or more each, up to `samples`, centred at equal spacing. A
    window starts at a scene cut within half its length of its start, and is moved so that no
    cut falls inside it. A title up to
    WHOLE_TITLE_SECONDS long is one window over all of it."""
    if duration <= WHOLE_TITLE_SECONDS or samples < 1:
        return [(0.0, round(duration, 3))]
    total = min(samples * seconds, max(MIN_WINDOW_SECONDS, share * duration))
    count = max(1, min(samples, math.floor(total / MIN_WINDOW_SECONDS + 1e-9)))
    length = min(seconds, total / count)
    windows: list[tuple[float, float]] = []
    for i in range(count):
        start = (i + 0.5) * duration / count - length / 2
        near = [c for c in cuts if abs(c - start) <= length / 2]
        if near:
            start = min(near, key=lambda c: (abs(c - start), c))
        inside = [c for c in cuts if start < c < start + length]
        if inside:
            cut = inside[0]
            start = cut if cut + length <= duration else cut - length
        start = min(max(0.0, start), duration - length)
        window = (round(start, 3), round(start + length, 3))
        if windows and window[0] < windows[-1][1]:
            continue  # overlaps the previous one (cuts pulled them together)
        windows.append(window)
    return windows


def probe_sizes(display_w: int, display_h: int, count: int = 4) -> list[tuple[int, int]]:
    """The source's own size (even) first, then up to count-1 standard sizes, each the one
    nearest to two thirds of the previous (1080 -> 720 -> 540 -> 360), none below 144p."""
    own = size_for_short_side(display_w, display_h, min(display_w, display_h))
    sizes = [own]
    short = min(own)
    for _ in range(count - 1):
        below = [s for s in PROBE_SHORT_SIDES if s * 1.2 <= short]
        if not below:
            break
        short = min(below, key=lambda s: (abs(s - short * 2 / 3), s))
        sizes.append(size_for_short_side(display_w, display_h, short))
    return sizes


def scene_command(ffmpeg: str, source: str | Path, out: str | Path) -> list[str]:
    """Scene-change scores on a 160-pixel-wide copy: cheap, and enough to see a cut. The decoder
    skips its loop filter (a quarter of an H.264 decode), which a 160-pixel copy cannot show."""
    path = str(out).replace("\\", "\\\\").replace(":", "\\:").replace("'", "\\'")
    graph = f"scale=160:-2,select='gt(scene\\,{SCENE_THRESHOLD})',metadata=print:file='{path}'"
    head = [ffmpeg, "-hide_banner", "-nostdin", "-y", "-loglevel", "error"]
    head += ["-skip_loop_filter", "all", "-skip_frame", "bidir", "-i", str(source)]
    return [*head, "-map", "0:v:0", "-vf", graph, "-an", "-f", "null", "-"]


def parse_scene_cuts(text: str) -> list[float]:
    return sorted({round(float(t), 3) for t in re.findall(r"pts_time:([0-9.]+)", text)})


def samples_command(
    ffmpeg: str,
    source: str | Path,
    windows: list[tuple[float, float]],
    fps: Fraction,
    out: str | Path,
    whole: bool,
    bit_depth: int = 8,
    raw: bool = False,
) -> list[str]:
    """Cut the windows (accurate seeks) and join them into one lossless file at `fps`: 8-bit
    4:2:0 (what every probe encodes from and VMAF compares in), uncompressed when `raw`, else
    MagicYUV; or FFV1 in the source's own format for deeper sources."""
    fps_str = f"{fps.numerator}/{fps.denominator}"
    cmd = [ffmpeg, "-hide_banner", "-nostdin", "-y", "-loglevel", "error"]
    if whole:
        cmd += [*DECODE_ONE_THREAD, "-i", str(source)]
        graph = f"[0:v]fps={fps_str},setpts=PTS-STARTPTS[v]"
    else:
        for start, end in windows:
            cmd += ["-ss", f"{start:.3f}", "-t", f"{end - start:.3f}"]
            cmd += [*DECODE_ONE_THREAD, "-i", str(source)]
        labels = "".join(f"[w{i}]" for i in range(len(windows)))
        parts = [f"[{i}:v]fps={fps_str},setpts=PTS-STARTPTS[w{i}]" for i in range(len(windows))]
        graph = ";".join(parts) + f";{labels}concat=n={len(windows)}:v=1:a=0[v]"
    if bit_depth <= MAGICYUV_BIT_DEPTH:
        graph = graph.removesuffix("[v]") + ",format=yuv420p[v]"
        codec = "rawvideo" if raw else "magicyuv"
        lossless = ["-c:v", codec, "-threads", "2", "-an"]
    else:
        lossless = ["-c:v", "ffv1", "-level", "3", "-slices", "4", "-threads", "2", "-an"]
    return [*cmd, "-filter_complex", graph, "-map", "[v]", *lossless, str(out)]


def raw_samples(windows: list[tuple[float, float]], fps: Fraction, size: tuple[int, int]) -> bool:
    """Whether 8-bit 4:2:0 samples of these windows fit RAW_SAMPLES_BYTES uncompressed."""
    frames = sum(end - start for start, end in windows) * float(fps)
    return frames * size[0] * size[1] * 1.5 <= RAW_SAMPLES_BYTES


def probe_rung(width: int, height: int, crf: float, codec: str) -> Rung:
    """A pure-CRF rung for a probe encode (no cap: the probe measures what CRF spends)."""
    return Rung(f"probe-{width}x{height}-crf{crf:g}", width, height, 0, 0, 0, codec, crf)


def probe_encode_command(
    ffmpeg: str,
    samples: str | Path,
    jobs: list[tuple[int, int, float, Path]],
    codec: str,
    fps: Fraction,
    preset: str | None,
    bit_depth: int,
) -> list[str]:
    """Every probe (width, height, crf, out) from one decode of the samples: split by size,
    scale, split by CRF, one single-threaded encoder per output with the ladder's GOP."""
    encoder = SOFTWARE_ENCODERS[codec]
    ten_bit = bit_depth > 8 and codec in ("hevc", "av1")
    fmt = "yuv420p10le" if ten_bit else "yuv420p"
    sizes = sorted({(w, h) for w, h, _, _ in jobs}, reverse=True)
    parts = [f"[0:v]split={len(sizes)}" + "".join(f"[s{i}]" for i in range(len(sizes)))]
    labels: dict[tuple[int, int, float], str] = {}
    for i, (w, h) in enumerate(sizes):
        crfs = [c for jw, jh, c, _ in jobs if (jw, jh) == (w, h)]
        outs = "".join(f"[p{i}_{j}]" for j in range(len(crfs)))
        parts.append(
            f"[s{i}]scale={w}:{h}:flags=bicubic,setsar=1,format={fmt},split={len(crfs)}{outs}"
        )
        for j, crf in enumerate(crfs):
            labels[(w, h, crf)] = f"[p{i}_{j}]"
    cmd = [ffmpeg, "-hide_banner", "-nostdin", "-y", "-loglevel", "error"]
    cmd += [*DECODE_ONE_THREAD, "-i", str(samples)]
    cmd += ["-filter_complex", ";".join(parts)]
    for w, h, crf, out in jobs:
        args = video_codec_args(probe_rung(w, h, crf, codec), encoder, fps, preset)
        if encoder == "libx265":
            i = args.index("-x265-params")
            args[i + 1] += ":pools=1:frame-threads=1"
        elif encoder == "libsvtav1":
            i = args.index("-svtav1-params")
            args[i + 1] += ":lp=1"
        cmd += ["-map", labels[(w, h, crf)], *args]
        if encoder == "libx264":
            # A fixed count (not the machine's) keeps the output the same everywhere.
            cmd += ["-threads", str(max(1, PROBE_THREADS // len(jobs)))]
        cmd += ["-an", "-f", "mp4", str(out)]
    return cmd


def stream_kbps(path: str | Path) -> float:
    """Average video bitrate of an encode: packet bytes over its duration."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        total = 0
        frames = 0
        for packet in container.demux(stream):
            if packet.size:
                total += packet.size
                frames += 1
        rate = stream.average_rate or stream.guessed_rate or 25
    seconds = max(frames, 1) / float(rate)
    return total * 8 / 1000 / seconds


class Prober:
    """Runs probe encodes and their VMAF scoring for one title's samples."""

    def __init__(
        self,
        run: Runner,
        ffmpeg: str,
        work: Path,
        samples: Path,
        display: tuple[int, int],
        info: SourceInfo,
        settings: PlanSettings,
        window_starts: list[int],
        frames: int,
        whole: bool = False,
        dense_sizes: frozenset[tuple[int, int]] = frozenset(),
    ) -> None:
        self.run, self.ffmpeg, self.work, self.samples = run, ffmpeg, work, samples
        self.display, self.info, self.settings = display, info, settings
        # A title probed whole is at most WHOLE_TITLE_SECONDS long, so scoring it densely is
        # cheap; its plan is then read off the very frames the blocking check scores (a 3 s
        # fast pan scored on 14 frames planned 95 and reached 93.4 on all 75).
        self.subsample = (
            max(1, settings.vmaf_subsample)
            if whole
            else vmaf_subsample(frames, settings.vmaf_subsample, settings.vmaf_frames)
        )
        # Sizes other than `dense_sizes` (the two largest, which carry the top rung) make only
        # the lower rungs, where no target is held: they are scored on about half the frames
        # (every (2N-1)th, still odd). A probe's score costs about the same at every size (VMAF
        # runs at the display size): on an 8 s 1080p slide the first round's scoring fell from
        # about 8 to 6 s of CPU.
        self.sparse_subsample = self.subsample if whole else 2 * self.subsample - 1
        self.dense_sizes = dense_sizes
        # The first frame of each window has no true predecessor: VMAF's motion feature sees
        # nothing (frame 0) or the jump between windows there, and scores that frame several
        # points off (79 against 98 on a fast pan). Scored among ten, it moved a probe's
        # mean by 2 VMAF, so those frames are left out of the pooled score. A title probed
        # whole keeps its frame 0: the blocking check scores that frame too, and leaving it out
        # planned a 3 s 320x240 pan at 95 that scored 93.9 on the title.
        self.skip_frames = frozenset() if whole else frozenset(window_starts)
        self.commands: list[list[str]] = []

    def _run(self, cmd: list[str]) -> None:
        self.commands.append(cmd)
        self.run(cmd)

    def measure(self, grid: list[tuple[int, int, float]]) -> list[ProbePoint]:
        s = self.settings
        jobs = [(w, h, c, self.work / f"probe-{w}x{h}-crf{c:g}.mp4") for w, h, c in grid]
        self._run(
            probe_encode_command(
                self.ffmpeg,
                self.samples,
                jobs,
                s.codec,
                self.info.encode_fps,
                s.preset,
                self.info.bit_depth,
            )
        )
        # One scoring process for the whole round: the samples (the reference) are decoded
        # once a round, not once per probe size.
        logs = [out.with_suffix(".vmaf.json") for *_, out in jobs]
        self._run(
            quality.build_multi_vmaf_command(
                [out for *_, out in jobs],
                self.samples,
                *self.display,
                self.info.encode_fps,
                logs,
                ffmpeg=self.ffmpeg,
                threads=s.vmaf_threads,
                bit_depth=self.info.bit_depth,
                features=False,
                models=[quality.vmaf_model_for(min(w, h)) for w, h, *_ in jobs],
                subsamples=[self.subsample_for((w, h)) for w, h, *_ in jobs],
                decode_threads=1,
            )
        )
        points = []
        for (w, h, crf, out), log in zip(jobs, logs, strict=True):
            vmaf = quality.pooled_vmaf(log, self.skip_frames)
            points.append(ProbePoint(w, h, crf, round(stream_kbps(out), 1), round(vmaf, 2)))
        return points

    def subsample_for(self, size: tuple[int, int]) -> int:
        """Score every Nth frame of a probe of this size (the same N on every probe of a
        size, so each curve is read off one set of frames)."""
        return self.subsample if size in self.dense_sizes else self.sparse_subsample


def vmaf_subsample(frames: int, at_least: int, scored: int) -> int:
    """Score every Nth frame of the samples so that about `scored` frames are scored (never
    denser than every `at_least`-th). VMAF's cost is per scored frame at the display size, so
    this bounds a probe's score cost whatever the samples' length. N is odd: x264's mini-GOP
    is 4 frames (3 B-frames), and every 4th frame landed on I/P frames only and overstated the
    score by about a VMAF point on grainy content (every 6th would score half I/P frames, not
    a quarter); an odd N visits every place in the mini-GOP equally."""
    n = max(1, at_least, math.ceil(frames / max(1, scored)))
    return n + 1 if n % 2 == 0 else n


def probe_grid(sizes: list[tuple[int, int]], codec: str) -> list[tuple[int, int, float]]:
    """The first round of probes: the sizes at the grid's CRFs (see CRF_GRID), less those that
    were neither on the ladder nor needed by the search on the benchmark's titles.
    - Sizes above the two smallest skip the highest CRF: a smaller size at a middle CRF gives
      more VMAF for those bits (on a noisy 1080p pan, 720p at CRF 40 even took more bits than
      at CRF 32).
    - Four sizes (a display of 720p and up): the own size is probed at the lowest CRF only,
      since it is the dearest probe to encode and three smaller sizes cover the middle of the
      ladder (on the 1080p pan no own-size probe was on the ladder; on the slide the search
      probes the own size near the target); only the smallest size keeps the highest CRF (the
      floor: the 540p probe at CRF 40 scored below its CRF 32 on the pan), and it skips the
      lowest, where a larger size at a middle CRF scores more for the bits.
    - Two sizes on a display of at most SMALL_DISPLAY_PIXELS (320x240): the own size's middle
      and highest CRF bracket the search (there CRF 32 already scored 100 on a fast pan), which
      probes lower CRFs where the target needs them; the smaller size, which makes the lower
      rungs only, is probed at the lowest and highest CRF. On a larger display (two sizes by
      configuration) every CRF stays: a noisy 3 s 720p title scored 72 at CRF 32 and needed
      CRF 17, which three search rounds from there did not reach.
    """
    low, mid, high = (float(c) for c in CRF_GRID[codec])
    small = sizes[0][0] * sizes[0][1] <= SMALL_DISPLAY_PIXELS
    if len(sizes) >= 4:
        rows = [[low]] + [[low, mid]] * (len(sizes) - 2) + [[mid, high]]
    elif len(sizes) == 3:
        rows = [[low, mid], [low, mid, high], [low, mid, high]]
    elif len(sizes) == 2 and small:
        rows = [[mid, high], [low, high]]
    else:
        rows = [[low, mid, high]] * len(sizes)
    return [(w, h, c) for (w, h), crfs in zip(sizes, rows, strict=True) for c in crfs]


def _next_crf(
    curve: list[ProbePoint],
    target: float,
    limits: tuple[float, float],
    lone_slope: float | None = None,
) -> float:
    """CRF expected to score `target`; VMAF falls as CRF rises. Between the probes that
    bracket the target: the secant through the two probes scoring nearest the target, kept
    inside the bracket (the chord between the bracket's ends, when that secant does not fall);
    VMAF bends down fast past the knee, so a chord to a far probe creeps up on the target a
    fraction of a CRF a round. Otherwise extrapolated from the nearest two probes, or from a
    lone probe with `lone_slope` (VMAF per CRF, borrowed from another size's curve)."""
    pts = sorted(curve, key=lambda p: p.crf)
    lo_crf, hi_crf = limits
    above = [p for p in pts if p.vmaf >= target]
    below = [p for p in pts if p.vmaf < target]
    if above and below:
        a = max(above, key=lambda p: p.crf)
        b = min(below, key=lambda p: p.crf)
        if b.crf > a.crf:
            t = (a.vmaf - target) / max(a.vmaf - b.vmaf, 1e-6)
            crf = a.crf + t * (b.crf - a.crf)
            near = sorted(pts, key=lambda p: (abs(p.vmaf - target), p.crf))[:2]
            if near[0].crf != near[1].crf:
                slope = (near[1].vmaf - near[0].vmaf) / (near[1].crf - near[0].crf)
                secant = near[0].crf + (target - near[0].vmaf) / slope if slope < 0 else crf
                if a.crf < secant < b.crf:
                    crf = secant
            return round(crf, 1)
    pair = pts[:2] if not above else pts[-2:]
    if len(pair) == 2:
        slope = (pair[1].vmaf - pair[0].vmaf) / (pair[1].crf - pair[0].crf)
    else:
        slope = lone_slope or 0.0
    slope = min(slope, -0.5)  # at least half a VMAF per CRF step, so a flat curve still moves
    anchor = pair[0] if not above else pair[-1]
    crf = anchor.crf + (target - anchor.vmaf) / slope
    return round(min(max(crf, lo_crf), hi_crf), 1)


def make_plan(
    run: Runner,
    ffmpeg: str,
    source: str | Path,
    info: SourceInfo,
    display: tuple[int, int],
    duration: float,
    work: str | Path,
    settings: PlanSettings = PlanSettings(),
) -> Plan:
    """Probe the title and pick its ladder. Raises PlanError naming the cause when the target
    cannot be met within the bitrate cap."""
    if settings.codec not in CRF_GRID:
        raise PlanError(f"unknown codec {settings.codec!r}; choose one of {sorted(CRF_GRID)}")
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    display = scoring_size(*display)
    fps = info.encode_fps
    commands: list[list[str]] = []
    whole = duration <= WHOLE_TITLE_SECONDS
    cuts: list[float] = []
    if not whole:
        scene_log = work / "scenes.txt"
        cmd = scene_command(ffmpeg, source, scene_log)
        commands.append(cmd)
        run(cmd)
        cuts = parse_scene_cuts(scene_log.read_text() if scene_log.exists() else "")
    windows = sample_windows(
        duration, cuts, settings.samples, settings.sample_seconds, settings.sample_share
    )
    samples = work / "samples.mkv"
    raw = raw_samples(windows, fps, display)
    cmd = samples_command(ffmpeg, source, windows, fps, samples, whole, info.bit_depth, raw)
    commands.append(cmd)
    run(cmd)

    starts = [0]
    for start, end in windows:
        starts.append(starts[-1] + round((end - start) * float(fps)))
    sizes = probe_sizes(*display, settings.probe_resolutions)
    prober = Prober(
        run,
        ffmpeg,
        work,
        samples,
        display,
        info,
        settings,
        starts[:-1],
        starts[-1],
        whole,
        dense_sizes=frozenset(sizes[:2]),
    )
    points = prober.measure(probe_grid(sizes, settings.codec))
    points = _search_top(prober, points, sizes[0], settings)

    cap = top_kbps_cap(settings.max_bits_per_pixel, display, fps, duration)
    planned = hull.select_ladder(
        points,
        settings.target_vmaf,
        settings.floor_vmaf,
        settings.step,
        settings.max_rungs,
        max_top_kbps=cap,
    )
    rungs = []
    for p in planned:
        kbps = max(1, round(p.kbps))
        maxrate = max(2, math.ceil(kbps * CAP_FACTOR))
        rungs.append(
            Rung(
                name=rung_name(p.short_side, kbps),
                width=p.width,
                height=p.height,
                bitrate_kbps=kbps,
                maxrate_kbps=maxrate,
                bufsize_kbps=2 * maxrate,
                codec=settings.codec,
                crf=p.crf,
                planned_vmaf=round(p.vmaf, 2),
            )
        )
    return Plan(
        rungs=rungs,
        points=sorted(points, key=lambda p: (-p.width * p.height, p.crf)),
        hull=hull.upper_hull(points),
        windows=windows,
        probe_seconds=round(time.perf_counter() - started, 2),
        commands=commands + prober.commands,
    )


def scoring_size(display_w: int, display_h: int) -> tuple[int, int]:
    """The size VMAF is computed at: the display size, made even. An odd 961x541 source is
    scored at 960x540, the size its top rung has; upscaling that rung by one pixel would blur
    every pixel by a sub-pixel shift and cost a grainy title several VMAF points."""
    return display_w - display_w % 2, display_h - display_h % 2


def top_kbps_cap(
    bits_per_pixel: float, display: tuple[int, int], fps: Fraction, duration: float
) -> float:
    """The top rung's bitrate cap. A title shorter than one GOP is all keyframe (a 1-frame
    video is one intra frame), so its cap grows by the GOP's share of frames it lacks."""
    frames = max(1, round(duration * float(fps)))
    intra_only = max(1.0, gop_frames(fps) / frames)
    return bits_per_pixel * display[0] * display[1] * float(fps) / 1000 * intra_only


def _search_top(
    prober: Prober, points: list[ProbePoint], own: tuple[int, int], settings: PlanSettings
) -> list[ProbePoint]:
    """Refine the top rung's CRF on its resolution, one probe a round (one encode, one VMAF
    run; three probes around it on a display of at most SMALL_DISPLAY_PIXELS): the CRF the
    curve says scores the target, interpolated between the probes that bracket it, or
    extrapolated from the nearest two and then taken one CRF further, so the next round
    brackets the target. Once a probe reaches the target, it stops when a probe
    scores within SEARCH_TOLERANCE VMAF of it or the probes on either side of it are at most
    SEARCH_BRACKET CRF apart; or when a limit is hit. The top rung is then interpolated
    between probes this close, where the curve is nearly straight."""
    target = settings.target_vmaf
    limits = CRF_LIMITS[settings.codec]
    points = list(points)
    for _ in range(settings.search_steps):
        by_size = hull.curves(points)
        top = hull.top_rung(by_size, target)
        size = (top.width, top.height) if top else own
        curve = by_size[size]
        above = [p.crf for p in curve if p.vmaf >= target]
        below = [p.crf for p in curve if p.vmaf < target]
        close = any(abs(p.vmaf - target) <= SEARCH_TOLERANCE for p in curve)
        if above and (close or (below and min(below) - max(above) <= SEARCH_BRACKET)):
            break
        bracketed = above and below and min(below) > max(above)
        crf = _next_crf(curve, target, limits, _lone_slope(by_size, size))
        if not bracketed:
            # Overshoot, so the next round brackets it; twice as far from a lone probe, whose
            # slope is borrowed: VMAF flattens towards the top, and from CRF 25 at 88.6 a 3 s
            # 720p title took three rounds (21, 18.5, 17) to pass 95 by one CRF.
            step = LONE_OVERSHOOT if len(curve) == 1 else 1.0
            crf += -step if not above else step
        spread = (0.0,)
        if prober.display[0] * prober.display[1] <= SMALL_DISPLAY_PIXELS:
            spread = (-SMALL_SEARCH_SPREAD, 0.0, SMALL_SEARCH_SPREAD)
        measured = {p.crf for p in curve}
        crfs = sorted({min(max(round((crf + d) * 2) / 2, limits[0]), limits[1]) for d in spread})
        crfs = [c for c in crfs if c not in measured]
        if not crfs:
            break  # the CRF limit, or CRFs already measured: nothing new to learn
        points += prober.measure([(size[0], size[1], c) for c in crfs])
    return points


def _lone_slope(
    by_size: dict[tuple[int, int], list[ProbePoint]], size: tuple[int, int]
) -> float | None:
    """VMAF per CRF between the two lowest CRFs of the largest other size probed at two or
    more: the slope a lone probe of `size` (the own size of a four-size grid) is extrapolated
    with. Sizes next to each other bend alike at the same CRFs; without it, the fixed half a
    VMAF per CRF sent a 3 s 720p title from CRF 25 (VMAF 88.6) to CRF 11 (27.7 Mbps)."""
    for other in sorted(by_size, key=lambda s: -s[0] * s[1]):
        pts = sorted(by_size[other], key=lambda p: p.crf)[:2]
        if other != size and len(pts) == 2 and pts[1].crf != pts[0].crf:
            return (pts[1].vmaf - pts[0].vmaf) / (pts[1].crf - pts[0].crf)
    return None


def fixed_rungs_estimate(points: list[ProbePoint], fixed: list[Rung]) -> list[tuple[float, float]]:
    """(kbps, VMAF) the fixed ladder's rungs would score, read off the probed curve of their
    size (a VBR encode at a bitrate scores about what CRF does at the same average)."""
    by_size = hull.curves(points)
    out = []
    for rung in fixed:
        curve = by_size.get((rung.width, rung.height))
        score = hull.vmaf_at(curve, rung.bitrate_kbps) if curve else None
        if score is not None:
            out.append((float(rung.bitrate_kbps), round(score, 2)))
    return out


def plot_hull(
    points: list[ProbePoint],
    rungs: list[Rung],
    fixed: list[tuple[float, float]],
    target: float,
    path: str | Path,
) -> Path:
    """Bitrate (log) against VMAF: one curve per probed size, the hull, the chosen rungs."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    for (w, h), curve in sorted(hull.curves(points).items(), reverse=True):
        kbps, vmaf = [p.kbps for p in curve], [p.vmaf for p in curve]
        ax.plot(kbps, vmaf, "o-", ms=3, lw=1, label=f"{w}x{h}")
    corners = hull.upper_hull(points)
    ax.plot([p.kbps for p in corners], [p.vmaf for p in corners], "k--", lw=1, label="hull")
    chosen = [(r.bitrate_kbps, r.planned_vmaf) for r in rungs if r.planned_vmaf is not None]
    if chosen:
        ax.plot(*zip(*chosen, strict=True), "r*", ms=12, label="per-title rungs")
    if fixed:
        ax.plot([k for k, _ in fixed], [v for _, v in fixed], "bx", ms=8, label="fixed ladder")
    ax.axhline(target, color="grey", lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_xlabel("bitrate (kbps, samples)")
    ax.set_ylabel("VMAF at display size")
    ax.set_ylim(max(0, min(p.vmaf for p in points) - 5), 100)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def ladder_table(rungs: list[Rung]) -> str:
    lines = [
        "| rung | size | CRF | planned kbps | maxrate kbps | planned VMAF |",
        "|---|---|---|---|---|---|",
    ]
    for r in rungs:
        crf = f"{r.crf:g}" if r.crf is not None else "VBR"
        vmaf = f"{r.planned_vmaf:.2f}" if r.planned_vmaf is not None else "-"
        lines.append(
            f"| {r.name} | {r.width}x{r.height} | {crf} | {r.bitrate_kbps} | {r.maxrate_kbps} "
            f"| {vmaf} |"
        )
    return "\n".join(lines)
