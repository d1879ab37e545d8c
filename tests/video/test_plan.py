"""Per-title planning: the hull, the ladder picked from it and BD-rate as pure functions, then
the planner against real FFmpeg and libvmaf on tiny clips (no Dagster)."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import bjontegaard
import imageio_ffmpeg
import pytest

from netflix_assets.video import hull, plan, quality
from netflix_assets.video.encode import SourceInfo, video_codec_args
from netflix_assets.video.hull import PlanError, ProbePoint
from netflix_assets.video.ladder import Rung, size_for_short_side
from netflix_assets.video.probe import validate_upload
from netflix_assets.video.testmedia import Shape, make_clip

SIZES = {1080: (1920, 1080), 720: (1280, 720), 360: (640, 360)}


def model_points(difficulty: float) -> list[ProbePoint]:
    """A plausible rate-quality family: each size saturates at its own ceiling, and bigger
    pictures need more bits to get there; `difficulty` scales every bitrate."""
    ceiling = {1080: 99.0, 720: 93.0, 360: 78.0}
    scale = {1080: 4000.0, 720: 1800.0, 360: 500.0}
    out = []
    for short, (w, h) in SIZES.items():
        for crf in (18, 25, 32, 40):
            kbps = difficulty * scale[short] * 2 ** ((25 - crf) / 6)
            vmaf = ceiling[short] * (1 - math.exp(-kbps / (0.6 * difficulty * scale[short])))
            out.append(ProbePoint(w, h, float(crf), round(kbps, 1), round(vmaf, 2)))
    return out


def test_upper_hull_is_rising_and_keeps_only_corners() -> None:
    points = model_points(1.0)
    corners = hull.upper_hull(points)
    assert [p.kbps for p in corners] == sorted(p.kbps for p in corners)
    assert [p.vmaf for p in corners] == sorted(p.vmaf for p in corners)
    # No point lies above a hull segment.
    for a, b in itertools.pairwise(corners):
        for p in points:
            if a.kbps < p.kbps < b.kbps:
                line = a.vmaf + (b.vmaf - a.vmaf) * (p.kbps - a.kbps) / (b.kbps - a.kbps)
                assert p.vmaf <= line + 1e-9
    # The cheapest point starts it and the best ends it.
    assert corners[0] == min(points, key=lambda p: p.kbps)
    assert corners[-1].vmaf == max(p.vmaf for p in points)


def test_ladder_from_the_hull() -> None:
    points = model_points(1.0)
    rungs = hull.select_ladder(points, target_vmaf=95, floor_vmaf=40, step=1.75)
    top, bottom = rungs[-1], rungs[0]
    assert top.vmaf == pytest.approx(95, abs=0.01) and top.short_side == 1080
    assert bottom.vmaf == pytest.approx(40, abs=1.0) and bottom.short_side == 360
    ratios = [b.kbps / a.kbps for a, b in itertools.pairwise(rungs)]
    assert all(1.4 <= r <= 2.2 for r in ratios), ratios
    areas = [r.width * r.height for r in rungs]
    assert areas == sorted(areas)  # switching down never raises resolution
    # Each rung sits at the size that scores best at its bitrate (among probed ones).
    by_size = hull.curves(points)
    for r in rungs[:-1]:
        scores = [hull.vmaf_at(c, r.kbps) for c in by_size.values()]
        assert r.vmaf >= max(s for s in scores if s is not None) - 1e-3
    assert hull.select_ladder(points, max_rungs=2) == rungs[-2:]


def test_a_probe_dearer_than_a_better_one_is_left_off_its_curve() -> None:
    # Measured on an 8 s fast 1080p pan: at 720p, CRF 40 took more bits than CRF 32.
    curve = hull.curves(
        [
            ProbePoint(1280, 720, 25.0, 1697.0, 95.55),
            ProbePoint(1280, 720, 32.0, 967.0, 78.68),
            ProbePoint(1280, 720, 40.0, 980.0, 44.22),
        ]
    )[(1280, 720)]
    assert [p.crf for p in hull.efficient(curve)] == [32.0, 25.0]
    # A rung at 1012 kbps lies between CRF 32 and 25, not next to CRF 40.
    assert 25.0 < hull.crf_at(curve, 1012.0) < 32.0
    assert hull.vmaf_at(curve, 1012.0) == pytest.approx(79.8, abs=0.3)
    assert hull.vmaf_at(curve, 970.0) == pytest.approx(78.8, abs=0.2)  # inside the kept range


def test_a_smaller_size_whose_best_probe_costs_less_is_a_rung_candidate() -> None:
    # The same pan: 540p at CRF 25 takes 943 kbps for VMAF 88; the 720p curve gives 80 at
    # 1010 kbps, and 540p's curve ends below 1010 kbps.
    points = [
        ProbePoint(1280, 720, 25.0, 1697.0, 95.55),
        ProbePoint(1280, 720, 32.0, 967.0, 78.68),
        ProbePoint(960, 540, 25.0, 943.0, 87.98),
        ProbePoint(960, 540, 32.0, 601.0, 70.09),
    ]
    rung = hull.best_at(hull.curves(points), 1010.0)
    assert (rung.width, rung.crf, rung.kbps, rung.vmaf) == (960, 25.0, 943.0, 87.98)


def test_rungs_in_a_gap_between_curves_take_the_best_probe_within_their_bitrate() -> None:
    # An 8 s 1080p slide with its own size probed only near the target: no curve covers
    # 180-360 kbps. Those rungs once all fell to the cheapest probe (360p at 28 kbps), and the
    # ladder kept a floor rung, one below it and the top: three rungs with a 14x gap.
    points = [
        ProbePoint(1920, 1080, 23.0, 442.8, 95.52),
        ProbePoint(1920, 1080, 25.0, 366.1, 94.45),
        ProbePoint(1280, 720, 25.0, 175.7, 84.19),
        ProbePoint(1280, 720, 32.0, 104.0, 78.16),
        ProbePoint(960, 540, 25.0, 106.2, 78.37),
        ProbePoint(960, 540, 32.0, 60.8, 71.91),
        ProbePoint(960, 540, 40.0, 39.1, 56.29),
        ProbePoint(640, 360, 32.0, 42.4, 55.9),
        ProbePoint(640, 360, 40.0, 27.9, 37.58),
    ]
    gap = hull.best_at(hull.curves(points), 250.0)
    assert (gap.width, gap.crf, gap.kbps) == (1280, 25.0, 175.7)
    rungs = hull.select_ladder(points)
    kbps = [r.kbps for r in rungs]
    assert kbps == sorted(kbps) and len(rungs) >= 5
    assert all(b / a <= 2.5 for a, b in itertools.pairwise(kbps))
    assert rungs[-1].width == 1920 and rungs[-1].vmaf == pytest.approx(95.0)


def test_easy_content_gets_fewer_bits_and_hard_content_fails_with_the_cause() -> None:
    easy = hull.select_ladder(model_points(0.2))
    hard = hull.select_ladder(model_points(3.0))
    assert sum(r.kbps for r in easy) < sum(r.kbps for r in hard) / 5
    with pytest.raises(PlanError, match="above the cap of 1000 kbps"):
        hull.select_ladder(model_points(3.0), max_top_kbps=1000)
    with pytest.raises(PlanError, match=r"no probe reaches VMAF 99\.5"):
        hull.select_ladder(model_points(1.0), target_vmaf=99.5)


def test_bd_rate_agrees_with_the_bjontegaard_package() -> None:
    anchor = [(500.0, 60.0), (1000.0, 75.0), (2000.0, 86.0), (4000.0, 93.0)]
    test = [(k * 0.8, q) for k, q in anchor]  # 20% fewer bits at every quality
    assert hull.bd_rate(anchor, test) == pytest.approx(-20.0, abs=0.01)
    skewed = [(450.0, 58.0), (700.0, 72.0), (1500.0, 85.0), (3900.0, 95.0), (6000.0, 97.0)]
    ours = hull.bd_rate(anchor, skewed)
    theirs = bjontegaard.bd_rate(
        [a[0] for a in anchor],
        [a[1] for a in anchor],
        [s[0] for s in skewed],
        [s[1] for s in skewed],
        method="pchip",
        require_matching_points=False,
    )
    assert ours == pytest.approx(theirs, abs=0.01)
    # A one-rung anchor (the fixed ladder of a sub-480p source): rates compared at its VMAF.
    assert hull.bd_rate([(1000.0, 75.0)], test) == pytest.approx(-20.0, abs=0.01)
    assert hull.bd_rate([(1000.0, 99.0)], test) is None  # no common VMAF


def test_sample_windows() -> None:
    assert plan.sample_windows(4.0, []) == [(0.0, 4.0)]
    windows = plan.sample_windows(60.0, [], samples=3, seconds=2.0)
    assert windows == [(9.0, 11.0), (29.0, 31.0), (49.0, 51.0)]
    # A cut near a start becomes the start; a cut inside a window moves the window to it.
    cuts = [9.6, 30.5]
    moved = plan.sample_windows(60.0, cuts, samples=3, seconds=2.0)
    assert moved[0] == (9.6, 11.6) and moved[1] == (30.5, 32.5)
    for start, end in moved:
        assert not any(start < c < end for c in cuts)
    # Shorter titles: an eighth of the title (the probes' cost follows the title's length), in
    # as many windows of 0.5 s or more as that holds.
    assert plan.sample_windows(24.0, []) == [(3.5, 4.5), (11.5, 12.5), (19.5, 20.5)]
    assert plan.sample_windows(12.0, []) == [(1.75, 2.25), (5.75, 6.25), (9.75, 10.25)]
    assert plan.sample_windows(8.0, []) == [(1.75, 2.25), (5.75, 6.25)]
    assert plan.sample_windows(5.0, []) == [(2.188, 2.812)]
    # Long titles: at most `samples` windows of `seconds`, so probing is bounded.
    assert plan.sample_windows(3600.0, []) == [(599.0, 601.0), (1799.0, 1801.0), (2999.0, 3001.0)]


def test_probe_cost_is_bounded_by_the_grid_and_scored_frames() -> None:
    # About 16 frames scored per probe, every odd Nth (x264's mini-GOP is 4), at most every 3rd.
    assert plan.vmaf_subsample(50, 3, 16) == 5
    assert plan.vmaf_subsample(90, 3, 16) == 7
    assert plan.vmaf_subsample(150, 3, 16) == 11
    assert plan.vmaf_subsample(25, 3, 16) == 3
    assert all(plan.vmaf_subsample(n, 3, 16) % 2 for n in range(1, 400))
    sizes = plan.probe_sizes(1920, 1080, 4)
    grid = plan.probe_grid(sizes, "h264")
    # Four sizes: the own size at the lowest CRF only (the search probes it near the target),
    # only the smallest keeps CRF 40 (the floor) and it skips CRF 25.
    assert [c for w, _, c in grid if w == 1920] == [25.0]
    assert [c for w, _, c in grid if w == 1280] == [25.0, 32.0]
    assert [c for w, _, c in grid if w == 960] == [25.0, 32.0]
    assert [c for w, _, c in grid if w == 640] == [32.0, 40.0]
    assert len(grid) == 7
    # Three sizes (640x272): the own size skips CRF 40 only.
    assert len(plan.probe_grid(plan.probe_sizes(640, 272, 4), "h264")) == 8
    # Two sizes (320x240): the own size's CRF 32 and 40 bracket the search; the smaller size
    # spans the lower rungs with CRF 25 and 40.
    small = plan.probe_grid(plan.probe_sizes(320, 240, 4), "h264")
    assert [c for w, _, c in small if w == 320] == [32.0, 40.0]
    assert [c for w, _, c in small if w == 192] == [25.0, 40.0]
    # Two sizes on a larger display (by configuration) keep every CRF.
    assert len(plan.probe_grid(plan.probe_sizes(1280, 720, 2), "h264")) == 6


def test_a_lone_probe_is_extrapolated_with_a_neighbouring_sizes_slope() -> None:
    # A noisy 3 s 720p title: the own size probed at CRF 25 only (88.6); 540p falls 2 VMAF a
    # CRF between 25 and 32. With the fixed half a VMAF per CRF the search went to CRF 11.
    points = [
        ProbePoint(1280, 720, 25.0, 2229.6, 88.55),
        ProbePoint(960, 540, 25.0, 718.6, 78.71),
        ProbePoint(960, 540, 32.0, 261.9, 64.52),
        ProbePoint(640, 360, 25.0, 280.2, 66.83),
        ProbePoint(640, 360, 32.0, 129.1, 51.29),
    ]
    by_size = hull.curves(points)
    slope = plan._lone_slope(by_size, (1280, 720))
    assert slope == pytest.approx((64.52 - 78.71) / 7)
    lone = by_size[(1280, 720)]
    assert plan._next_crf(lone, 95.0, (8.0, 51.0), slope) == pytest.approx(21.8, abs=0.05)
    assert plan._next_crf(lone, 95.0, (8.0, 51.0)) == pytest.approx(12.1, abs=0.05)
    assert plan._lone_slope({(1280, 720): lone}, (1280, 720)) is None


def test_small_samples_are_stored_uncompressed() -> None:
    # An 8 s 1080p title's samples (25 frames, 78 MB) are read raw by every probe process;
    # a 60 s title's (150 frames, 467 MB) and 4K's stay MagicYUV, to bound the disk.
    fps = Fraction(25)
    assert plan.raw_samples([(1.75, 2.25), (5.75, 6.25)], fps, (1920, 1080))
    assert not plan.raw_samples([(9.0, 11.0), (29.0, 31.0), (49.0, 51.0)], fps, (1920, 1080))
    assert not plan.raw_samples([(0.0, 4.0)], fps, (3840, 2160))
    windows = [(1.75, 2.25)]
    raw = plan.samples_command("ffmpeg", "in.mp4", windows, fps, "s.mkv", False, 8, raw=True)
    assert raw[raw.index("-c:v") + 1] == "rawvideo"
    packed = plan.samples_command("ffmpeg", "in.mp4", windows, fps, "s.mkv", False, 8)
    assert packed[packed.index("-c:v") + 1] == "magicyuv"
    deep = plan.samples_command("ffmpeg", "in.mp4", windows, fps, "s.mkv", False, 10, raw=True)
    assert deep[deep.index("-c:v") + 1] == "ffv1"


def test_probe_sizes_include_the_source_and_never_upscale() -> None:
    assert plan.probe_sizes(1920, 1080, 4) == [(1920, 1080), (1280, 720), (960, 540), (640, 360)]
    assert plan.probe_sizes(961, 541, 2) == [(960, 540), (640, 360)]
    assert plan.probe_sizes(640, 272, 3)[0] == (640, 272)
    portrait = plan.probe_sizes(272, 480, 3)
    assert portrait[0] == (272, 480) and all(h > w for w, h in portrait)
    tiny = plan.probe_sizes(320, 240, 4)
    assert tiny[0] == (320, 240) and all(w <= 320 and h <= 240 for w, h in tiny)
    assert size_for_short_side(1920, 1080, 2160) == (1920, 1080)


def test_capped_crf_rung_arguments() -> None:
    rung = Rung("540p-800k", 960, 540, 800, 1600, 3200, "h264", crf=24.5, planned_vmaf=90.0)
    args = video_codec_args(rung, "libx264", Fraction(30), None)
    assert args[args.index("-crf") + 1] == "24.5"
    assert args[args.index("-maxrate") + 1] == "1600k" and args[args.index("-bufsize") + 1]
    assert "-b:v" not in args
    vbr = video_codec_args(Rung("a", 960, 540, 800, 1200, 1600, "h264"), "libx264", 30, None)
    assert "-crf" not in vbr and vbr[vbr.index("-b:v") + 1] == "800k"


def test_window_start_frames_are_left_out_of_a_probe_score() -> None:
    # Frame 0 (no predecessor) and frame 25 (the jump to the next window) score low on a pan.
    scores = {0: 79.0, 5: 98.0, 10: 97.0, 15: 99.0, 20: 96.0, 25: 81.0, 30: 98.0}
    log = {"frames": [{"frameNum": n, "metrics": {"vmaf": v}} for n, v in scores.items()]}
    assert quality.pooled_vmaf(log, frozenset({0, 25})) == pytest.approx(97.6)
    only_first = {"frames": log["frames"][:1]}
    assert quality.pooled_vmaf(only_first, frozenset({0})) == 79.0  # a 1-frame title


def test_crf_search_takes_the_secant_past_the_knee() -> None:
    # VMAF bends down fast past CRF 33 here; the chord from 33.5 to 40 would suggest 34.1.
    curve = [ProbePoint(320, 240, c, 100.0, v) for c, v in ((32.0, 99.86), (33.5, 97.09))]
    curve.append(ProbePoint(320, 240, 40.0, 30.0, 74.32))
    assert plan._next_crf(curve, 95.0, (8.0, 51.0)) == pytest.approx(34.6, abs=0.05)
    # Past every probe: extrapolated from the nearest two.
    assert plan._next_crf(curve[:2], 95.0, (8.0, 51.0)) == pytest.approx(34.6, abs=0.05)


class CurveProber:
    """Stands in for the FFmpeg prober in a pure test of the search: VMAF falls 2 points per
    CRF past 30, and it records the CRFs of each round."""

    def __init__(self, display: tuple[int, int]) -> None:
        self.display = display
        self.rounds: list[list[float]] = []

    def measure(self, grid: list[tuple[int, int, float]]) -> list[ProbePoint]:
        self.rounds.append([c for *_, c in grid])
        return [
            ProbePoint(w, h, c, 4000 * 2 ** ((25 - c) / 6), min(100.0, 100 - 2 * (c - 30)))
            for w, h, c in grid
        ]


@pytest.mark.parametrize(("display", "per_round"), [((320, 240), 3), ((1920, 1080), 1)])
def test_crf_search_probes_three_crfs_a_round_on_a_small_display(display, per_round) -> None:
    prober = CurveProber(display)
    first = prober.measure([(*display, 25.0), (*display, 40.0)])
    settings = plan.PlanSettings()
    points = plan._search_top(prober, first, display, settings)
    rounds = prober.rounds[1:]
    assert rounds and all(len(r) == per_round for r in rounds)
    # VMAF 95 is at CRF 32.5 on this curve; the search ends with probes close around it.
    top = hull.top_rung(hull.curves(points), 95.0)
    assert top is not None and top.crf == pytest.approx(32.5, abs=0.3)
    assert len(rounds) < 3 if per_round == 3 else len(rounds) >= 1


def test_probes_are_pure_crf_and_odd_sizes_are_scored_even() -> None:
    # SVT-AV1 refused the huge placeholder cap the probes once carried (exit -22).
    args = video_codec_args(plan.probe_rung(640, 360, 30.0, "av1"), "libsvtav1", 30, None)
    assert "-maxrate" not in args and args[args.index("-crf") + 1] == "30"
    # A 961x541 source is scored at 960x540, its top rung's size, not upscaled by a pixel.
    assert plan.scoring_size(961, 541) == (960, 540) == plan.probe_sizes(961, 541, 1)[0]


def test_top_kbps_cap_grows_for_titles_shorter_than_a_gop() -> None:
    steady = plan.top_kbps_cap(0.4, (640, 360), Fraction(25), 10.0)
    assert steady == pytest.approx(0.4 * 640 * 360 * 25 / 1000)
    assert plan.top_kbps_cap(0.4, (640, 360), Fraction(25), 0.04) == pytest.approx(steady * 50)


FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def _run(cmd: list[str]) -> None:
    import subprocess

    subprocess.run(cmd, check=True, capture_output=True)


def _plan(path, tmp_path, name: str) -> plan.Plan:
    info = validate_upload(path)
    settings = plan.PlanSettings(probe_resolutions=2)
    return plan.make_plan(
        _run,
        FFMPEG,
        path,
        SourceInfo.from_probe(info.to_dict()),
        (info.display_width, info.display_height),
        info.duration_s,
        tmp_path / name,
        settings,
    )


def test_plan_is_deterministic_and_static_content_gets_fewer_bits(tmp_path) -> None:
    still = make_clip(tmp_path / "still.mp4", Shape(320, 180, 25, 2.0, False, content="still"))
    moving = make_clip(tmp_path / "moving.mp4", Shape(320, 180, 25, 2.0, False))
    first, again = _plan(still, tmp_path, "a"), _plan(still, tmp_path, "b")
    assert first.rungs == again.rungs and first.points == again.points
    busy = _plan(moving, tmp_path, "c")
    for made in (first, busy):
        assert made.top.planned_vmaf == pytest.approx(95, abs=0.01)
        assert max(p.width for p in made.points) == 320  # the source's own size is probed
    assert sum(r.bitrate_kbps for r in first.rungs) < sum(r.bitrate_kbps for r in busy.rungs) / 3


def test_a_source_with_a_huge_bitrate_gets_a_normal_plan(tmp_path) -> None:
    """A lossless upload (about 100 bits per pixel per second here) is planned on its
    picture, not its bitrate: the ladder tops out far below the source's rate."""
    import subprocess

    source = tmp_path / "lossless.mp4"
    subprocess.run(
        [
            *(FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i"),
            "testsrc2=size=320x180:rate=25:duration=2,noise=alls=8:allf=t",
            *("-c:v", "libx264", "-qp", "0", "-preset", "ultrafast", str(source)),
        ],
        check=True,
    )
    source_kbps = source.stat().st_size * 8 / 1000 / 2
    made = _plan(source, tmp_path, "lossless")
    assert made.top.planned_vmaf == pytest.approx(95, abs=0.01)
    assert made.top.bitrate_kbps < source_kbps / 3


def test_scoring_every_nth_frame_upscales_only_those_and_scores_the_same(tmp_path) -> None:
    """The distorted frames libvmaf does not score are not upscaled (the gaps are filled with
    the last scored frame); the scored frames must score exactly what they score when every
    frame is upscaled and scored, so the pairing of encode and reference frames is unchanged."""
    import json
    import subprocess

    source = make_clip(tmp_path / "pan.mp4", Shape(320, 240, 25, 1.0, False, content="pan"))
    encoded = tmp_path / "small.mp4"
    subprocess.run(
        [
            *(FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-i", str(source)),
            *("-vf", "scale=160:120", "-c:v", "libx264", "-crf", "30", str(encoded)),
        ],
        check=True,
    )
    logs = {}
    for step in (1, 3):
        logs[step] = tmp_path / f"every-{step}.json"
        cmd = quality.build_multi_vmaf_command(
            [encoded], source, 320, 240, Fraction(25), [logs[step]], ffmpeg=FFMPEG, subsample=step
        )
        assert ("select=" in " ".join(cmd)) == (step > 1)
        _run(cmd)
    frames = {s: json.loads(p.read_text())["frames"] for s, p in logs.items()}
    every = {f["frameNum"]: f["metrics"] for f in frames[1]}
    assert len(every) == 25 and [f["frameNum"] for f in frames[3]] == list(range(0, 25, 3))
    for f in frames[3]:
        for name in ("vmaf", "psnr_y", "float_ssim"):
            assert f["metrics"][name] == pytest.approx(every[f["frameNum"]][name], abs=1e-6)
