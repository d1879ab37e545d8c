"""The statistics hold up in simulation: A/A false positives with daily peeks, power, CUPED.

Every simulation is vectorised over experiments and seeded, so each test takes well under a second
and gives the same answer on every run; the tolerance is three simulation standard errors.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from scipy.special import ndtr

from netflix_assets.experiments.analysis import ExperimentDataError, analyze
from netflix_assets.experiments.definitions import Experiment, Variant
from netflix_assets.experiments.stats import (
    Moments,
    always_valid_p_values,
    cuped_adjust,
    difference,
    mixing_variance,
    msprt_halfwidth,
    msprt_p_value,
    sample_ratio_mismatch,
)

ALPHA = 0.05
DAYS = 14
PER_DAY = 500  # new units per arm per day


def _simulate_peeks(rng: np.random.Generator, n_exp: int, lift: float) -> dict[str, np.ndarray]:
    """Cumulative diff, its variance and p-values per experiment (rows) and day (columns)."""
    c = rng.normal(0.0, 1.0, (n_exp, DAYS, PER_DAY))
    t = rng.normal(lift, 1.0, (n_exp, DAYS, PER_DAY))
    n = PER_DAY * np.arange(1, DAYS + 1)
    out = {}
    means, varis = [], []
    for arm in (c, t):
        s = arm.sum(axis=2).cumsum(axis=1)
        ss = (arm**2).sum(axis=2).cumsum(axis=1)
        mean = s / n
        means.append(mean)
        varis.append((ss - n * mean**2) / (n - 1))
    diff = means[1] - means[0]
    v = varis[0] / n + varis[1] / n
    tau2 = mixing_variance(v * 2 * n, ALPHA)
    out["diff"] = diff
    out["fixed_p"] = 2 * (1 - ndtr(np.abs(diff) / np.sqrt(v)))
    out["seq_p"] = always_valid_p_values(diff, v, tau2, axis=1)
    out["seq_half"] = msprt_halfwidth(v, tau2, ALPHA)
    out["se"] = np.sqrt(v)
    return out


def _bound(rate: float, n: int) -> float:
    return rate + 3 * math.sqrt(rate * (1 - rate) / n)


def test_aa_false_positive_rate_with_daily_peeks_stays_within_alpha():
    n_exp = 400
    sim = _simulate_peeks(np.random.default_rng(20260301), n_exp, lift=0.0)
    seq_fpr = float((sim["seq_p"].min(axis=1) <= ALPHA).mean())
    naive_fpr = float((sim["fixed_p"].min(axis=1) <= ALPHA).mean())
    assert seq_fpr <= _bound(ALPHA, n_exp), seq_fpr
    # the check can fail: stopping at the first fixed-horizon p < alpha over 14 peeks inflates it
    assert naive_fpr > _bound(ALPHA, n_exp), naive_fpr
    # the running minimum never rises: a p-value once small stays small (safe to peek)
    assert (np.diff(sim["seq_p"], axis=1) <= 0).all()
    # the final-day fixed-horizon test alone is still calibrated
    assert float((sim["fixed_p"][:, -1] <= ALPHA).mean()) <= _bound(ALPHA, n_exp)


def test_planted_lift_is_detected_and_covered():
    n_exp, lift = 200, 0.08
    sim = _simulate_peeks(np.random.default_rng(7), n_exp, lift=lift)
    assert float((sim["fixed_p"][:, -1] <= ALPHA).mean()) >= 0.95
    assert float((sim["seq_p"][:, -1] <= ALPHA).mean()) >= 0.8
    z = 1.959963984540054
    covered = np.abs(sim["diff"][:, -1] - lift) <= z * sim["se"][:, -1]
    assert covered.mean() >= 1 - _bound(ALPHA, n_exp)
    # the always-valid interval covers the truth on every day at once
    seq_cover = (np.abs(sim["diff"] - lift) <= sim["seq_half"]).all(axis=1)
    assert seq_cover.mean() >= 1 - _bound(ALPHA, n_exp)


def test_sequential_p_below_alpha_exactly_when_zero_leaves_the_interval():
    rng = np.random.default_rng(3)
    diff = rng.normal(0, 0.05, 10_000)
    v = rng.uniform(1e-4, 1e-3, 10_000)
    tau2 = mixing_variance(v * 20_000, ALPHA)
    rejected = msprt_p_value(diff, v, tau2) <= ALPHA
    outside = np.abs(diff) > msprt_halfwidth(v, tau2, ALPHA)
    assert (rejected == outside).all()
    assert 0.02 < rejected.mean() < 0.98  # both sides exercised


@pytest.mark.parametrize("rho", [0.3, 0.6, 0.9])
def test_cuped_variance_ratio_is_one_minus_rho_squared(rho):
    rng = np.random.default_rng(int(rho * 100))
    n_exp, n = 300, 4000
    x = rng.normal(0, 1, (n_exp, 2, n))
    y = rho * x + math.sqrt(1 - rho**2) * rng.normal(0, 1, (n_exp, 2, n))
    raw_diff = y[:, 1].mean(axis=1) - y[:, 0].mean(axis=1)
    pooled_y, pooled_x = y.reshape(n_exp, -1), x.reshape(n_exp, -1)
    adj = np.stack([cuped_adjust(pooled_y[i], pooled_x[i]) for i in range(n_exp)]).reshape(
        n_exp, 2, n
    )
    adj_diff = adj[:, 1].mean(axis=1) - adj[:, 0].mean(axis=1)
    ratio = adj_diff.var() / raw_diff.var()
    # var-ratio of two variances from 300 draws each has a relative sd of about sqrt(4/300)
    assert abs(ratio - (1 - rho**2)) < 3 * math.sqrt(4 / n_exp) * (1 - rho**2), ratio
    # the per-experiment estimate (what the readout reports) agrees with theory closely
    one = difference(Moments.of(adj[0, 0]), Moments.of(adj[0, 1])).se ** 2
    raw = difference(Moments.of(y[0, 0]), Moments.of(y[0, 1])).se ** 2
    assert one / raw == pytest.approx(1 - rho**2, abs=0.03)


def test_srm_flags_a_broken_split_and_passes_a_fair_one():
    shares = {"control": 0.5, "treatment": 0.5}
    assert sample_ratio_mismatch({"control": 5000, "treatment": 5040}, shares).passed
    broken = sample_ratio_mismatch({"control": 5000, "treatment": 5400}, shares)
    assert not broken.passed and broken.p_value < 1e-3
    # on fair multinomial draws, the check fires at about its threshold (0.001): at most 3 of 500
    counts = np.random.default_rng(11).multinomial(10_000, [0.5, 0.3, 0.2], size=500)
    three = {"a": 0.5, "b": 0.3, "c": 0.2}
    fired = sum(
        not sample_ratio_mismatch(dict(zip(three, row, strict=True)), three).passed
        for row in counts
    )
    assert fired <= 3
    with pytest.raises(ValueError, match="not in the experiment"):
        sample_ratio_mismatch({"control": 1, "ghost": 2}, shares)


def _daily_frame(
    rng: np.random.Generator, n_profiles: int, lift: float, rho: float
) -> pd.DataFrame:
    """Profiles exposed on a random day; each day's watch time ~ its pre-period level + noise."""
    days = pd.date_range("2026-03-01", periods=DAYS).date
    variant = np.where(rng.random(n_profiles) < 0.5, "control", "treatment")
    first = rng.integers(0, DAYS, n_profiles)
    level = rng.normal(0, 1, n_profiles)
    pre = level + rng.normal(0, 1, n_profiles) * math.sqrt(1 / rho**2 - 1)
    rows_p = np.repeat(np.arange(n_profiles), DAYS - first)
    rows_d = np.concatenate([np.arange(f, DAYS) for f in first])
    value = level[rows_p] + rng.normal(0, 1, rows_p.size) + lift * (variant[rows_p] == "treatment")
    return pd.DataFrame(
        {
            "profile_id": rows_p.astype(str),
            "variant": variant[rows_p],
            "date": days[rows_d],
            "watch_seconds": value,
            "pre_watch_seconds": pre[rows_p],
        }
    )


