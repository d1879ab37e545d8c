"""Recommendation features as assets: offline Delta tables per date, and their online copy.

`recommendation_features` computes the point-in-time features of spark_jobs/features.py "as of"
the partition's date from played sessions (silver_playback_sessions) and imported ratings
(imported_interactions), and replaces that date in three Delta tables. `online_features` pushes
the date's user features to Redis for the serving layer:

    feat:v1:user:{user_id}   hash of u_* features (floats as text), TTL 3 days
    feat:v1:seen:{user_id}   set of the title ids the user interacted with before as_of, TTL 3 days
    feat:v1:meta             hash: as_of (the date the online values describe), users

One pipelined HGETALL + SMEMBERS (one round trip) per request reads a user's features and the
titles never to recommend again; the version prefix lets a new layout be written
beside the old one while servers switch over.
"""

import json
import time
from datetime import date, timedelta

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
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
from netflix_assets.recs import ncf, training, two_stage
from netflix_assets.recs.als import AlsModel
from netflix_assets.recs.ncf import NcfConfig
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
    deps=["features_user", "features_user_title"],
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
    pipe.execute()
    # What each user has watched, so the service never recommends it again. Each batch is one
    # MULTI/EXEC: a set is deleted and refilled, and a request served between the two would
    # see it empty and recommend what the viewer has already watched.
    pipe = client.pipeline(transaction=True)
    seen = (
        spark.get_session()
        .read.format("delta")
        .load(table_uri(object_store, "features_user_title"))
        .where(F.col("as_of") == as_of)
        .groupBy("user_id")
        .agg(F.collect_set("title_id").alias("titles"))
    )
    pairs = 0
    for i, row in enumerate(seen.toLocalIterator(), start=1):
        key = f"{ONLINE_PREFIX}:seen:{row['user_id']}"
        pipe.delete(key)
        pipe.sadd(key, *row["titles"])
        pipe.expire(key, ONLINE_TTL_S)
        pairs += len(row["titles"])
        if i % 1000 == 0:
            pipe.execute()
    pipe.hset(f"{ONLINE_PREFIX}:meta", mapping={"as_of": as_of.isoformat(), "users": users})
    pipe.execute()
    return MaterializeResult(
        metadata={
            "users": users,
            "watched_pairs": pairs,
            "key_layout": f"{ONLINE_PREFIX}:user:{{user_id}} (hash), "
            f"{ONLINE_PREFIX}:seen:{{user_id}} (set of title ids)",
            "ttl_s": ONLINE_TTL_S,
        }
    )


class ModelConfig(Config):
    factors: int = 32
    iterations: int = 10
    ncf_epochs: int = 10
    ranker_rounds: int = 100
    candidates: int = Field(default=500, description="ALS candidates the ranker reorders.")
    ranker_users: int = Field(
        default=5000, description="Labelled users whose candidates train the ranker (sampled)."
    )
    label_share: float = Field(
        default=0.2, description="Share of the latest interactions the ranker learns to predict."
    )
    max_eval_users: int = Field(
        default=20_000, description="Held-out users scored (a seeded sample beyond this)."
    )
    regression_tolerance: float = Field(
        default=0.05,
        description="How far each model's headline figure (HR@10 sampled for ALS and NCF, "
        "temporal NDCG@10 for the ranker) may drop below the previous date's.",
    )


def _training_frame(spark: SparkResource, object_store: ObjectStoreResource, as_of: date):
    """Interactions through the partition's date, as pandas (the models train in memory)."""
    interactions, _ = load_interactions(spark.get_session(), object_store)
    frame = features.before(interactions, "ts", as_of + timedelta(days=1)).toPandas()
    if frame.empty:
        raise Failure(f"no interactions up to {as_of}")
    return frame


def _model_key(kind: str, as_of: date, name: str) -> str:
    return f"models/{kind}/{as_of.isoformat()}/{name}"


def _model_result(
    uri: str, users: int, titles: int, interactions: int, seconds: float, **extra: int
) -> MaterializeResult:
    """The metadata every model asset shows: where its file is, what it saw, how long it took."""
    return MaterializeResult(
        metadata={
            "model_uri": MetadataValue.path(uri),
            "users": users,
            "titles": titles,
            "interactions": interactions,
            **extra,
            "train_seconds": round(seconds, 2),
        }
    )


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
    uri = object_store.put_bytes(model.to_bytes(), _model_key("als", as_of, "als.npz"))
    return _model_result(
        uri, len(model.users), len(model.titles), len(frame), seconds, factors=config.factors
    )


