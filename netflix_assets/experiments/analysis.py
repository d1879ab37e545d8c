"""An experiment's readout from its daily per-profile metrics, cumulative day by day.

Input: one row per (profile, date) from the profile's first exposure on, with the columns
``profile_id``, ``variant``, ``date``, one column per metric (that day's value) and, for CUPED,
``pre_<metric>`` (the profile's value over a pre-period, constant per profile). On day *d* a
profile's metric is its sum over the days up to *d*; only profiles exposed by *d* count. Every day
gets means, differences with Welch and always-valid intervals, CUPED, and the running-minimum
sequential p-value, so the table is also the cumulative-effect plot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from netflix_assets.experiments.definitions import Experiment
from netflix_assets.experiments.stats import (
    DEFAULT_ALPHA,
    DEFAULT_TUNING_N,
    Moments,
    SampleRatio,
    difference,
    sample_ratio_mismatch,
)

COVARIATE_PREFIX = "pre_"


class ExperimentDataError(ValueError):
    """Experiment data that cannot be analysed as it is; the message names the cause."""


@dataclass(frozen=True)
class Readout:
    """The result: the SRM check over all exposed profiles and one row per day/metric/variant."""

    experiment_id: str
    sample_ratio: SampleRatio
    cumulative: pd.DataFrame

    @property
    def final(self) -> pd.DataFrame:
        """The rows of the last day: the readout as of now."""
        return self.cumulative[self.cumulative["date"] == self.cumulative["date"].max()]


def analyze(
    daily: pd.DataFrame,
    experiment: Experiment,
    alpha: float = DEFAULT_ALPHA,
    tuning_n: float = DEFAULT_TUNING_N,
) -> Readout:
    """Analyses every metric of `experiment` on every day of `daily` (see the module doc)."""
    _check_columns(daily, experiment)
    profile_codes, profiles = pd.factorize(daily["profile_id"], sort=False)
    day_codes, days = pd.factorize(daily["date"], sort=True)
    n_profiles, n_days = len(profiles), len(days)

    variant_of = (
        pd.Series(daily["variant"].to_numpy()).groupby(profile_codes).agg(["first", "nunique"])
    )
    if (variant_of["nunique"] > 1).any():
        raise ExperimentDataError(
            f"{int((variant_of['nunique'] > 1).sum())} profiles appear in more than one variant of "
            f"{experiment.experiment_id!r}; assignment must give one variant per profile"
        )
    unknown = set(variant_of["first"]) - set(experiment.variant_names)
    if unknown:
        raise ExperimentDataError(
            f"variants {sorted(unknown)} are not defined in {experiment.experiment_id!r}"
        )
    names = list(experiment.variant_names)
    variant_code = pd.Categorical(variant_of["first"].to_numpy(), categories=names).codes
    first_day = np.full(n_profiles, n_days, dtype=np.int64)
    np.minimum.at(first_day, profile_codes, day_codes)

    counts = np.bincount(variant_code, minlength=len(names))
    sample_ratio = sample_ratio_mismatch(
        dict(zip(names, counts.tolist(), strict=True)), experiment.shares
    )

    flat = profile_codes.astype(np.int64) * n_days + day_codes
    rows: list[dict] = []
    for metric in experiment.metrics:
        values = np.bincount(
            flat, weights=daily[metric].to_numpy(dtype=float), minlength=n_profiles * n_days
        )
        cumulative = values.reshape(n_profiles, n_days).cumsum(axis=1)
        covariate = _covariate(daily, metric, profile_codes, n_profiles)
        for k, day in enumerate(days):
            exposed = first_day <= k
            rows.extend(
                _day_rows(
                    experiment,
                    metric,
                    day,
                    cumulative[exposed, k],
                    variant_code[exposed],
                    None if covariate is None else covariate[exposed],
                    alpha,
                    tuning_n,
                )
            )
    return Readout(experiment.experiment_id, sample_ratio, pd.DataFrame(rows))


def _check_columns(daily: pd.DataFrame, experiment: Experiment) -> None:
    required = {"profile_id", "variant", "date", *experiment.metrics}
    missing = required - set(daily.columns)
    if missing:
        raise ExperimentDataError(
            f"experiment data for {experiment.experiment_id!r} lacks the columns {sorted(missing)}"
        )
    if daily.empty:
        raise ExperimentDataError(f"no exposed profiles for {experiment.experiment_id!r} yet")


def _covariate(daily: pd.DataFrame, metric: str, codes: np.ndarray, n: int) -> np.ndarray | None:
    column = COVARIATE_PREFIX + metric
    if column not in daily.columns:
        return None
    out = np.zeros(n)
    out[codes] = daily[column].to_numpy(dtype=float)  # constant per profile: any row will do
    return out


def _day_rows(
    experiment: Experiment,
    metric: str,
    day: object,
    y: np.ndarray,
    variant: np.ndarray,
    x: np.ndarray | None,
    alpha: float,
    tuning_n: float,
) -> list[dict]:
    control_mask = variant == 0
    if control_mask.sum() < 2:
        return []
    theta = None
    if x is not None and x.var() > 0:
        theta = float(np.cov(y, x, ddof=1)[0, 1] / x.var(ddof=1))
        y_adj = y - theta * (x - x.mean())
    rows = []
    for code, name in enumerate(experiment.variant_names[1:], start=1):
        mask = variant == code
        if mask.sum() < 2:
            continue
        raw = difference(Moments.of(y[control_mask]), Moments.of(y[mask]), alpha, tuning_n)
        row = {
            "date": day,
            "metric": metric,
            "primary": metric == experiment.primary_metric,
            "variant": name,
            "n_control": int(control_mask.sum()),
            "n_variant": int(mask.sum()),
            **{f"{k}": v for k, v in raw.__dict__.items()},
        }
        if theta is not None:
            adj = difference(
                Moments.of(y_adj[control_mask]), Moments.of(y_adj[mask]), alpha, tuning_n
            )
            row.update({f"cuped_{k}": v for k, v in adj.__dict__.items()})
            row["cuped_theta"] = theta
            row["cuped_variance_ratio"] = (adj.se / raw.se) ** 2 if raw.se > 0 else np.nan
        rows.append(row)
    return rows


def with_running_sequential_p(cumulative: pd.DataFrame) -> pd.DataFrame:
    """Replaces each day's sequential p-values by their running minimum over the days so far."""
    out = cumulative.sort_values("date").copy()
    for column in ("sequential_p_value", "cuped_sequential_p_value"):
        if column in out.columns:
            out[column] = out.groupby(["metric", "variant"])[column].cummin()
    return out
