"""Kafka with three brokers on loopback: KRaft, each node a broker and a controller, clients on
SASL/SCRAM-SHA-512 as on the single broker.

`netflix-assets stack up kafka-cluster` (or `stack up --with kafka-cluster`) starts it beside the
stack's single broker, which it never touches: its own ports (19292-19294 for clients, 19295-19297
for the controllers; NETFLIX_ASSETS_KAFKA_CLUSTER_PORT moves the first, the rest follow) and its
own folder, `<state>/kafka-cluster/kafka-<n>/`. Topics are created with replication 3 and
`min.insync.replicas=2`, so the cluster takes writes with acks=all while one broker is lost.
Tests start private clusters (free ports, a temporary folder) with `KafkaCluster` and kill a
broker while the simulator produces (tests/cluster/test_kafka_broker_loss.py).

Each node is the single broker's `KafkaService` (listeners, SCRAM credential at format time,
retention, JVM flags) with its own node id, ports and folder, a static quorum of the three
controllers and replication 3 for the internal topics. The three share one cluster id, kept in
`<state>/kafka-cluster/cluster-id`, and the stack's Kafka password.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import uuid
from base64 import urlsafe_b64encode
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from netflix_assets import settings
from netflix_assets.clients.kafka import KafkaClient, KafkaSettings
from netflix_assets.stack import secrets
from netflix_assets.stack.errors import StackError
from netflix_assets.stack.process import alive, create_once, wait_until
from netflix_assets.stack.services import KafkaService, Service
from schema import topics

NAME = "kafka-cluster"
PORT_ENV = "NETFLIX_ASSETS_KAFKA_CLUSTER_PORT"
NODES = 3
REPLICATION = 3
MIN_INSYNC_REPLICAS = 2
START_TIMEOUT_S = 240.0
"""Three JVMs formatting and starting at once on a loaded 2-core host take minutes, not seconds."""


@dataclasses.dataclass(frozen=True)
class ClusterPorts:
    clients: tuple[int, ...]
    """Each node's SASL_PLAINTEXT client listener."""
    controllers: tuple[int, ...]
    """Each node's controller listener (PLAINTEXT, loopback, only the nodes use it)."""


def stack_ports() -> ClusterPorts:
    """The stack's cluster: three client ports from NETFLIX_ASSETS_KAFKA_CLUSTER_PORT (19292),
    then the three controller ports."""
    first = int(os.environ.get(PORT_ENV, "19292"))
    return ClusterPorts(
        clients=tuple(first + i for i in range(NODES)),
        controllers=tuple(first + NODES + i for i in range(NODES)),
    )


def free_ports() -> ClusterPorts:
    """Free loopback ports for a private cluster (a test's)."""
    from netflix_assets.stack.spark_cluster import loopback_ports  # imports pyspark: tests only

    ports = loopback_ports(2 * NODES)
    return ClusterPorts(clients=tuple(ports[:NODES]), controllers=tuple(ports[NODES:]))


def node_properties(single_broker: str, node_id: int, ports: ClusterPorts) -> str:
    """A node's server.properties: the single broker's, as a member of a static quorum of the
    cluster's controllers, with replication 3 for the internal topics and as the default."""
    props = dict(line.split("=", 1) for line in single_broker.splitlines() if line)
    props.pop("controller.quorum.bootstrap.servers", None)
    voters = ",".join(f"{i + 1}@{settings.HOST}:{port}" for i, port in enumerate(ports.controllers))
    replication, min_isr = str(REPLICATION), str(MIN_INSYNC_REPLICAS)
    props |= {
        "node.id": str(node_id),
        "controller.quorum.voters": voters,
        "default.replication.factor": replication,
        "min.insync.replicas": min_isr,
        "offsets.topic.replication.factor": replication,
        "transaction.state.log.replication.factor": replication,
        "transaction.state.log.min.isr": min_isr,
        "share.coordinator.state.topic.replication.factor": replication,
        "share.coordinator.state.topic.min.isr": min_isr,
    }
    return "".join(f"{key}={value}\n" for key, value in props.items())


