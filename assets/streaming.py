"""The real-time QoE stream as external assets, observed by a sensor.

The PyFlink job (streaming/qoe_job.py) runs outside Dagster, in its own virtualenv; Dagster
shows what it produces and how far behind it is. The sensor records, per output, the consumer
lag of the job (viewing-events not yet read) and of the Redis sink, and the end of the last
window written, read through the kafka and redis resources. Nothing here imports pyflink.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

from confluent_kafka import TopicPartition
from dagster import (
    AssetKey,
    AssetObservation,
    AssetSpec,
    MetadataValue,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from netflix_assets import topics
from resources.kafka import KafkaResource
from resources.redis import RedisResource
from streaming.flink.redis_sink import ALERTS_INDEX, META

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


ASSETS = [viewing_events, qoe_aggregates, qoe_alerts, concurrent_viewers]
SENSORS = [qoe_stream_observation_sensor]
STREAM_ASSET_KEYS: list[AssetKey] = [qoe_aggregates.key, qoe_alerts.key, concurrent_viewers.key]
