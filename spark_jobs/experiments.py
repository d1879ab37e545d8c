"""gold_experiment_daily: one row per exposed profile, experiment and day, as DataFrame functions.

A profile enters an experiment at its first exposure and stays in it until the experiment ends;
each of its days from then on is a row, with that day's metrics from gold_user_daily (0 when it
did not watch: an exposed profile that stays away is a real observation, not missing data) and
its sums over the PRE_PERIOD_DAYS before the experiment's start as the CUPED covariates
(`pre_<metric>`). The experiment unit is the id the recommendation service answers for, which is
gold_user_daily's `user_id`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from netflix_assets.experiments.definitions import LAKE_METRICS, Experiment

METRICS = LAKE_METRICS
PRE_PERIOD_DAYS = 14


def experiments_frame(spark: SparkSession, experiments: Iterable[Experiment]) -> DataFrame:
    rows = [(e.experiment_id, e.start, e.end) for e in experiments]
    return spark.createDataFrame(rows, "experiment_id string, start date, end date")


def first_exposures(exposures: DataFrame) -> DataFrame:
    """(experiment_id, profile_id, variant, first_exposure_date) from the exposure events."""
    return exposures.groupBy("experiment_id", "profile_id", "variant").agg(
        F.min("exposure_date").alias("first_exposure_date")
    )


def pre_period(first: DataFrame, user_daily: DataFrame, experiments: DataFrame) -> DataFrame:
    """Each exposed profile's metric sums over the PRE_PERIOD_DAYS before its experiment started."""
    days = user_daily.withColumnRenamed("user_id", "profile_id")
    window = (F.col("session_date") >= F.date_sub("start", PRE_PERIOD_DAYS)) & (
        F.col("session_date") < F.col("start")
    )
    return (
        first.select("experiment_id", "profile_id")
        .join(experiments.select("experiment_id", "start"), "experiment_id")
        .join(days, "profile_id")
        .where(window)
        .groupBy("experiment_id", "profile_id")
        .agg(*(F.sum(m).cast("double").alias(f"pre_{m}") for m in METRICS))
    )


def experiment_daily(
    first: DataFrame, user_day: DataFrame, pre: DataFrame, experiments: DataFrame, day: date
) -> DataFrame:
    """The rows of `day`: profiles exposed on or before it, in experiments running on it."""
    running = experiments.where((F.col("start") <= F.lit(day)) & (F.col("end") >= F.lit(day)))
    metrics = user_day.where(F.col("session_date") == F.lit(day)).select(
        F.col("user_id").alias("profile_id"), *(F.col(m).cast("double").alias(m) for m in METRICS)
    )
    zero = {m: 0.0 for m in METRICS} | {f"pre_{m}": 0.0 for m in METRICS}
    return (
        first.where(F.col("first_exposure_date") <= F.lit(day))
        .join(running.select("experiment_id"), "experiment_id")
        .join(metrics, "profile_id", "left")
        .join(pre, ["experiment_id", "profile_id"], "left")
        .fillna(zero)
        .withColumn("date", F.lit(day).cast("date"))
        .select(
            "date",
            "experiment_id",
            "variant",
            "profile_id",
            "first_exposure_date",
            *METRICS,
            *(f"pre_{m}" for m in METRICS),
        )
    )
