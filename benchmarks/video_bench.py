"""Video pipeline speed: one-decode ladder vs one process per rung, Dagster overhead, VMAF rate.

Prints, all measured in this run on the same synthetic 1080p source (lavfi testsrc2 -> hard cut
-> mandelbrot, with temporal noise and a 440 Hz tone), each as wall seconds and as CPU seconds
(user + system of this process and the FFmpeg processes it ran; on a shared machine the wall
ratio swings with what else runs in that minute, the CPU ratio much less):
  1. the one-decode ladder command (split filter, N outputs) against the naive baseline of one
     FFmpeg process per rung with identical filters and encoder settings (target ratio <= 0.8);
  2. the whole pipeline materialized through Dagster (with `ladder: fixed`, so no probes) against
     the same FFmpeg commands run bare (ladder, one libvmaf pass per rung, packaging), as
     overhead in percent (target <= 15%);
  3. VMAF throughput in frames/s at 1080p over every rung, for sources of growing length, to show
     whether time grows linearly with length.
Needs the local stack for PostgreSQL (`netflix-assets stack up`). No GPU is used here; the GPU
paths are measured with `device` on a lent machine (see README).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import tempfile
import time
import uuid
from fractions import Fraction
from pathlib import Path

import imageio_ffmpeg
from dagster import DagsterInstance, materialize

from assets import catalog, video
from netflix_assets.video import packaging, quality
from netflix_assets.video.encode import SourceInfo, build_ladder_command, build_naive_commands
from netflix_assets.video.ladder import build_ladder
from netflix_assets.video.probe import file_sha256, validate_upload
from netflix_assets.video.testmedia import Shape, make_clip
from netflix_assets.video.upload import raw_key
from resources.ffmpeg import FFmpegResource
from resources.object_store import ObjectStoreResource
from resources.postgres import PostgresResource
from resources.records import RecordIOManager

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def cpu_seconds() -> float:
    """User + system seconds of this process and of its finished children (FFmpeg) so far."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(action) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of `action`."""
    started, cpu = time.perf_counter(), cpu_seconds()
    action()
    return time.perf_counter() - started, cpu_seconds() - cpu


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def run(cmd: list[str]) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


def ladder_vs_naive(source: Path, work: Path, repeats: int) -> None:
    info = validate_upload(source)
    src = SourceInfo.from_probe(info.to_dict())
    rungs = build_ladder(info.width, info.height)
    one, naive = [], []
    for i in range(repeats):
        out = work / f"one{i}"
        out.mkdir()
        plan = build_ladder_command(source, src, rungs, out, ffmpeg=FFMPEG)
        one.append(timed(lambda plan=plan: run(plan.cmd)))
        out = work / f"naive{i}"
        out.mkdir()
        commands = build_naive_commands(source, src, rungs, out, ffmpeg=FFMPEG)
        naive.append(timed(lambda commands=commands: [run(c) for c in commands]))
    one_s, one_cpu = min(w for w, _ in one), min(c for _, c in one)
    naive_s, naive_cpu = min(w for w, _ in naive), min(c for _, c in naive)
    print(f"ladder: {len(rungs)} rungs from {info.width}x{info.height}, {info.duration_s:.0f}s")
    print(
        f"  one decode, split to {len(rungs)} outputs   {one_s:7.2f} s, CPU {one_cpu:7.2f} s "
        f"(best of {repeats})"
    )
    print(f"  one process per rung (baseline)   {naive_s:7.2f} s, CPU {naive_cpu:7.2f} s")
    print(
        f"  ratio one/naive                   wall {one_s / naive_s:5.2f}, CPU "
        f"{one_cpu / naive_cpu:5.2f}  (target <= 0.80)  {load()}"
    )


def bare_commands(source: Path, work: Path) -> tuple[float, float]:
    """The FFmpeg work of the pipeline without Dagster: ladder, VMAF per rung, packaging."""
    info = validate_upload(source)
    src = SourceInfo.from_probe(info.to_dict())
    rungs = build_ladder(info.width, info.height)
    out = work / "bare"
    out.mkdir()
    started, cpu = time.perf_counter(), cpu_seconds()
    plan = build_ladder_command(source, src, rungs, out, ffmpeg=FFMPEG)
    run(plan.cmd)
    fps = plan.fps
    for rung in rungs:
        run(
            quality.build_vmaf_command(
                plan.video_outputs[rung.name],
                source,
                info.width,
                info.height,
                fps,
                out / f"{rung.name}.json",
                model=quality.vmaf_model_for(rung.height),
                ffmpeg=FFMPEG,
                threads=FFmpegResource().vmaf_threads,
            )
        )
    package = out / "package"
    inputs = {r.name: plan.video_outputs[r.name] for r in rungs}
    if plan.audio_output:
        inputs[packaging.AUDIO_DIR] = plan.audio_output
    for name in inputs:
        (package / name).mkdir(parents=True)
    run(packaging.build_segment_command(FFMPEG, inputs, package))
    return time.perf_counter() - started, cpu_seconds() - cpu


