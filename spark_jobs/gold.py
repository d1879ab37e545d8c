"""Gold: the daily tables analysts query, each a pure function of one day's sessions."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from schema import tables

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
    tables.GOLD_TITLE_DAILY: title_daily,
    tables.GOLD_QOE_DAILY: qoe_daily,
    tables.GOLD_USER_DAILY: user_daily,
}
"""Each gold table and the function that builds it from a day of sessions (one list for the
assets and the spark-submit entry point)."""


def _day_end(day) -> F.Column:
    return F.to_timestamp(F.lit(f"{day.isoformat()} 00:00:00")) + F.expr("INTERVAL 1 DAY")


def _on_day(column: str, day) -> F.Column:
    return F.to_date(F.col(column)) == F.lit(day)


def revenue_daily(
    subscriptions: DataFrame, invoices: DataFrame, accounts: DataFrame, prices: DataFrame, day
) -> DataFrame:
    """MRR, new and churned subscriptions, revenue and ARPU by plan, country and currency for
    one day, from the product snapshots. MRR counts a subscription live at the end of the day
    and out of its trial (as product.revenue_daily does); revenue is what paid invoices collected
    that day (UTC); ARPU is MRR over live subscriptions. Amounts stay in minor units of their
    currency (no conversion)."""
    end = _day_end(day)
    subs = subscriptions.join(accounts.select("account_id", "country"), "account_id")
    live = subs.where(
        (F.col("started_at") < end)
        & (F.col("ended_at").isNull() | (F.col("ended_at") >= end))
        & (F.col("trial_end").isNull() | (F.col("trial_end") < end))
        & (F.col("status") != "unpaid")
    ).join(prices, ["plan_id", "currency"])
    keys = ["plan_id", "country", "currency"]
    mrr = live.groupBy(*keys).agg(
        F.count("*").alias("active_subscriptions"), F.sum("amount_cents").alias("mrr_cents")
    )
    new = (
        subs.where(_on_day("started_at", day) & F.col("replaces_subscription_id").isNull())
        .groupBy(*keys)
        .agg(F.count("*").alias("new_subscriptions"))
    )
    churned = (
        subs.where(_on_day("ended_at", day) & (F.col("end_reason") == "churn"))
        .groupBy(*keys)
        .agg(F.count("*").alias("churned_subscriptions"))
    )
    paid = (
        invoices.where((F.col("status") == "paid") & _on_day("paid_at", day))
        .join(subs.select("subscription_id", "plan_id", "country"), "subscription_id")
        .groupBy(*keys)
        .agg(
            F.sum("amount_due_cents").alias("revenue_cents"),
            F.count("*").alias("paid_invoices"),
        )
    )
    counts = [
        "active_subscriptions",
        "mrr_cents",
        "new_subscriptions",
        "churned_subscriptions",
        "revenue_cents",
        "paid_invoices",
    ]
    joined = mrr.join(new, keys, "full").join(churned, keys, "full").join(paid, keys, "full")
    return (
        joined.fillna(0, subset=counts)
        .withColumn(
            "arpu_cents",
            F.when(
                F.col("active_subscriptions") > 0,
                F.col("mrr_cents") / F.col("active_subscriptions"),
            ).otherwise(F.lit(0.0)),
        )
        .withColumn("revenue_date", F.lit(day))
    )


def engagement_by_plan(sessions: DataFrame, subscriptions: DataFrame) -> DataFrame:
    """A day's viewing by the plan the viewer's account had when the session started (plan
    'none' for viewers the product database does not know, e.g. imported or invented users)."""
    subs = subscriptions.select(
        F.col("account_id").alias("user_id"), "plan_id", "started_at", "ended_at"
    )
    during = (F.col("started_at") <= F.col("session_start")) & (
        F.col("ended_at").isNull() | (F.col("session_start") < F.col("ended_at"))
    )
    with_plan = sessions.join(subs, "user_id", "left").where(F.col("plan_id").isNull() | during)
    matched = with_plan.dropDuplicates(["session_id"]).select(
        "session_id", F.coalesce("plan_id", F.lit("none")).alias("plan_id")
    )
    return (
        sessions.join(matched, "session_id", "left")
        .fillna("none", subset=["plan_id"])
        .groupBy("session_date", "plan_id", "country")
        .agg(
            F.countDistinct("user_id").alias("accounts"),
            F.countDistinct("profile_id").alias("profiles"),
            F.count("*").alias("sessions"),
            (F.sum("watched_ms") / MS_PER_HOUR).alias("watch_hours"),
            (F.sum("watched_ms") / MS_PER_HOUR / F.countDistinct("user_id")).alias(
                "watch_hours_per_account"
            ),
            (
                _count_if(F.col("completed")) / F.greatest(_count_if(F.col("started")), F.lit(1))
            ).alias("completion_rate"),
        )
    )