@asset(
    group_name=GROUP,
    deps=["silver_playback_sessions"],
    partitions_def=event_date_partitions,
    kinds={"pytorch"},
    op_tags=SPARK_TAGS,
)
def ncf_model(
    context: AssetExecutionContext,
    config: ModelConfig,
    spark: SparkResource,
    object_store: ObjectStoreResource,
) -> MaterializeResult:
    """NeuMF (GMF + MLP) in PyTorch, fit on every interaction through the date; one .pt file."""
    as_of = date.fromisoformat(context.partition_key)
    frame = _training_frame(spark, object_store, as_of)
    ncf_config = NcfConfig(epochs=config.ncf_epochs)
    started = time.perf_counter()
    model, users, titles = training.fit_ncf(frame, ncf_config)
    seconds = time.perf_counter() - started
    data = ncf.to_bytes(model, users, titles, ncf_config)
    uri = object_store.put_bytes(data, _model_key("ncf", as_of, "ncf.pt"))
    return _model_result(
        uri,
        len(users),
        len(titles),
        len(frame),
        seconds,
        epochs=config.ncf_epochs,
        parameters=sum(p.numel() for p in model.parameters()),
    )


def _flat(report: dict, prefix: str = "") -> dict[str, float]:
    """{'ranker_ndcg@10': ...} style metadata entries from {'ranker': {'ndcg@10': ...}}."""
    return {
        f"{prefix}{model}_{metric}": round(value, 4)
        for model, metrics in report.items()
        if model != "sizes"
        for metric, value in metrics.items()
        if not metric.endswith("_std")
    }


@asset(
    group_name=GROUP,
    deps=[als_model, "features_title"],
    partitions_def=event_date_partitions,
    kinds={"lightgbm"},
    op_tags=SPARK_TAGS,
)
def ranker_model(
    context: AssetExecutionContext,
    config: ModelConfig,
    spark: SparkResource,
    object_store: ObjectStoreResource,
) -> MaterializeResult:
    """LightGBM lambdarank over ALS candidates, trained point-in-time on a temporal cut
    (training.train_ranker), plus the title feature table the serving layer ranks with."""
    as_of = date.fromisoformat(context.partition_key)
    frame = _training_frame(spark, object_store, as_of)
    try:
        cutoff = training.choose_cutoff(frame, as_of, config.label_share)
    except ValueError as exc:
        raise Failure(f"cannot train the ranker for {as_of}: {exc}") from exc
    session = spark.get_session()
    interactions, sessions_df = load_interactions(session, object_store)
    user_frame = features.user_features(interactions, sessions_df, cutoff).toPandas()
    title_frame = features.title_features(interactions, sessions_df, cutoff).toPandas()
    started = time.perf_counter()
    try:
        result = training.train_ranker(
            frame,
            cutoff,
            user_frame,
            title_frame,
            config.factors,
            config.iterations,
            config.candidates,
            config.ranker_rounds,
            max_users=config.ranker_users,
        )
    except ValueError as exc:
        raise Failure(f"cannot train the ranker for {as_of}: {exc}") from exc
    seconds = time.perf_counter() - started
    # Serving ranks with title features as of the partition's date, aligned to its ALS model.
    served_als = AlsModel.from_bytes(object_store.get_bytes(_model_key("als", as_of, "als.npz")))
    today = (
        session.read.format("delta")
        .load(table_uri(object_store, "features_title"))
        .where(F.col("as_of") == as_of)
        .toPandas()
    )
    titles = two_stage.TitleTable.build(served_als.titles, today)
    ranker_uri = object_store.put_bytes(
        result.booster.model_to_string().encode(), _model_key("ranker", as_of, "ranker.txt")
    )
    titles_uri = object_store.put_bytes(
        titles.to_bytes(), _model_key("ranker", as_of, "titles.npz")
    )
    return MaterializeResult(
        metadata={
            "model_uri": MetadataValue.path(ranker_uri),
            "titles_uri": MetadataValue.path(titles_uri),
            "cutoff": cutoff.isoformat(),
            **_flat(result.report),
            "report": MetadataValue.json(result.report),
            "train_seconds": round(seconds, 2),
        }
    )


CHECKED_MODELS = ("als", "ncf", "ranker")