def through_dagster(source: Path, work: Path) -> tuple[float, float]:
    store = ObjectStoreResource(root=str(work / "objects"))
    title_id = f"bench-{uuid.uuid4().hex[:8]}"
    sha = file_sha256(source)
    key = raw_key(title_id, sha, source.name)
    store.put_file(source, key)
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("titles", [title_id])
    # The fixed ladder, so that Dagster runs the same FFmpeg work as bare_commands. Its top rung
    # (1080p 7800k) scores about 90 on this grainy source, short of the per-title target that the
    # blocking check holds it to, so the check's floor is lifted: this measures overhead only.
    config = {
        "raw_upload": {"config": {"object_key": key, "sha256": sha, "title": "bench"}},
        "encoding_plan": {"config": {"ladder": "fixed"}},
        "quality_report": {"config": {"min_top_vmaf": 0.0}},
    }
    started, cpu = time.perf_counter(), cpu_seconds()
    result = materialize(
        [*video.ASSETS, catalog.catalog_schema],
        selection=video.ASSETS,
        partition_key=title_id,
        instance=instance,
        run_config={"ops": config},
        resources={
            "object_store": store,
            "video_records": RecordIOManager(object_store=store),
            "ffmpeg": FFmpegResource(),
            "postgres": PostgresResource(),
        },
    )
    elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    assert result.success
    return elapsed, cpu


def dagster_overhead(source: Path, work: Path, repeats: int) -> None:
    bare, dag = [], []
    for i in range(repeats):  # alternating, so both see the same minutes of a shared machine
        bare.append(bare_commands(source, _mk(work / f"b{i}")))
        dag.append(through_dagster(source, _mk(work / f"d{i}")))
    bare_s, bare_cpu = min(w for w, _ in bare), min(c for _, c in bare)
    dag_s, dag_cpu = min(w for w, _ in dag), min(c for _, c in dag)
    print("whole pipeline (ladder + VMAF per rung + packaging)")
    print(
        f"  bare FFmpeg commands              {bare_s:7.2f} s, CPU {bare_cpu:7.2f} s "
        f"(best of {repeats})"
    )
    print(f"  through Dagster (6 assets)        {dag_s:7.2f} s, CPU {dag_cpu:7.2f} s")
    print(
        f"  overhead                          wall {100 * (dag_s / bare_s - 1):6.1f} %, CPU "
        f"{100 * (dag_cpu / bare_cpu - 1):6.1f} %  (target <= 15%)  {load()}"
    )


def _mk(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def vmaf_scaling(work: Path, lengths: list[float]) -> None:
    print("VMAF at 1080p over every rung (libvmaf, vmaf_v0.6.1 + PSNR + SSIM)")
    per_frame = []
    for seconds in lengths:
        source = make_clip(work / f"src{seconds:g}.mp4", Shape(1920, 1080, seconds=seconds))
        info = validate_upload(source)
        src = SourceInfo.from_probe(info.to_dict())
        rungs = build_ladder(info.width, info.height)
        out = work / f"v{seconds:g}"
        out.mkdir()
        plan = build_ladder_command(source, src, rungs, out, ffmpeg=FFMPEG)
        run(plan.cmd)
        frames = 0
        started, cpu = time.perf_counter(), cpu_seconds()
        for rung in rungs:
            log = out / f"{rung.name}.json"
            run(
                quality.build_vmaf_command(
                    plan.video_outputs[rung.name],
                    source,
                    1920,
                    1080,
                    Fraction(plan.fps),
                    log,
                    ffmpeg=FFMPEG,
                    threads=FFmpegResource().vmaf_threads,
                )
            )
            frames += quality.parse_vmaf_log(log, rung.name, "vmaf_v0.6.1").frames
        elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu
        per_frame.append(cpu / frames)
        print(
            f"  {seconds:5.0f} s source: {frames:5d} frame pairs in {elapsed:6.1f} s = "
            f"{frames / elapsed:6.1f} frames/s; CPU {cpu:6.1f} s = "
            f"{1000 * cpu / frames:.1f} ms/frame  {load()}"
        )
    spread = max(per_frame) / min(per_frame)
    print(f"  CPU ms/frame max/min across lengths {spread:5.2f}  (1.0 = perfectly linear)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=6.0, help="1080p source length")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--vmaf-lengths", default="2,4,8")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="video-bench-") as tmp:
        work = Path(tmp)
        source = make_clip(work / "source.mp4", Shape(1920, 1080, seconds=args.seconds))
        ladder_vs_naive(source, work, args.repeats)
        dagster_overhead(source, work, args.repeats)
        vmaf_scaling(work, [float(x) for x in args.vmaf_lengths.split(",")])
    hardware = FFmpegResource().probe_hardware()
    print(
        f"hardware: NVENC usable {hardware.nvenc_usable}, NVDEC/CUDA {hardware.nvdec_cuda_usable}"
    )


if __name__ == "__main__":
    main()
