"""Kafka: the one place connection settings live, and a plain client over confluent-kafka.

Every Kafka client of the project (confluent-kafka producers, consumers and admin clients, the
Spark Kafka source, the PyFlink Kafka connector) takes its settings from `KafkaSettings`:
bootstrap servers, security protocol and the SASL mechanism, user and password. Each setting
comes from the caller, else an environment variable, else the local stack's default; the local
stack's password is the one `netflix-assets stack up` generated into `.state/secrets/`, read
when a client connects, so no password sits in code, config files or command lines.

| setting | environment variable | local default |
|---|---|---|
| bootstrap servers | `NETFLIX_ASSETS_KAFKA_BOOTSTRAP` | `127.0.0.1:19092` |
| security protocol | `NETFLIX_ASSETS_KAFKA_SECURITY_PROTOCOL` | `SASL_PLAINTEXT` (loopback) |
| SASL mechanism | `NETFLIX_ASSETS_KAFKA_SASL_MECHANISM` | `SCRAM-SHA-512` |
| SASL user | `NETFLIX_ASSETS_KAFKA_USER` | `netflix` |
| SASL password | `NETFLIX_ASSETS_KAFKA_PASSWORD` | `.state/secrets/kafka-password` |
| CA file (SASL_SSL) | `NETFLIX_ASSETS_KAFKA_SSL_CA` | the system's CAs |
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

from netflix_assets import settings

PASSWORD_SECRET = "kafka-password"
"""File name of the local stack's generated SCRAM password under `.state/secrets/`."""
DEFAULT_USER = "netflix"
DEFAULT_MECHANISM = "SCRAM-SHA-512"
DEFAULT_PROTOCOL = "SASL_PLAINTEXT"
PROTOCOLS = ("PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")

_LOGIN_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"
# flink-sql-connector-kafka relocates the Kafka client under this package; the JAAS line must
# name the relocated class or the connector fails with "No LoginModule found".
_FLINK_SHADED = "org.apache.flink.kafka.shaded."


class KafkaConfigError(ValueError):
    """The Kafka settings cannot make a working client; the message names the setting."""


