"""Video pipeline: raw_upload -> encoding_plan -> renditions -> quality_report -> hls_manifests ->
published_title.

One dynamic partition per title. Each asset writes its files to the object store under a
versioned prefix (the version is the first 12 hex digits of the source's SHA-256) and hands a
small JSON record downstream through RecordIOManager. The logic lives in netflix_assets/video/;
these functions only fetch inputs, run it, store outputs and report metadata and checks.
"""

import json
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetSelection,
    Config,
    Failure,
    MetadataValue,
    Output,
    asset,
    define_asset_job,
)
from pydantic import Field

from assets.catalog import catalog_schema
from netflix_assets import settings
from netflix_assets.partitions import title_partitions
from netflix_assets.run_profiles import k8s_run_tags
from netflix_assets.video import hull, packaging, plan, publish, quality
from netflix_assets.video.encode import SourceInfo, build_ladder_command
from netflix_assets.video.ladder import Rung, build_ladder
from netflix_assets.video.probe import UploadRejected, file_sha256, validate_upload
from netflix_assets.video.upload import upload_record_key
from resources.ffmpeg import FFmpegResource
from resources.object_store import ObjectNotFound, ObjectStoreResource
from resources.postgres import PostgresResource

GROUP = "video"
RECORDS = "video_records"


@contextmanager
def scratch_dir() -> Iterator[Path]:
    """Local working space for one step; removed afterwards, so a killed step leaves no junk
    in the object store (only finished files are put there)."""
    with tempfile.TemporaryDirectory(prefix="netflix-assets-video-") as tmp:
        yield Path(tmp)


def version_prefix(area: str, title_id: str, version: str) -> str:
    return f"{area}/{title_id}/{version}"


class RawUploadConfig(Config):
    """Which upload to process; the upload sensor fills these from the event. Left empty (a
    manual materialization in the UI), the latest upload record of the title is used."""

    object_key: str | None = None
    sha256: str | None = None
    title: str | None = None


def _quarantine(
    object_store: ObjectStoreResource, title_id: str, source: Path, key: str, reason: str
) -> str:
    """Keep the rejected file and a reason record where an operator will look for them."""
    digest = file_sha256(source)[:12] if source.is_file() and source.stat().st_size else "empty"
    prefix = f"quarantine/{title_id}/{digest}"
    if source.is_file():
        object_store.put_file(source, f"{prefix}/{Path(key).name}")
    record = {"title_id": title_id, "object_key": key, "reason": reason, "rejected_at": time.time()}
    object_store.put_bytes(json.dumps(record, indent=2).encode(), f"{prefix}/reason.json")
    return object_store.uri(prefix)


@asset(
    partitions_def=title_partitions,
    group_name=GROUP,
    io_manager_key=RECORDS,
    kinds={"pyav"},
)
def raw_upload(
    context: AssetExecutionContext,
    config: RawUploadConfig,
    object_store: ObjectStoreResource,
) -> Output[dict[str, Any]]:
    """The studio's source file, checksummed, probed and read whole to prove it is complete.
    An unusable upload is quarantined with its reason and fails the run, so nothing downstream
    runs on it."""
    title_id = context.partition_key
    if config.object_key:
        event = {"object_key": config.object_key, "sha256": config.sha256, "title": config.title}
    else:
        try:
            event = json.loads(object_store.get_bytes(upload_record_key(title_id)))
        except ObjectNotFound as exc:
            raise Failure(
                f"title {title_id!r} has no upload record; run `netflix-assets upload`"
            ) from exc
    key = event["object_key"]
    with scratch_dir() as tmp:
        try:
            source = object_store.local_path(key, tmp)
        except ObjectNotFound as exc:
            raise Failure(f"upload {key} of title {title_id!r} is not in the object store") from exc
        sha = file_sha256(source)
        try:
            if event.get("sha256") and sha != event["sha256"]:
                raise UploadRejected(
                    f"checksum mismatch for '{Path(key).name}': the upload event says "
                    f"{event['sha256'][:12]}…, the stored file is {sha[:12]}… (damaged in transit)"
                )
            info = validate_upload(source)
        except UploadRejected as exc:
            where = _quarantine(object_store, title_id, source, key, str(exc))
            raise Failure(
                description=f"upload rejected: {exc}",
                metadata={"reason": str(exc), "quarantine": MetadataValue.path(where)},
                allow_retries=False,
            ) from exc
    probe = info.to_dict()
    probe.pop("path")
    record = {
        "title_id": title_id,
        "title": event.get("title") or title_id,
        "version": sha[:12],
        "sha256": sha,
        "source_key": key,
        "probe": probe,
    }
    return Output(
        record,
        metadata={
            "source_uri": MetadataValue.path(object_store.uri(key)),
            "version": record["version"],
            "sha256": sha,
            "codec": info.codec,
            "resolution": f"{info.display_width}x{info.display_height}",
            "fps": float(info.fps),
            "duration_s": round(info.duration_s, 3),
            "bit_depth": info.bit_depth,
            "rotation": info.rotation,
            "audio": info.audio_codec or "none",
            "variable_frame_rate": info.is_vfr,
            "probe": MetadataValue.json(probe),
        },
    )


