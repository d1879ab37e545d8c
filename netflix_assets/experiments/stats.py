"""The estimators of an experiment readout, vectorised over numpy arrays.

- `Moments` / `difference`: per-variant means and the treatment - control difference with a
  Welch (unequal-variance, normal) interval and a relative lift by the delta method.
- `cuped_adjust`: CUPED (Deng et al. 2013): y - theta(x - mean(x)) with
  theta = cov(y, x) / var(x) pooled over the variants; the variance of the mean falls by the
  factor 1 - rho(y, x)².
- `msprt_p_value` / `msprt_halfwidth`: the mixture sequential probability ratio test (Johari et
  al. 2017, "Always valid inference") with a normal mixing distribution N(0, tau²): its p-value and
  interval stay valid however often they are looked at, so a daily peek is safe.
  tau² = rho²·sigma² with rho tuned for an expected sample size N* (the parameterisation
  GrowthBook's gbstats uses, so the numbers can be compared).
- `sample_ratio_mismatch`: a χ² goodness-of-fit test of the exposure counts against the shares.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

DEFAULT_ALPHA = 0.05
DEFAULT_TUNING_N = 5000.0
SRM_THRESHOLD = 1e-3


@dataclass(frozen=True)
class Moments:
    """Count, mean and sample variance (ddof=1) of one variant's metric."""

    n: int
    mean: float
    var: float

    @classmethod
    def of(cls, values: np.ndarray) -> Moments:
        values = np.asarray(values, dtype=float)
        n = int(values.size)
        if n < 2:
            raise ValueError(f"a variant needs at least 2 observations for a variance, got {n}")
        return cls(n, float(values.mean()), float(values.var(ddof=1)))

    @property
    def var_of_mean(self) -> float:
        return self.var / self.n


@dataclass(frozen=True)
class Difference:
    """Treatment - control: absolute and relative, fixed-horizon and always-valid."""

    control_mean: float
    treatment_mean: float
    diff: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    relative_lift: float
    relative_ci_low: float
    relative_ci_high: float
    sequential_p_value: float
    sequential_ci_low: float
    sequential_ci_high: float


def difference(
    control: Moments,
    treatment: Moments,
    alpha: float = DEFAULT_ALPHA,
    tuning_n: float = DEFAULT_TUNING_N,
) -> Difference:
    """The difference of two variants' means with fixed-horizon and always-valid inference."""
    diff = treatment.mean - control.mean
    v = control.var_of_mean + treatment.var_of_mean
    se = math.sqrt(v)
    z = sps.norm.ppf(1 - alpha / 2)
    # both variants constant (se == 0): the difference is exact
    p = float(2 * sps.norm.sf(abs(diff) / se)) if se > 0 else float(diff == 0)
    if control.mean != 0:
        lift = treatment.mean / control.mean - 1
        rel_var = (
            treatment.var_of_mean / control.mean**2
            + treatment.mean**2 * control.var_of_mean / control.mean**4
        )
        rel_half = z * math.sqrt(rel_var)
    else:
        lift, rel_half = math.nan, math.nan
    n = control.n + treatment.n
    if v > 0:
        tau2 = mixing_variance(v * n, alpha, tuning_n)
        seq_p = float(msprt_p_value(diff, v, tau2))
        seq_half = float(msprt_halfwidth(v, tau2, alpha))
    else:  # both variants constant (a metric that never moved): the difference is exact
        seq_p, seq_half = float(diff == 0), 0.0
    return Difference(
        control_mean=control.mean,
        treatment_mean=treatment.mean,
        diff=diff,
        se=se,
        ci_low=diff - z * se,
        ci_high=diff + z * se,
        p_value=p,
        relative_lift=lift,
        relative_ci_low=lift - rel_half,
        relative_ci_high=lift + rel_half,
        sequential_p_value=seq_p,
        sequential_ci_low=diff - seq_half,
        sequential_ci_high=diff + seq_half,
    )


def cuped_theta(y: np.ndarray, x: np.ndarray) -> float:
    """theta = cov(y, x) / var(x) over all units of all variants (0 when x does not vary)."""
    y = np.asarray(y, dtype=float)
    x = np.asarray(x, dtype=float)
    var_x = x.var(ddof=1)
    if var_x == 0:
        return 0.0
    return float(np.cov(y, x, ddof=1)[0, 1] / var_x)


