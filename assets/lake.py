"""The viewing-events lake: Kafka -> bronze -> silver (+ quarantine) -> sessions -> gold Delta.

Bronze is an append-only ingest of exact offset ranges (unpartitioned: a Kafka range has no single
date). Everything after it is partitioned by event date and rewritten one day at a time, so every
materialization is idempotent and late events land in their own date when that date is re-run.
"""

from datetime import date

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetOut,
    AutomationCondition,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
    define_asset_job,
    multi_asset,
)
from pyspark.sql import functions as F

from netflix_assets.offsets import OffsetsLost, offset_gaps
from netflix_assets.partitions import event_date_partitions
from netflix_assets.run_profiles import SPARK_TAGS, k8s_run_tags
from resources.kafka import KafkaResource
from resources.object_store import ObjectStoreResource
from resources.spark import SparkResource
from schema import topics
from spark_jobs import bronze, delta_io, gold, sessions, silver
from spark_jobs.paths import table_uri

EAGER = AutomationCondition.eager()


class BronzeConfig(Config):
    topic: str = topics.VIEWING_EVENTS
    accept_lost_offsets: bool = False
    """Acknowledge offsets deleted from Kafka before bronze read them: record and continue."""


@asset(
    group_name="lake",
    deps=[AssetKey("viewing_events")],
    kinds={"spark", "delta", "kafka"},
    op_tags=SPARK_TAGS,
)
def bronze_viewing_events(
    context: AssetExecutionContext,
    config: BronzeConfig,
    kafka: KafkaResource,
    spark: SparkResource,
    object_store: ObjectStoreResource,
) -> MaterializeResult:
    """Appends the Kafka offsets bronze does not hold yet, exactly once (see spark_jobs/bronze)."""
    path = table_uri(object_store, "bronze_viewing_events")
    held, marks = bronze.bronze_next_offsets(path, config.topic), kafka.watermarks(config.topic)
    try:
        plan = bronze.plan_range(held, marks, config.topic, config.accept_lost_offsets)
    except OffsetsLost as exc:
        raise Failure(description=str(exc), allow_retries=False) from exc
    lost = {str(g.partition): [g.kept_next, g.low] for g in offset_gaps(held, marks)}
    if lost:
        context.log.error(f"accepted lost offsets of {config.topic}: {lost}")
    if not plan:
        context.log.info("bronze is up to date with Kafka; nothing to ingest")
        return MaterializeResult(
            metadata={
                "rows_appended": 0,
                "uri": path,
                "lost_offset_ranges": MetadataValue.json(lost),
            }
        )
    session = spark.get_session()
    rows = bronze.to_bronze(bronze.read_range(session, kafka.bootstrap_servers, config.topic, plan))
    rows = rows.cache()
    count = rows.count()
    dates = sorted(
        r["kafka_date"].isoformat() for r in rows.select("kafka_date").distinct().collect()
    )
    bronze.append_bronze(rows, path, config.topic, bronze.range_version(plan))
    rows.unpersist()
    return MaterializeResult(
        metadata={
            "uri": path,
            "rows_appended": count,
            "offset_ranges": MetadataValue.json({str(p): list(r) for p, r in plan.items()}),
            "lost_offset_ranges": MetadataValue.json(lost),
            "kafka_dates": MetadataValue.json(dates),
            "delta_version": delta_io.version(session, path),
        }
    )


@multi_asset(
    outs={
        "silver_viewing_events": AssetOut(
            group_name="lake", kinds={"spark", "delta"}, automation_condition=EAGER
        ),
        "silver_quarantine": AssetOut(
            group_name="lake", kinds={"spark", "delta"}, automation_condition=EAGER
        ),
    },
    deps=[bronze_viewing_events],
    partitions_def=event_date_partitions,
    op_tags=SPARK_TAGS,
    check_specs=[
        AssetCheckSpec("reconciles_with_bronze", asset="silver_viewing_events", blocking=True),
        AssetCheckSpec("no_duplicate_event_ids", asset="silver_viewing_events", blocking=True),
    ],
)
def silver_events(
    context: AssetExecutionContext, spark: SparkResource, object_store: ObjectStoreResource
):
    """Parses one event date from bronze: valid events deduplicated into silver, the rest into
    silver_quarantine with a reason; both replace the day in one commit each."""
    day = date.fromisoformat(context.partition_key)
    session = spark.get_session()
    source = session.read.format("delta").load(table_uri(object_store, "bronze_viewing_events"))
    classified = silver.classify(silver.bronze_window(source, day)).cache()
    valid = silver.valid_events(classified, day)
    bad = silver.quarantined(classified, day)
    silver_path = table_uri(object_store, "silver_viewing_events")
    quarantine_path = table_uri(object_store, "silver_quarantine")
    delta_io.replace_day(valid, silver_path, "event_date", day)
    delta_io.replace_day(bad, quarantine_path, "kafka_date", day)

    # Reconciliation: every bronze row of the day is in silver, in quarantine, or a duplicate.
    in_scope = classified.where(
        (F.col("reason").isNull() & (F.col("event_date") == F.lit(day)))
        | (F.col("reason").isNotNull() & (F.col("kafka_date") == F.lit(day)))
    ).count()
    duplicates = silver.duplicate_count(classified, day)
    written = session.read.format("delta").load(silver_path).where(F.col("event_date") == day)
    silver_rows = written.count()
    distinct_ids = written.select("event_id").distinct().count()
    quarantined_rows = (
        session.read.format("delta").load(quarantine_path).where(F.col("kafka_date") == day).count()
    )
    reasons = {r["reason"]: r["count"] for r in bad.groupBy("reason").count().collect()}
    classified.unpersist()
    yield MaterializeResult(
        asset_key="silver_viewing_events",
        metadata={"uri": silver_path, "rows": silver_rows, "duplicates_dropped": duplicates},
    )
    yield MaterializeResult(
        asset_key="silver_quarantine",
        metadata={
            "uri": quarantine_path,
            "rows": quarantined_rows,
            "reasons": MetadataValue.json(reasons),
        },
    )
    yield AssetCheckResult(
        asset_key="silver_viewing_events",
        check_name="reconciles_with_bronze",
        passed=in_scope == silver_rows + quarantined_rows + duplicates,
        metadata={
            "bronze_rows": in_scope,
            "silver_rows": silver_rows,
            "quarantined": quarantined_rows,
            "duplicates": duplicates,
        },
    )
    yield AssetCheckResult(
        asset_key="silver_viewing_events",
        check_name="no_duplicate_event_ids",
        passed=distinct_ids == silver_rows,
        metadata={"rows": silver_rows, "distinct_event_ids": distinct_ids},
    )