class EncodingPlanConfig(Config):
    ladder: str = Field(
        default="per_title",
        description="per_title: probe the title and pick its ladder from the convex hull; "
        "fixed: Apple's fixed ladder (kept for comparison).",
    )
    codec: str = Field(default="h264", description="Ladder codec: h264, hevc (hvc1) or av1.")
    target_vmaf: float = Field(default=95.0, description="VMAF the top rung must reach.")
    floor_vmaf: float = Field(default=40.0, description="VMAF the lowest rung sits near.")
    max_bits_per_pixel: float = Field(
        default=1.0,
        description="Bitrate cap of the top rung in bits per displayed pixel and frame; a title "
        "that needs more to reach the target fails with the cause named.",
    )
    max_rungs: int | None = Field(
        default=None, description="Keep only the top N rungs (previews, tests); None: all."
    )
    samples: int = Field(default=3, description="Probe samples spread over a long title.")
    sample_seconds: float = Field(default=2.0, description="Longest probe sample, seconds.")
    probe_resolutions: int = Field(default=4, description="Sizes probed, the source's first.")
    search_steps: int = Field(default=3, description="CRF search rounds for the top rung.")
    vmaf_subsample: int = Field(
        default=3,
        description="Probes score at most every Nth frame: about 16 frames per probe, every "
        "odd Nth (coprime with x264's 4-frame mini-GOP, so B-frames are sampled in their "
        "share; every 4th frame scored only I/P frames), never denser than this N.",
    )


def _data_uri_image(path: Path) -> str:
    import base64

    return f"![hull](data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()})"


