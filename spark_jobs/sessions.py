"""silver_playback_sessions: one row per playback attempt, dated by its first event."""

from __future__ import annotations

from datetime import date, timedelta

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

COMPLETION_SHARE = 0.9
"""A session is complete when it reached 90% of the title's length, estimated as the furthest
position any session of that title reached in the data at hand (the contract has no duration)."""


def events_for_sessions(silver: DataFrame, day: date) -> DataFrame:
    """Silver events that can belong to sessions starting on `day` (they may cross midnight)."""
    return silver.where(F.col("event_date").between(F.lit(day), F.lit(day + timedelta(days=1))))


def sessionize(events: DataFrame, day: date) -> DataFrame:
    et = F.col("event_type")

    def count_of(kind: str) -> F.Column:
        return F.sum(F.when(et == kind, 1).otherwise(0))

    sessions = events.groupBy("session_id").agg(
        F.min("event_ts").alias("session_start"),
        F.max("event_ts").alias("session_end"),
        F.first("user_id", ignorenulls=True).alias("user_id"),
        F.first("profile_id", ignorenulls=True).alias("profile_id"),
        F.first("title_id", ignorenulls=True).alias("title_id"),
        F.first("device", ignorenulls=True).alias("device"),
        F.first("os", ignorenulls=True).alias("os"),
        F.first("country", ignorenulls=True).alias("country"),
        F.first("cdn", ignorenulls=True).alias("cdn"),
        F.max(F.when(et == "start", F.col("startup_ms"))).alias("startup_ms"),
        (count_of("start") > 0).alias("started"),
        (count_of("error") > 0).alias("failed"),
        (count_of("playback_request") > 0).alias("requested"),
        F.coalesce(F.max(F.when(et != "playback_request", F.col("position_ms"))), F.lit(0)).alias(
            "watched_ms"
        ),
        count_of("stall_end").alias("stall_count"),
        F.coalesce(F.sum(F.when(et == "stall_end", F.col("stall_ms"))), F.lit(0)).alias("stall_ms"),
        F.avg(F.when(et == "heartbeat", F.col("bitrate_kbps"))).alias("avg_bitrate_kbps"),
        count_of("rendition_change").alias("switches"),
        F.max(F.when(et == "error", F.col("error_code"))).alias("error_code"),
    )
    title_length = Window.partitionBy("title_id")
    return (
        sessions.where(F.to_date("session_start") == F.lit(day))
        .withColumn("session_date", F.to_date("session_start"))
        .withColumn("ebvs", F.col("requested") & ~F.col("started") & ~F.col("failed"))
        .withColumn(
            "completed",
            F.col("started")
            & (F.col("watched_ms") >= COMPLETION_SHARE * F.max("watched_ms").over(title_length)),
        )
        .drop("requested")
    )
