"""Per-title ladder against the fixed (Apple) ladder, measured on whole titles in the same run.

For each synthetic source (FFmpeg lavfi, no downloads), of different complexity:
  slide-1080p   testsrc2's first frame held still (a slide)
  grain-1080p   testsrc2, hard cut to a zooming mandelbrot, temporal noise over both (film grain)
  pan-1080p     testsrc2 scrolling fast (high motion), light noise
  street-272p   640x272, 25 fps, the grain content (a sub-480p source)
  pan-240p      320x240, the fast pan
it plans the per-title ladder (probes timed), encodes both ladders from one decode each (timed),
scores every rung of both on the whole title with libvmaf (display size, every Nth frame), and
prints:
  - BD-rate of per-title vs fixed at equal VMAF (PCHIP, the `bjontegaard` package; a one-rung
    fixed ladder is compared at its VMAF on the per-title curve). Target <= -20% on average,
    never above 0.
  - top rung: planned VMAF (samples) vs achieved (whole title). Target |delta| <= 2.
  - probe cost / per-title ladder encode cost. Target <= 1.0 on 2 cores. Both as wall seconds
    and as CPU seconds (user + system of the FFmpeg processes): on a shared machine the wall
    ratio swings with what else runs in that minute, the CPU ratio much less.
Each line also gives the load average (1 min) when the source started and ended.
`--cost-only` (for long titles) skips the fixed ladder and scores only the per-title top rung:
probe cost, encode cost and the top rung's planned vs achieved VMAF, no BD-rate. `--runs N`
measures every source N times in turn and reports per source the cost ratio's median and worst
and whether every run made the same plan.
No Dagster and no stack needed.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import imageio_ffmpeg

from netflix_assets.video import hull, plan, quality
from netflix_assets.video.encode import SourceInfo, build_ladder_command
from netflix_assets.video.ladder import Rung, build_ladder
from netflix_assets.video.probe import validate_upload
from netflix_assets.video.testmedia import Shape, make_clip

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()

SOURCES = {
    "slide-1080p": (1920, 1080, "still"),
    "grain-1080p": (1920, 1080, "cut"),
    "pan-1080p": (1920, 1080, "pan"),
    "street-272p": (640, 272, "cut"),
    "pan-240p": (320, 240, "pan"),
}


def run(cmd: list[str]) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


def cpu_seconds() -> float:
    """User + system seconds of every finished child process (the FFmpeg commands) so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def encode_and_score(
    source: Path,
    info,
    src: SourceInfo,
    rungs: list[Rung],
    out: Path,
    subsample: int,
    top_only: bool = False,
) -> tuple[float, float, list[tuple[Rung, float, float]]]:
    """Encode the ladder (one decode), then score each rung (or only the top one) on the whole
    title. Returns (encode wall seconds, encode CPU seconds, [(rung, measured kbps, VMAF)])."""
    out.mkdir(parents=True)
    encode = build_ladder_command(source, src, rungs, out, codec="h264", ffmpeg=FFMPEG)
    started, cpu = time.perf_counter(), cpu_seconds()
    run(encode.cmd)
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    rows = []
    for rung in [max(rungs, key=lambda r: r.bitrate_kbps)] if top_only else rungs:
        log = out / f"{rung.name}.json"
        run(
            quality.build_vmaf_command(
                encode.video_outputs[rung.name],
                source,
                *plan.scoring_size(info.display_width, info.display_height),
                encode.fps,
                log,
                model=quality.vmaf_model_for(rung.height),
                ffmpeg=FFMPEG,
                subsample=subsample,
            )
        )
        vmaf = quality.parse_vmaf_log(log, rung.name, "").vmaf_mean
        rows.append((rung, plan.stream_kbps(encode.video_outputs[rung.name]), vmaf))
    return seconds, cpu, rows