@asset(
    group_name=GROUP,
    deps=[als_model, ncf_model, ranker_model],
    partitions_def=event_date_partitions,
    kinds={"numpy"},
    op_tags=SPARK_TAGS,
    check_specs=[
        *[
            AssetCheckSpec(f"{m}_beats_popularity", asset="model_evaluation", blocking=True)
            for m in CHECKED_MODELS
        ],
        AssetCheckSpec("no_regression_vs_previous_date", asset="model_evaluation"),
    ],
)
def model_evaluation(
    context: AssetExecutionContext,
    config: ModelConfig,
    spark: SparkResource,
    object_store: ObjectStoreResource,
):
    """Leave-the-latest-out HR@10, NDCG@10, Recall@10 of ALS, NCF and popularity (full ranking
    and the NCF paper's 99 sampled negatives, mean and spread over three seeds), and the
    ranker's temporal hold-out figures against ALS and popularity on the same users."""
    as_of = date.fromisoformat(context.partition_key)
    frame = _training_frame(spark, object_store, as_of)
    started = time.perf_counter()
    report = training.evaluate_models(
        frame,
        config.factors,
        config.iterations,
        NcfConfig(epochs=config.ncf_epochs),
        max_users=config.max_eval_users,
    )
    seconds = time.perf_counter() - started
    ranker_report = _partition_metadata(context, "ranker_model", as_of, "report")
    if ranker_report is None:
        raise Failure(f"ranker_model has no materialization for {as_of}; materialize it first")
    report["ranker_temporal"] = ranker_report
    wins = {
        m: report[m]["sampled"]["hr@10"] > report["popularity"]["sampled"]["hr@10"]
        and report[m]["full"]["hr@10"] > report["popularity"]["full"]["hr@10"]
        for m in ("als", "ncf")
    }
    wins["ranker"] = ranker_report["ranker"]["ndcg@10"] > ranker_report["popularity"]["ndcg@10"]
    flat = {
        f"{m}_{metric}_{protocol}": round(report[m][protocol][metric], 4)
        for m in ("als", "ncf", "popularity")
        for protocol in ("full", "sampled")
        for metric in ("hr@10", "ndcg@10", "recall@10")
    }
    yield MaterializeResult(
        metadata={
            **flat,
            **_flat(ranker_report, "temporal_"),
            "report": MetadataValue.json(report),
            "eval_seconds": round(seconds, 2),
        }
    )
    for m in CHECKED_MODELS:
        yield AssetCheckResult(check_name=f"{m}_beats_popularity", passed=wins[m])
    # One headline figure per model, compared with the previous date's materialization.
    current = {
        "als_hr@10_sampled": flat["als_hr@10_sampled"],
        "ncf_hr@10_sampled": flat["ncf_hr@10_sampled"],
        "temporal_ranker_ndcg@10": round(ranker_report["ranker"]["ndcg@10"], 4),
    }
    previous = {name: _previous_value(context, name, as_of) for name in current}
    regressed = {
        name: {"previous": previous[name], "current": value}
        for name, value in current.items()
        if previous[name] is not None and value < previous[name] - config.regression_tolerance
    }
    yield AssetCheckResult(
        check_name="no_regression_vs_previous_date",
        passed=not regressed,
        metadata={
            "tolerance": config.regression_tolerance,
            "current": MetadataValue.json(current),
            "previous": MetadataValue.json(previous),
            "regressed": MetadataValue.json(regressed),
        },
    )


@asset(
    group_name=GROUP,
    deps=[model_evaluation, online_features],
    partitions_def=event_date_partitions,
    kinds={"json"},
)
def recommender_release(
    context: AssetExecutionContext, object_store: ObjectStoreResource
) -> MaterializeResult:
    """The models the serving layer may load for this date. It exists only when the evaluation's
    blocking checks passed (they stop this asset otherwise), so a model that loses to the
    popularity baseline is never served. The serving layer follows its latest materialization."""
    as_of = date.fromisoformat(context.partition_key)
    manifest = {
        "as_of": as_of.isoformat(),
        "als_key": _model_key("als", as_of, "als.npz"),
        "ranker_key": _model_key("ranker", as_of, "ranker.txt"),
        "titles_key": _model_key("ranker", as_of, "titles.npz"),
        "online_prefix": ONLINE_PREFIX,
    }
    for name in ("als_key", "ranker_key", "titles_key"):
        if not object_store.exists(manifest[name]):
            raise Failure(
                f"{manifest[name]} is missing from the object store; "
                f"re-materialize the models for {as_of}"
            )
    uri = object_store.put_bytes(
        json.dumps(manifest, indent=2).encode(), _model_key("release", as_of, "manifest.json")
    )
    return MaterializeResult(metadata={"manifest_uri": MetadataValue.path(uri), **manifest})


def _partition_metadata(context: AssetExecutionContext, asset: str, day: date, name: str):
    """The metadata value `name` of `asset`'s latest materialization for `day`, or None."""
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(asset), asset_partitions=[day.isoformat()]), limit=1
    ).records
    if not records:
        return None
    value = records[0].asset_materialization.metadata.get(name)
    return value.value if value is not None else None


def _previous_value(context: AssetExecutionContext, name: str, as_of: date) -> float | None:
    """The metadata value of the previous date's materialization of this asset, if any."""
    value = _partition_metadata(
        context, context.asset_key.to_user_string(), as_of - timedelta(days=1), name
    )
    return float(value) if value is not None else None


ASSETS = [
    recommendation_features,
    online_features,
    als_model,
    ncf_model,
    ranker_model,
    model_evaluation,
    recommender_release,
]