def cuped_adjust(y: np.ndarray, x: np.ndarray, theta: float | None = None) -> np.ndarray:
    """CUPED-adjusted metric y - theta(x - mean(x)); same mean as y, variance (1 - rho²) var(y)."""
    y = np.asarray(y, dtype=float)
    x = np.asarray(x, dtype=float)
    if theta is None:
        theta = cuped_theta(y, x)
    return y - theta * (x - x.mean())


def mixing_rho(alpha: float = DEFAULT_ALPHA, tuning_n: float = DEFAULT_TUNING_N) -> float:
    """rho of the normal mixture, chosen so the interval is tightest near N* = tuning_n units."""
    a = -2 * math.log(alpha)
    return math.sqrt((a + math.log(a + 1)) / tuning_n)


def mixing_variance(
    unit_variance: float, alpha: float = DEFAULT_ALPHA, tuning_n: float = DEFAULT_TUNING_N
) -> float:
    """tau² of the mixing distribution for a per-unit variance sigma² (tau² = rho²sigma²)."""
    return mixing_rho(alpha, tuning_n) ** 2 * unit_variance


def msprt_likelihood_ratio(diff, var_est, tau2):
    """LR: the N(0, tau²)-mixture likelihood ratio of the estimate `diff` (variance `var_est`)."""
    diff = np.asarray(diff, dtype=float)
    var_est = np.asarray(var_est, dtype=float)
    tau2 = np.asarray(tau2, dtype=float)
    log_lr = 0.5 * np.log(var_est / (var_est + tau2)) + tau2 * diff**2 / (
        2 * var_est * (var_est + tau2)
    )
    return np.exp(np.minimum(log_lr, 700.0))


def msprt_p_value(diff, var_est, tau2):
    """The always-valid p-value at one look, min(1, 1/LR); see `always_valid_p_values` for many."""
    return np.minimum(1.0, 1.0 / msprt_likelihood_ratio(diff, var_est, tau2))


def always_valid_p_values(diffs, var_ests, tau2s, axis: int = -1) -> np.ndarray:
    """The p-value sequence over successive looks (along `axis`): the running minimum of 1/LR."""
    return np.minimum.accumulate(msprt_p_value(diffs, var_ests, tau2s), axis=axis)


def msprt_halfwidth(var_est, tau2, alpha: float = DEFAULT_ALPHA):
    """Half-width of the always-valid interval: the theta0 the level-alpha mSPRT keeps."""
    var_est = np.asarray(var_est, dtype=float)
    tau2 = np.asarray(tau2, dtype=float)
    return np.sqrt(
        var_est
        * (var_est + tau2)
        / tau2
        * (2 * math.log(1 / alpha) + np.log((var_est + tau2) / var_est))
    )


@dataclass(frozen=True)
class SampleRatio:
    """χ² test of exposures against the shares; `passed` is False on a sample-ratio mismatch."""

    counts: dict[str, int]
    expected: dict[str, float]
    chi2: float
    p_value: float
    threshold: float

    @property
    def passed(self) -> bool:
        return self.p_value >= self.threshold


def sample_ratio_mismatch(
    counts: dict[str, int], shares: dict[str, float], threshold: float = SRM_THRESHOLD
) -> SampleRatio:
    """Tests whether the counts per variant could come from the configured shares.

    A small p-value (below 0.001 by convention) means the assignment or the logging is broken —
    a variant loses or gains exposures — and no metric difference can be trusted.
    """
    unknown = set(counts) - set(shares)
    if unknown:
        raise ValueError(f"exposure counts name variants not in the experiment: {sorted(unknown)}")
    names = list(shares)
    observed = np.array([counts.get(name, 0) for name in names], dtype=float)
    total = observed.sum()
    expected = np.array([shares[name] for name in names]) * total
    if total == 0:
        chi2, p = 0.0, 1.0
    else:
        chi2, p = sps.chisquare(observed, expected)
    return SampleRatio(
        counts={n: int(c) for n, c in zip(names, observed, strict=True)},
        expected={n: float(e) for n, e in zip(names, expected, strict=True)},
        chi2=float(chi2),
        p_value=float(p),
        threshold=threshold,
    )