class KafkaNode(KafkaService):
    """Node `index` (node id index + 1) of a cluster under `state`."""

    def __init__(self, state: Path, ports: ClusterPorts, index: int) -> None:
        self.state = state
        self.ports = ports
        self.index = index
        name = f"kafka-{index + 1}"
        Service.__init__(
            self,
            name=name,
            port=ports.clients[index],
            port_env=PORT_ENV,
            # The config path is on the node's command line: unique per node and per cluster,
            # so neither the stack's single broker nor another node is ever taken for this one.
            marker=str(state / name / "server.properties"),
            start_timeout_s=START_TIMEOUT_S,
            endpoint=f"{settings.HOST}:{ports.clients[index]}",
        )
        self.controller_port = ports.controllers[index]

    @property
    def home(self) -> Path:
        return self.state / self.name

    def _properties(self, listener: str, port: int) -> str:
        return node_properties(super()._properties(listener, port), self.index + 1, self.ports)

    def _format_args(self) -> list[str]:
        """Every node is formatted with the cluster's one id; the quorum is static."""
        return ["-t", cluster_id(self.state)]

    def _add_credential_in_place(self) -> None:
        """The single broker's migration starts it alone; a node cannot answer without a
        quorum, and the cluster holds nothing worth migrating."""
        raise StackError(
            f"{self.home} was formatted with another Kafka password than "
            f"{settings.secrets_dir() / 'kafka-password'}; the three-broker cluster is a scratch "
            f"cluster: `netflix-assets stack down {NAME}`, remove {self.state} and start it again"
        )


def cluster_id(state: Path) -> str:
    """The cluster's id, generated once into <state>/cluster-id; created whole and once
    (process.create_once), so nodes formatting at the same moment read one value."""
    state.mkdir(parents=True, exist_ok=True)
    fresh = urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    path = state / "cluster-id"
    value = create_once(path, fresh + "\n").strip()
    if not value:
        raise StackError(f"{path} is empty: remove {state} and start the cluster again")
    return value