EXPERIMENT = Experiment(
    "watch_test",
    "watch-salt",
    (Variant("control", 0.5), Variant("treatment", 0.5)),
    dt.date(2026, 3, 1),
    dt.date(2026, 3, 14),
    "watch_seconds",
)


def test_analyze_reads_out_a_planted_lift_with_cuped_and_srm():
    daily = _daily_frame(np.random.default_rng(5), 20_000, lift=0.1, rho=0.8)
    readout = analyze(daily, EXPERIMENT)
    assert readout.sample_ratio.passed
    final = readout.final.iloc[0]
    assert final["n_control"] + final["n_variant"] == 20_000
    # the cumulative metric adds a lift of 0.1 per exposed day; CUPED keeps the estimate unbiased
    assert final["cuped_ci_low"] > 0 and final["cuped_sequential_p_value"] < ALPHA
    assert final["cuped_variance_ratio"] < 0.9
    assert len(readout.cumulative) == DAYS
    assert readout.cumulative["n_control"].is_monotonic_increasing


def test_analyze_refuses_a_profile_in_two_variants_and_unknown_variants():
    daily = _daily_frame(np.random.default_rng(6), 200, lift=0.0, rho=0.5)
    first = daily.index[daily["profile_id"] == daily["profile_id"].iloc[0]]
    twice = daily.copy()
    twice.loc[first[-1], "variant"] = (
        "treatment" if twice.loc[first[0], "variant"] == "control" else "control"
    )
    with pytest.raises(ExperimentDataError, match="1 profiles appear in more than one variant"):
        analyze(twice, EXPERIMENT)
    ghost = daily.assign(variant=np.where(daily.index.isin(first), "ghost", daily["variant"]))
    with pytest.raises(ExperimentDataError, match=r"\['ghost'\] are not defined"):
        analyze(ghost, EXPERIMENT)
    with pytest.raises(ExperimentDataError, match="lacks the columns"):
        analyze(daily.drop(columns="watch_seconds"), EXPERIMENT)


def test_a_metric_that_never_moves_gives_exact_answers_not_nan():
    """A guardrail at 0 in both variants (no stalls at all) once gave NaN sequential p-values."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same = difference(Moments.of(np.zeros(50)), Moments.of(np.zeros(60)))
        apart = difference(Moments.of(np.zeros(50)), Moments.of(np.ones(60)))
    assert (same.p_value, same.sequential_p_value) == (1.0, 1.0)
    assert same.sequential_ci_low == same.sequential_ci_high == 0.0
    assert (apart.p_value, apart.sequential_p_value) == (0.0, 0.0)


def test_analyze_with_a_variant_too_small_yet_reports_srm_and_no_rows():
    daily = _daily_frame(np.random.default_rng(8), 30, lift=0.0, rho=0.5)
    first_treated = daily.loc[daily["variant"] == "treatment", "profile_id"].iloc[0]
    daily = daily[(daily["variant"] == "control") | (daily["profile_id"] == first_treated)]
    readout = analyze(daily, EXPERIMENT)
    assert readout.cumulative.empty
    assert readout.sample_ratio.counts["treatment"] == 1
