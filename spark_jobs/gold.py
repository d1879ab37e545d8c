"""Gold: the daily tables analysts query, each a pure function of one day's sessions."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

MS_PER_HOUR = 3_600_000


def _count_if(condition: F.Column) -> F.Column:
    return F.sum(F.when(condition, 1).otherwise(0))


def title_daily(sessions: DataFrame) -> DataFrame:
    """Views (sessions that started), unique viewers (profiles), watch hours, completion rate."""
    return sessions.groupBy("session_date", "title_id").agg(
        F.count("*").alias("attempts"),
        _count_if(F.col("started")).alias("views"),
        F.countDistinct(F.when(F.col("started"), F.col("profile_id"))).alias("unique_viewers"),
        (F.sum("watched_ms") / MS_PER_HOUR).alias("watch_hours"),
        (_count_if(F.col("completed")) / F.greatest(_count_if(F.col("started")), F.lit(1))).alias(
            "completion_rate"
        ),
    )


def qoe_daily(sessions: DataFrame) -> DataFrame:
    """Startup p50/p95, stall ratio over watched time, average bitrate, failure and EBVS rates
    by device, country and CDN (definitions in docs/LAKE.md)."""
    started = F.col("started")
    return sessions.groupBy("session_date", "device", "country", "cdn").agg(
        F.count("*").alias("attempts"),
        _count_if(started).alias("starts"),
        F.percentile(F.col("startup_ms"), F.lit(0.5)).alias("startup_p50_ms"),
        F.percentile(F.col("startup_ms"), F.lit(0.95)).alias("startup_p95_ms"),
        (F.sum("stall_ms") / F.greatest(F.sum("watched_ms") + F.sum("stall_ms"), F.lit(1))).alias(
            "stall_ratio"
        ),
        (
            F.sum(F.col("avg_bitrate_kbps") * F.col("watched_ms"))
            / F.sum(F.when(F.col("avg_bitrate_kbps").isNotNull(), F.col("watched_ms")))
        ).alias("avg_bitrate_kbps"),
        (_count_if(F.col("failed")) / F.count("*")).alias("failure_rate"),
        (_count_if(F.col("ebvs")) / F.count("*")).alias("ebvs_rate"),
    )


def user_daily(sessions: DataFrame) -> DataFrame:
    return sessions.groupBy("session_date", "user_id").agg(
        F.count("*").alias("sessions"),
        F.countDistinct(F.when(F.col("started"), F.col("title_id"))).alias("titles_watched"),
        (F.sum("watched_ms") / MS_PER_HOUR).alias("watch_hours"),
        F.countDistinct("device").alias("devices"),
        F.sum("stall_count").alias("stalls"),
        _count_if(F.col("completed")).alias("completions"),
    )


TABLES = {
    "gold_title_daily": title_daily,
    "gold_qoe_daily": qoe_daily,
    "gold_user_daily": user_daily,
}
"""Each gold table and the function that builds it from a day of sessions (one list for the
assets and the spark-submit entry point)."""
