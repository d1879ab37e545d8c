"""Offsets deleted from Kafka (retention, delete-records) or a re-created topic are reported by
topic, partition and range, never skipped: by bronze's plan, the bronze asset and its blocking
check kafka_offsets_intact, the viewing-events sensor and the upload sensor's reader, on real
topics whose data was really deleted. A topic re-created with as many offsets as bronze read is
found by its topic id."""

from __future__ import annotations

import time
import uuid

import pyarrow as pa
import pytest
from confluent_kafka import KafkaException, TopicPartition
from dagster import (
    AssetCheckSeverity,
    DagsterInstance,
    RunRequest,
    build_sensor_context,
    materialize,
)
from deltalake import write_deltalake

from assets.lake import bronze_viewing_events
from netflix_assets.offsets import OffsetsLost, offset_gaps
from netflix_assets.video.upload import read_upload_messages
from resources.kafka import KafkaResource
from resources.object_store import ObjectStoreResource
from schema import tables, topics
from sensors.viewing_events import viewing_events_sensor
from spark_jobs import bronze
from spark_jobs.bronze import bronze_next_offsets, bronze_topic_id, plan_range

pytestmark = pytest.mark.stack


def produce(kafka: KafkaResource, topic: str, count: int) -> None:
    producer = kafka.producer()
    for i in range(count):
        producer.produce(topic, value=f'{{"n": {i}}}'.encode(), partition=0)
    assert producer.flush(15) == 0


def delete_records_before(kafka: KafkaResource, topic: str, offset: int) -> None:
    """What retention does, on demand: the log of partition 0 now starts at `offset`."""
    admin = kafka.admin()  # kept referenced: its futures complete on its thread
    futures = admin.delete_records([TopicPartition(topic, 0, offset)])
    for future in futures.values():
        future.result(15)
    deadline = time.monotonic() + 15
    while kafka.watermarks(topic)[0][0] < offset:
        assert time.monotonic() < deadline, "delete_records did not move the log start"
        time.sleep(0.2)


def recreate(kafka: KafkaResource, topic: str) -> None:
    admin = kafka.admin()
    for future in admin.delete_topics([topic]).values():
        future.result(15)
    deadline = time.monotonic() + 30
    while True:
        try:
            if not kafka.ensure_topics([topic], partitions=1):
                time.sleep(0.5)  # still being deleted: it exists, wait for it to go
                continue
            break
        except KafkaException:  # "marked for deletion" until the broker has finished
            assert time.monotonic() < deadline, f"{topic} was not re-created"
            time.sleep(0.5)


def bronze_table_claiming(store: ObjectStoreResource, topic: str, offsets: list[int]) -> str:
    """A bronze table whose rows say those offsets of partition 0 were ingested."""
    path = store.table_uri(tables.BRONZE_VIEWING_EVENTS)
    rows = pa.table(
        {
            "topic": [topic] * len(offsets),
            "partition": pa.array([0] * len(offsets), pa.int32()),
            "offset": pa.array(offsets, pa.int64()),
        }
    )
    write_deltalake(path, rows)
    return path


def test_plan_names_the_missing_range() -> None:
    assert plan_range({0: 3}, {0: (0, 7), 1: (0, 2)}) == {0: (3, 7), 1: (0, 2)}
    with pytest.raises(OffsetsLost, match=r"viewing-events\[0\]: offsets \[3, 10\) were deleted"):
        plan_range({0: 3}, {0: (10, 12)}, "viewing-events")
    # Acknowledged: continue from the log start.
    assert plan_range({0: 3}, {0: (10, 12)}, "t", accept_lost=True) == {0: (10, 12)}
    # Fewer offsets than bronze already read: a re-created topic, never accepted.
    with pytest.raises(OffsetsLost, match=r"re-created"):
        plan_range({0: 50}, {0: (0, 4)}, "t", accept_lost=True)
    with pytest.raises(OffsetsLost, match=r"t\[1\]: the partition no longer exists"):
        plan_range({0: 4, 1: 9}, {0: (0, 4)}, "t")
    # A partition never read, whose start was deleted, while others were read: lost too.
    assert [g.partition for g in offset_gaps({0: 4}, {0: (0, 4), 1: (5, 9)})] == [1]
    # A first read of a topic starts at the log start by design.
    assert plan_range({}, {0: (10, 12)}) == {0: (10, 12)}
    # Same offsets, another topic id: re-created and refilled; never accepted.
    assert plan_range({0: 3}, {0: (0, 5)}, "t", False, "id-a", "id-a") == {0: (3, 5)}
    with pytest.raises(OffsetsLost, match=r"topic id id-a read, id-b now.*t\[0\]: the topic id"):
        plan_range({0: 3}, {0: (0, 5)}, "t", True, "id-a", "id-b")


