"""Compares netflix_assets.experiments.stats with GrowthBook's gbstats on fixed seeds.

gbstats pins numpy<2, so it lives in its own environment; our stats module needs only numpy,
scipy and pandas, so both run in that environment on the same numbers:

    python3.11 -m venv /tmp/gbstats-venv && /tmp/gbstats-venv/bin/pip install gbstats
    PYTHONPATH=. /tmp/gbstats-venv/bin/python benchmarks/experiments_vs_gbstats.py

Prints, per seed, each quantity from both and the largest relative difference. gbstats uses
Student's t (Welch-Satterthwaite df) for the fixed-horizon test where we use the normal
distribution, so fixed-horizon p-values and intervals differ in the 4th-5th digit at these sizes;
the sequential (mSPRT) quantities and CUPED estimates use the same formulas.
"""

from __future__ import annotations

import numpy as np
from gbstats.frequentist.tests import (
    FrequentistConfig,
    SequentialConfig,
    SequentialTwoSidedTTest,
    TwoSidedTTest,
)
from gbstats.models.statistics import (
    RegressionAdjustedStatistic,
    SampleMeanStatistic,
    compute_theta,
)

from netflix_assets.experiments.stats import Moments, cuped_adjust, cuped_theta, difference


def _mean_stat(v: np.ndarray) -> SampleMeanStatistic:
    return SampleMeanStatistic(n=len(v), sum=float(v.sum()), sum_squares=float((v**2).sum()))


def _ra_stat(y: np.ndarray, x: np.ndarray) -> RegressionAdjustedStatistic:
    return RegressionAdjustedStatistic(
        n=len(y),
        post_statistic=_mean_stat(y),
        pre_statistic=_mean_stat(x),
        post_pre_sum_of_products=float((y * x).sum()),
        theta=0,
    )


def compare(seed: int, n: int = 20_000, lift: float = 0.012, rho: float = 0.7) -> dict[str, tuple]:
    rng = np.random.default_rng(seed)
    x = rng.gamma(2.0, 5.0, (2, n))
    noise = rng.gamma(2.0, 5.0, (2, n))
    y = rho * x + np.sqrt(1 - rho**2) * noise + 10.0
    y[1] *= 1 + lift
    ours = difference(Moments.of(y[0]), Moments.of(y[1]))
    abs_cfg = {"difference_type": "absolute"}
    gb_abs = TwoSidedTTest(_mean_stat(y[0]), _mean_stat(y[1]), FrequentistConfig(**abs_cfg))
    gb_rel = TwoSidedTTest(_mean_stat(y[0]), _mean_stat(y[1]), FrequentistConfig())
    gb_seq = SequentialTwoSidedTTest(
        _mean_stat(y[0]), _mean_stat(y[1]), SequentialConfig(**abs_cfg)
    )
    a, b = _ra_stat(y[0], x[0]), _ra_stat(y[1], x[1])
    theta = compute_theta(a, b)
    a.theta = b.theta = theta
    gb_cuped = SequentialTwoSidedTTest(a, b, SequentialConfig(**abs_cfg))
    our_theta = cuped_theta(y.ravel(), x.ravel())
    adj = cuped_adjust(y.ravel(), x.ravel(), our_theta).reshape(2, n)
    ours_cuped = difference(Moments.of(adj[0]), Moments.of(adj[1]))
    return {
        "diff": (ours.diff, gb_abs.point_estimate),
        "ci_low": (ours.ci_low, gb_abs.confidence_interval[0]),
        "p_value": (ours.p_value, gb_abs.p_value),
        "relative_lift": (ours.relative_lift, gb_rel.point_estimate),
        "relative_ci_low": (ours.relative_ci_low, gb_rel.confidence_interval[0]),
        "sequential_p": (ours.sequential_p_value, gb_seq.p_value),
        "sequential_ci_low": (ours.sequential_ci_low, gb_seq.confidence_interval[0]),
        "cuped_theta": (our_theta, theta),
        "cuped_diff": (ours_cuped.diff, gb_cuped.point_estimate),
        "cuped_se": (ours_cuped.se, float(np.sqrt(gb_cuped.variance))),
        "cuped_sequential_p": (ours_cuped.sequential_p_value, gb_cuped.p_value),
        "cuped_sequential_ci_low": (ours_cuped.sequential_ci_low, gb_cuped.confidence_interval[0]),
    }


def main() -> None:
    worst: dict[str, float] = {}
    for seed in (1, 2, 3):
        print(f"seed {seed}")
        for name, (ours, theirs) in compare(seed).items():
            rel = abs(ours - theirs) / max(abs(theirs), 1e-300)
            worst[name] = max(worst.get(name, 0.0), rel)
            print(f"  {name:<24} ours {ours:+.8g}  gbstats {theirs:+.8g}  rel.diff {rel:.1e}")
    print("largest relative difference over the seeds:")
    for name, rel in worst.items():
        print(f"  {name:<24} {rel:.1e}")


if __name__ == "__main__":
    main()