@dataclass(frozen=True)
class KafkaSettings:
    """How to reach and authenticate to one Kafka cluster."""

    bootstrap_servers: str
    security_protocol: str = DEFAULT_PROTOCOL
    sasl_mechanism: str = DEFAULT_MECHANISM
    sasl_username: str = DEFAULT_USER
    sasl_password: str = field(default="", repr=False)
    ssl_ca_location: str = ""

    @classmethod
    def from_env(
        cls,
        bootstrap_servers: str = "",
        security_protocol: str = "",
        sasl_mechanism: str = "",
        sasl_username: str = "",
        sasl_password: str = "",
        ssl_ca_location: str = "",
    ) -> KafkaSettings:
        """Each argument left empty comes from its environment variable, else the local stack."""
        env = os.environ.get
        protocol = (
            security_protocol or env("NETFLIX_ASSETS_KAFKA_SECURITY_PROTOCOL") or DEFAULT_PROTOCOL
        ).upper()
        found = cls(
            bootstrap_servers=bootstrap_servers or settings.kafka_bootstrap(),
            security_protocol=protocol,
            sasl_mechanism=(
                sasl_mechanism or env("NETFLIX_ASSETS_KAFKA_SASL_MECHANISM") or DEFAULT_MECHANISM
            ).upper(),
            sasl_username=sasl_username or env("NETFLIX_ASSETS_KAFKA_USER") or DEFAULT_USER,
            sasl_password=sasl_password
            or env("NETFLIX_ASSETS_KAFKA_PASSWORD")
            or (settings.local_secret(PASSWORD_SECRET) if protocol != "PLAINTEXT" else None)
            or "",
            ssl_ca_location=ssl_ca_location or env("NETFLIX_ASSETS_KAFKA_SSL_CA") or "",
        )
        found.validate()
        return found

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    def validate(self) -> None:
        if not self.bootstrap_servers.strip():
            raise KafkaConfigError(
                "no Kafka bootstrap servers: set NETFLIX_ASSETS_KAFKA_BOOTSTRAP=host:port[,...]"
            )
        if self.security_protocol not in PROTOCOLS:
            raise KafkaConfigError(
                f"Kafka security protocol {self.security_protocol!r} is not supported: use one "
                f"of {', '.join(PROTOCOLS)} (NETFLIX_ASSETS_KAFKA_SECURITY_PROTOCOL)"
            )
        if not self.uses_sasl:
            return
        if self.sasl_mechanism not in MECHANISMS:
            raise KafkaConfigError(
                f"Kafka SASL mechanism {self.sasl_mechanism!r} is not supported: use one of "
                f"{', '.join(MECHANISMS)} (NETFLIX_ASSETS_KAFKA_SASL_MECHANISM)"
            )
        if not self.sasl_username:
            raise KafkaConfigError("no Kafka SASL user: set NETFLIX_ASSETS_KAFKA_USER")
        if not self.sasl_password:
            raise KafkaConfigError(
                f"no Kafka password for user {self.sasl_username!r}: set "
                "NETFLIX_ASSETS_KAFKA_PASSWORD, or start the local stack (`netflix-assets stack "
                f"up`), which generates {settings.secrets_dir() / PASSWORD_SECRET}"
            )

    def confluent(self) -> dict[str, Any]:
        """librdkafka properties (confluent-kafka Producer, Consumer, AdminClient)."""
        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
        }
        if self.uses_sasl:
            conf |= {
                "sasl.mechanism": self.sasl_mechanism,
                "sasl.username": self.sasl_username,
                "sasl.password": self.sasl_password,
            }
        if self.ssl_ca_location:
            conf["ssl.ca.location"] = self.ssl_ca_location
        return conf

    def java_properties(self, login_module: str = _LOGIN_MODULE) -> dict[str, str]:
        """The Java Kafka client's properties (the JAAS line carries the password)."""
        props = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
        }
        if self.uses_sasl:
            props["sasl.mechanism"] = self.sasl_mechanism
            props["sasl.jaas.config"] = self.jaas_config(login_module)
        if self.ssl_ca_location:
            props |= {
                "ssl.truststore.type": "PEM",
                "ssl.truststore.location": self.ssl_ca_location,
            }
        return props

    def jaas_config(self, login_module: str = _LOGIN_MODULE) -> str:
        return (
            f"{login_module} required username={_jaas_quote(self.sasl_username)} "
            f"password={_jaas_quote(self.sasl_password)};"
        )

    def spark_options(self) -> dict[str, str]:
        """Options of Spark's Kafka source/sink (`spark.read.format("kafka").options(...)`).
        Spark redacts option values matching `spark.redaction.regex` (`password`) in its UI."""
        return {f"kafka.{k}": v for k, v in self.java_properties().items()}

    def flink_properties(self) -> dict[str, str]:
        """WITH options of Flink's Kafka SQL connector (`properties.*`), naming the connector's
        relocated login module."""
        shaded = self.java_properties(_FLINK_SHADED + _LOGIN_MODULE)
        return {f"properties.{k}": v for k, v in shaded.items()}


def _jaas_quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