@asset(
    partitions_def=title_partitions,
    group_name=GROUP,
    io_manager_key=RECORDS,
    kinds={"ffmpeg", "vmaf"},
)
def encoding_plan(
    context: AssetExecutionContext,
    config: EncodingPlanConfig,
    raw_upload: dict[str, Any],
    ffmpeg: FFmpegResource,
    object_store: ObjectStoreResource,
) -> Output[dict[str, Any]]:
    """The title's ladder. Per title (default): short samples of the title encoded at a grid of
    sizes and CRFs, scored with VMAF at the display size; the convex hull of those points gives
    the rungs, the top one at the target VMAF. A title that cannot reach the target within the
    bitrate cap fails here, naming the cause."""
    probe = raw_upload["probe"]
    info = SourceInfo.from_probe(probe)
    display = (probe["display_width"], probe["display_height"])
    fixed = build_ladder(
        probe["width"], probe["height"], probe["rotation"], config.codec, info.encode_fps
    )
    base = {
        **{k: raw_upload[k] for k in ("title_id", "title", "version", "source_key")},
        "ladder": config.ladder,
        "codec": config.codec,
        "target_vmaf": config.target_vmaf,
    }
    if config.ladder == "fixed":
        rungs = fixed[-config.max_rungs :] if config.max_rungs else fixed
        record = {**base, "rungs": [r.to_dict() for r in rungs]}
        return Output(
            record,
            metadata={"ladder": "fixed", "rungs": MetadataValue.md(plan.ladder_table(rungs))},
        )
    if config.ladder != "per_title":
        raise Failure(f"unknown ladder {config.ladder!r}; choose per_title or fixed")
    settings = plan.PlanSettings(
        codec=config.codec,
        preset=ffmpeg.preset,
        target_vmaf=config.target_vmaf,
        floor_vmaf=config.floor_vmaf,
        max_rungs=config.max_rungs,
        max_bits_per_pixel=config.max_bits_per_pixel,
        samples=config.samples,
        sample_seconds=config.sample_seconds,
        probe_resolutions=config.probe_resolutions,
        search_steps=config.search_steps,
        vmaf_subsample=config.vmaf_subsample,
    )
    prefix = version_prefix("plans", raw_upload["title_id"], raw_upload["version"])
    with scratch_dir() as tmp:
        source = object_store.local_path(raw_upload["source_key"], tmp / "in")
        try:
            made = plan.make_plan(
                ffmpeg.run,
                ffmpeg.ffmpeg_path,
                source,
                info,
                display,
                float(probe["duration_s"]),
                tmp / "probes",
                settings,
            )
        except hull.PlanError as exc:
            raise Failure(
                description=f"no ladder for {raw_upload['title_id']!r}: {exc}",
                metadata={"reason": str(exc), "target_vmaf": config.target_vmaf},
                allow_retries=False,
            ) from exc
        fixed_estimate = plan.fixed_rungs_estimate(made.points, fixed)
        planned = [(r.bitrate_kbps, r.planned_vmaf) for r in made.rungs]
        bd = hull.bd_rate(fixed_estimate, planned)
        image = plan.plot_hull(
            made.points, made.rungs, fixed_estimate, config.target_vmaf, tmp / "hull.png"
        )
        plot_uri = object_store.put_file(image, f"{prefix}/hull.png", content_type="image/png")
        plot_md = _data_uri_image(image)
    record = {
        **base,
        "rungs": [r.to_dict() for r in made.rungs],
        "points": [p.to_dict() for p in made.points],
        "hull": [p.to_dict() for p in made.hull],
        "sample_windows_s": made.windows,
        "fixed_ladder_estimate": fixed_estimate,
        "bd_rate_vs_fixed_estimate_pct": bd,
        "probe_seconds": made.probe_seconds,
        "plot_key": f"{prefix}/hull.png",
    }
    object_store.put_bytes(json.dumps(record, indent=2).encode(), f"{prefix}/plan.json")
    top = made.top
    context.log.info(
        f"{len(made.rungs)} rungs, top {top.name} CRF {top.crf:g} planned VMAF "
        f"{top.planned_vmaf}; {len(made.points)} probes in {made.probe_seconds:.1f}s"
    )
    return Output(
        record,
        metadata={
            "uri": MetadataValue.path(object_store.uri(prefix)),
            "ladder": "per_title",
            "rungs": MetadataValue.md(plan.ladder_table(made.rungs)),
            "hull_plot": MetadataValue.md(plot_md),
            "hull_plot_uri": MetadataValue.path(plot_uri),
            "rung_count": len(made.rungs),
            "top_rung": top.name,
            "top_rung_planned_vmaf": top.planned_vmaf,
            "ladder_kbps_total": sum(r.bitrate_kbps for r in made.rungs),
            "bd_rate_vs_fixed_pct": MetadataValue.float(bd) if bd is not None else "n/a",
            "bd_rate_note": "estimated on the probe samples: fixed rungs read off the probed "
            "curve of their size; benchmarks/per_title_bench.py measures it on whole titles",
            "sample_windows_s": MetadataValue.json(made.windows),
            "probe_points": len(made.points),
            "probe_seconds": made.probe_seconds,
        },
    )


