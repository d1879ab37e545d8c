"""Per-title ladder selection from probe encodes: rate-quality curves, their convex hull, the
rungs picked from it, and the BD-rate between two ladders. Pure functions on plain records.

A probe point is one encode of the title's samples at one resolution and one CRF, scored with
VMAF at the display size. Each resolution gives a curve (VMAF rising with bitrate); the upper
envelope of the curves says which resolution is best at each bitrate, and its convex hull in
(bitrate, VMAF) space is what Netflix's per-title encoding plots. Rungs are picked on the
envelope: the top one at the target VMAF, the lowest near a floor, geometric steps between.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


class PlanError(ValueError):
    """A title for which no ladder meets the request; the message names the cause and the fix."""


@dataclass(frozen=True)
class ProbePoint:
    width: int
    height: int
    crf: float
    kbps: float
    vmaf: float

    @property
    def short_side(self) -> int:
        return min(self.width, self.height)

    @property
    def size(self) -> tuple[int, int]:
        return (self.width, self.height)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PlannedRung(ProbePoint):
    """A rung picked from the hull: a probe point's fields, interpolated between probes."""


def curves(points: list[ProbePoint]) -> dict[tuple[int, int], list[ProbePoint]]:
    """Points grouped by resolution, each curve in rising bitrate order."""
    out: dict[tuple[int, int], list[ProbePoint]] = {}
    for p in points:
        out.setdefault(p.size, []).append(p)
    return {size: sorted(ps, key=lambda p: (p.kbps, -p.crf)) for size, ps in sorted(out.items())}


def efficient(curve: list[ProbePoint]) -> list[ProbePoint]:
    """The points of one size's curve (in rising bitrate order) that no cheaper point of that
    size beats: VMAF rises strictly along them. On a fast 1080p pan the 720p probe at CRF 40
    took more bits than the one at CRF 32 (980 against 967 kbps) for VMAF 44 against 79; left
    in, a rung between them was interpolated at CRF 39 and planned at VMAF 80."""
    out: list[ProbePoint] = []
    for p in curve:
        if not out or p.vmaf > out[-1].vmaf:
            out.append(p)
    return out


