"""Objective quality per rung: VMAF (with PSNR and SSIM from the same libvmaf pass) vs source.

Each rung is upscaled back to the source's size with bicubic, the way a TV shows it, and both
inputs go through the same `fps` filter and `setpts=PTS-STARTPTS`, so frame n of the rung is
compared with frame n of the source even if the source was variable frame rate.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

VMAF_MODEL = "vmaf_v0.6.1"
VMAF_4K_MODEL = "vmaf_4k_v0.6.1"
FOUR_K_MODEL_FROM_HEIGHT = 1440


@dataclass(frozen=True)
class QualityScores:
    rung: str
    model: str
    frames: int
    vmaf_mean: float
    vmaf_harmonic: float
    vmaf_p1: float
    vmaf_min: float
    psnr: float
    ssim: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def vmaf_model_for(height: int) -> str:
    """The 4K model was trained for 4K viewing; it applies to the 1440p and 2160p rungs."""
    return VMAF_4K_MODEL if height >= FOUR_K_MODEL_FROM_HEIGHT else VMAF_MODEL


def _escape(path: Path) -> str:
    return str(path).replace("\\", "\\\\").replace(":", "\\:").replace("'", "\\'")


def build_vmaf_command(
    distorted: str | Path,
    reference: str | Path,
    ref_width: int,
    ref_height: int,
    fps: Fraction,
    log_path: str | Path,
    model: str = VMAF_MODEL,
    ffmpeg: str = "ffmpeg",
    threads: int = 2,
    bit_depth: int = 8,
    subsample: int = 1,
) -> list[str]:
    """libvmaf with PSNR and float SSIM features; the distorted input is listed first."""
    return build_multi_vmaf_command(
        [distorted],
        reference,
        ref_width,
        ref_height,
        fps,
        [log_path],
        model=model,
        ffmpeg=ffmpeg,
        threads=threads,
        bit_depth=bit_depth,
        subsample=subsample,
    )


def build_multi_vmaf_command(
    distorted: list[str | Path],
    reference: str | Path,
    ref_width: int,
    ref_height: int,
    fps: Fraction,
    log_paths: list[str | Path],
    model: str = VMAF_MODEL,
    ffmpeg: str = "ffmpeg",
    threads: int = 2,
    bit_depth: int = 8,
    subsample: int = 1,
    features: bool = True,
    models: list[str] | None = None,
    subsamples: list[int] | None = None,
    decode_threads: int | None = None,
) -> list[str]:
    """Score several encodes against one reference in one process: the reference is decoded
    once and `split`; each encode is upscaled to the reference size with bicubic. `features`
    adds PSNR-Y and float SSIM (the probes of a plan skip them: VMAF alone is what they need).
    `models` and `subsamples` give each encode its own VMAF model and frame step (default:
    `model` and `subsample` for all). `decode_threads` caps each input's decoder threads (the
    planner's probes: a few frames each). The distorted inputs come first, the reference last."""
    fps_str = f"{fps.numerator}/{fps.denominator}"
    fmt = "yuv420p10le" if bit_depth > 8 else "yuv420p"
    common = f"fps={fps_str},setpts=PTS-STARTPTS"
    scale = f"scale={ref_width}:{ref_height}:flags=bicubic,setsar=1,format={fmt}"
    n = len(distorted)
    refs = "".join(f"[ref{i}]" for i in range(n))
    parts = [
        f"[{n}:v]{common},{scale},split={n}{refs}" if n > 1 else f"[{n}:v]{common},{scale}[ref0]"
    ]
    extra = ":feature=name=psnr|name=float_ssim" if features else ""
    cmd = [ffmpeg, "-hide_banner", "-nostdin", "-y", "-loglevel", "error"]
    decode = ["-threads", str(decode_threads)] if decode_threads else []
    for path in distorted:
        cmd += [*decode, "-i", str(path)]
    cmd += [*decode, "-i", str(reference)]
    models = models or [model] * n
    subsamples = subsamples or [subsample] * n
    for i, log_path in enumerate(log_paths):
        parts.append(f"[{i}:v]{common}{_scored_only(subsamples[i], fps_str, scale)}[dist{i}]")
        parts.append(
            f"[dist{i}][ref{i}]libvmaf=model=version={models[i]}{extra}"
            f":log_fmt=json:log_path={_escape(Path(log_path))}:n_threads={threads}"
            f":n_subsample={subsamples[i]}[out{i}]"
        )
    cmd += ["-filter_complex", ";".join(parts)]
    for i in range(n):
        cmd += ["-map", f"[out{i}]", "-f", "null", "-"]
    return cmd


def _scored_only(subsample: int, fps_str: str, scale: str) -> str:
    """The distorted branch's filters after `common`: with a frame step N > 1, only every Nth
    frame is upscaled, and the `fps` filter fills the gaps with references to the last scored
    frame, so libvmaf still meets frame n of the reference with frame n of the encode. libvmaf
    computes its per-frame features on every Nth frame only, and its one temporal feature
    (motion) on the reference alone, so the frames between never reach a score: upscaling them
    (bicubic, at the display size) was work thrown away; the scores are the same."""
    if subsample <= 1:
        return f",{scale}"
    return f",select='not(mod(n\\,{subsample}))',{scale},fps={fps_str}"


def harmonic_mean(values: np.ndarray) -> float:
    """Netflix's VMAF harmonic mean (shifted by 1 so zero scores do not explode)."""
    return float(len(values) / np.sum(1.0 / (values + 1.0)) - 1.0)


