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

from assets import lake_checks
from netflix_assets.offsets import OffsetsLost
from netflix_assets.partitions import event_date_partitions
from netflix_assets.run_profiles import SPARK_TAGS, k8s_run_tags
from resources.kafka import KafkaResource
from resources.object_store import ObjectStoreResource
from resources.spark import SparkResource
from schema import tables, topics
from spark_jobs import gold, steps

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
    check_specs=[lake_checks.OFFSETS_INTACT],
)
def bronze_viewing_events(
    context: AssetExecutionContext,
    config: BronzeConfig,
    kafka: KafkaResource,
    spark: SparkResource,
    object_store: ObjectStoreResource,
):
    """Appends the Kafka offsets bronze does not hold yet, exactly once (see spark_jobs/bronze);
    lost offsets fail the check kafka_offsets_intact (assets/lake_checks.py) and the run."""
    path = object_store.table_uri(tables.BRONZE_VIEWING_EVENTS)
    marks = kafka.watermarks(config.topic)
    try:
        result = steps.ingest_bronze(
            spark.get_session(),
            object_store,
            kafka.kafka_settings(),
            config.topic,
            marks,
            config.accept_lost_offsets,
        )
    except OffsetsLost as exc:
        yield lake_checks.lost_offsets_result(exc)
        raise Failure(description=str(exc), allow_retries=False) from exc
    lost = {str(p): list(r) for p, r in result.lost_offsets.items()}
    if lost:
        context.log.error(f"accepted lost offsets of {config.topic}: {lost}")
    if not result.offset_ranges:
        context.log.info("bronze is up to date with Kafka; nothing to ingest")
    yield MaterializeResult(
        check_results=[
            lake_checks.offsets_result(config.topic, result.lost_offsets, result.topic_id)
        ],
        metadata={
            "uri": path,
            "rows_appended": result.written.rows,
            "offset_ranges": MetadataValue.json(
                {str(p): list(r) for p, r in result.offset_ranges.items()}
            ),
            "lost_offset_ranges": MetadataValue.json(lost),
            "kafka_dates": MetadataValue.json(result.kafka_dates),
            "delta_version": result.written.delta_version,
        },
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
    r = steps.silver_day(
        spark.get_session(), object_store, date.fromisoformat(context.partition_key)
    )
    yield MaterializeResult(
        asset_key=tables.SILVER_VIEWING_EVENTS.name,
        metadata={"uri": r.events.uri, "rows": r.events.rows, "duplicates_dropped": r.duplicates},
    )
    yield MaterializeResult(
        asset_key=tables.SILVER_QUARANTINE.name,
        metadata={
            "uri": r.quarantine.uri,
            "rows": r.quarantine.rows,
            "reasons": MetadataValue.json(r.reasons),
        },
    )
    yield AssetCheckResult(
        asset_key=tables.SILVER_VIEWING_EVENTS.name,
        check_name="reconciles_with_bronze",
        passed=r.reconciles,
        metadata={
            "bronze_rows": r.bronze_rows,
            "silver_rows": r.events.rows,
            "quarantined": r.quarantine.rows,
            "duplicates": r.duplicates,
        },
    )
    yield AssetCheckResult(
        asset_key=tables.SILVER_VIEWING_EVENTS.name,
        check_name="no_duplicate_event_ids",
        passed=r.distinct_event_ids == r.events.rows,
        metadata={"rows": r.events.rows, "distinct_event_ids": r.distinct_event_ids},
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
    r = steps.sessions_day(spark.get_session(), object_store, day)
    return MaterializeResult(
        metadata={"uri": r.written.uri, "sessions": r.written.rows, "start_rate": r.start_rate}
    )


GOLD = [table.name for table in gold.TABLES]


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
    for table, r in steps.gold_day(spark.get_session(), object_store, day).items():
        yield MaterializeResult(
            asset_key=table.name, metadata={"uri": r.written.uri, "rows": r.written.rows}
        )
        yield AssetCheckResult(
            asset_key=table.name,
            check_name="metrics_within_bounds",
            passed=r.rows_out_of_bounds == 0,
            severity=AssetCheckSeverity.ERROR,
            metadata={"rows_out_of_bounds": r.rows_out_of_bounds},
        )


@asset(
    group_name="lake",
    deps=[silver_playback_sessions],
    partitions_def=event_date_partitions,
    automation_condition=EAGER,
    kinds={"spark", "delta"},
    op_tags=SPARK_TAGS,
    check_specs=[
        AssetCheckSpec("reconciles_with_sessions", asset="gold_title_country_daily", blocking=True)
    ],
)
def gold_title_country_daily(
    context: AssetExecutionContext, spark: SparkResource, object_store: ObjectStoreResource
):
    """Sessions, starts, distinct profiles and watch hours per title and viewer country for the
    date: the web app's "top in your country" row. The check sums both sides: every session of
    the day counted once."""
    day = date.fromisoformat(context.partition_key)
    r = steps.title_country_day(spark.get_session(), object_store, day)
    yield MaterializeResult(metadata={"uri": r.written.uri, "rows": r.written.rows})
    yield AssetCheckResult(
        check_name="reconciles_with_sessions",
        passed=r.reconciles,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            **{f"table_{k}": v for k, v in r.table_totals.items()},
            **{f"sessions_{k}": v for k, v in r.session_totals.items()},
        },
    )


ASSETS = [
    bronze_viewing_events,
    silver_events,
    silver_playback_sessions,
    gold_tables,
    gold_title_country_daily,
]
lake_daily_job = define_asset_job(
    "lake_daily_job",
    selection=[
        "silver_viewing_events",
        "silver_quarantine",
        "silver_playback_sessions",
        *GOLD,
        tables.GOLD_TITLE_COUNTRY_DAILY.name,
    ],
    partitions_def=event_date_partitions,
    tags={**SPARK_TAGS, **k8s_run_tags("spark")},
)
JOBS = [lake_daily_job]