@asset(
    partitions_def=title_partitions,
    group_name=GROUP,
    io_manager_key=RECORDS,
    kinds={"ffmpeg"},
)
def renditions(
    context: AssetExecutionContext,
    raw_upload: dict[str, Any],
    encoding_plan: dict[str, Any],
    ffmpeg: FFmpegResource,
    object_store: ObjectStoreResource,
) -> Output[dict[str, Any]]:
    """Every rung of the plan from one decode of the source (split filter, one output per
    rung), closed 2-second GOPs on the same grid in every rung, on the GPU when it is there."""
    probe = raw_upload["probe"]
    info = SourceInfo.from_probe(probe)
    codec = encoding_plan["codec"]
    rungs = [Rung(**r) for r in encoding_plan["rungs"]]
    hardware = ffmpeg.probe_hardware()
    prefix = version_prefix("renditions", raw_upload["title_id"], raw_upload["version"])
    with scratch_dir() as tmp:
        source = object_store.local_path(raw_upload["source_key"], tmp / "in")
        (tmp / "out").mkdir()
        plan = build_ladder_command(
            source,
            info,
            rungs,
            tmp / "out",
            codec=codec,
            hw=hardware,
            ffmpeg=ffmpeg.ffmpeg_path,
            threads=ffmpeg.threads,
            preset=ffmpeg.preset,
            prefer_hardware=ffmpeg.prefer_hardware,
        )
        started = time.perf_counter()
        ffmpeg.run(plan.cmd)
        encode_s = time.perf_counter() - started
        out_rungs = []
        for rung in rungs:
            local = plan.video_outputs[rung.name]
            key = f"{prefix}/{codec}/{rung.name}.mp4"
            object_store.put_file(local, key, content_type="video/mp4")
            out_rungs.append({**rung.to_dict(), "key": key, "bytes": local.stat().st_size})
        audio_key = None
        if plan.audio_output:
            audio_key = f"{prefix}/{codec}/audio.mp4"
            object_store.put_file(plan.audio_output, audio_key, content_type="audio/mp4")
    fps = plan.fps
    record = {
        **{k: raw_upload[k] for k in ("title_id", "title", "version", "source_key")},
        "codec": codec,
        "ladder": encoding_plan["ladder"],
        "target_vmaf": encoding_plan["target_vmaf"],
        "fps": f"{fps.numerator}/{fps.denominator}",
        "rungs": out_rungs,
        "audio_key": audio_key,
        "encoder": plan.encoder,
        "settings": plan.settings,
    }
    context.log.info(f"{len(rungs)} rungs with {plan.encoder} in {encode_s:.1f}s")
    return Output(
        record,
        metadata={
            "uri": MetadataValue.path(object_store.uri(prefix)),
            "rung_count": len(rungs),
            "encoder": plan.encoder,
            "hardware_decode": plan.hardware_decode,
            "hardware": MetadataValue.json(hardware.to_dict() | {"encoders": None}),
            "settings": MetadataValue.json(plan.settings),
            "ladder": MetadataValue.md(
                "\n".join(
                    ["| rung | size | CRF | planned kbps | bytes |", "|---|---|---|---|---|"]
                    + [
                        f"| {r['name']} | {r['width']}x{r['height']} | {r['crf'] or 'VBR'} "
                        f"| {r['bitrate_kbps']} | {r['bytes']} |"
                        for r in out_rungs
                    ]
                )
            ),
            "encode_seconds": round(encode_s, 2),
            "ffmpeg_command": " ".join(str(c) for c in plan.cmd),
        },
    )


class QualityConfig(Config):
    target_tolerance: float = Field(
        default=1.0,
        description="Blocking check: the top rung's VMAF on the full title may fall this far "
        "below the plan's target.",
    )
    min_top_vmaf: float | None = Field(
        default=None, description="Override the check's floor (None: target - tolerance)."
    )
    rise_tolerance: float = Field(
        default=0.5, description="VMAF a higher-bitrate rung may fall below its neighbour."
    )
    subsample: int = Field(default=1, description="Score every Nth frame (1: every frame).")