@asset(
    group_name="lake",
    deps=["silver_viewing_events"],
    partitions_def=event_date_partitions,
    automation_condition=EAGER,
    kinds={"spark", "delta"},
    op_tags=SPARK_TAGS,
)
def silver_playback_sessions(
    context: AssetExecutionContext, spark: SparkResource, object_store: ObjectStoreResource
) -> MaterializeResult:
    """One row per playback attempt that began on the partition's date."""
    day = date.fromisoformat(context.partition_key)
    session = spark.get_session()
    events = session.read.format("delta").load(table_uri(object_store, "silver_viewing_events"))
    rows = sessions.sessionize(sessions.events_for_sessions(events, day), day)
    path = table_uri(object_store, "silver_playback_sessions")
    delta_io.replace_day(rows, path, "session_date", day)
    written = session.read.format("delta").load(path).where(F.col("session_date") == day)
    stats = written.agg(
        F.count("*").alias("sessions"),
        F.avg(F.col("started").cast("int")).alias("start_rate"),
    ).first()
    return MaterializeResult(
        metadata={
            "uri": path,
            "sessions": stats["sessions"],
            "start_rate": float(stats["start_rate"] or 0.0),
        }
    )


GOLD = gold.TABLES
BOUNDED = ("completion_rate", "stall_ratio", "failure_rate", "ebvs_rate")


@multi_asset(
    outs={
        name: AssetOut(group_name="lake", kinds={"spark", "delta"}, automation_condition=EAGER)
        for name in GOLD
    },
    deps=[silver_playback_sessions],
    partitions_def=event_date_partitions,
    op_tags=SPARK_TAGS,
    check_specs=[
        AssetCheckSpec("metrics_within_bounds", asset=name, blocking=True) for name in GOLD
    ],
)
def gold_tables(
    context: AssetExecutionContext, spark: SparkResource, object_store: ObjectStoreResource
):
    """The analysts' daily tables, each rewritten for the date and compacted."""
    day = date.fromisoformat(context.partition_key)
    session = spark.get_session()
    day_sessions = (
        session.read.format("delta")
        .load(table_uri(object_store, "silver_playback_sessions"))
        .where(F.col("session_date") == day)
        .cache()
    )
    for name, build in GOLD.items():
        path = table_uri(object_store, name)
        delta_io.replace_day(build(day_sessions), path, "session_date", day)
        delta_io.compact_day(session, path, "session_date", day)
        written = session.read.format("delta").load(path).where(F.col("session_date") == day)
        violations = _bound_violations(written)
        yield MaterializeResult(asset_key=name, metadata={"uri": path, "rows": written.count()})
        yield AssetCheckResult(
            asset_key=name,
            check_name="metrics_within_bounds",
            passed=violations == 0,
            severity=AssetCheckSeverity.ERROR,
            metadata={"rows_out_of_bounds": violations},
        )
    day_sessions.unpersist()


def _bound_violations(table) -> int:
    """Rows where a rate leaves [0, 1], a count or duration is negative, or p50 > p95."""
    conditions = []
    for column in table.columns:
        if column in BOUNDED:
            conditions.append(~F.col(column).between(0, 1))
        elif column not in ("session_date",) and dict(table.dtypes)[column] in ("bigint", "double"):
            conditions.append(F.col(column) < 0)
    if "startup_p50_ms" in table.columns:
        conditions.append(F.col("startup_p50_ms") > F.col("startup_p95_ms"))
    bad = conditions[0]
    for condition in conditions[1:]:
        bad = bad | condition
    return table.where(F.coalesce(bad, F.lit(False))).count()


ASSETS = [bronze_viewing_events, silver_events, silver_playback_sessions, gold_tables]
lake_daily_job = define_asset_job(
    "lake_daily_job",
    selection=["silver_viewing_events", "silver_quarantine", "silver_playback_sessions", *GOLD],
    partitions_def=event_date_partitions,
    tags={**SPARK_TAGS, **k8s_run_tags("spark")},
)
JOBS = [lake_daily_job]
