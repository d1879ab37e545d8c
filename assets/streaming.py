"""The real-time QoE stream as external assets, reconciled with the lake.

The PyFlink job (streaming/qoe_job.py) runs outside Dagster, in its own virtualenv; Dagster
shows what it produces, and `qoe_stream_observation_sensor` (sensors/qoe_stream.py) records how
far behind it is. The check `matches_lake_recomputation` recomputes a day's windows in Spark from
the bronze table and compares them with what the stream published; `stream_reconciliation_job`
runs it, daily by `stream_reconciliation_schedule` (sensors/stream_reconciliation.py). Nothing
here imports pyflink.
"""

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSpec,
    AssetKey,
    AssetSelection,
    AssetSpec,
    Config,
    Failure,
    MetadataValue,
    define_asset_job,
    multi_asset_check,
)
from pydantic import Field
from pyspark.sql import functions as F

from netflix_assets.run_profiles import SPARK_TAGS, k8s_run_tags
from resources.kafka import KafkaResource
from resources.object_store import ObjectStoreResource
from resources.spark import SparkResource
from schema import tables, topics
from schema.qoe import QOE_WINDOW_MS, VIEWERS_SLIDE_MS, VIEWERS_WINDOW_MS
from spark_jobs import delta_io, qoe_windows, silver
from streaming.reconcile import Reconciliation, late_reports, reconcile

GROUP = "streaming"

viewing_events = AssetSpec(
    "viewing_events",
    group_name=GROUP,
    kinds={"kafka"},
    description="The viewing-events Kafka topic (JSON, v1 contract, keyed by session_id) that "
    "the players and the simulator write and the QoE job reads.",
    metadata={"topic": topics.VIEWING_EVENTS},
)
qoe_aggregates = AssetSpec(
    "qoe_aggregates",
    deps=[viewing_events],
    group_name=GROUP,
    kinds={"flink", "kafka", "redis"},
    description="5-minute QoE windows per title x device x cdn x country (attempts, startup "
    "p50/p95, rebuffer ratio, average bitrate, error rate), on qoe-aggregates and in Redis "
    "qoe:v1:window:{title}:{device}:{cdn}:{country}.",
    metadata={"topic": topics.QOE_AGGREGATES, "redis_keys": "qoe:v1:window:*"},
)
qoe_alerts = AssetSpec(
    "qoe_alerts",
    deps=[viewing_events],
    group_name=GROUP,
    kinds={"flink", "kafka", "redis"},
    description="QoE windows breaching the thresholds with enough attempts, on qoe-alerts and in "
    "Redis qoe:v1:alert:{alert_id} (index: qoe:v1:alerts).",
    metadata={"topic": topics.QOE_ALERTS, "redis_keys": "qoe:v1:alert:*"},
)
concurrent_viewers = AssetSpec(
    "concurrent_viewers",
    deps=[viewing_events],
    group_name=GROUP,
    kinds={"flink", "kafka", "redis"},
    description="Distinct sessions per title with a start or heartbeat in the last minute, every "
    "10 s, on qoe-aggregates (kind concurrent_viewers) and in Redis qoe:v1:viewers:{title}.",
    metadata={"topic": topics.QOE_AGGREGATES, "redis_keys": "qoe:v1:viewers:*"},
)


RECONCILIATION_CHECK = "matches_lake_recomputation"
RECONCILED = {"qoe_window": qoe_aggregates, "concurrent_viewers": concurrent_viewers}
"""Record kind on qoe-aggregates -> the asset whose check compares it."""


class StreamReconciliationConfig(Config):
    """Which day and topics to compare; the window sizes must be the job's."""

    date: str = Field(default="", description="UTC date YYYY-MM-DD; empty: yesterday.")
    events_topic: str = topics.VIEWING_EVENTS
    aggregates_topic: str = topics.QOE_AGGREGATES
    qoe_window_ms: int = QOE_WINDOW_MS
    viewers_window_ms: int = VIEWERS_WINDOW_MS
    viewers_slide_ms: int = VIEWERS_SLIDE_MS
    arrival_slack_days: int = Field(
        default=1,
        description="Bronze is read for Kafka dates this many days either side of the date: "
        "events of the day arrive within it (a later arrival the stream dropped as late).",
    )

    def day(self) -> date:
        if self.date:
            return date.fromisoformat(self.date)
        return datetime.now(UTC).date() - timedelta(days=1)


def _published(kafka: KafkaResource, topic: str, day: date) -> list[dict]:
    """The aggregates topic from a day before `day` on (record times are at or after their
    window's end, so no window of `day` is older); a value that is not JSON is skipped."""
    since = datetime.combine(day - timedelta(days=1), datetime.min.time(), UTC)
    records = []
    for value in kafka.read_since(topic, int(since.timestamp() * 1000)):
        try:
            records.append(json.loads(value))
        except (TypeError, ValueError):
            continue
    return records


