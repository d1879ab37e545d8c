"""The sensor asks for bronze exactly when Kafka has offsets bronze does not hold."""

from __future__ import annotations

import uuid

import pytest
from dagster import DagsterInstance, build_sensor_context

from netflix_assets.run_profiles import K8S_CONFIG_TAG, k8s_run_tags
from resources.kafka import KafkaResource
from resources.object_store import ObjectStoreResource
from schema import topics
from sensors.viewing_events import viewing_events_sensor
from spark_jobs.bronze import bronze_next_offsets, plan_range

pytestmark = pytest.mark.stack


def test_sensor_requests_once_per_new_range(kafka_resource: KafkaResource, tmp_path) -> None:
    store = ObjectStoreResource(root=str(tmp_path))
    producer = kafka_resource.producer()
    producer.produce(topics.VIEWING_EVENTS, b"{}", uuid.uuid4().hex.encode())
    assert producer.flush(15) == 0
    with DagsterInstance.ephemeral() as instance:
        context = build_sensor_context(
            instance=instance, resources={"kafka": kafka_resource, "object_store": store}
        )
        first = viewing_events_sensor(context)
        second = viewing_events_sensor(context)
    assert first.run_key == second.run_key  # same range -> same key -> one run
    assert first.run_key.startswith(f"{topics.VIEWING_EVENTS}:")
    # A bronze run is Spark work: on Kubernetes its pod gets the spark profile.
    assert first.tags[K8S_CONFIG_TAG] == k8s_run_tags("spark")[K8S_CONFIG_TAG]


def test_plan_starts_where_bronze_ends(tmp_path) -> None:
    assert bronze_next_offsets(str(tmp_path / "no-table"), "viewing-events") == {}
    assert plan_range({}, {0: (5, 5), 1: (0, 0)}) == {}  # empty partitions: nothing to read
    assert plan_range({0: 3}, {0: (0, 7), 1: (0, 2)}) == {0: (3, 7), 1: (0, 2)}
    assert plan_range({0: 7}, {0: (0, 7)}) == {}  # bronze is current
    # Retention deleted offsets bronze never read: an error, see test_lost_offsets.py.
