"""The real-time QoE stream as external assets, observed by a sensor, reconciled with the lake.

The PyFlink job (streaming/qoe_job.py) runs outside Dagster, in its own virtualenv; Dagster
shows what it produces and how far behind it is. The sensor records, per output, the consumer
lag of the job (viewing-events not yet read) and of the Redis sink, and the end of the last
window written, read through the kafka and redis resources. The check `matches_lake_recomputation`
recomputes a day's windows in Spark from the bronze table and compares them with what the stream
published. Nothing here imports pyflink.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from confluent_kafka import TopicPartition
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSpec,
    AssetKey,
    AssetObservation,
    AssetSelection,
    AssetSpec,
    Config,
    DefaultScheduleStatus,
    Failure,
    MetadataValue,
    ScheduleDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    define_asset_job,
    multi_asset_check,
    sensor,
)
from pydantic import Field
from pyspark.sql import functions as F

from netflix_assets.run_profiles import SPARK_TAGS, k8s_run_tags
from resources.kafka import KafkaResource
from resources.object_store import ObjectStoreResource
from resources.redis import RedisResource
from resources.spark import SparkResource
from schema import topics
from schema.qoe import QOE_WINDOW_MS, VIEWERS_SLIDE_MS, VIEWERS_WINDOW_MS
from spark_jobs import delta_io, qoe_windows, silver
from spark_jobs.paths import table_uri
from streaming.flink.redis_sink import ALERTS_INDEX, META
from streaming.reconcile import Reconciliation, late_reports, reconcile

GROUP = "streaming"
JOB_GROUP_ID = "qoe-job"
REDIS_SINK_GROUP_ID = "qoe-redis-sink"

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


@dataclass(frozen=True)
class StreamState:
    """What the sensor reads: lags in messages, window ends as RFC 3339 strings ("" if none)."""

    job_lag: int
    sink_lag: dict[str, int]
    last_window_end: dict[str, str]
    alerts_last_day: int
    read_at: datetime


def consumer_lag(kafka: KafkaResource, topic: str, group_id: str) -> int:
    """Messages of a topic beyond the group's committed offsets (all of them if none)."""
    ends = kafka.watermarks(topic)
    consumer = kafka.consumer(group_id=group_id)
    try:
        committed = consumer.committed(
            [TopicPartition(topic, p) for p in ends], timeout=kafka.request_timeout_s
        )
    finally:
        consumer.close()
    lag = 0
    for tp in committed:
        low, high = ends[tp.partition]
        lag += high - (tp.offset if tp.offset >= 0 else low)
    return lag


def read_stream_state(kafka: KafkaResource, redis: RedisResource) -> StreamState:
    client = redis.client()
    meta = {k.decode(): v.decode() for k, v in client.hgetall(META).items()}
    now = datetime.now(UTC)
    return StreamState(
        job_lag=consumer_lag(kafka, topics.VIEWING_EVENTS, JOB_GROUP_ID),
        sink_lag={
            t: consumer_lag(kafka, t, REDIS_SINK_GROUP_ID)
            for t in (topics.QOE_AGGREGATES, topics.QOE_ALERTS)
        },
        last_window_end={
            kind: meta.get(f"last_{kind}_window_end", "") for kind in ("viewers", "qoe", "alert")
        },
        alerts_last_day=client.zcount(ALERTS_INDEX, now.timestamp() - 86_400, "+inf"),
        read_at=now,
    )


def _age_s(window_end: str, now: datetime) -> float | None:
    if not window_end:
        return None
    return round((now - datetime.fromisoformat(window_end.replace("Z", "+00:00"))).total_seconds())


def stream_observations(state: StreamState) -> list[AssetObservation]:
    """One observation per output: lag of the job and of the Redis sink, last window end."""
    outputs = {
        concurrent_viewers.key: ("viewers", topics.QOE_AGGREGATES),
        qoe_aggregates.key: ("qoe", topics.QOE_AGGREGATES),
        qoe_alerts.key: ("alert", topics.QOE_ALERTS),
    }
    observations = []
    for key, (kind, topic) in outputs.items():
        end = state.last_window_end[kind]
        metadata = {
            "job_consumer_lag": MetadataValue.int(state.job_lag),
            "redis_sink_consumer_lag": MetadataValue.int(state.sink_lag[topic]),
            "last_window_end": MetadataValue.text(end or "none yet"),
        }
        age = _age_s(end, state.read_at)
        if age is not None:
            metadata["last_window_age_s"] = MetadataValue.float(float(age))
        if key == qoe_alerts.key:
            metadata["alerts_last_24h"] = MetadataValue.int(state.alerts_last_day)
        observations.append(AssetObservation(asset_key=key, metadata=metadata))
    return observations


@sensor(
    name="qoe_stream_observation_sensor",
    minimum_interval_seconds=60,
    description="Records the QoE stream's consumer lag and last window end on its assets.",
)
def qoe_stream_observation_sensor(
    context: SensorEvaluationContext, kafka: KafkaResource, redis: RedisResource
) -> SensorResult | SkipReason:
    try:
        state = read_stream_state(kafka, redis)
    except Exception as exc:  # a stopped stack must not fail the daemon's tick
        return SkipReason(f"QoE stream not observable (is the stack up? `make up`): {exc}")
    context.log.info(f"QoE job lag {state.job_lag}, last windows {state.last_window_end}")
    return SensorResult(asset_events=stream_observations(state))


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
    session, path = spark.get_session(), table_uri(object_store, "bronze_viewing_events")
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
stream_reconciliation_schedule = ScheduleDefinition(
    job=stream_reconciliation_job,
    cron_schedule="30 2 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.STOPPED,
    description="Daily, once yesterday's bronze has landed; start it where the QoE job runs.",
)

ASSETS = [viewing_events, qoe_aggregates, qoe_alerts, concurrent_viewers]
CHECKS = [stream_matches_lake]
JOBS = [stream_reconciliation_job]
SCHEDULES = [stream_reconciliation_schedule]
SENSORS = [qoe_stream_observation_sensor]
STREAM_ASSET_KEYS: list[AssetKey] = [qoe_aggregates.key, qoe_alerts.key, concurrent_viewers.key]