class KafkaClient:
    """Clients for one Kafka cluster. Producers are idempotent (acks=all) so a retried send after
    a broker restart never writes a duplicate; consumers never auto-commit, because the platform
    keeps offsets where the data lands (sensor cursors, the bronze Delta table)."""

    def __init__(self, kafka: KafkaSettings, request_timeout_s: float = 10.0) -> None:
        self.settings = kafka
        self.request_timeout_s = request_timeout_s

    @property
    def bootstrap_servers(self) -> str:
        return self.settings.bootstrap_servers

    def producer(self, **conf: Any) -> Producer:
        merged = {
            **self.settings.confluent(),
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 20,
            "compression.type": "lz4",
            **conf,
        }
        return Producer(merged)

    def consumer(self, group_id: str, **conf: Any) -> Consumer:
        merged = {
            **self.settings.confluent(),
            "group.id": group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            **conf,
        }
        return Consumer(merged)

    def admin(self) -> AdminClient:
        return AdminClient(self.settings.confluent())

    def ensure_topics(
        self,
        names: list[str] | tuple[str, ...],
        partitions: int = 1,
        replication_factor: int = 1,
        config: dict[str, str] | None = None,
    ) -> list[str]:
        """Create the topics that do not exist yet (with the topic-level `config`, e.g.
        min.insync.replicas); returns the names it created."""
        admin = self.admin()
        existing = set(admin.list_topics(timeout=self.request_timeout_s).topics)
        missing = [n for n in names if n not in existing]
        if not missing:
            return []
        futures = admin.create_topics(
            [NewTopic(n, partitions, replication_factor, config=config or {}) for n in missing]
        )
        for future in futures.values():
            try:
                future.result(self.request_timeout_s)
            except KafkaException as exc:
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise
        return missing

    def topic_id(self, topic: str) -> str:
        """The topic's id (base64 UUID): a deleted and re-created topic gets a new one, so a
        reader that kept it can tell the new topic from the one it read, whatever its offsets."""
        admin = self.admin()  # held until the answer arrives: a dropped handle cancels it
        futures = admin.describe_topics(
            TopicCollection([topic]), request_timeout=self.request_timeout_s
        )
        return str(futures[topic].result(self.request_timeout_s).topic_id)

    def watermarks(self, topic: str) -> dict[int, tuple[int, int]]:
        """Low and high offsets per partition of a topic, read without joining a group.

        Right after a broker restart its partitions have no leader for a moment; those errors
        are retried until request_timeout_s instead of failing the sensor tick or the run."""
        consumer = self.consumer(group_id="netflix-assets-watermarks")
        deadline = time.monotonic() + self.request_timeout_s
        try:
            while True:
                try:
                    meta = consumer.list_topics(topic, timeout=self.request_timeout_s)
                    partitions = meta.topics[topic].partitions
                    return {
                        p: consumer.get_watermark_offsets(
                            TopicPartition(topic, p), timeout=self.request_timeout_s
                        )
                        for p in sorted(partitions)
                    }
                except KafkaException as exc:
                    error = exc.args[0] if exc.args else None
                    retriable = getattr(error, "retriable", lambda: False)() or getattr(
                        error, "code", lambda: None
                    )() in (KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE)
                    if not retriable or time.monotonic() > deadline:
                        raise
                    time.sleep(0.25)
        finally:
            consumer.close()

    def read_since(self, topic: str, since_ms: int, read_committed: bool = True) -> Iterator[bytes]:
        """Every message value of a topic from the first offset at or after a timestamp (epoch
        ms) up to the end offsets at the call (read_records_since without the timestamps)."""
        for value, _ in self.read_records_since(topic, since_ms, read_committed):
            yield value

    def read_records_since(
        self, topic: str, since_ms: int, read_committed: bool = True
    ) -> Iterator[tuple[bytes, int]]:
        """(value, timestamp ms) of every message of a topic from the first offset at or after
        a timestamp (epoch ms) up to the end offsets at the call, without joining a group or
        committing. Producers' timestamps need not rise along a partition, so a caller that
        wants one time range filters on them.

        read_committed skips aborted transactions, as the QoE job's exactly-once sinks need;
        their commit markers take offsets that are never delivered, so progress is taken from
        the consumer's position, not from the last message seen."""
        ends = {p: high for p, (_, high) in self.watermarks(topic).items()}
        isolation = "read_committed" if read_committed else "read_uncommitted"
        consumer = self.consumer(group_id="netflix-assets-reader", **{"isolation.level": isolation})
        try:
            starts = consumer.offsets_for_times(
                [TopicPartition(topic, p, since_ms) for p in ends], timeout=self.request_timeout_s
            )
            # -1: no message at or after the time, so nothing to read in that partition.
            todo = {tp.partition: tp.offset for tp in starts if 0 <= tp.offset < ends[tp.partition]}
            if not todo:
                return
            consumer.assign([TopicPartition(topic, p, o) for p, o in todo.items()])
            patience = max(self.request_timeout_s, 1.0) * 6
            deadline = time.monotonic() + patience
            while todo and time.monotonic() < deadline:
                message = consumer.poll(0.5)
                if message is None or message.error():
                    # Nothing delivered: markers may sit at the end, so ask where we are.
                    done = [
                        tp.partition
                        for tp in consumer.position([TopicPartition(topic, p) for p in todo])
                        if tp.offset >= ends[tp.partition]
                    ]
                    for partition in done:
                        todo.pop(partition)
                    continue
                deadline = time.monotonic() + patience
                yield message.value(), message.timestamp()[1]
                if message.offset() + 1 >= ends[message.partition()]:
                    todo.pop(message.partition(), None)
            if todo:
                raise TimeoutError(
                    f"reading {topic}: partitions {sorted(todo)} stopped short of their end "
                    f"offsets (is the broker up at {self.bootstrap_servers}?)"
                )
        finally:
            consumer.close()


def client(request_timeout_s: float = 10.0, **overrides: str) -> KafkaClient:
    """A client with settings from the environment / local stack (overrides: KafkaSettings
    fields)."""
    return KafkaClient(KafkaSettings.from_env(**overrides), request_timeout_s)
