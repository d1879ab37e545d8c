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

import io
import json
import time
from datetime import date, timedelta

import deltalake
import numpy as np
import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetOut,
    AssetRecordsFilter,
    AssetSelection,
    AssetSpec,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
    define_asset_job,
    multi_asset,
)
from pydantic import Field
from pyspark.sql import functions as F

from netflix_assets.partitions import event_date_partitions
from netflix_assets.recs import ncf, selection, training, two_stage
from netflix_assets.recs.als import AlsModel
from netflix_assets.recs.ncf import NcfConfig
from netflix_assets.run_profiles import SPARK_TAGS, k8s_run_tags
from resources.object_store import ObjectNotFound, ObjectStoreResource
from resources.redis import RedisResource
from resources.spark import SparkResource
from schema import tables
from spark_jobs import delta_io, features

GROUP = "recommendations"
FEATURE_TABLES = {
    tables.FEATURES_USER: "u_",
    tables.FEATURES_TITLE: "t_",
    tables.FEATURES_USER_TITLE: "ut_",
}
"""Each feature table and the prefix of its feature columns."""
ONLINE_PREFIX = "feat:v1"
ONLINE_TTL_S = 3 * 24 * 3600


def load_interactions(session, object_store: ObjectStoreResource):
    """(interactions, sessions or None), or a Failure naming what to materialize first."""
    try:
        return features.load_interactions(session, object_store)
    except features.NoInteractions as exc:
        raise Failure(str(exc)) from exc


imported_interactions = AssetSpec(
    tables.IMPORTED_INTERACTIONS.name,
    group_name=GROUP,
    kinds={"delta"},
    description="Ratings imported from a MovieLens-format file by `netflix-assets "
    "import-ratings` (netflix_assets/recs/imports.py), as interactions; written outside "
    "Dagster, so declared here for lineage.",
)


@asset(
    group_name=GROUP,
    deps=["silver_playback_sessions", imported_interactions],
    partitions_def=event_date_partitions,
    kinds={"spark", "parquet"},
    op_tags=SPARK_TAGS,
)
def training_interactions(
    context: AssetExecutionContext, spark: SparkResource, object_store: ObjectStoreResource
) -> MaterializeResult:
    """Every interaction through the partition's date (played sessions and imported ratings),
    the one training frame every model and the evaluation read, so they see the same data."""
    as_of = date.fromisoformat(context.partition_key)
    interactions, _ = load_interactions(spark.get_session(), object_store)
    frame = features.before(interactions, "ts", as_of + timedelta(days=1)).toPandas()
    if frame.empty:
        raise Failure(f"no interactions up to {as_of}")
    sink = io.BytesIO()
    frame.to_parquet(sink, index=False)
    uri = object_store.put_bytes(sink.getvalue(), _training_key(as_of))
    return MaterializeResult(
        metadata={
            "uri": MetadataValue.path(uri),
            "interactions": len(frame),
            "users": int(frame["user_id"].nunique()),
            "titles": int(frame["title_id"].nunique()),
            "by_source": MetadataValue.json(frame["source"].value_counts().to_dict()),
            "newest": str(frame["ts"].max()),
        }
    )


def _training_key(as_of: date) -> str:
    return f"models/training/{as_of.isoformat()}/interactions.parquet"