def bench_source(name: str, shape: Shape, work: Path, subsample: int, cost_only: bool) -> dict:
    source = make_clip(work / f"{name}.mp4", shape)
    load_start = os.getloadavg()[0]
    info = validate_upload(source)
    src = SourceInfo.from_probe(info.to_dict())
    display = (info.display_width, info.display_height)
    cpu = cpu_seconds()
    made = plan.make_plan(run, FFMPEG, source, src, display, info.duration_s, work / "probes")
    probe_cpu = cpu_seconds() - cpu
    fixed = build_ladder(info.width, info.height, info.rotation, "h264", src.encode_fps)
    per_title_s, per_title_cpu, per_title = encode_and_score(
        source, info, src, made.rungs, work / "per_title", subsample, top_only=cost_only
    )
    top_rung, _, top_vmaf = max(per_title, key=lambda r: r[1])
    fixed_rows = []
    if not cost_only:
        _, _, fixed_rows = encode_and_score(source, info, src, fixed, work / "fixed", subsample)
    anchor = [(k, v) for _, k, v in fixed_rows]
    test = [(k, v) for _, k, v in per_title]
    return {
        "name": name,
        "bd_rate": hull.bd_rate(anchor, test) if fixed_rows else None,
        "per_title_kbps": sum(r.bitrate_kbps for r in made.rungs)
        if cost_only
        else sum(k for _, k, _ in per_title),
        "fixed_kbps": sum(k for _, k, _ in fixed_rows),
        "fixed_top_vmaf": max((v for _, _, v in fixed_rows), default=float("nan")),
        "rungs": len(made.rungs),
        "top": f"{top_rung.name} CRF {top_rung.crf:g}",
        "planned": top_rung.planned_vmaf,
        "achieved": top_vmaf,
        "probe_s": made.probe_seconds,
        "encode_s": per_title_s,
        "probe_cpu": probe_cpu,
        "encode_cpu": per_title_cpu,
        "probes": len(made.points),
        "windows": made.windows,
        "plan": tuple(made.rungs),
        "load": (load_start, os.getloadavg()[0]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sources", default=",".join(SOURCES))
    parser.add_argument("--subsample", type=int, default=2, help="VMAF of every Nth frame")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of every source")
    parser.add_argument(
        "--cost-only",
        action="store_true",
        help="probe and encode cost and the top rung's VMAF only (no fixed ladder, no BD-rate)",
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=1,
        help="measure every source this many times (in turn); the cost is then reported as "
        "median and worst per source",
    )
    args = parser.parse_args()
    names = args.sources.split(",")
    results = []
    with tempfile.TemporaryDirectory(prefix="per-title-bench-") as tmp:
        for turn, name in ((t, n) for t in range(args.runs) for n in names):
            width, height, content = SOURCES[name]
            shape = Shape(width, height, 25, args.seconds, False, content=content)
            work = Path(tmp) / f"{name}-{turn}"
            result = bench_source(name, shape, work, args.subsample, args.cost_only)
            results.append(result)
            bd = result["bd_rate"]
            print(
                f"{name:12s} BD-rate {bd if bd is not None else float('nan'):7.1f} %  "
                f"ladder kbps per-title {result['per_title_kbps']:8.0f} vs fixed "
                f"{result['fixed_kbps']:8.0f} ({result['rungs']} vs fixed rungs, fixed top "
                f"VMAF {result['fixed_top_vmaf']:.1f})  top {result['top']}: planned "
                f"{result['planned']:.2f} achieved {result['achieved']:.2f} "
                f"(delta {result['achieved'] - result['planned']:+.2f})  "
                f"{result['probes']} probes on {len(result['windows'])} windows: probe / encode "
                f"wall {result['probe_s']:.1f} / {result['encode_s']:.1f} s = "
                f"{result['probe_s'] / result['encode_s']:.2f}, CPU {result['probe_cpu']:.1f} / "
                f"{result['encode_cpu']:.1f} s = {result['probe_cpu'] / result['encode_cpu']:.2f}"
                f"  (load {result['load'][0]:.1f} -> {result['load'][1]:.1f})",
                flush=True,
            )
    if args.runs > 1:
        for name in names:
            mine = [r for r in results if r["name"] == name]
            cpu = [r["probe_cpu"] / r["encode_cpu"] for r in mine]
            delta = [r["achieved"] - r["planned"] for r in mine]
            loads = [x for r in mine for x in r["load"]]
            print(
                f"{name:12s} {len(mine)} runs: probe/encode CPU median "
                f"{statistics.median(cpu):.2f}, worst {max(cpu):.2f}; top rung delta "
                f"{min(delta):+.2f} .. {max(delta):+.2f}; plans identical "
                f"{len({r['plan'] for r in mine}) == 1}; load {min(loads):.1f}-{max(loads):.1f}"
            )
    bds = [r["bd_rate"] for r in results if r["bd_rate"] is not None]
    deltas = [abs(r["achieved"] - r["planned"]) for r in results]
    ratios = [r["probe_s"] / r["encode_s"] for r in results]
    cpu_ratios = [r["probe_cpu"] / r["encode_cpu"] for r in results]
    bd = (
        f"mean {statistics.mean(bds):.1f} % (target <= -20), worst {max(bds):.1f} % (target <= 0)"
        if bds
        else "not measured (--cost-only)"
    )
    print(
        f"{args.seconds:g} s titles: BD-rate {bd}; |achieved - planned| top VMAF max "
        f"{max(deltas):.2f} (target <= 2); probe/encode wall median "
        f"{statistics.median(ratios):.2f}, max {max(ratios):.2f}; CPU median "
        f"{statistics.median(cpu_ratios):.2f}, max {max(cpu_ratios):.2f} (target <= 1.0)"
    )


if __name__ == "__main__":
    main()
