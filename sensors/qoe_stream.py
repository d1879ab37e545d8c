"""qoe_stream_observation_sensor: record how far behind the QoE stream is, on its assets.

The PyFlink job (streaming/qoe_job.py) runs outside Dagster, so nothing materializes its outputs;
this sensor observes them instead. Per output it records the consumer lag of the job
(viewing-events not yet read) and of the Redis sink, and the end of the last window written,
read through the kafka and redis resources. The outputs are addressed by asset key: the external
assets themselves live in assets/streaming.py, which a sensor does not import.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

from confluent_kafka import TopicPartition
from dagster import (
    AssetKey,
    AssetObservation,
    MetadataValue,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from resources.kafka import KafkaResource
from resources.redis import RedisResource
from schema import topics
from streaming.flink.redis_sink import ALERTS_INDEX, META

JOB_GROUP_ID = "qoe-job"
REDIS_SINK_GROUP_ID = "qoe-redis-sink"

OBSERVED: dict[AssetKey, tuple[str, str]] = {
    AssetKey("concurrent_viewers"): ("viewers", topics.QOE_AGGREGATES),
    AssetKey("qoe_aggregates"): ("qoe", topics.QOE_AGGREGATES),
    AssetKey("qoe_alerts"): ("alert", topics.QOE_ALERTS),
}
"""Stream output asset -> (its window kind in the sink's meta hash, the topic it is written to)."""


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
    observations = []
    for key, (kind, topic) in OBSERVED.items():
        end = state.last_window_end[kind]
        metadata = {
            "job_consumer_lag": MetadataValue.int(state.job_lag),
            "redis_sink_consumer_lag": MetadataValue.int(state.sink_lag[topic]),
            "last_window_end": MetadataValue.text(end or "none yet"),
        }
        age = _age_s(end, state.read_at)
        if age is not None:
            metadata["last_window_age_s"] = MetadataValue.float(float(age))
        if kind == "alert":
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


SENSORS = [qoe_stream_observation_sensor]
