"""viewing_events_sensor: start a bronze micro-batch when Kafka holds events bronze does not.

It compares the topic's end offsets with the offsets bronze already holds (read from the bronze
table without a JVM) and requests one bronze run per new range; the run key is the range's
version, so a range is requested once however often the sensor ticks. Silver and gold follow by
declarative automation.
"""

from dagster import (
    AssetKey,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from netflix_assets.run_profiles import SPARK_TAGS, k8s_run_tags
from resources.kafka import KafkaResource
from resources.object_store import ObjectStoreResource
from schema import tables, topics
from spark_jobs.bronze import bronze_next_offsets, plan_range, range_version


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
    # Lost offsets raise OffsetsLost naming the range: the tick fails, visibly, every time,
    # instead of reporting that bronze holds every offset.
    plan = plan_range(
        bronze_next_offsets(path, topics.VIEWING_EVENTS),
        kafka.watermarks(topics.VIEWING_EVENTS),
        topics.VIEWING_EVENTS,
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