class KafkaCluster:
    """Three nodes under `state`, as detached processes with pid files (the stack's cluster
    outlives `stack up`; a test's is stopped by the test). Use as a context manager, or call
    start() and stop()."""

    def __init__(self, state: Path, ports: ClusterPorts) -> None:
        self.state = state
        self.ports = ports
        self.nodes = [KafkaNode(state, ports, i) for i in range(len(ports.clients))]

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(node.endpoint for node in self.nodes)

    def settings(self) -> KafkaSettings:
        """Client settings for the whole cluster: every node as a bootstrap server, the stack's
        SCRAM user and password."""
        return dataclasses.replace(
            self.nodes[0].client_settings(), bootstrap_servers=self.bootstrap_servers
        )

    def client(self, request_timeout_s: float = 10.0) -> KafkaClient:
        return KafkaClient(self.settings(), request_timeout_s)

    def start(self) -> dict[str, str]:
        """Starts the nodes that do not run, all at once: a node answers only once a quorum of
        controllers runs, so one after another would wait on the first forever. Returns what
        happened to each; stops them again when the cluster does not come up whole."""
        self.state.mkdir(parents=True, exist_ok=True)
        # Both are created once and whole however the nodes' threads race; made here all the
        # same, so a broken state folder fails before any node starts.
        secrets.ensure(secrets.KAFKA_PASSWORD)
        cluster_id(self.state)
        try:
            with ThreadPoolExecutor(len(self.nodes)) as pool:
                outcomes = list(pool.map(KafkaNode.up, self.nodes))
            if not wait_until(self.healthy, START_TIMEOUT_S, interval_s=1.0):
                raise StackError(
                    f"the {len(self.nodes)} Kafka nodes under {self.state} run but do not all "
                    f"show as brokers within {START_TIMEOUT_S:.0f}s; see their logs "
                    f"({', '.join(str(n.log) for n in self.nodes)})"
                )
        except StackError:
            self.stop()
            raise
        return {node.name: outcome for node, outcome in zip(self.nodes, outcomes, strict=True)}

    def healthy(self) -> bool:
        """Every node up and answering, and the cluster's metadata listing all of them."""
        if not all(node.healthy() for node in self.nodes):
            return False
        try:
            metadata = self.client().admin().list_topics(timeout=5)
        except Exception:
            return False
        return len(metadata.brokers) == len(self.nodes)

    def running(self) -> bool:
        return any(node.running() for node in self.nodes)

    def stop(self) -> dict[str, str]:
        """SIGTERM to every node at once (one at a time, the last ones would wait for a quorum
        that has gone), SIGKILL for one still there after 20 s."""
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            outcomes = list(pool.map(KafkaNode.down, self.nodes))
        return {node.name: outcome for node, outcome in zip(self.nodes, outcomes, strict=True)}

    def kill(self, node_id: int) -> None:
        """SIGKILL the node with this node id, as a lost machine; its data stays for a restart."""
        node = self.node(node_id)
        pid = node.pid()
        if not node.running() or pid is None:
            raise StackError(f"Kafka node {node_id} ({node.name}) is not running; nothing to kill")
        os.kill(pid, signal.SIGKILL)
        if not wait_until(lambda: not alive(pid, node.marker), 10.0):
            raise StackError(f"Kafka node {node_id} (pid {pid}) outlived SIGKILL for 10 s")

    def restart(self, node_id: int) -> str:
        """Starts a stopped node again; it rejoins the quorum and catches its replicas up."""
        return self.node(node_id).up()

    def node(self, node_id: int) -> KafkaNode:
        if not 1 <= node_id <= len(self.nodes):
            raise StackError(f"no Kafka node {node_id}: the cluster's ids are 1-{len(self.nodes)}")
        return self.nodes[node_id - 1]

    def create_topics(self, partitions: dict[str, int]) -> list[str]:
        """Topics (name -> partitions) with replication 3 and min.insync.replicas=2; returns the
        names it created."""
        client = self.client()
        config = {"min.insync.replicas": str(MIN_INSYNC_REPLICAS)}
        created = []
        for name, count in partitions.items():
            created += client.ensure_topics([name], count, REPLICATION, config)
        return created

    def __enter__(self) -> KafkaCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class KafkaClusterService(Service):
    """The stack's three-broker cluster as one optional service: `stack up kafka-cluster` starts
    its nodes and creates the project's topics on it; `stack status` lists it while it runs."""

    def __init__(self) -> None:
        self.cluster = KafkaCluster(settings.state_dir() / NAME, stack_ports())
        super().__init__(
            name=NAME,
            port=self.cluster.ports.clients[0],
            port_env=PORT_ENV,
            marker="kafka.Kafka",
            start_timeout_s=START_TIMEOUT_S,
            endpoint=self.cluster.bootstrap_servers,
        )

    def pid(self) -> int | None:
        """The first running node's pid (each node keeps its own pid file)."""
        return next((node.pid() for node in self.cluster.nodes if node.running()), None)

    def running(self) -> bool:
        return self.cluster.running()

    def healthy(self) -> bool:
        return self.cluster.healthy()

    def up(self) -> str:
        if self.healthy():
            return "already running"
        outcomes = self.cluster.start()
        created = self.cluster.create_topics(topics.PARTITIONS)
        started = sorted(name for name, outcome in outcomes.items() if outcome != "already running")
        return f"started {', '.join(started) or 'no node'}; {len(created)} topics created"

    def down(self) -> str:
        if not self.running():
            return "not running"
        self.cluster.stop()
        return "stopped"


def services() -> list[Service]:
    """Optional: started only when named (`stack up kafka-cluster` or `--with kafka-cluster`)."""
    return [KafkaClusterService()]
