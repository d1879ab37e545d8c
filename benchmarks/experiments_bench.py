"""Time of an experiment readout (experiments.analysis.analyze) at 1M profiles x 14 days.

Synthetic daily rows: each profile is exposed on a uniformly random day and has one row per day
from then on (about 7.5 rows per profile), a primary and a guardrail metric, each with a
pre-period covariate for CUPED. The readout covers every day (the cumulative-effect table), so it
is 14 daily analyses of both metrics. The baseline, timed in the same run, is 100k profiles.
Data generation is not timed.

    .venv/bin/python benchmarks/experiments_bench.py [--profiles 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

import numpy as np
import pandas as pd

from netflix_assets.experiments.analysis import analyze
from netflix_assets.experiments.definitions import Experiment, Variant

DAYS = 14
EXPERIMENT = Experiment(
    "bench",
    "bench-salt",
    (Variant("control", 0.5), Variant("treatment", 0.5)),
    dt.date(2026, 3, 1),
    dt.date(2026, 3, 14),
    "watch_seconds",
    guardrail_metrics=("rebuffer_seconds",),
)


def daily_frame(n_profiles: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    days = pd.date_range("2026-03-01", periods=DAYS).date
    variant = np.where(rng.random(n_profiles) < 0.5, "control", "treatment")
    first = rng.integers(0, DAYS, n_profiles)
    level = rng.gamma(2.0, 600.0, n_profiles)
    rows_p = np.repeat(np.arange(n_profiles), DAYS - first)
    offsets = np.arange(rows_p.size) - np.repeat(
        np.cumsum(DAYS - first) - (DAYS - first), DAYS - first
    )
    rows_d = first[rows_p] + offsets
    watch = level[rows_p] * rng.gamma(1.0, 1.0, rows_p.size)
    return pd.DataFrame(
        {
            "profile_id": rows_p,
            "variant": pd.Categorical(variant[rows_p]),
            "date": days[rows_d],
            "watch_seconds": watch,
            "rebuffer_seconds": rng.exponential(3.0, rows_p.size),
            "pre_watch_seconds": level[rows_p] * 14 * rng.gamma(5.0, 0.2, n_profiles)[rows_p],
            "pre_rebuffer_seconds": rng.exponential(40.0, n_profiles)[rows_p],
        }
    )


def timed(frame: pd.DataFrame) -> float:
    started = time.perf_counter()
    readout = analyze(frame, EXPERIMENT)
    elapsed = time.perf_counter() - started
    assert len(readout.cumulative) == 2 * DAYS
    return elapsed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profiles", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    base = daily_frame(args.profiles // 10)
    big = daily_frame(args.profiles)
    print(
        f"rows: baseline {len(base):,}, full {len(big):,} ({args.profiles:,} profiles, {DAYS} days)"
    )
    for i in range(args.repeat):
        b, f = timed(base), timed(big)
        n = args.profiles
        print(
            f"run {i + 1}: {n // 10:,} profiles {b:.2f} s, {n:,} profiles {f:.2f} s ({f / b:.1f}x)"
        )


if __name__ == "__main__":
    main()
