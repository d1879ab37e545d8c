"""gold_title_country_daily: what each country watched each day (the web app's "top in your
country" row reads it), a pure function of one day's sessions, and the totals that reconcile it
with them."""

from __future__ import annotations

from pyspark.sql import DataFrame, Row
from pyspark.sql import functions as F

MS_PER_HOUR = 3_600_000
TOTALS = ("sessions", "starts", "watch_hours")
"""The columns whose day totals must equal the sessions' own (the reconciliation check)."""


def title_country_daily(sessions: DataFrame) -> DataFrame:
    """Per session date, country and title: playback attempts (sessions), starts (sessions
    that started), distinct profiles that started it, and watch hours."""
    started = F.col("started")
    return sessions.groupBy("session_date", "country", "title_id").agg(
        F.count("*").alias("sessions"),
        F.sum(F.when(started, 1).otherwise(0)).alias("starts"),
        F.countDistinct(F.when(started, F.col("profile_id"))).alias("profiles"),
        (F.sum("watched_ms") / MS_PER_HOUR).alias("watch_hours"),
    )


def session_totals(sessions: DataFrame) -> Row:
    """The day's sessions summed the way the table sums them."""
    return sessions.agg(
        F.count("*").alias("sessions"),
        F.coalesce(F.sum(F.col("started").cast("int")), F.lit(0)).alias("starts"),
        F.coalesce(F.sum("watched_ms") / MS_PER_HOUR, F.lit(0.0)).alias("watch_hours"),
    ).first()


def table_totals(table_day: DataFrame) -> Row:
    """The written day's rows summed."""
    return table_day.agg(
        F.coalesce(F.sum("sessions"), F.lit(0)).alias("sessions"),
        F.coalesce(F.sum("starts"), F.lit(0)).alias("starts"),
        F.coalesce(F.sum("watch_hours"), F.lit(0.0)).alias("watch_hours"),
    ).first()
