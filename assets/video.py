"""Video pipeline: raw_upload -> renditions -> quality_report -> hls_manifests -> published_title.

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
from netflix_assets.video import packaging, publish, quality
from netflix_assets.video.encode import SourceInfo, build_ladder_command
from netflix_assets.video.ladder import build_ladder
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


class RenditionsConfig(Config):
    codec: str = Field(default="h264", description="Ladder codec: h264, hevc (hvc1) or av1.")
    max_rungs: int | None = Field(
        default=None, description="Keep only the top N rungs (previews, tests); None: all."
    )


@asset(
    partitions_def=title_partitions,
    group_name=GROUP,
    io_manager_key=RECORDS,
    kinds={"ffmpeg"},
)
def renditions(
    context: AssetExecutionContext,
    config: RenditionsConfig,
    raw_upload: dict[str, Any],
    ffmpeg: FFmpegResource,
    object_store: ObjectStoreResource,
) -> Output[dict[str, Any]]:
    """Every rung of the ABR ladder from one decode of the source (split filter, one output per
    rung), closed 2-second GOPs on the same grid in every rung, on the GPU when it is there."""
    probe = raw_upload["probe"]
    info = SourceInfo.from_probe(probe)
    rungs = build_ladder(
        probe["width"],
        probe["height"],
        probe["rotation"],
        config.codec,
        info.encode_fps,
        config.max_rungs,
    )
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
            codec=config.codec,
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
            key = f"{prefix}/{config.codec}/{rung.name}.mp4"
            object_store.put_file(local, key, content_type="video/mp4")
            out_rungs.append({**rung.to_dict(), "key": key, "bytes": local.stat().st_size})
        audio_key = None
        if plan.audio_output:
            audio_key = f"{prefix}/{config.codec}/audio.mp4"
            object_store.put_file(plan.audio_output, audio_key, content_type="audio/mp4")
    fps = plan.fps
    record = {
        **{k: raw_upload[k] for k in ("title_id", "title", "version", "source_key")},
        "codec": config.codec,
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
                    ["| rung | size | target kbps | bytes |", "|---|---|---|---|"]
                    + [
                        f"| {r['name']} | {r['width']}x{r['height']} | {r['bitrate_kbps']} "
                        f"| {r['bytes']} |"
                        for r in out_rungs
                    ]
                )
            ),
            "encode_seconds": round(encode_s, 2),
            "ffmpeg_command": " ".join(str(c) for c in plan.cmd),
        },
    )


class QualityConfig(Config):
    min_top_vmaf: float = Field(default=85.0, description="Blocking check: top-rung pooled VMAF.")
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
            description="The top rung's pooled VMAF reaches the configured floor (default 85).",
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
    ref_w, ref_h = probe["display_width"], probe["display_height"]
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
    yield Output(
        report,
        metadata={
            "uri": MetadataValue.path(object_store.uri(prefix)),
            "rate_quality": MetadataValue.md(table),
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
        passed=top["vmaf_mean"] >= config.min_top_vmaf,
        severity=AssetCheckSeverity.ERROR,
        metadata={"top_rung": top["rung"], "vmaf": top["vmaf_mean"], "floor": config.min_top_vmaf},
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

ASSETS = [raw_upload, renditions, quality_report, hls_manifests, published_title]
JOBS = [video_pipeline_job]