def _result_metadata(outcome: Reconciliation, late: int) -> dict[str, MetadataValue]:
    metadata = {
        "windows_compared": MetadataValue.int(outcome.compared),
        "windows_matched": MetadataValue.int(outcome.matched),
        "windows_missing_in_stream": MetadataValue.int(len(outcome.missing_in_stream)),
        "windows_only_in_stream": MetadataValue.int(len(outcome.extra_in_stream)),
        "windows_differing": MetadataValue.int(len({m.key for m in outcome.differing})),
        "windows_still_open": MetadataValue.int(outcome.open_windows),
        "windows_republished_differently": MetadataValue.int(len(outcome.republished)),
        "late_reports_applied": MetadataValue.int(late),
    }
    rows = [
        f"| {' / '.join(key)} | missing in stream | | |" for key in outcome.missing_in_stream
    ] + [f"| {' / '.join(key)} | only in stream | | |" for key in outcome.extra_in_stream]
    rows += [
        f"| {' / '.join(key)} | published twice, differently | | |" for key in outcome.republished
    ]
    rows += [
        f"| {' / '.join(m.key)} | {m.field} | {m.stream} | {m.batch} |" for m in outcome.differing
    ]
    if rows:
        header = "| window | field | stream | lake |\n|---|---|---|---|\n"
        metadata["first_differences"] = MetadataValue.md(header + "\n".join(rows[:20]))
    return metadata


@multi_asset_check(
    specs=[
        AssetCheckSpec(
            RECONCILIATION_CHECK,
            asset=asset.key,
            description=f"Every {kind} window the stream closed for the day equals its "
            "recomputation in Spark over bronze (spark_jobs/qoe_windows.py); none missing, none "
            "extra.",
        )
        for kind, asset in RECONCILED.items()
    ],
    op_tags=SPARK_TAGS,
)
def stream_matches_lake(
    context: AssetCheckExecutionContext,
    config: StreamReconciliationConfig,
    kafka: KafkaResource,
    spark: SparkResource,
    object_store: ObjectStoreResource,
) -> Iterator[AssetCheckResult]:
    """A day's QoE windows and viewer counts as published vs as recomputed from the lake."""
    day = config.day()
    session, path = spark.get_session(), object_store.table_uri(tables.BRONZE_VIEWING_EVENTS)
    if not delta_io.is_delta(session, path):
        raise Failure(
            f"no bronze_viewing_events table at {path}: materialize bronze_viewing_events "
            "first; the stream is compared with what the lake ingested"
        )
    published = _published(kafka, config.aggregates_topic, day)
    bronze = session.read.format("delta").load(path)
    bronze = silver.bronze_window(bronze, day, config.arrival_slack_days).where(
        F.col("topic") == config.events_topic
    )
    events = qoe_windows.stream_events(bronze).cache()
    late = late_reports(published)
    frames = {
        "qoe_window": qoe_windows.qoe_windows(events, config.qoe_window_ms, late=late),
        "concurrent_viewers": qoe_windows.concurrent_viewers(
            events, config.viewers_window_ms, config.viewers_slide_ms, late=late
        ),
    }
    prefix = day.isoformat()
    for kind, asset in RECONCILED.items():
        of_kind = [r for r in published if r.get("kind") == kind]
        batch = [
            row.asDict()
            for row in frames[kind].where(F.col("window_start").startswith(prefix)).collect()
        ]
        outcome = reconcile(
            kind,
            [r for r in of_kind if str(r.get("window_start", "")).startswith(prefix)],
            batch,
            closed_until=max((str(r["window_end"]) for r in of_kind), default=None),
        )
        context.log.info(
            f"{kind} on {prefix}: {outcome.matched}/{outcome.compared} windows match, "
            f"{outcome.open_windows} still open"
        )
        yield AssetCheckResult(
            asset_key=asset.key,
            check_name=RECONCILIATION_CHECK,
            passed=outcome.ok,
            metadata={
                "date": MetadataValue.text(prefix),
                **_result_metadata(outcome, len(late)),
            },
        )
    events.unpersist()


stream_reconciliation_job = define_asset_job(
    "stream_reconciliation_job",
    selection=AssetSelection.checks(
        *(AssetCheckKey(asset.key, RECONCILIATION_CHECK) for asset in RECONCILED.values())
    ),
    tags={**SPARK_TAGS, **k8s_run_tags("spark")},
    description="Compares yesterday's QoE stream output with its recomputation from bronze.",
)
ASSETS = [viewing_events, qoe_aggregates, qoe_alerts, concurrent_viewers]
CHECKS = [stream_matches_lake]
JOBS = [stream_reconciliation_job]
STREAM_ASSET_KEYS: list[AssetKey] = [qoe_aggregates.key, qoe_alerts.key, concurrent_viewers.key]