@asset(
    partitions_def=title_partitions,
    group_name=GROUP,
    io_manager_key=RECORDS,
    kinds={"ffmpeg", "vmaf"},
    check_specs=[
        AssetCheckSpec(
            "top_rung_vmaf",
            asset="quality_report",
            blocking=True,
            description="The top rung's pooled VMAF on the full title reaches the plan's target "
            "(default 95) within the tolerance (default 1).",
        ),
        AssetCheckSpec(
            "quality_rises_with_bitrate",
            asset="quality_report",
            description="Along the ladder in bitrate order, VMAF never falls beyond a tolerance.",
        ),
    ],
)
def quality_report(
    context: AssetExecutionContext,
    config: QualityConfig,
    raw_upload: dict[str, Any],
    renditions: dict[str, Any],
    ffmpeg: FFmpegResource,
    object_store: ObjectStoreResource,
):
    """VMAF (4K model from 1440p up), PSNR and SSIM of every rung against the source, each rung
    upscaled to the source's displayed size with bicubic and paired frame by frame."""
    from fractions import Fraction

    probe = raw_upload["probe"]
    fps = Fraction(renditions["fps"])
    ref_w, ref_h = plan.scoring_size(probe["display_width"], probe["display_height"])
    prefix = version_prefix("quality", renditions["title_id"], renditions["version"])
    rows, series = [], {}
    started = time.perf_counter()
    frames_scored = 0
    with scratch_dir() as tmp:
        source = object_store.local_path(raw_upload["source_key"], tmp / "in")
        for rung in renditions["rungs"]:
            dist = object_store.local_path(rung["key"], tmp / "in")
            model = quality.vmaf_model_for(rung["height"])
            log = tmp / f"{rung['name']}.json"
            ffmpeg.run(
                quality.build_vmaf_command(
                    dist,
                    source,
                    ref_w,
                    ref_h,
                    fps,
                    log,
                    model=model,
                    ffmpeg=ffmpeg.ffmpeg_path,
                    threads=ffmpeg.vmaf_threads,
                    bit_depth=probe["bit_depth"],
                    subsample=config.subsample,
                )
            )
            scores = quality.parse_vmaf_log(log, rung["name"], model)
            frames_scored += scores.frames
            series[rung["name"]] = quality.per_frame_vmaf(log)
            object_store.put_file(log, f"{prefix}/{rung['name']}.vmaf.json")
            duration = scores.frames * config.subsample / float(fps)
            rows.append(
                {
                    **scores.to_dict(),
                    "width": rung["width"],
                    "height": rung["height"],
                    "bitrate_kbps": rung["bitrate_kbps"],
                    "measured_kbps": rung["bytes"] * 8 / 1000 / max(duration, 1e-6),
                    "crf": rung.get("crf"),
                    "planned_vmaf": rung.get("planned_vmaf"),
                }
            )
        plot = quality.plot_per_frame(series, float(fps) / config.subsample, tmp / "vmaf.png")
        plot_uri = object_store.put_file(plot, f"{prefix}/vmaf_per_frame.png")
    vmaf_s = time.perf_counter() - started
    report = {
        **{k: renditions[k] for k in ("title_id", "version", "codec")},
        "rows": rows,
        "plot_key": f"{prefix}/vmaf_per_frame.png",
    }
    object_store.put_bytes(json.dumps(report, indent=2).encode(), f"{prefix}/report.json")
    top = max(rows, key=lambda r: r["bitrate_kbps"])
    table = quality.rate_quality_table(rows)
    target = renditions.get("target_vmaf", 95.0)
    floor = (
        config.min_top_vmaf if config.min_top_vmaf is not None else target - config.target_tolerance
    )
    yield Output(
        report,
        metadata={
            "uri": MetadataValue.path(object_store.uri(prefix)),
            "rate_quality": MetadataValue.md(table),
            "planned_vs_achieved": MetadataValue.md(quality.planned_vs_achieved_table(rows)),
            "target_vmaf": target,
            "per_frame_vmaf_plot": MetadataValue.path(plot_uri),
            "top_rung": top["rung"],
            "top_rung_vmaf": top["vmaf_mean"],
            "lowest_rung_vmaf": min(rows, key=lambda r: r["bitrate_kbps"])["vmaf_mean"],
            "scores": MetadataValue.json(rows),
            "frames_scored": frames_scored,
            "vmaf_frames_per_s": round(frames_scored / max(vmaf_s, 1e-6), 2),
        },
    )
    yield AssetCheckResult(
        check_name="top_rung_vmaf",
        passed=top["vmaf_mean"] >= floor,
        severity=AssetCheckSeverity.ERROR,
        description=None
        if top["vmaf_mean"] >= floor
        else f"top rung {top['rung']} scores VMAF {top['vmaf_mean']:.2f} on the full title, "
        f"below {floor:.2f} (target {target:g}); the samples did not represent the title or "
        "the bitrate cap bound: re-plan with more samples or a higher cap",
        metadata={
            "top_rung": top["rung"],
            "vmaf": top["vmaf_mean"],
            "planned_vmaf": top["planned_vmaf"] if top["planned_vmaf"] is not None else "n/a",
            "target": target,
            "floor": floor,
        },
    )
    falls = quality.rises_with_bitrate(rows, config.rise_tolerance)
    yield AssetCheckResult(
        check_name="quality_rises_with_bitrate",
        passed=not falls,
        severity=AssetCheckSeverity.WARN,
        metadata={"falls": MetadataValue.json(falls), "tolerance": config.rise_tolerance},
    )


