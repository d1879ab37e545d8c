"""Kafka with three brokers loses one while the simulator produces; bronze holds every produced
event exactly once.

A private three-node cluster (KRaft, SASL/SCRAM, as `stack up kafka-cluster` runs it) on free
loopback ports, and a topic with replication 3 and min.insync.replicas=2. The simulator produces
through the project's producer (idempotent, acks=all), paced over about 20 s. Once a third of
its events are in, the node that leads the most partitions is killed with SIGKILL; the producer
goes on against the other two. With the node still down, the real bronze step
(`spark_jobs.steps.ingest_bronze`) reads the topic from the cluster: bronze must hold as many
rows as events were produced, one per event id, and exactly the ids the simulator made. Then the
node is started again and must rejoin every partition's in-sync replicas.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pytest
from confluent_kafka.admin import ConfigResource
from deltalake import DeltaTable

from netflix_assets.clients.kafka import KafkaClient
from netflix_assets.stack.kafka_cluster import (
    MIN_INSYNC_REPLICAS,
    REPLICATION,
    KafkaCluster,
    free_ports,
)
from netflix_assets.stack.process import wait_until
from resources.object_store import ObjectStoreResource
from schema import tables
from spark_jobs import steps
from streaming.produce import produce_simulated
from streaming.simulator import SimConfig, Simulator

pytestmark = pytest.mark.slow

DAY = date(2026, 11, 2)
CONFIG = SimConfig(users=300, titles=40, start=DAY, malformed_share=0.0, duplicate_share=0.0)
"""No malformed or duplicate messages: every message is one event with its own id."""
RATE = 2000
"""Events/s: the production spans about 20 s, so the kill lands mid-stream."""
PARTITIONS = 3


def acknowledged(client: KafkaClient, topic: str) -> int:
    """Events the in-sync replicas hold (high watermarks: with acks=all, what was acknowledged)."""
    return sum(high - low for low, high in client.watermarks(topic).values())


def partitions(client: KafkaClient, topic: str) -> dict[int, tuple[int, list[int]]]:
    """Per partition: its leader's node id and its in-sync replicas."""
    meta = client.admin().list_topics(topic, timeout=10).topics[topic].partitions
    return {p: (m.leader, sorted(m.isrs)) for p, m in meta.items()}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with KafkaCluster(tmp_path_factory.mktemp("kafka-cluster"), free_ports()) as running:
        yield running


def test_bronze_holds_every_event_once_after_a_broker_is_killed(cluster, spark, tmp_path) -> None:
    client = cluster.client()
    topic = f"viewing-events-broker-loss-{uuid.uuid4().hex[:8]}"
    assert cluster.create_topics({topic: PARTITIONS}) == [topic]
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    admin = client.admin()  # held until the answer arrives: a dropped handle cancels it
    topic_config = admin.describe_configs([resource])[resource].result(10)
    assert topic_config["min.insync.replicas"].value == str(MIN_INSYNC_REPLICAS)
    before = partitions(client, topic)
    assert all(len(isr) == REPLICATION for _, isr in before.values()), before
    victim = Counter(leader for leader, _ in before.values()).most_common(1)[0][0]

    expected = Counter(json.loads(m.value)["event_id"] for m in Simulator(CONFIG).messages())
    assert len(expected) == sum(expected.values()), "the simulator repeated an event id"
    with ThreadPoolExecutor(max_workers=1) as pool:
        producing = pool.submit(produce_simulated, client, CONFIG, RATE, topic)
        third = len(expected) // 3
        assert wait_until(
            lambda: producing.done() or acknowledged(client, topic) >= third, 120, 0.2
        )
        assert not producing.done(), "the producer finished before the broker could be killed"
        at_kill = acknowledged(client, topic)
        cluster.kill(victim)
        report = producing.result(timeout=300)

    assert report.produced == len(expected)
    assert at_kill < report.produced, "nothing was produced after the kill"
    assert wait_until(
        lambda: victim not in {leader for leader, _ in partitions(client, topic).values()}, 60
    ), f"node {victim} still leads a partition after it was killed"
    assert acknowledged(client, topic) == report.produced

    assert not cluster.node(victim).running()
    store = ObjectStoreResource(root=str(tmp_path / "lake"))
    result = steps.ingest_bronze(spark, store, cluster.settings(), topic, client.watermarks(topic))
    assert result.written.rows == report.produced
    values = (
        DeltaTable(store.table_uri(tables.BRONZE_VIEWING_EVENTS))
        .to_pyarrow_table(columns=["value"])
        .column("value")
        .to_pylist()
    )
    held = Counter(json.loads(value)["event_id"] for value in values)
    assert len(values) == report.produced
    assert len(held) == report.produced, f"duplicates: {[i for i, n in held.items() if n > 1][:5]}"
    assert held == expected

    assert cluster.restart(victim) == "started"
    assert wait_until(
        lambda: all(len(isr) == REPLICATION for _, isr in partitions(client, topic).values()),
        120,
    ), f"node {victim} did not rejoin the in-sync replicas: {partitions(client, topic)}"
