"""Upload events on a real broker become title partitions and run requests, exactly once."""

from __future__ import annotations

import json
import uuid

import pytest
from dagster import DagsterInstance

from netflix_assets.video.publish import write_catalog
from netflix_assets.video.upload import parse_upload_message, upload_title
from schema import topics

pytestmark = pytest.mark.stack


def test_upload_to_run_request_once(clip, kafka_resource, object_store, upload_sensor_tick) -> None:
    tick = upload_sensor_tick
    kafka_resource.ensure_topics([topics.UPLOADS])
    with DagsterInstance.ephemeral() as instance:
        # Skip what earlier runs left on the topic (a tick reads at most 200 messages): tick
        # until the cursor stops moving, and count only what this test quarantines.
        cursor, previous = tick(instance, kafka_resource, object_store, None).cursor, None
        while cursor != previous:
            previous, cursor = cursor, tick(instance, kafka_resource, object_store, cursor).cursor
        earlier = set(object_store.list_keys("quarantine/upload-events"))
        event = upload_title(clip("silent"), object_store, kafka_resource, title="Silent Film")
        producer = kafka_resource.producer()
        producer.produce(topics.UPLOADS, key=b"junk", value=b"{not json")
        producer.produce(topics.UPLOADS, key=b"x", value=json.dumps({"title_id": "x"}).encode())
        # The broker re-delivers the same event (a producer retry, a replayed topic).
        producer.produce(topics.UPLOADS, key=b"dup", value=json.dumps(event).encode())
        assert producer.flush(15) == 0

        first = tick(instance, kafka_resource, object_store, cursor)
        assert [r.partition_key for r in first.run_requests] == [event["title_id"]]
        request = first.run_requests[0]
        assert request.run_key == f"{event['title_id']}:{event['sha256'][:12]}"
        config = request.run_config["ops"]["raw_upload"]["config"]
        assert config["object_key"] == event["object_key"] and config["sha256"] == event["sha256"]
        assert first.dynamic_partitions_requests[0].partition_keys == [event["title_id"]]
        quarantined = set(object_store.list_keys("quarantine/upload-events")) - earlier
        assert len(quarantined) == 2
        reasons = [json.loads(object_store.get_bytes(k))["reason"] for k in quarantined]
        assert any(r.startswith("not JSON") for r in reasons)
        assert any("breaks schema" in r for r in reasons)

        # Offsets moved past everything read: the next tick has nothing to do.
        second = tick(instance, kafka_resource, object_store, first.cursor)
        assert not second.run_requests and second.cursor == first.cursor
        # Replaying from the old cursor (a tick that crashed before it was recorded) asks
        # for the same run key, which Dagster turns into no second run.
        replay = tick(instance, kafka_resource, object_store, cursor)
        assert [r.run_key for r in replay.run_requests] == [request.run_key]


def test_parse_upload_message_names_the_problem() -> None:
    assert parse_upload_message(None)[1] == "empty message (tombstone)"
    assert parse_upload_message(b"[1, 2")[1].startswith("not JSON")
    event, error = parse_upload_message(json.dumps({"schema_version": 2}).encode())
    assert event is None and "breaks schema" in error


def test_a_fresh_instance_does_not_transcode_a_published_version_again(
    clip, kafka_resource, object_store, postgres_resource, upload_sensor_tick
) -> None:
    """Run keys live in the instance: a new instance replaying the topic asked for a second run
    of every title; the catalog says which versions are already published."""
    tick = upload_sensor_tick
    postgres_resource.apply_schema()
    kafka_resource.ensure_topics([topics.UPLOADS])
    with DagsterInstance.ephemeral() as instance:
        cursor, previous = tick(instance, kafka_resource, object_store, None).cursor, None
        while cursor != previous:
            previous, cursor = cursor, tick(instance, kafka_resource, object_store, cursor).cursor
        ids = [f"published-{uuid.uuid4().hex[:8]}", f"fresh-{uuid.uuid4().hex[:8]}"]
        published, fresh = (
            upload_title(clip("silent"), object_store, kafka_resource, title_id=i) for i in ids
        )
        version = published["sha256"][:12]
        with postgres_resource.connect() as conn:
            write_catalog(
                conn,
                {
                    "title_id": published["title_id"],
                    "title": "Old",
                    "version": version,
                    "sha256": published["sha256"],
                    "playback_url": "delivery/x/master.m3u8",
                    "manifest_uri": "delivery/x/master.m3u8",
                    "dash_uri": None,
                },
                [],
                [],
                [],
            )
        result = tick(instance, kafka_resource, object_store, cursor)
    assert [r.partition_key for r in result.run_requests] == [fresh["title_id"]]
