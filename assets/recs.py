"""Recommendation features as assets: offline Delta tables per date, and their online copy.

`recommendation_features` computes the point-in-time features of spark_jobs/features.py "as of"
the partition's date from played sessions (silver_playback_sessions) and imported ratings
(imported_interactions), and replaces that date in three Delta tables. `online_features` pushes
the date's user features to Redis for the serving layer:

    feat:v1:user:{user_id}   hash of u_* features (floats as text), TTL 3 days
    feat:v1:meta             hash: as_of (the date the online values describe), users

One HGETALL per request reads a user's features; the version prefix lets a new layout be written
beside the old one while servers switch over.
"""

from datetime import date

from dagster import (
    AssetExecutionContext,
    AssetOut,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset,
)
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from netflix_assets.partitions import event_date_partitions
from resources.object_store import ObjectStoreResource
from resources.redis import RedisResource
from resources.spark import SparkResource
from spark_jobs import delta_io, features
from spark_jobs.paths import table_uri

GROUP = "recommendations"
SPARK_TAGS = {"netflix-assets/workload": "spark"}
FEATURE_TABLES = {
    "features_user": "u_",
    "features_title": "t_",
    "features_user_title": "ut_",
}
ONLINE_PREFIX = "feat:v1"
ONLINE_TTL_S = 3 * 24 * 3600


@multi_asset(
    outs={name: AssetOut(group_name=GROUP, kinds={"spark", "delta"}) for name in FEATURE_TABLES},
    deps=["silver_playback_sessions"],
    partitions_def=event_date_partitions,
    op_tags=SPARK_TAGS,
)
def recommendation_features(
    context: AssetExecutionContext, spark: SparkResource, object_store: ObjectStoreResource
):
    """User, title and user-title features as of the partition's date (nothing from that date or
    later is used, so labels taken from the date never leak into its features)."""
    as_of = date.fromisoformat(context.partition_key)
    session = spark.get_session()
    sources = []
    sessions_path = table_uri(object_store, "silver_playback_sessions")
    sessions_df = None
    if DeltaTable.isDeltaTable(session, sessions_path):
        sessions_df = session.read.format("delta").load(sessions_path)
        sources.append(features.interactions_from_sessions(sessions_df))
    imported_path = table_uri(object_store, "imported_interactions")
    if DeltaTable.isDeltaTable(session, imported_path):
        imported = session.read.format("delta").load(imported_path)
        sources.append(imported.select(*features.INTERACTION_SCHEMA.fieldNames()))
    if not sources:
        raise Failure(
            "no interactions to compute features from: materialize the lake "
            "(silver_playback_sessions) or run `netflix-assets import-ratings` first"
        )
    interactions = sources[0]
    for more in sources[1:]:
        interactions = interactions.unionByName(more)
    interactions = interactions.cache()
    tables = {
        "features_user": features.user_features(interactions, sessions_df, as_of),
        "features_title": features.title_features(interactions, sessions_df, as_of),
        "features_user_title": features.user_title_features(interactions, as_of),
    }
    for name, frame in tables.items():
        path = table_uri(object_store, name)
        delta_io.replace_day(frame.withColumn("as_of", F.lit(as_of)), path, "as_of", as_of)
        rows = session.read.format("delta").load(path).where(F.col("as_of") == as_of).count()
        prefix = FEATURE_TABLES[name]
        yield MaterializeResult(
            asset_key=name,
            metadata={
                "uri": path,
                "rows": rows,
                "features": MetadataValue.json(
                    {k: v for k, v in features.FEATURES.items() if k.startswith(prefix)}
                ),
            },
        )
    interactions.unpersist()


@asset(
    group_name=GROUP,
    deps=["features_user"],
    partitions_def=event_date_partitions,
    kinds={"redis"},
    op_tags=SPARK_TAGS,
)
def online_features(
    context: AssetExecutionContext,
    spark: SparkResource,
    object_store: ObjectStoreResource,
    redis: RedisResource,
) -> MaterializeResult:
    """The date's user features in Redis, written in pipelined batches (layout above)."""
    as_of = date.fromisoformat(context.partition_key)
    frame = (
        spark.get_session()
        .read.format("delta")
        .load(table_uri(object_store, "features_user"))
        .where(F.col("as_of") == as_of)
        .drop("as_of")
    )
    client = redis.client()
    pipe = client.pipeline(transaction=False)
    users = 0
    for row in frame.toLocalIterator():
        values = row.asDict()
        key = f"{ONLINE_PREFIX}:user:{values.pop('user_id')}"
        pipe.hset(key, mapping={k: repr(float(v or 0.0)) for k, v in values.items()})
        pipe.expire(key, ONLINE_TTL_S)
        users += 1
        if users % 1000 == 0:
            pipe.execute()
    pipe.hset(f"{ONLINE_PREFIX}:meta", mapping={"as_of": as_of.isoformat(), "users": users})
    pipe.execute()
    return MaterializeResult(
        metadata={
            "users": users,
            "key_layout": f"{ONLINE_PREFIX}:user:{{user_id}}",
            "ttl_s": ONLINE_TTL_S,
        }
    )


ASSETS = [recommendation_features, online_features]