def _axes(curve: list[ProbePoint]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """log-bitrate, VMAF and CRF of the curve's efficient points (VMAF rising with bitrate: a
    noisy probe or one dearer than a better one must not make the curve fall)."""
    kept = efficient(curve)
    log_k = np.log([p.kbps for p in kept])
    vmaf = np.array([p.vmaf for p in kept], dtype=float)
    crf = np.array([p.crf for p in kept], dtype=float)
    return log_k, vmaf, crf


def vmaf_at(curve: list[ProbePoint], kbps: float) -> float | None:
    """VMAF of one resolution at `kbps`, linear in log-bitrate between probes; None outside."""
    log_k, vmaf, _ = _axes(curve)
    x = math.log(kbps)
    if x < log_k[0] - 1e-9 or x > log_k[-1] + 1e-9:
        return None
    return float(np.interp(x, log_k, vmaf))


def crf_at(curve: list[ProbePoint], kbps: float) -> float:
    """The CRF that gives `kbps` at this resolution (clamped to the probed range)."""
    log_k, _, crf = _axes(curve)
    return float(np.interp(math.log(kbps), log_k, crf))


def kbps_for_vmaf(curve: list[ProbePoint], vmaf: float) -> float | None:
    """Bitrate at which this resolution reaches `vmaf`; None if no probe reaches it. A target
    below the whole curve answers the curve's cheapest point (more quality than asked)."""
    log_k, scores, _ = _axes(curve)
    if vmaf > scores[-1] + 1e-9:
        return None
    if vmaf <= scores[0]:
        return float(math.exp(log_k[0]))
    i = int(np.searchsorted(scores, vmaf))  # first index with score >= vmaf
    lo, hi = i - 1, i
    span = scores[hi] - scores[lo]
    t = 1.0 if span <= 0 else (vmaf - scores[lo]) / span
    return float(math.exp(log_k[lo] + t * (log_k[hi] - log_k[lo])))


def upper_hull(points: list[ProbePoint]) -> list[ProbePoint]:
    """The rising part of the upper convex hull of all points in (bitrate, VMAF) space: the best
    quality any resolution gives at each bitrate, with straight lines between the corners."""
    ordered = sorted(points, key=lambda p: (p.kbps, -p.vmaf))
    hull: list[ProbePoint] = []
    for p in ordered:
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            cross = (b.kbps - a.kbps) * (p.vmaf - a.vmaf) - (b.vmaf - a.vmaf) * (p.kbps - a.kbps)
            if cross >= 0:  # b lies on or below the line a -> p
                hull.pop()
            else:
                break
        hull.append(p)
    best = max(range(len(hull)), key=lambda i: (hull[i].vmaf, -hull[i].kbps))
    return hull[: best + 1]


BEST_PROBE_REACH = 0.87
"""How far below a rung's bitrate a size's best probe may lie and still stand for that rung
(0.87 keeps rungs 1.75x apart within 1.5-2x)."""


def best_at(by_size: dict[tuple[int, int], list[ProbePoint]], kbps: float) -> PlannedRung:
    """The resolution with the highest VMAF for at most `kbps` (ties go to the larger picture):
    a size probed around that bitrate scores what its curve says there; a size whose best probe
    costs less than `kbps`, but at least BEST_PROBE_REACH of it (so rungs stay about a step
    apart), offers that probe itself (on a fast 1080p pan the 540p probe at 943 kbps scored 88,
    the 720p curve 80 at 1010 kbps). Below every curve, the cheapest probe's resolution."""
    options = []
    for size, curve in by_size.items():
        score = vmaf_at(curve, kbps)
        if score is not None:
            options.append((round(score, 3), size[0] * size[1], size, None))
            continue
        best = efficient(curve)[-1]
        if kbps * BEST_PROBE_REACH <= best.kbps < kbps:
            options.append((round(best.vmaf, 3), size[0] * size[1], size, best))
    if options:
        score, _, size, probe = max(options)
        if probe is not None:
            return PlannedRung(probe.width, probe.height, probe.crf, probe.kbps, probe.vmaf)
    else:
        # In a gap between curves (the own size probed only near the target, the smaller
        # sizes' best probes far cheaper): the best probe within `kbps`. The cheapest probe of
        # all, taken here before, put every rung of such a gap at the floor.
        within = [p for c in by_size.values() for p in efficient(c) if p.kbps <= kbps]
        pick = (
            max(within, key=lambda p: (p.vmaf, p.width * p.height))
            if within
            else min((c[0] for c in by_size.values()), key=lambda p: (p.kbps, -p.vmaf))
        )
        return PlannedRung(pick.width, pick.height, pick.crf, pick.kbps, pick.vmaf)
    curve = by_size[size]
    return PlannedRung(size[0], size[1], round(crf_at(curve, kbps), 1), kbps, score)


def top_rung(
    by_size: dict[tuple[int, int], list[ProbePoint]], target_vmaf: float
) -> PlannedRung | None:
    """The cheapest resolution and CRF reaching `target_vmaf`; None when no probe reaches it."""
    options = []
    for size, curve in by_size.items():
        kbps = kbps_for_vmaf(curve, target_vmaf)
        if kbps is not None:
            options.append((round(kbps, 3), -size[0] * size[1], size))
    if not options:
        return None
    kbps, _, size = min(options)
    curve = by_size[size]
    score = vmaf_at(curve, kbps) or target_vmaf
    return PlannedRung(size[0], size[1], round(crf_at(curve, kbps), 1), kbps, score)


def select_ladder(
    points: list[ProbePoint],
    target_vmaf: float = 95.0,
    floor_vmaf: float = 40.0,
    step: float = 1.75,
    max_rungs: int | None = None,
    max_top_kbps: float | None = None,
) -> list[PlannedRung]:
    """Rungs in rising bitrate order: the top at `target_vmaf` (cheapest resolution reaching
    it), the lowest where the best resolution falls to `floor_vmaf` (or the cheapest probe),
    geometric steps of about `step` between them, each at the resolution best for its bitrate.
    Resolutions never fall as bitrate rises. `max_rungs` keeps the top N."""
    if not points:
        raise PlanError("no probe encodes to plan from")
    by_size = curves(points)
    top = top_rung(by_size, target_vmaf)
    if top is None:
        best = max(points, key=lambda p: (p.vmaf, -p.kbps))
        raise PlanError(
            f"no probe reaches VMAF {target_vmaf:g}: the best is {best.vmaf:.1f} at "
            f"{best.width}x{best.height} CRF {best.crf:g} ({best.kbps:.0f} kbps); the source "
            "is too noisy or too damaged for this target: lower `target_vmaf`"
        )
    if max_top_kbps is not None and top.kbps > max_top_kbps:
        raise PlanError(
            f"VMAF {target_vmaf:g} needs about {top.kbps:.0f} kbps at {top.width}x{top.height} "
            f"(CRF {top.crf:g}), above the cap of {max_top_kbps:.0f} kbps: the content is too "
            "complex for this target; raise the cap (`max_bits_per_pixel`) or lower `target_vmaf`"
        )
    bottoms = [kbps_for_vmaf(c, floor_vmaf) for c in by_size.values()]
    bottom = min([b for b in bottoms if b is not None] or [top.kbps])
    bottom = min(bottom, top.kbps)
    intervals = max(0, round(math.log(top.kbps / bottom) / math.log(step))) if bottom else 0
    ratio = (top.kbps / bottom) ** (1 / intervals) if intervals else 1.0
    rungs = [top]
    for i in range(1, intervals + 1):
        kbps = top.kbps / ratio**i
        rung = best_at(by_size, kbps)
        upper = rungs[-1]
        if rung.width * rung.height > upper.width * upper.height:
            # The envelope prefers a bigger picture below a smaller one: keep the smaller size
            # so switching down never raises resolution.
            curve = by_size[upper.width, upper.height]
            score = vmaf_at(curve, kbps)
            if score is None:
                continue
            crf = round(crf_at(curve, kbps), 1)
            rung = PlannedRung(upper.width, upper.height, crf, kbps, score)
        rungs.append(rung)
    rungs = _dedupe(rungs)
    rungs.reverse()
    if max_rungs:
        rungs = rungs[-max_rungs:]
    return rungs


def _dedupe(rungs: list[PlannedRung]) -> list[PlannedRung]:
    """Drop a rung that is the same encode as the one above it (same size, same CRF)."""
    out: list[PlannedRung] = []
    for r in rungs:
        if out and (out[-1].width, out[-1].height, out[-1].crf) == (r.width, r.height, r.crf):
            continue
        out.append(r)
    return out


def bd_rate(anchor: list[tuple[float, float]], test: list[tuple[float, float]]) -> float | None:
    """Bjøntegaard delta rate in percent of `test` against `anchor`, each a list of (kbps, VMAF):
    negative means fewer bits at equal VMAF. With two or more points on each side, the
    `bjontegaard` package's PCHIP method over the overlapping VMAF range; when one side has a
    single point, the other side's log-rate interpolated at that point's VMAF (the limit of
    BD-rate over a zero-width range). None when the VMAF ranges do not overlap."""
    a = sorted(set(anchor), key=lambda p: p[1])
    t = sorted(set(test), key=lambda p: p[1])
    if not a or not t:
        return None
    if len(a) >= 2 and len(t) >= 2:
        lo = max(a[0][1], t[0][1])
        hi = min(a[-1][1], t[-1][1])
        if hi - lo < 0.5:
            return _single_point(a, t)
        import warnings

        import bjontegaard

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # it warns on small overlaps; the range is ours
            value = bjontegaard.bd_rate(
                [p[0] for p in a],
                [p[1] for p in a],
                [p[0] for p in t],
                [p[1] for p in t],
                method="pchip",
                require_matching_points=False,
                min_overlap=0,
            )
        return round(float(value), 2)
    return _single_point(a, t)


def _single_point(a: list[tuple[float, float]], t: list[tuple[float, float]]) -> float | None:
    """Rate difference at one VMAF taken inside both ranges (the middle of their overlap)."""
    lo = max(a[0][1], t[0][1])
    hi = min(a[-1][1], t[-1][1])
    if hi < lo:
        return None
    q = (lo + hi) / 2

    def log_rate(points: list[tuple[float, float]]) -> float:
        return float(np.interp(q, [p[1] for p in points], np.log([p[0] for p in points])))

    return round(100.0 * (math.exp(log_rate(t) - log_rate(a)) - 1.0), 2)
