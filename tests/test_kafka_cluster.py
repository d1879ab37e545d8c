"""The three-broker Kafka's hooks in the local stack and its node configuration, without
starting a JVM (the broker-loss test in tests/cluster/test_kafka_broker_loss.py runs a real
cluster)."""

from __future__ import annotations

from pathlib import Path

import pytest

from netflix_assets import settings
from netflix_assets.stack import kafka_cluster, manager
from netflix_assets.stack.errors import StackError
from netflix_assets.stack.services import KafkaService

PORTS = kafka_cluster.ClusterPorts(clients=(101, 102, 103), controllers=(201, 202, 203))


def properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def test_kafka_cluster_is_an_optional_service_of_the_stack() -> None:
    assert [s.name for s in manager._select(["kafka", "kafka-cluster"])] == [
        "kafka",
        "kafka-cluster",
    ]
    assert "kafka-cluster" not in [s.name for s in manager._select(None)]


def test_stack_cluster_ports_leave_the_single_broker_alone(monkeypatch) -> None:
    monkeypatch.delenv(kafka_cluster.PORT_ENV, raising=False)
    ports = kafka_cluster.stack_ports()
    single = settings.ports()
    taken = {single.kafka, single.kafka_controller}
    assert len({*ports.clients, *ports.controllers}) == 6
    assert not taken & {*ports.clients, *ports.controllers}
    monkeypatch.setenv(kafka_cluster.PORT_ENV, "30000")
    assert kafka_cluster.stack_ports() == kafka_cluster.ClusterPorts(
        (30000, 30001, 30002), (30003, 30004, 30005)
    )
    service = kafka_cluster.KafkaClusterService()
    assert service.endpoint == "127.0.0.1:30000,127.0.0.1:30001,127.0.0.1:30002"
    assert service.home == settings.state_dir() / "kafka-cluster"


def test_node_is_the_single_broker_in_a_static_quorum_with_replication_3(tmp_path) -> None:
    node = kafka_cluster.KafkaNode(tmp_path, PORTS, 1)
    props = properties(node._properties(KafkaService.LISTENER, node.port))
    single = properties(KafkaService()._properties(KafkaService.LISTENER, 19092))
    assert props["node.id"] == "2"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:201,2@127.0.0.1:202,3@127.0.0.1:203"
    assert "controller.quorum.bootstrap.servers" not in props
    assert props["listeners"] == "SASL_PLAINTEXT://127.0.0.1:102,CONTROLLER://127.0.0.1:202"
    assert props["log.dirs"] == str(tmp_path / "kafka-2" / "data")
    for key in ("default.replication.factor", "offsets.topic.replication.factor"):
        assert props[key] == "3", key
    assert props["min.insync.replicas"] == props["transaction.state.log.min.isr"] == "2"
    same = ("sasl.enabled.mechanisms", "log.retention.ms", "auto.create.topics.enable")
    assert {k: props[k] for k in same} == {k: single[k] for k in same}
    jaas = "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config"
    assert props[jaas] == single[jaas]


def test_nodes_have_their_own_folders_markers_and_one_cluster_id(tmp_path) -> None:
    cluster = kafka_cluster.KafkaCluster(tmp_path, PORTS)
    assert [n.name for n in cluster.nodes] == ["kafka-1", "kafka-2", "kafka-3"]
    assert len({n.marker for n in cluster.nodes}) == 3
    assert all(n.marker.startswith(str(tmp_path)) for n in cluster.nodes)
    assert cluster.bootstrap_servers == "127.0.0.1:101,127.0.0.1:102,127.0.0.1:103"
    ids = {tuple(n._format_args()) for n in cluster.nodes}
    assert len(ids) == 1 and "--standalone" not in next(iter(ids))
    assert (tmp_path / "cluster-id").read_text().strip() == next(iter(ids))[1]


def test_empty_cluster_id_and_unknown_node_name_the_fix(tmp_path: Path) -> None:
    (tmp_path / "cluster-id").write_text("\n")
    with pytest.raises(StackError, match="cluster-id is empty: remove"):
        kafka_cluster.cluster_id(tmp_path)
    cluster = kafka_cluster.KafkaCluster(tmp_path, PORTS)
    with pytest.raises(StackError, match="no Kafka node 4: the cluster's ids are 1-3"):
        cluster.kill(4)
    with pytest.raises(StackError, match=r"node 1 \(kafka-1\) is not running; nothing to kill"):
        cluster.kill(1)
