"""Recommendation features: interactions, then user, title and user-title features as of a date.

Everything here is point-in-time: features "as of D" use only interactions that happened before
D (UTC midnight), so a model trained on features as of D and labels from day D never sees the
future. Interactions come from two places with one schema, so every model and the evaluation run
on simulated viewing and on an imported public ratings file alike:

- played sessions from `silver_playback_sessions` (weight 1, or 2 when completed), and
- explicit ratings from a MovieLens-format file (weight = rating / 5).

Each feature is documented in FEATURES below (name -> meaning), the single list the docs and the
model code read.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, StringType, StructField, StructType, TimestampType

from netflix_assets.clients.object_store import ObjectStoreOps
from schema import tables
from spark_jobs import delta_io

INTERACTION_SCHEMA = StructType(
    [
        StructField("user_id", StringType(), False),
        StructField("title_id", StringType(), False),
        StructField("ts", TimestampType(), False),
        StructField("weight", DoubleType(), False),
        StructField("source", StringType(), False),
    ]
)

FEATURES: dict[str, str] = {
    # user features
    "u_interactions_7d": "interactions of the user in the 7 days before the date",
    "u_interactions_28d": "interactions in the 28 days before the date",
    "u_interactions_all": "interactions ever (before the date)",
    "u_titles_all": "distinct titles the user interacted with",
    "u_days_since_last": "days from the user's latest interaction to the date (recency)",
    "u_days_active_28d": "distinct days with an interaction in the last 28 days",
    "u_mean_weight": "mean interaction weight (completion habit / rating level)",
    "u_completion_rate": "share of played sessions the user completed",
    "u_watch_hours_28d": "hours watched in the last 28 days",
    "u_mean_startup_ms": "mean startup time the user experienced (QoE exposure)",
    "u_stall_ratio": "stall time / (watch + stall time) the user experienced",
    "u_tv_share": "share of the user's sessions on TV devices (device affinity)",
    "u_mobile_share": "share on mobile devices",
    "u_web_share": "share on web browsers",
    "u_distinct_devices": "distinct devices used",
    # title features
    "t_interactions_7d": "interactions with the title in the last 7 days (popularity)",
    "t_interactions_28d": "interactions in the last 28 days",
    "t_interactions_all": "interactions ever",
    "t_users_all": "distinct users ever",
    "t_trend": "7-day interactions / (28-day interactions / 4): above 1 means rising",
    "t_popularity_rank": "rank by 28-day interactions (1 = most popular)",
    "t_mean_weight": "mean interaction weight (how much people finish or like it)",
    "t_completion_rate": "share of its played sessions completed",
    "t_mean_watch_minutes": "mean minutes watched per session",
    "t_failure_rate": "share of its sessions that failed (QoE)",
    "t_stall_ratio": "stall ratio over its sessions (QoE)",
    "t_days_since_first": "days since its first interaction (catalog age proxy)",
    # user-title features
    "ut_interactions": "interactions of this user with this title before the date",
    "ut_days_since_last": "days since the user last interacted with the title",
    "ut_max_weight": "the user's highest weight for the title (completed / rated high)",
    "ut_share_of_user": "this title's share of the user's interactions",
}

_TV = ("tv", "smart_tv", "roku", "fire_tv", "apple_tv", "chromecast", "console")
_MOBILE = ("ios", "android", "phone", "tablet", "mobile")


def interactions_from_sessions(sessions: DataFrame) -> DataFrame:
    """Started sessions as interactions (weight 2 when completed, else 1)."""
    return sessions.where(F.col("started") & F.col("user_id").isNotNull()).select(
        F.col("user_id").cast("string"),
        F.col("title_id").cast("string"),
        F.col("session_start").alias("ts"),
        F.when(F.col("completed"), 2.0).otherwise(1.0).alias("weight"),
        F.lit("lake").alias("source"),
    )


def interactions_from_ratings(spark: SparkSession, ratings, source: str) -> DataFrame:
    """A pandas frame of ratings (user_id, title_id, rating, ts in unix seconds) as interactions."""
    rows = [
        (str(u), str(t), datetime.fromtimestamp(int(ts), UTC), float(r) / 5.0, source)
        for u, t, r, ts in ratings[["user_id", "title_id", "rating", "ts"]].itertuples(index=False)
    ]
    return spark.createDataFrame(rows, INTERACTION_SCHEMA)


class NoInteractions(RuntimeError):
    """Neither played sessions nor imported ratings exist yet; the message names what to run."""


NO_INTERACTIONS = (
    "no interactions yet: materialize the lake (silver_playback_sessions) or run "
    "`netflix-assets import-ratings` first"
)


def load_interactions(
    spark: SparkSession, store: ObjectStoreOps
) -> tuple[DataFrame, DataFrame | None]:
    """(interactions, sessions or None): played sessions and imported ratings in one frame."""
    sources = []
    sessions_path = store.table_uri(tables.SILVER_PLAYBACK_SESSIONS)
    sessions = None
    if delta_io.is_delta(spark, sessions_path):
        sessions = spark.read.format("delta").load(sessions_path)
        sources.append(interactions_from_sessions(sessions))
    imported_path = store.table_uri(tables.IMPORTED_INTERACTIONS)
    if delta_io.is_delta(spark, imported_path):
        imported = spark.read.format("delta").load(imported_path)
        sources.append(imported.select(*INTERACTION_SCHEMA.fieldNames()))
    if not sources:
        raise NoInteractions(NO_INTERACTIONS)
    interactions = sources[0]
    for more in sources[1:]:
        interactions = interactions.unionByName(more)
    return interactions, sessions


def before(df: DataFrame, column: str, as_of: date) -> DataFrame:
    """Rows strictly before `as_of` (UTC midnight): the point-in-time cut."""
    return df.where(F.col(column) < F.lit(as_of.isoformat()).cast("timestamp"))


def _days_between(ts: Column, as_of: date) -> Column:
    return F.datediff(F.lit(as_of.isoformat()).cast("date"), F.to_date(ts)).cast("double")


def _since(ts: Column, as_of: date, days: int) -> Column:
    return ts >= F.lit((as_of - timedelta(days=days)).isoformat()).cast("timestamp")


def user_features(interactions: DataFrame, sessions: DataFrame | None, as_of: date) -> DataFrame:
    """One row per user with the u_* features as of `as_of`."""
    past = before(interactions, "ts", as_of)
    base = past.groupBy("user_id").agg(
        F.sum(F.when(_since(F.col("ts"), as_of, 7), 1).otherwise(0)).alias("u_interactions_7d"),
        F.sum(F.when(_since(F.col("ts"), as_of, 28), 1).otherwise(0)).alias("u_interactions_28d"),
        F.count("*").alias("u_interactions_all"),
        F.countDistinct("title_id").alias("u_titles_all"),
        _days_between(F.max("ts"), as_of).alias("u_days_since_last"),
        F.countDistinct(F.when(_since(F.col("ts"), as_of, 28), F.to_date("ts"))).alias(
            "u_days_active_28d"
        ),
        F.avg("weight").alias("u_mean_weight"),
    )
    if sessions is None:
        return _with_missing(base, [k for k in FEATURES if k.startswith("u_")])
    played = before(sessions, "session_start", as_of).where(F.col("started"))
    device = F.lower(F.coalesce(F.col("device"), F.lit("")))
    qoe = played.groupBy("user_id").agg(
        F.avg(F.col("completed").cast("double")).alias("u_completion_rate"),
        (
            F.sum(F.when(_since(F.col("session_start"), as_of, 28), F.col("watched_ms"))) / 3.6e6
        ).alias("u_watch_hours_28d"),
        F.avg("startup_ms").alias("u_mean_startup_ms"),
        (F.sum("stall_ms") / F.greatest(F.sum("watched_ms") + F.sum("stall_ms"), F.lit(1))).alias(
            "u_stall_ratio"
        ),
        F.avg(device.isin(*_TV).cast("double")).alias("u_tv_share"),
        F.avg(device.isin(*_MOBILE).cast("double")).alias("u_mobile_share"),
        F.avg((device == "web").cast("double")).alias("u_web_share"),
        F.countDistinct("device").alias("u_distinct_devices"),
    )
    return base.join(qoe, "user_id", "left").fillna(0.0)


def title_features(interactions: DataFrame, sessions: DataFrame | None, as_of: date) -> DataFrame:
    """One row per title with the t_* features as of `as_of`."""
    past = before(interactions, "ts", as_of)
    base = past.groupBy("title_id").agg(
        F.sum(F.when(_since(F.col("ts"), as_of, 7), 1).otherwise(0)).alias("t_interactions_7d"),
        F.sum(F.when(_since(F.col("ts"), as_of, 28), 1).otherwise(0)).alias("t_interactions_28d"),
        F.count("*").alias("t_interactions_all"),
        F.countDistinct("user_id").alias("t_users_all"),
        F.avg("weight").alias("t_mean_weight"),
        _days_between(F.min("ts"), as_of).alias("t_days_since_first"),
    )
    base = base.withColumn(
        "t_trend",
        F.col("t_interactions_7d") / F.greatest(F.col("t_interactions_28d") / 4.0, F.lit(1.0)),
    ).withColumn(
        "t_popularity_rank",
        F.row_number().over(
            Window.orderBy(F.desc("t_interactions_28d"), F.desc("t_interactions_all"), "title_id")
        ),
    )
    if sessions is None:
        return _with_missing(base, [k for k in FEATURES if k.startswith("t_")])
    played = before(sessions, "session_start", as_of)
    qoe = played.groupBy("title_id").agg(
        F.avg(F.when(F.col("started"), F.col("completed").cast("double"))).alias(
            "t_completion_rate"
        ),
        (F.avg(F.when(F.col("started"), F.col("watched_ms"))) / 60_000).alias(
            "t_mean_watch_minutes"
        ),
        F.avg(F.col("failed").cast("double")).alias("t_failure_rate"),
        (F.sum("stall_ms") / F.greatest(F.sum("watched_ms") + F.sum("stall_ms"), F.lit(1))).alias(
            "t_stall_ratio"
        ),
    )
    return base.join(qoe, "title_id", "left").fillna(0.0)


def user_title_features(interactions: DataFrame, as_of: date) -> DataFrame:
    """One row per (user, title) pair seen before `as_of`, with the ut_* features."""
    past = before(interactions, "ts", as_of)
    pairs = past.groupBy("user_id", "title_id").agg(
        F.count("*").alias("ut_interactions"),
        _days_between(F.max("ts"), as_of).alias("ut_days_since_last"),
        F.max("weight").alias("ut_max_weight"),
    )
    per_user = Window.partitionBy("user_id")
    return pairs.withColumn(
        "ut_share_of_user", F.col("ut_interactions") / F.sum("ut_interactions").over(per_user)
    )


def _with_missing(df: DataFrame, names: list[str]) -> DataFrame:
    """Session-derived features are 0 for interactions that have no sessions (ratings files)."""
    for name in names:
        if name not in df.columns:
            df = df.withColumn(name, F.lit(0.0))
    return df