def test_upload_reader_reports_deleted_and_recreated(kafka_resource: KafkaResource) -> None:
    topic = f"test-lost-{uuid.uuid4().hex[:8]}"
    kafka_resource.ensure_topics([topic], partitions=1)
    try:
        produce(kafka_resource, topic, 10)
        messages, cursor = read_upload_messages(kafka_resource, topic, {0: 3}, timeout_s=10)
        assert cursor == {0: 10} and len(messages) == 7
        delete_records_before(kafka_resource, topic, 6)
        # The cursor (next offset 3) was kept before the deletion: 3..5 are gone unread.
        with pytest.raises(OffsetsLost, match=rf"{topic}\[0\]: offsets \[3, 6\) were deleted"):
            read_upload_messages(kafka_resource, topic, {0: 3})
        # Caught up before the deletion: nothing lost, nothing to say.
        assert read_upload_messages(kafka_resource, topic, {0: 10}) == ([], {0: 10})

        recreate(kafka_resource, topic)
        produce(kafka_resource, topic, 2)
        with pytest.raises(OffsetsLost, match=r"ends at offset 2 but offsets up to 9 were already"):
            read_upload_messages(kafka_resource, topic, {0: 10})
    finally:
        kafka_resource.admin().delete_topics([topic])


def test_bronze_asset_fails_naming_the_range(
    kafka_resource: KafkaResource, spark_resource, tmp_path
) -> None:
    topic = f"test-lost-{uuid.uuid4().hex[:8]}"
    kafka_resource.ensure_topics([topic], partitions=1)
    store = ObjectStoreResource(root=str(tmp_path / "objects"))
    try:
        produce(kafka_resource, topic, 8)
        delete_records_before(kafka_resource, topic, 5)
        path = bronze_table_claiming(store, topic, [0, 1])  # bronze read 0..1, next is 2
        assert bronze_next_offsets(path, topic) == {0: 2}
        result = materialize(
            [bronze_viewing_events],
            resources={"kafka": kafka_resource, "object_store": store, "spark": spark_resource},
            run_config={"ops": {"bronze_viewing_events": {"config": {"topic": topic}}}},
            raise_on_error=False,
        )
        assert not result.success
        failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
        message = failure.step_failure_data.error.message
        assert f"{topic}[0]: offsets [2, 5) were deleted" in message
        assert "accept_lost_offsets" in message
        (check,) = result.get_asset_check_evaluations()
        assert check.check_name == "kafka_offsets_intact" and not check.passed
        assert check.severity == AssetCheckSeverity.ERROR
        assert f"{topic}[0]: offsets [2, 5) were deleted" in check.description
        assert check.metadata["lost_ranges"].value == [
            {"partition": 0, "range": [2, 5], "cause": "deleted before read"}
        ]
    finally:
        kafka_resource.admin().delete_topics([topic])


def test_sensor_requests_the_failing_run_instead_of_saying_bronze_is_current(
    kafka_resource: KafkaResource, tmp_path
) -> None:
    """Bronze holds offsets beyond the topic's end: the topic was re-created. The sensor used to
    answer "bronze holds every offset of the topic" on every tick from then on; it now logs the
    loss and requests one bronze run for it (whose check fails naming the range)."""
    kafka_resource.ensure_topics([topics.VIEWING_EVENTS])
    store = ObjectStoreResource(root=str(tmp_path / "objects"))
    high = kafka_resource.watermarks(topics.VIEWING_EVENTS)[0][1]
    bronze_table_claiming(store, topics.VIEWING_EVENTS, [high + 100, high + 101])
    with DagsterInstance.ephemeral() as instance:
        context = build_sensor_context(
            instance=instance, resources={"kafka": kafka_resource, "object_store": store}
        )
        request = viewing_events_sensor(context)
        assert isinstance(request, RunRequest)
        assert request.run_key.startswith(f"{topics.VIEWING_EVENTS}:lost:")
        assert request.tags["netflix-assets/lost-offsets"] == "true"
        assert viewing_events_sensor(context).run_key == request.run_key  # one run per loss