@asset(
    partitions_def=title_partitions,
    group_name=GROUP,
    io_manager_key=RECORDS,
    kinds={"ffmpeg", "hls", "dash"},
    check_specs=[
        AssetCheckSpec(
            "playlists_parse",
            asset="hls_manifests",
            blocking=True,
            description="Master and media playlists parse; BANDWIDTH and AVERAGE-BANDWIDTH are "
            "within 10% of the bitrates measured from the stored segments.",
        ),
        AssetCheckSpec(
            "segments_start_on_aligned_keyframes",
            asset="hls_manifests",
            blocking=True,
            description="Every segment of every rung starts with a keyframe, at the same times.",
        ),
    ],
)
def hls_manifests(
    context: AssetExecutionContext,
    renditions: dict[str, Any],
    quality_report: dict[str, Any],
    ffmpeg: FFmpegResource,
    object_store: ObjectStoreResource,
):
    """CMAF fMP4 segments shared by an HLS master playlist and a DASH MPD. Runs after the
    quality report so that a title failing the blocking VMAF check is never packaged."""
    prefix = version_prefix("packages", renditions["title_id"], renditions["version"])
    with scratch_dir() as tmp:
        inputs = {
            r["name"]: object_store.local_path(r["key"], tmp / "in") for r in renditions["rungs"]
        }
        audio = (
            object_store.local_path(renditions["audio_key"], tmp / "in")
            if renditions["audio_key"]
            else None
        )
        package_dir = tmp / "package"
        video, audio_stats = packaging.package(
            ffmpeg.run, ffmpeg.ffmpeg_path, inputs, audio, package_dir
        )
        parse_errors = packaging.check_playlists(package_dir)
        keyframes = packaging.segment_keyframe_times(package_dir, list(inputs))
        alignment_errors = packaging.keyframe_alignment_errors(keyframes)
        files = sorted(
            p.relative_to(package_dir).as_posix() for p in package_dir.rglob("*") if p.is_file()
        )
        for rel in publish.publish_order(files, packaging.MASTER, packaging.MPD):
            object_store.put_file(
                package_dir / rel, f"{prefix}/{rel}", content_type=publish.content_type(rel)
            )
    variants = [v.to_dict() for v in video]
    record = {
        **{k: renditions[k] for k in ("title_id", "title", "version", "codec")},
        "prefix": prefix,
        "files": files,
        "master": packaging.MASTER,
        "mpd": packaging.MPD,
        "variants": variants,
        "audio": audio_stats.to_dict() if audio_stats else None,
        "duration_s": sum(video[0].segment_durations),
    }
    yield Output(
        record,
        metadata={
            "master_uri": MetadataValue.path(object_store.uri(f"{prefix}/{packaging.MASTER}")),
            "mpd_uri": MetadataValue.path(object_store.uri(f"{prefix}/{packaging.MPD}")),
            "variants": MetadataValue.md(
                "\n".join(
                    ["| rung | RESOLUTION | CODECS | peak kbps | avg kbps | segments |"]
                    + ["|---|---|---|---|---|---|"]
                    + [
                        f"| {v.name} | {v.width}x{v.height} | {v.codecs} | {v.peak_bps / 1000:.0f} "
                        f"| {v.average_bps / 1000:.0f} | {v.segment_count} |"
                        for v in video
                    ]
                )
            ),
            "segment_count": sum(v.segment_count for v in video),
            "file_count": len(files),
        },
    )
    yield AssetCheckResult(
        check_name="playlists_parse",
        passed=not parse_errors,
        metadata={"errors": MetadataValue.json(parse_errors)},
    )
    yield AssetCheckResult(
        check_name="segments_start_on_aligned_keyframes",
        passed=not alignment_errors,
        metadata={
            "errors": MetadataValue.json(alignment_errors),
            "segment_starts_s": MetadataValue.json(
                {name: [t for t, _ in starts] for name, starts in keyframes.items()}
            ),
        },
    )


