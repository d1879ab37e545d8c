"""The ABR ladder: which renditions to make from a source, modelled on Apple's HLS authoring spec.

Apple's published H.264 ladder (30 fps) is the base; HEVC and AV1 get proportionally fewer bits
for the same picture. A rung is kept only if its short side fits inside the source's displayed
short side, so nothing is upscaled; portrait and rotated sources keep their orientation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any

# (short side, H.264 kbps) from Apple's HLS authoring specification, plus 1440p and 2160p rungs.
APPLE_LADDER: tuple[tuple[int, int], ...] = (
    (234, 145),
    (360, 365),
    (432, 730),
    (540, 2000),
    (720, 3000),
    (720, 4500),
    (1080, 6000),
    (1080, 7800),
    (1440, 12000),
    (2160, 16800),
)

CODEC_EFFICIENCY = {"h264": 1.0, "hevc": 0.65, "av1": 0.55}
"""Bits needed relative to H.264 for the same quality; from Apple's HEVC ladder and AV1 trials."""

AUDIO_KBPS = 128
HIGH_FPS_FACTOR = 1.5
"""Above 30 fps a rung needs more bits; Apple's 60 fps guidance is roughly one and a half."""


@dataclass(frozen=True)
class Rung:
    name: str
    width: int
    height: int
    bitrate_kbps: int
    maxrate_kbps: int
    bufsize_kbps: int
    codec: str
    crf: float | None = None
    """Set on a per-title rung: capped CRF (the cap is maxrate/bufsize) instead of VBR."""
    planned_vmaf: float | None = None
    """What the probes predict this rung scores; quality_report compares the full title."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _even(value: float) -> int:
    return max(2, round(value / 2.0) * 2)


def build_ladder(
    width: int,
    height: int,
    rotation: int = 0,
    codec: str = "h264",
    fps: Fraction | float = 30,
    max_rungs: int | None = None,
) -> list[Rung]:
    """Rungs for a source of `width`x`height` coded pixels shown rotated by `rotation` degrees.

    `max_rungs` keeps only the top N rungs (handy for previews and tests); the lowest rung at the
    source's own size is added when the source is smaller than the whole ladder."""
    if codec not in CODEC_EFFICIENCY:
        raise ValueError(f"unknown codec {codec!r}; choose one of {sorted(CODEC_EFFICIENCY)}")
    disp_w, disp_h = (height, width) if rotation % 180 else (width, height)
    portrait = disp_h > disp_w
    short, long_ = (disp_w, disp_h) if portrait else (disp_h, disp_w)
    aspect = long_ / short
    factor = CODEC_EFFICIENCY[codec] * (HIGH_FPS_FACTOR if float(fps) > 31 else 1.0)

    chosen = [(s, kbps) for s, kbps in APPLE_LADDER if s <= short]
    if not chosen:
        chosen = [(short, APPLE_LADDER[0][1])]
    if max_rungs:
        chosen = chosen[-max_rungs:]

    rungs = []
    for rung_short, kbps in chosen:
        s = _even(rung_short)
        lng = _even(rung_short * aspect)
        w, h = (s, lng) if portrait else (lng, s)
        bitrate = max(64, round(kbps * factor))
        rungs.append(
            Rung(
                name=f"{rung_short}p-{bitrate}k",
                width=w,
                height=h,
                bitrate_kbps=bitrate,
                maxrate_kbps=int(bitrate * 1.5),
                bufsize_kbps=bitrate * 2,
                codec=codec,
            )
        )
    return rungs


def rung_name(short_side: int, kbps: int) -> str:
    """`540p-1200k`: the short side and the planned bitrate, the same form as the fixed ladder."""
    return f"{short_side}p-{kbps}k"


def size_for_short_side(display_w: int, display_h: int, short_side: int) -> tuple[int, int]:
    """Even width and height with `short_side` as the short side, in the source's orientation
    and aspect ratio, never larger than the source (an odd 961x541 gives 960x540)."""
    portrait = display_h > display_w
    short, long_ = (display_w, display_h) if portrait else (display_h, display_w)
    s = min(_even(short_side), short - short % 2)
    lng = min(_even(short_side * long_ / short), long_ - long_ % 2)
    return (s, lng) if portrait else (lng, s)
