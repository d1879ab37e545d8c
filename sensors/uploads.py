"""title_upload_sensor: turn upload events on Kafka into title partitions and pipeline runs.

The Kafka offsets live in the sensor cursor, which Dagster stores in the same tick as the
partitions and run requests it returns, so the offsets move on only once those are recorded. A
crash mid-tick re-reads the same messages, and the run key (title and content version) makes a
re-delivered event a no-op instead of a second run. Malformed events are kept in the object
store's quarantine with their reason and skipped.

Run keys live in the Dagster instance, so a fresh instance (new storage) would replay the whole
topic and transcode every title again; the sensor therefore also asks the catalog, and an event
for a version that is already published starts nothing.

The sensor starts the `video_pipeline` job (assets/video.py) by name: sensors do not import the
asset modules they trigger.
"""

import json

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from netflix_assets.partitions import title_partitions
from netflix_assets.video.publish import published_versions
from netflix_assets.video.upload import read_upload_messages
from resources.kafka import KafkaResource
from resources.object_store import ObjectStoreResource
from resources.postgres import PostgresResource
from schema import topics


def _cursor(raw: str | None) -> dict[int, int]:
    return {int(p): int(o) for p, o in json.loads(raw).items()} if raw else {}


@sensor(
    job_name="video_pipeline",
    minimum_interval_seconds=10,
    default_status=DefaultSensorStatus.RUNNING,
    description="Adds a title partition and starts the video pipeline for each upload event.",
)
def title_upload_sensor(
    context: SensorEvaluationContext,
    kafka: KafkaResource,
    object_store: ObjectStoreResource,
    postgres: PostgresResource,
):
    messages, next_offsets = read_upload_messages(kafka, topics.UPLOADS, _cursor(context.cursor))
    cursor = json.dumps({str(p): o for p, o in sorted(next_offsets.items())})
    if not messages:
        return SensorResult(skip_reason=SkipReason("no new upload events"), cursor=cursor)
    known = set(context.instance.get_dynamic_partitions(title_partitions.name))
    with postgres.connect() as conn:
        published = published_versions(
            conn, {(m.event["title_id"], m.event["sha256"][:12]) for m in messages if m.event}
        )
    new_titles: list[str] = []
    requests: dict[str, RunRequest] = {}
    for msg in messages:
        if msg.event is None:
            key = f"quarantine/upload-events/{topics.UPLOADS}-{msg.partition}-{msg.offset}.json"
            record = {
                "partition": msg.partition,
                "offset": msg.offset,
                "reason": msg.error,
                "payload": msg.raw.decode("utf-8", "replace"),
            }
            object_store.put_bytes(json.dumps(record, indent=2).encode(), key)
            context.log.warning(f"skipped upload event at offset {msg.offset}: {msg.error}")
            continue
        event = msg.event
        title_id = event["title_id"]
        if (title_id, event["sha256"][:12]) in published:
            context.log.info(f"{title_id} version {event['sha256'][:12]} is already published")
            continue
        if title_id not in known and title_id not in new_titles:
            new_titles.append(title_id)
        run_key = f"{title_id}:{event['sha256'][:12]}"
        requests[run_key] = RunRequest(
            run_key=run_key,
            partition_key=title_id,
            run_config={
                "ops": {
                    "raw_upload": {
                        "config": {
                            "object_key": event["object_key"],
                            "sha256": event["sha256"],
                            "title": event["title"],
                        }
                    }
                }
            },
            tags={"netflix-assets/upload-event": event["event_id"]},
        )
    return SensorResult(
        run_requests=list(requests.values()),
        dynamic_partitions_requests=(
            [title_partitions.build_add_request(new_titles)] if new_titles else []
        ),
        cursor=cursor,
    )


SENSORS = [title_upload_sensor]
