"""viewing_events_sensor: start a bronze micro-batch when Kafka holds events bronze does not.

It compares the topic's end offsets with the offsets bronze already holds (read from the bronze
table without a JVM) and requests one bronze run per new range; the run key is the range's
version, so a range is requested once however often the sensor ticks. Silver and gold follow by
declarative automation.

When Kafka lost offsets bronze needs (retention, a re-created topic: by offsets or by topic id),
it requests one bronze run per loss: that run fails its blocking check kafka_offsets_intact
naming topic, partition and range, instead of the sensor saying bronze holds every offset.
"""

import hashlib

from dagster import (
    AssetKey,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from netflix_assets.offsets import OffsetsLost
from netflix_assets.run_profiles import SPARK_TAGS, k8s_run_tags
from resources.kafka import KafkaResource
from resources.object_store import ObjectStoreResource
from schema import tables, topics
from spark_jobs.bronze import bronze_next_offsets, bronze_topic_id, plan_range, range_version


@sensor(
    asset_selection=[AssetKey(tables.BRONZE_VIEWING_EVENTS.asset_key_path)],
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="Requests a bronze ingest when the viewing-events topic has new offsets.",
)
def viewing_events_sensor(
    context: SensorEvaluationContext, kafka: KafkaResource, object_store: ObjectStoreResource
):
    path = object_store.table_uri(tables.BRONZE_VIEWING_EVENTS)
    topic = topics.VIEWING_EVENTS
    try:
        plan = plan_range(
            bronze_next_offsets(path, topic),
            kafka.watermarks(topic),
            topic,
            kept_topic_id=bronze_topic_id(path, topic),
            topic_id=kafka.topic_id(topic),
        )
    except OffsetsLost as exc:
        context.log.error(str(exc))
        # Keyed by what was lost (not by the topic's growing end), so one run per loss.
        lost = [(g.partition, g.kept_next, g.low, g.recreated) for g in exc.gaps]
        digest = hashlib.sha256(repr((lost, exc.topic_ids)).encode()).hexdigest()[:16]
        return RunRequest(
            run_key=f"{topic}:lost:{digest}",
            tags={**SPARK_TAGS, "netflix-assets/lost-offsets": "true", **k8s_run_tags("spark")},
        )
    if not plan:
        return SkipReason("bronze holds every offset of the topic")
    new_events = sum(end - start for start, end in plan.values())
    context.log.info(f"{new_events} new events in {len(plan)} partitions")
    return RunRequest(
        run_key=f"{topics.VIEWING_EVENTS}:{range_version(plan)}",
        tags={
            **SPARK_TAGS,
            "netflix-assets/new-events": str(new_events),
            **k8s_run_tags("spark"),
        },
    )


SENSORS = [viewing_events_sensor]