@pytest.mark.slow
def test_bronze_records_an_acknowledged_loss_and_continues(
    kafka_resource: KafkaResource, spark_resource, tmp_path
) -> None:
    """Retention removes offsets bronze never read: the run fails naming them; run again with
    accept_lost_offsets, it appends from the log start and records the lost range."""
    topic = f"test-lost-{uuid.uuid4().hex[:8]}"
    kafka_resource.ensure_topics([topic], partitions=1)
    store = ObjectStoreResource(root=str(tmp_path / "objects"))
    resources = {"kafka": kafka_resource, "object_store": store, "spark": spark_resource}

    def bronze_run(accept: bool):
        config = {"topic": topic, "accept_lost_offsets": accept}
        return materialize(
            [bronze_viewing_events],
            resources=resources,
            run_config={"ops": {"bronze_viewing_events": {"config": config}}},
            raise_on_error=False,
        )

    try:
        produce(kafka_resource, topic, 3)
        assert bronze_run(accept=False).success
        path = store.table_uri(tables.BRONZE_VIEWING_EVENTS)
        assert bronze_next_offsets(path, topic) == {0: 3}
        produce(kafka_resource, topic, 5)  # offsets 3..7
        delete_records_before(kafka_resource, topic, 6)  # 3..5 gone before bronze read them

        refused = bronze_run(accept=False)
        assert not refused.success
        assert bronze_next_offsets(path, topic) == {0: 3}  # nothing appended past the gap

        (refused_check,) = refused.get_asset_check_evaluations()
        assert not refused_check.passed and refused_check.severity == AssetCheckSeverity.ERROR

        accepted = bronze_run(accept=True)
        assert accepted.success
        metadata = accepted.get_asset_materialization_events()[0].materialization.metadata
        assert metadata["lost_offset_ranges"].value == {"0": [3, 6]}
        (recorded,) = accepted.get_asset_check_evaluations()
        assert not recorded.passed and recorded.severity == AssetCheckSeverity.WARN
        assert f"{topic}[0]: [3, 6)" in recorded.description
        assert recorded.metadata["acknowledged_lost_ranges"].value == {"0": [3, 6]}
        assert metadata["rows_appended"].value == 2
        assert bronze_next_offsets(path, topic) == {0: 8}
        after = bronze_run(accept=False)  # from here on, nothing is missing
        assert after.success and after.get_asset_check_evaluations()[0].passed
    finally:
        kafka_resource.admin().delete_topics([topic])


@pytest.mark.slow
def test_a_topic_recreated_with_as_many_offsets_is_found_by_its_id(
    kafka_resource: KafkaResource, spark_resource, tmp_path
) -> None:
    """Delete the topic bronze read, create it again and produce as many messages: offsets alone
    say bronze is current. The stored topic id says it is another topic: the run and its check
    fail naming the range that would be skipped, and an append of the new topic's rows is
    refused even by a caller that did not compare the ids."""
    topic = f"test-recreated-{uuid.uuid4().hex[:8]}"
    kafka_resource.ensure_topics([topic], partitions=1)
    store = ObjectStoreResource(root=str(tmp_path / "objects"))
    resources = {"kafka": kafka_resource, "object_store": store, "spark": spark_resource}
    run_config = {"ops": {"bronze_viewing_events": {"config": {"topic": topic}}}}
    path = store.table_uri(tables.BRONZE_VIEWING_EVENTS)
    try:
        produce(kafka_resource, topic, 3)
        first_id = kafka_resource.topic_id(topic)
        first = materialize([bronze_viewing_events], resources=resources, run_config=run_config)
        assert first.get_asset_check_evaluations()[0].metadata["topic_id"].value == first_id
        assert bronze_next_offsets(path, topic) == {0: 3}
        assert bronze_topic_id(path, topic) == first_id

        recreate(kafka_resource, topic)
        produce(kafka_resource, topic, 3)
        second_id = kafka_resource.topic_id(topic)
        assert second_id != first_id and kafka_resource.watermarks(topic) == {0: (0, 3)}
        assert plan_range({0: 3}, {0: (0, 3)}, topic) == {}  # offsets alone see nothing

        refused = materialize(
            [bronze_viewing_events],
            resources=resources,
            run_config=run_config,
            raise_on_error=False,
        )
        assert not refused.success
        (check,) = refused.get_asset_check_evaluations()
        assert not check.passed and check.severity == AssetCheckSeverity.ERROR
        assert f"topic id {first_id} read, {second_id} now" in check.description
        assert f"{topic}[0]: the topic id changed" in check.description
        assert "offsets [0, 3) would be skipped as read" in check.description
        assert check.metadata["lost_ranges"].value == [
            {"partition": 0, "range": [0, 3], "cause": "re-created topic"}
        ]

        produce(kafka_resource, topic, 2)  # new offsets 3..4 that offsets alone would ingest
        session = spark_resource.get_session()
        rows = bronze.to_bronze(
            bronze.read_range(session, kafka_resource.kafka_settings(), topic, {0: (3, 5)})
        )
        with pytest.raises(OffsetsLost, match="topic id changed"):
            bronze.append_bronze(rows, path, topic, 5)
        assert bronze_next_offsets(path, topic) == {0: 3}
    finally:
        kafka_resource.admin().delete_topics([topic])