class PublishConfig(Config):
    playback_base_url: str | None = Field(
        default_factory=settings.playback_base_url,
        description="CDN base URL the delivery area is served from (env "
        "NETFLIX_ASSETS_PLAYBACK_BASE_URL); None: the object store URI of the master playlist.",
    )


@asset(
    partitions_def=title_partitions,
    group_name=GROUP,
    io_manager_key=RECORDS,
    kinds={"s3", "postgres"},
    deps=[catalog_schema],
)
def published_title(
    context: AssetExecutionContext,
    config: PublishConfig,
    raw_upload: dict[str, Any],
    quality_report: dict[str, Any],
    hls_manifests: dict[str, Any],
    object_store: ObjectStoreResource,
    postgres: PostgresResource,
) -> Output[dict[str, Any]]:
    """Copies the package to the delivery area (media first, master last) and records the
    version in the catalog in one transaction. Re-publishing a version rewrites the same keys
    and upserts the same rows, so it is idempotent."""
    title_id, version = hls_manifests["title_id"], hls_manifests["version"]
    delivery = version_prefix("delivery", title_id, version)
    for rel in publish.publish_order(hls_manifests["files"], packaging.MASTER, packaging.MPD):
        object_store.copy(
            f"{hls_manifests['prefix']}/{rel}",
            f"{delivery}/{rel}",
            content_type=publish.content_type(rel),
            cache_control=publish.cache_control(rel),
        )
    master_key = f"{delivery}/{packaging.MASTER}"
    base = config.playback_base_url
    playback_url = f"{base.rstrip('/')}/{master_key}" if base else object_store.uri(master_key)
    dash_uri = object_store.uri(f"{delivery}/{packaging.MPD}")
    title = {
        "title_id": title_id,
        "title": raw_upload["title"],
        "version": version,
        "sha256": raw_upload["sha256"],
        "playback_url": playback_url,
        "manifest_uri": object_store.uri(master_key),
        "dash_uri": dash_uri,
    }
    scores = {r["rung"]: r for r in quality_report["rows"]}
    rendition_rows = [
        {
            "rung": v["name"],
            "codec": hls_manifests["codec"],
            "width": v["width"],
            "height": v["height"],
            "bitrate_kbps": scores[v["name"]]["bitrate_kbps"],
            "peak_kbps": round(v["peak_bps"] / 1000),
            "avg_kbps": round(v["average_bps"] / 1000),
            "codecs_string": v["codecs"],
            "uri": object_store.uri(f"{delivery}/{v['playlist']}"),
        }
        for v in hls_manifests["variants"]
    ]
    manifest_rows = [
        {
            "kind": kind,
            "uri": object_store.uri(f"{delivery}/{name}"),
            "content_type": publish.content_type(name),
            "variant_count": len(hls_manifests["variants"]),
            "duration_s": hls_manifests["duration_s"],
        }
        for kind, name in (("hls", packaging.MASTER), ("dash", packaging.MPD))
    ]
    quality_rows = [
        {
            k: scores[r["rung"]][k]
            for k in ("rung", "vmaf_mean", "vmaf_harmonic", "vmaf_p1", "vmaf_min", "psnr", "ssim")
        }
        for r in rendition_rows
    ]
    postgres.apply_schema()
    with postgres.connect() as conn:
        publish.write_catalog(conn, title, rendition_rows, manifest_rows, quality_rows)
    record = {**title, "delivery_prefix": delivery, "renditions": len(rendition_rows)}
    return Output(
        record,
        metadata={
            "playback_url": MetadataValue.url(playback_url)
            if playback_url.startswith("http")
            else MetadataValue.path(playback_url),
            "dash_uri": MetadataValue.path(dash_uri),
            "version": version,
            "renditions": len(rendition_rows),
            "files": len(hls_manifests["files"]),
        },
    )


video_pipeline_job = define_asset_job(
    "video_pipeline",
    selection=AssetSelection.groups(GROUP),
    partitions_def=title_partitions,
    tags=k8s_run_tags("transcode"),
    description="One title from upload to published; started by the upload sensor.",
)

ASSETS = [raw_upload, encoding_plan, renditions, quality_report, hls_manifests, published_title]
JOBS = [video_pipeline_job]
