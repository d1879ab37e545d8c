"""The ladder and the FFmpeg commands built from it, checked without running FFmpeg."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from netflix_assets.video.encode import (
    SOFTWARE_ONLY,
    HardwareReport,
    SourceInfo,
    build_ladder_command,
    build_naive_commands,
    output_fps,
)
from netflix_assets.video.ladder import build_ladder
from netflix_assets.video.packaging import keyframe_alignment_errors
from netflix_assets.video.publish import cache_control, content_type, publish_order
from netflix_assets.video.quality import (
    harmonic_mean,
    parse_vmaf_log,
    rises_with_bitrate,
    vmaf_model_for,
)

SRC = SourceInfo(fps=Fraction(30), has_audio=True)


def test_ladder_never_upscales_and_keeps_orientation() -> None:
    full = build_ladder(3840, 2160)
    assert full[0].height == 234 and full[-1].height == 2160
    small = build_ladder(1280, 720)
    assert max(r.height for r in small) == 720
    assert all(r.width <= 1280 for r in small)
    portrait = build_ladder(1280, 720, rotation=90)  # coded landscape, shown portrait
    assert all(r.height > r.width for r in portrait)
    assert max(r.width for r in portrait) == 720
    assert all(r.width % 2 == 0 and r.height % 2 == 0 for r in build_ladder(641, 361))


def test_codec_and_frame_rate_change_bitrates() -> None:
    h264 = {r.height: r.bitrate_kbps for r in build_ladder(1920, 1080, codec="h264")}
    hevc = {r.height: r.bitrate_kbps for r in build_ladder(1920, 1080, codec="hevc")}
    fast = {r.height: r.bitrate_kbps for r in build_ladder(1920, 1080, fps=60)}
    assert all(hevc[h] < h264[h] < fast[h] for h in h264)
    with pytest.raises(ValueError, match="unknown codec"):
        build_ladder(1920, 1080, codec="vp8")


def test_one_decode_command_splits_to_every_rung(tmp_path) -> None:
    rungs = build_ladder(1920, 1080)
    plan = build_ladder_command("in.mp4", SRC, rungs, tmp_path)
    cmd = plan.cmd
    assert cmd.count("-i") == 1
    graph = cmd[cmd.index("-filter_complex") + 1]
    assert f"split={len(rungs)}" in graph
    assert len(plan.video_outputs) == len(rungs) and plan.audio_output is not None
    # The same GOP on every rung: 2 s at 30 fps, keyframes forced on the grid, no scene cuts.
    assert cmd.count("-g") == len(rungs) and cmd.count("60") >= len(rungs)
    assert cmd.count("expr:gte(t,n_forced*2)") == len(rungs)
    assert cmd.count("scenecut=0:open-gop=0") == len(rungs)
    assert plan.encoder == "libx264" and not plan.hardware_decode
    naive = build_naive_commands("in.mp4", SRC, rungs, tmp_path)
    assert len(naive) == len(rungs) + 1  # one process per rung plus audio


def test_hevc_is_tagged_hvc1_and_av1_uses_svt(tmp_path) -> None:
    rungs = build_ladder(1280, 720, codec="hevc")
    hevc = build_ladder_command("in.mp4", SRC, rungs, tmp_path, codec="hevc").cmd
    assert "libx265" in hevc and hevc.count("hvc1") == len(rungs)
    av1 = build_ladder_command(
        "in.mp4", SRC, build_ladder(1280, 720, codec="av1"), tmp_path, codec="av1"
    )
    assert av1.encoder == "libsvtav1" and any("scd=0" in a for a in av1.cmd)
    ten_bit = SourceInfo(fps=Fraction(30), has_audio=False, bit_depth=10)
    plan = build_ladder_command("in.mp4", ten_bit, rungs, tmp_path, codec="hevc")
    assert plan.settings["pix_fmt"] == "yuv420p10le" and plan.audio_output is None


GPU_FULL = HardwareReport("n9", True, frozenset({"h264_nvenc", "hevc_nvenc"}), True, True)
HOPPER = HardwareReport("n9", True, frozenset({"h264_nvenc"}), False, True)  # NVDEC, no NVENC


def test_hardware_paths(tmp_path) -> None:
    rungs = build_ladder(1920, 1080)
    full = build_ladder_command("in.mp4", SRC, rungs, tmp_path, hw=GPU_FULL)
    graph = full.cmd[full.cmd.index("-filter_complex") + 1]
    assert full.encoder == "h264_nvenc" and full.hardware_decode
    assert "scale_cuda" in graph and "hwdownload" not in graph
    assert full.cmd[full.cmd.index("-hwaccel") + 1] == "cuda"
    hopper = build_ladder_command("in.mp4", SRC, rungs, tmp_path, hw=HOPPER)
    graph = hopper.cmd[hopper.cmd.index("-filter_complex") + 1]
    assert hopper.encoder == "libx264" and hopper.hardware_decode and "hwdownload" in graph
    rotated = SourceInfo(fps=Fraction(30), has_audio=True, rotation=90)
    assert not build_ladder_command("in.mp4", rotated, rungs, tmp_path, hw=HOPPER).hardware_decode
    cpu = build_ladder_command("in.mp4", SRC, rungs, tmp_path, hw=SOFTWARE_ONLY)
    assert "-hwaccel" not in cpu.cmd
    off = build_ladder_command("in.mp4", SRC, rungs, tmp_path, hw=GPU_FULL, prefer_hardware=False)
    assert off.encoder == "libx264" and not off.hardware_decode


def test_output_fps() -> None:
    assert output_fps(Fraction(30000, 1001)) == Fraction(30000, 1001)
    assert output_fps(Fraction(120)) == 60
    assert output_fps(Fraction(300, 19), vfr=True) == 15
    assert output_fps(Fraction(29), vfr=True) == Fraction(30000, 1001)


def test_vmaf_pooling_is_exact() -> None:
    log = {
        "frames": [
            {"metrics": {"vmaf": v, "psnr_y": 40.0, "float_ssim": 0.99}}
            for v in (90.0, 80.0, 99.0, 0.0)
        ]
    }
    scores = parse_vmaf_log(log, "r", "vmaf_v0.6.1")
    assert scores.vmaf_mean == pytest.approx(67.25)
    assert scores.vmaf_min == 0.0 and scores.frames == 4
    assert scores.vmaf_harmonic == pytest.approx(4 / (1 / 91 + 1 / 81 + 1 / 100 + 1) - 1, abs=1e-3)
    assert harmonic_mean(np.array([50.0, 50.0])) == pytest.approx(50.0)
    assert vmaf_model_for(1080) == "vmaf_v0.6.1" and vmaf_model_for(1440) == "vmaf_4k_v0.6.1"


def test_quality_must_rise_with_bitrate() -> None:
    rows = [
        {"rung": "a", "bitrate_kbps": 100, "vmaf_mean": 50.0},
        {"rung": "b", "bitrate_kbps": 200, "vmaf_mean": 70.0},
        {"rung": "c", "bitrate_kbps": 300, "vmaf_mean": 69.8},
    ]
    assert rises_with_bitrate(rows, tolerance=0.5) == []
    assert rises_with_bitrate(rows, tolerance=0.1) == ["b (70.00) > c (69.80)"]


def test_keyframe_alignment_errors() -> None:
    good = {"a": [(0.0, True), (2.0, True)], "b": [(0.0, True), (2.0, True)]}
    assert keyframe_alignment_errors(good) == []
    shifted = {"a": [(0.0, True), (2.0, True)], "b": [(0.0, True), (2.5, True)]}
    assert len(keyframe_alignment_errors(shifted)) == 1
    not_key = {"a": [(0.0, True), (2.0, False)]}
    assert "non-keyframe" in keyframe_alignment_errors(not_key)[0]


def test_publish_order_puts_master_last() -> None:
    files = ["master.m3u8", "a/playlist.m3u8", "a/init.mp4", "a/seg_00000.m4s", "manifest.mpd"]
    order = publish_order(files, "master.m3u8", "manifest.mpd")
    assert order[-1] == "master.m3u8" and order[-2] == "manifest.mpd"
    assert order.index("a/seg_00000.m4s") < order.index("a/playlist.m3u8")
    assert content_type("x/seg_1.m4s") == "video/iso.segment"
    assert content_type("master.m3u8") == "application/vnd.apple.mpegurl"
    assert "immutable" in cache_control("a/seg_00000.m4s")
    assert "immutable" not in cache_control("master.m3u8")