def parse_vmaf_log(log: dict[str, Any] | str | Path, rung: str, model: str) -> QualityScores:
    """Pool the per-frame scores of a libvmaf JSON log: mean, harmonic mean, 1st pct, min."""
    if not isinstance(log, dict):
        log = json.loads(Path(log).read_text())
    frames = log["frames"]
    if not frames:
        raise ValueError(f"libvmaf log for {rung} has no frames; the inputs did not overlap")
    vmaf = np.array([f["metrics"]["vmaf"] for f in frames], dtype=float)
    psnr = np.array([f["metrics"].get("psnr_y", np.nan) for f in frames], dtype=float)
    ssim = np.array([f["metrics"].get("float_ssim", np.nan) for f in frames], dtype=float)
    return QualityScores(
        rung=rung,
        model=model,
        frames=len(frames),
        vmaf_mean=round(float(vmaf.mean()), 3),
        vmaf_harmonic=round(harmonic_mean(vmaf), 3),
        vmaf_p1=round(float(np.percentile(vmaf, 1)), 3),
        vmaf_min=round(float(vmaf.min()), 3),
        psnr=_nanmean(np.minimum(psnr, 100.0), 3),
        ssim=_nanmean(ssim, 5),
    )


def _nanmean(values: np.ndarray, digits: int) -> float:
    """Mean of the scored frames; NaN when the log has no such feature (a VMAF-only probe)."""
    present = values[~np.isnan(values)]
    return round(float(present.mean()), digits) if present.size else float("nan")


def markdown_table(scores: list[QualityScores]) -> str:
    """The per-rung table shown in the Dagster UI."""
    lines = [
        "| rung | model | VMAF mean | harmonic | p1 | min | PSNR-Y | SSIM |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {s.rung} | {s.model} | {s.vmaf_mean:.2f} | {s.vmaf_harmonic:.2f} | {s.vmaf_p1:.2f} "
        f"| {s.vmaf_min:.2f} | {s.psnr:.2f} | {s.ssim:.4f} |"
        for s in scores
    ]
    return "\n".join(lines)


def pooled_vmaf(log: dict[str, Any] | str | Path, skip_frames: frozenset[int]) -> float:
    """Mean VMAF of a libvmaf JSON log's scored frames, leaving out the frames numbered in
    `skip_frames` (all of them when nothing else was scored)."""
    if not isinstance(log, dict):
        log = json.loads(Path(log).read_text())
    frames = log["frames"]
    kept = [f for f in frames if f["frameNum"] not in skip_frames] or frames
    if not kept:
        raise ValueError("libvmaf log has no frames; the inputs did not overlap")
    return float(np.mean([f["metrics"]["vmaf"] for f in kept]))


def per_frame_vmaf(log: dict[str, Any] | str | Path) -> list[float]:
    """The per-frame VMAF series of a libvmaf JSON log, in frame order."""
    if not isinstance(log, dict):
        log = json.loads(Path(log).read_text())
    return [round(float(f["metrics"]["vmaf"]), 3) for f in log["frames"]]


def plot_per_frame(series: dict[str, list[float]], fps: float, path: str | Path) -> Path:
    """A PNG of VMAF over time, one line per rung: where in the title quality dips."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4), dpi=100)
    for rung, values in series.items():
        ax.plot([i / fps for i in range(len(values))], values, label=rung, linewidth=1)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("VMAF")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right", ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def rate_quality_table(rows: list[dict[str, Any]]) -> str:
    """Markdown rate-quality table: one row per rung in bitrate order, bits against VMAF."""
    lines = [
        "| rung | resolution | target kbps | measured avg kbps | VMAF | PSNR-Y | SSIM |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: r["bitrate_kbps"]):
        lines.append(
            f"| {r['rung']} | {r['width']}x{r['height']} | {r['bitrate_kbps']} "
            f"| {r['measured_kbps']:.0f} | {r['vmaf_mean']:.2f} | {r['psnr']:.2f} "
            f"| {r['ssim']:.4f} |"
        )
    return "\n".join(lines)


def planned_vs_achieved_table(rows: list[dict[str, Any]]) -> str:
    """Per rung: what the plan's probes predicted and what the full title scored."""
    lines = ["| rung | CRF | planned VMAF | achieved VMAF | delta |", "|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: r["bitrate_kbps"]):
        planned = r.get("planned_vmaf")
        crf = f"{r['crf']:g}" if r.get("crf") is not None else "VBR"
        if planned is None:
            lines.append(f"| {r['rung']} | {crf} | - | {r['vmaf_mean']:.2f} | - |")
        else:
            delta = r["vmaf_mean"] - planned
            lines.append(
                f"| {r['rung']} | {crf} | {planned:.2f} | {r['vmaf_mean']:.2f} | {delta:+.2f} |"
            )
    return "\n".join(lines)


def rises_with_bitrate(rows: list[dict[str, Any]], tolerance: float = 0.5) -> list[str]:
    """Pairs of neighbouring rungs (in bitrate order) where VMAF falls by more than `tolerance`;
    an empty list means quality rises (or holds) with bitrate along the ladder."""
    ordered = sorted(rows, key=lambda r: r["bitrate_kbps"])
    return [
        f"{lo['rung']} ({lo['vmaf_mean']:.2f}) > {hi['rung']} ({hi['vmaf_mean']:.2f})"
        for lo, hi in itertools.pairwise(ordered)
        if hi["vmaf_mean"] + tolerance < lo["vmaf_mean"]
    ]