@multi_asset(
    outs={t.name: AssetOut(group_name=GROUP, kinds={"spark", "delta"}) for t in FEATURE_TABLES},
    deps=["silver_playback_sessions", imported_interactions],
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
    frames = {
        tables.FEATURES_USER: features.user_features(interactions, sessions_df, as_of),
        tables.FEATURES_TITLE: features.title_features(interactions, sessions_df, as_of),
        tables.FEATURES_USER_TITLE: features.user_title_features(interactions, as_of),
    }
    for table, frame in frames.items():
        path = object_store.table_uri(table)
        delta_io.replace_day(frame.withColumn("as_of", F.lit(as_of)), path, "as_of", as_of)
        rows = _rows_written(session, path, as_of)
        prefix = FEATURE_TABLES[table]
        yield MaterializeResult(
            asset_key=table.name,
            metadata={
                "uri": path,
                "rows": rows,
                "features": MetadataValue.json(
                    {k: v for k, v in features.FEATURES.items() if k.startswith(prefix)}
                ),
            },
        )
    interactions.unpersist()


def _rows_written(session, path: str, as_of: date) -> int:
    """The rows the date's replace_day wrote, from its commit's metrics (the JVM-free reader
    reads one JSON file) rather than a second Spark scan of the table; the scan only when the
    latest commit is not that write (another writer committed since)."""
    commit = deltalake.DeltaTable(path).history(1)[0]
    predicate = str(commit.get("operationParameters", {}).get("predicate", ""))
    rows = commit.get("operationMetrics", {}).get("numOutputRows")
    if commit.get("operation") == "WRITE" and as_of.isoformat() in predicate and rows is not None:
        return int(rows)
    return session.read.format("delta").load(path).where(F.col("as_of") == as_of).count()


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
        .load(object_store.table_uri(tables.FEATURES_USER))
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
        .load(object_store.table_uri(tables.FEATURES_USER_TITLE))
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
    iterations: int = 10
    ncf_epochs: int = 8
    ranker_rounds: int = 100
    candidates: int = Field(default=500, description="Candidates the ranker reorders.")
    ranker_users: int = Field(
        default=5000, description="Labelled users whose candidates train the ranker (sampled)."
    )
    label_share: float = Field(
        default=0.2, description="Share of the latest interactions the ranker learns to predict."
    )
    max_eval_users: int = Field(
        default=20_000, description="Held-out users scored (a seeded sample beyond this)."
    )
    mmr_lambda: float | None = Field(
        default=None,
        description="MMR's relevance weight in the served list (1.0 = no MMR). None: chosen from "
        "the accuracy-diversity curve candidate_model measures on validation, the most diverse "
        "point that keeps 98% of the generator's validation NDCG@10 and still matches tuned ALS "
        "(selection.choose_mmr_lambda).",
    )
    best_model_tolerance: float = Field(
        default=0.1,
        description="How far below the best single model's NDCG@10 the served path may be "
        "(relative) before the release is blocked: MMR's price must stay small.",
    )
    regression_tolerance: float = Field(
        default=0.05,
        description="How far the served path's NDCG@10 may drop below the previous date's.",
    )


def _training_frame(object_store: ObjectStoreResource, as_of: date):
    """The partition's training_interactions, as pandas (the models train in memory)."""
    try:
        data = object_store.get_bytes(_training_key(as_of))
    except ObjectNotFound as exc:
        raise Failure(f"no training_interactions for {as_of}: materialize it first") from exc
    return pd.read_parquet(io.BytesIO(data))


def _model_key(kind: str, as_of: date, name: str) -> str:
    return f"models/{kind}/{as_of.isoformat()}/{name}"


def _model_result(
    uri: str, users: int, titles: int, interactions: int, seconds: float, **extra
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


def _selection(context: AssetExecutionContext, as_of: date) -> selection.Selection:
    data = _partition_metadata(context, "candidate_model", as_of, "selection")
    if data is None:
        raise Failure(f"candidate_model has no materialization for {as_of}; materialize it first")
    return selection.Selection.from_json(data)


@asset(
    group_name=GROUP,
    deps=[training_interactions],
    partitions_def=event_date_partitions,
    kinds={"numpy", "scipy"},
    op_tags=SPARK_TAGS,
)
def candidate_model(
    context: AssetExecutionContext,
    config: ModelConfig,
    spark: SparkResource,
    object_store: ObjectStoreResource,
) -> MaterializeResult:
    """Chooses the candidate generator: ALS, EASE, RP3beta and an ALS + item-item blend, each
    tuned on a validation split carved from the training part (never the test items), the best
    by validation NDCG@10; plus MMR's accuracy-diversity curve for it. Writes the chosen
    item-item matrix (fit on every interaction through the date) when the choice uses one."""
    as_of = date.fromisoformat(context.partition_key)
    frame = _training_frame(object_store, as_of)
    started = time.perf_counter()
    try:
        chosen = selection.select(frame, max_users=config.max_eval_users)
    except ValueError as exc:
        raise Failure(f"cannot choose a candidate generator for {as_of}: {exc}") from exc
    item_kind = {"ease": "ease", "rp3b": "rp3b"}.get(chosen.generator)
    if chosen.generator == "blend":
        item_kind = chosen.best["blend"]["with"]
    extra: dict = {}
    if item_kind is not None:
        uidx, tidx, _, _ = selection.index_maps(frame)
        weighted = selection.weighted_matrix(frame, uidx, tidx)
        model = selection.fit(item_kind, chosen.best[item_kind], weighted)
        uri = object_store.put_bytes(
            model.item_item.to_bytes(), _model_key("candidates", as_of, "item_item.npz")
        )
        extra["model_uri"] = MetadataValue.path(uri)
    seconds = time.perf_counter() - started
    best = chosen.tuning[chosen.generator]
    return MaterializeResult(
        metadata={
            "generator": chosen.generator,
            "validation_ndcg@10": round(max(r["ndcg@10"] for r in best), 4),
            **{
                f"validation_{name}_ndcg@10": round(max(r["ndcg@10"] for r in results), 4)
                for name, results in chosen.tuning.items()
            },
            "selection": MetadataValue.json(chosen.to_json()),
            **extra,
            "train_seconds": round(seconds, 2),
        }
    )


@asset(
    group_name=GROUP,
    deps=[training_interactions, candidate_model],
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
    """ALS with the validation-tuned parameters, fit on every interaction through the date: a
    candidate generator when chosen, and always the embedding space of MMR and of the
    "because you watched" reasons; one .npz file."""
    as_of = date.fromisoformat(context.partition_key)
    params = _selection(context, as_of).best["als"]
    frame = _training_frame(object_store, as_of)
    started = time.perf_counter()
    model = training.fit_als(
        frame, int(params["factors"]), config.iterations, alpha=params["alpha"], reg=params["reg"]
    )
    seconds = time.perf_counter() - started
    uri = object_store.put_bytes(model.to_bytes(), _model_key("als", as_of, "als.npz"))
    return _model_result(
        uri,
        len(model.users),
        len(model.titles),
        len(frame),
        seconds,
        **{f"als_{k}": v for k, v in params.items()},
    )


@asset(
    group_name=GROUP,
    deps=[training_interactions, "model_evaluation"],
    partitions_def=event_date_partitions,
    kinds={"pytorch"},
    op_tags=SPARK_TAGS,
    check_specs=[AssetCheckSpec("ncf_beats_popularity", asset="ncf_model")],
)
def ncf_model(
    context: AssetExecutionContext,
    config: ModelConfig,
    spark: SparkResource,
    object_store: ObjectStoreResource,
):
    """NeuMF (GMF + MLP) in PyTorch, off the release's path: fit once on the evaluation's
    training part (every interaction but each user's latest) and scored with full ranking on
    model_evaluation's test users; `earns_a_place` says whether it beat the served path on
    HR@10 and NDCG@10 (it is not served either way). One .pt file, the model that was scored."""
    as_of = date.fromisoformat(context.partition_key)
    frame = _training_frame(object_store, as_of)
    ncf_config = NcfConfig(epochs=config.ncf_epochs)
    started = time.perf_counter()
    result = training.evaluate_ncf(frame, ncf_config, max_users=config.max_eval_users)
    seconds = time.perf_counter() - started
    data = ncf.to_bytes(result.model, result.users, result.titles, ncf_config)
    uri = object_store.put_bytes(data, _model_key("ncf", as_of, "ncf.pt"))
    evaluated = _partition_metadata(context, "model_evaluation", as_of, "report") or {}
    served, popularity = evaluated.get("served"), evaluated.get("popularity")
    ncf_row = result.report
    earns = served is not None and all(ncf_row[m] > served[m] for m in ("hr@10", "ndcg@10"))
    yield _model_result(
        uri,
        len(result.users),
        len(result.titles),
        len(frame),
        seconds,
        epochs=config.ncf_epochs,
        parameters=sum(p.numel() for p in result.model.parameters()),
        **{f"ncf_{metric}": round(value, 4) for metric, value in ncf_row.items()},
        earns_a_place=earns,
        served=MetadataValue.json(served or {}),
    )
    yield AssetCheckResult(
        check_name="ncf_beats_popularity",
        passed=popularity is not None and ncf_row["ndcg@10"] > popularity["ndcg@10"],
        metadata={
            "ncf": MetadataValue.json(ncf_row),
            "popularity": MetadataValue.json(popularity or {}),
        },
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
    deps=[training_interactions, candidate_model, als_model, "features_title"],
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
    """LightGBM lambdarank over the chosen generator's candidates, trained point-in-time on a
    temporal cut (training.train_ranker), plus the title feature table the serving layer ranks
    with. `use_ranker` says whether it beat its generator's order on held-out users."""
    as_of = date.fromisoformat(context.partition_key)
    chosen = _selection(context, as_of)
    frame = _training_frame(object_store, as_of)
    try:
        cutoff = training.choose_cutoff(frame, as_of, config.label_share)
    except ValueError as exc:
        raise Failure(f"cannot train the ranker for {as_of}: {exc}") from exc
    session = spark.get_session()
    # Straight from the lake tables, not from the pandas frame: features at the cutoff read only
    # what happened before it, which the frame (everything through the date) holds in full, and
    # Spark reads Delta faster than it converts a pandas frame row by row.
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
            chosen.generator,
            chosen.best[chosen.generator],
            config.candidates,
            config.ranker_rounds,
            max_users=config.ranker_users,
        )
    except ValueError as exc:
        raise Failure(f"cannot train the ranker for {as_of}: {exc}") from exc
    seconds = time.perf_counter() - started
    use_ranker, reason = result.earns_its_place
    # Serving ranks with title features as of the partition's date, aligned to its ALS model.
    served_als = AlsModel.from_bytes(object_store.get_bytes(_model_key("als", as_of, "als.npz")))
    today = (
        session.read.format("delta")
        .load(object_store.table_uri(tables.FEATURES_TITLE))
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
            "generator": chosen.generator,
            "use_ranker": use_ranker,
            "ranker_reason": reason,
            **_flat(result.report),
            "report": MetadataValue.json(result.report),
            "train_seconds": round(seconds, 2),
        }
    )


def _pipeline(context, config: ModelConfig, as_of: date) -> tuple[two_stage.Pipeline, str]:
    """The pipeline the release serves, and why the ranker is in or out of it."""
    chosen = _selection(context, as_of)
    use_ranker = _partition_metadata(context, "ranker_model", as_of, "use_ranker")
    reason = _partition_metadata(context, "ranker_model", as_of, "ranker_reason")
    if use_ranker is None:
        raise Failure(f"ranker_model has no materialization for {as_of}; materialize it first")
    lam = selection.choose_mmr_lambda(chosen) if config.mmr_lambda is None else config.mmr_lambda
    pipeline = two_stage.Pipeline(chosen.generator, bool(use_ranker), lam, config.candidates)
    return pipeline, str(reason)


@asset(
    group_name=GROUP,
    deps=[training_interactions, candidate_model, als_model, ranker_model],
    partitions_def=event_date_partitions,
    kinds={"numpy"},
    op_tags=SPARK_TAGS,
    check_specs=[
        AssetCheckSpec("served_beats_popularity", asset="model_evaluation", blocking=True),
        AssetCheckSpec("served_beats_tuned_als", asset="model_evaluation", blocking=True),
        AssetCheckSpec("served_near_best_single_model", asset="model_evaluation", blocking=True),
        AssetCheckSpec("no_regression_vs_previous_date", asset="model_evaluation"),
    ],
)
def model_evaluation(
    context: AssetExecutionContext,
    config: ModelConfig,
    spark: SparkResource,
    object_store: ObjectStoreResource,
):
    """Leave-the-latest-out, full ranking: HR@10, NDCG@10, Recall@10, coverage and intra-list
    diversity of the served pipeline (through two_stage.serve_list, as the service runs it),
    of every tuned generator and popularity, each refit on the training part (NCF is scored by
    ncf_model, after this and off the release's path); the same models and the served path on
    the temporal protocol (fit before the ranker's cutoff, scored on what each user took up
    after it: `temporal_full_*`); and the ranker's temporal hold-out figures against its
    generator and popularity (`temporal_*`). The blocking checks are
    selection.release_checks."""
    as_of = date.fromisoformat(context.partition_key)
    frame = _training_frame(object_store, as_of)
    chosen = _selection(context, as_of)
    pipeline, reason = _pipeline(context, config, as_of)
    ranking = _ranking(spark, object_store, frame, as_of) if pipeline.use_ranker else None
    started = time.perf_counter()
    report = training.evaluate_release(
        frame, chosen, pipeline, ranking=ranking, max_users=config.max_eval_users
    )
    cutoff = training.choose_cutoff(frame, as_of, config.label_share)
    try:
        temporal_full = training.evaluate_temporal(
            frame, chosen, pipeline, cutoff, max_users=config.max_eval_users
        )
    except ValueError as exc:  # e.g. nobody took up a new title after the cutoff
        context.log.warning(f"temporal protocol not scored for {as_of}: {exc}")
        temporal_full = {}
    seconds = time.perf_counter() - started
    temporal = _partition_metadata(context, "ranker_model", as_of, "report")
    served = report["served"]
    yield MaterializeResult(
        metadata={
            **_flat(report),
            **_flat(temporal or {}, "temporal_"),
            **_flat(temporal_full, "temporal_full_"),
            "temporal_cutoff": cutoff.isoformat(),
            "pipeline": MetadataValue.json(pipeline.to_manifest()),
            "ranker_reason": reason,
            "report": MetadataValue.json(
                {**report, "temporal": temporal, "temporal_full": temporal_full}
            ),
            "eval_seconds": round(seconds, 2),
        }
    )
    for name, check in selection.release_checks(report, config.best_model_tolerance).items():
        yield AssetCheckResult(
            check_name=name,
            passed=check.passed,
            metadata={
                k: MetadataValue.json(v) if isinstance(v, dict) else v
                for k, v in check.metadata.items()
            },
        )
    current = round(served["ndcg@10"], 4)
    previous = _previous_value(context, "served_ndcg@10", as_of)
    yield AssetCheckResult(
        check_name="no_regression_vs_previous_date",
        passed=previous is None or current >= previous - config.regression_tolerance,
        metadata={
            "tolerance": config.regression_tolerance,
            "current": current,
            "previous": previous if previous is not None else "none",
        },
    )


def _ranking(spark: SparkResource, object_store, frame, as_of: date) -> selection.Ranker:
    """What the served pipeline's ranker needs in the evaluation: the ranker of the date, and
    user and title features computed by the same Spark functions from the evaluation's training
    part only (its held-out interactions are each user's latest, so they must not be counted)."""
    import lightgbm as lgb

    from netflix_assets.recs.evaluation import leave_latest_out

    split = leave_latest_out(frame)
    session = spark.get_session()
    train_df = session.createDataFrame(split.train[list(features.INTERACTION_SCHEMA.fieldNames())])
    after = as_of + timedelta(days=1)
    users = features.user_features(train_df, None, after).toPandas().set_index("user_id")
    titles_frame = features.title_features(train_df, None, after).toPandas()
    _, _, user_ids, title_ids = selection.index_maps(frame)
    titles = two_stage.TitleTable.build(np.array(title_ids), titles_frame)
    booster = lgb.Booster(
        model_str=object_store.get_bytes(_model_key("ranker", as_of, "ranker.txt")).decode()
    )

    def inputs(user: int):
        uid = user_ids[user]
        values = users.loc[uid].to_dict() if uid in users.index else None
        return titles, two_stage.user_vector(values), lambda rows: booster.predict(rows)

    return inputs


@asset(
    group_name=GROUP,
    deps=[model_evaluation, online_features],
    partitions_def=event_date_partitions,
    kinds={"json"},
)
def recommender_release(
    context: AssetExecutionContext, config: ModelConfig, object_store: ObjectStoreResource
) -> MaterializeResult:
    """The models and pipeline the serving layer may load for this date. It exists only when
    the evaluation's blocking checks passed (they stop this asset otherwise), so a served path
    that loses to popularity or to a tuned ALS is never served. The serving layer follows its
    latest materialization."""
    as_of = date.fromisoformat(context.partition_key)
    pipeline, reason = _pipeline(context, config, as_of)
    manifest = {
        "as_of": as_of.isoformat(),
        "als_key": _model_key("als", as_of, "als.npz"),
        "ranker_key": _model_key("ranker", as_of, "ranker.txt"),
        "titles_key": _model_key("ranker", as_of, "titles.npz"),
        "online_prefix": ONLINE_PREFIX,
        **pipeline.to_manifest(),
    }
    if pipeline.generator == "blend":
        blend = _selection(context, as_of).best["blend"]
        manifest["blend_weight"] = repr(float(blend["weight"]))
    if pipeline.generator != "als":
        manifest["item_item_key"] = _model_key("candidates", as_of, "item_item.npz")
    for name in ("als_key", "ranker_key", "titles_key", "item_item_key"):
        if name in manifest and not object_store.exists(manifest[name]):
            raise Failure(
                f"{manifest[name]} is missing from the object store; "
                f"re-materialize the models for {as_of}"
            )
    uri = object_store.put_bytes(
        json.dumps(manifest, indent=2).encode(), _model_key("release", as_of, "manifest.json")
    )
    return MaterializeResult(
        metadata={"manifest_uri": MetadataValue.path(uri), "ranker_reason": reason, **manifest}
    )


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
    imported_interactions,
    training_interactions,
    recommendation_features,
    online_features,
    candidate_model,
    als_model,
    ncf_model,
    ranker_model,
    model_evaluation,
    recommender_release,
]
recommendations_job = define_asset_job(
    "recommendations_job",
    selection=AssetSelection.assets(*(a for a in ASSETS if a is not imported_interactions)),
    partitions_def=event_date_partitions,
    tags={**SPARK_TAGS, **k8s_run_tags("spark")},
)
"""Features, every model, the evaluation and the release for one date (`netflix-assets train`)."""
JOBS = [recommendations_job]
