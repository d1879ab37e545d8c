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

import time
from datetime import date, timedelta

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetOut,
    AssetRecordsFilter,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset,
)
from delta.tables import DeltaTable
from pydantic import Field
from pyspark.sql import functions as F

from netflix_assets.partitions import event_date_partitions
from netflix_assets.recs import training
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


def load_interactions(session, object_store: ObjectStoreResource):
    """(interactions, sessions or None): played sessions and imported ratings in one frame."""
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
    return interactions, sessions_df


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
    interactions, sessions_df = load_interactions(session, object_store)
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


class ModelConfig(Config):
    factors: int = 32
    iterations: int = 10
    regression_tolerance: float = Field(
        default=0.05, description="HR@10 (sampled) may drop this much below the previous date."
    )


def _training_frame(spark: SparkResource, object_store: ObjectStoreResource, as_of: date):
    """Interactions through the partition's date, as pandas (the models train in memory)."""
    interactions, _ = load_interactions(spark.get_session(), object_store)
    frame = features.before(interactions, "ts", as_of + timedelta(days=1)).toPandas()
    if frame.empty:
        raise Failure(f"no interactions up to {as_of}")
    return frame


@asset(
    group_name=GROUP,
    deps=["silver_playback_sessions"],
    partitions_def=event_date_partitions,
    kinds={"numpy"},
    op_tags=SPARK_TAGS,
)
def als_model(
    context: AssetExecutionContext,
    config: ModelConfig,
    spark: SparkResource,
    object_store: ObjectStoreResource,
) -> MaterializeResult:
    """The candidate generator, fit on every interaction through the date; one .npz file."""
    as_of = date.fromisoformat(context.partition_key)
    frame = _training_frame(spark, object_store, as_of)
    started = time.perf_counter()
    model = training.fit_als(frame, config.factors, config.iterations)
    seconds = time.perf_counter() - started
    key = f"models/als/{as_of.isoformat()}/als.npz"
    uri = object_store.put_bytes(model.to_bytes(), key)
    return MaterializeResult(
        metadata={
            "model_uri": MetadataValue.path(uri),
            "users": len(model.users),
            "titles": len(model.titles),
            "interactions": len(frame),
            "factors": config.factors,
            "train_seconds": round(seconds, 2),
        }
    )


@asset(
    group_name=GROUP,
    deps=[als_model],
    partitions_def=event_date_partitions,
    kinds={"numpy"},
    op_tags=SPARK_TAGS,
    check_specs=[
        AssetCheckSpec("als_beats_popularity", asset="model_evaluation", blocking=True),
        AssetCheckSpec("no_regression_vs_previous_date", asset="model_evaluation"),
    ],
)
def model_evaluation(
    context: AssetExecutionContext,
    config: ModelConfig,
    spark: SparkResource,
    object_store: ObjectStoreResource,
):
    """Leave-the-latest-out HR@10, NDCG@10, Recall@10 of ALS and popularity, full ranking and
    the NCF paper's 99 sampled negatives, mean and spread over three seeds."""
    as_of = date.fromisoformat(context.partition_key)
    frame = _training_frame(spark, object_store, as_of)
    started = time.perf_counter()
    report = training.evaluate_als(frame, config.factors, config.iterations)
    seconds = time.perf_counter() - started
    als_hr = report["als"]["sampled"]["hr@10"]
    pop_hr = report["popularity"]["sampled"]["hr@10"]
    yield MaterializeResult(
        metadata={
            "als_hr@10_sampled": als_hr,
            "als_ndcg@10_sampled": report["als"]["sampled"]["ndcg@10"],
            "als_hr@10_full": report["als"]["full"]["hr@10"],
            "popularity_hr@10_sampled": pop_hr,
            "popularity_hr@10_full": report["popularity"]["full"]["hr@10"],
            "report": MetadataValue.json(report),
            "eval_seconds": round(seconds, 2),
        }
    )
    yield AssetCheckResult(
        check_name="als_beats_popularity",
        passed=als_hr > pop_hr
        and report["als"]["full"]["hr@10"] > report["popularity"]["full"]["hr@10"],
        metadata={"als_hr@10": als_hr, "popularity_hr@10": pop_hr},
    )
    previous = _previous_value(context, "als_hr@10_sampled", as_of)
    yield AssetCheckResult(
        check_name="no_regression_vs_previous_date",
        passed=previous is None or als_hr >= previous - config.regression_tolerance,
        metadata={"previous": previous if previous is not None else "none", "current": als_hr},
    )


def _previous_value(context: AssetExecutionContext, name: str, as_of: date) -> float | None:
    """The metadata value of the previous date's materialization of this asset, if any."""
    key = (as_of - timedelta(days=1)).isoformat()
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=context.asset_key, asset_partitions=[key]), limit=1
    ).records
    if not records:
        return None
    value = records[0].asset_materialization.metadata.get(name)
    return float(value.value) if value is not None else None


ASSETS = [recommendation_features, online_features, als_model, model_evaluation]
