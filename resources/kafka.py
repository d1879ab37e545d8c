"""Kafka: the Dagster resource over the plain client `netflix_assets.clients.kafka`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from dagster import ConfigurableResource
from pydantic import Field

from netflix_assets import settings
from netflix_assets.clients.kafka import KafkaClient, KafkaSettings


class KafkaResource(ConfigurableResource):
    """Clients for one Kafka cluster (see KafkaClient). Fields left empty are resolved when a
    client connects: from the NETFLIX_ASSETS_KAFKA_* environment variables, else the local
    stack (its SCRAM password from `.state/secrets/`), so no password sits in the resource's
    visible config. Production binds them with EnvVar, e.g.
    `KafkaResource(sasl_password=EnvVar("NETFLIX_ASSETS_KAFKA_PASSWORD"))`."""

    bootstrap_servers: str = Field(
        default=settings.kafka_bootstrap(),
        description="Comma-separated host:port list (env NETFLIX_ASSETS_KAFKA_BOOTSTRAP).",
    )
    security_protocol: str = Field(
        default="", description="SASL_PLAINTEXT, SASL_SSL or PLAINTEXT; empty: env or local."
    )
    sasl_mechanism: str = Field(default="", description="SCRAM-SHA-512 or SCRAM-SHA-256.")
    sasl_username: str = Field(default="", description="SCRAM user; empty: env or `netflix`.")
    sasl_password: str = Field(default="", description="Empty: env or the local stack's secret.")
    request_timeout_s: float = 10.0

    def kafka_settings(self) -> KafkaSettings:
        return KafkaSettings.from_env(
            bootstrap_servers=self.bootstrap_servers,
            security_protocol=self.security_protocol,
            sasl_mechanism=self.sasl_mechanism,
            sasl_username=self.sasl_username,
            sasl_password=self.sasl_password,
        )

    def client(self) -> KafkaClient:
        return KafkaClient(self.kafka_settings(), self.request_timeout_s)

    def producer(self, **conf: Any) -> Producer:
        return self.client().producer(**conf)

    def consumer(self, group_id: str, **conf: Any) -> Consumer:
        return self.client().consumer(group_id, **conf)

    def admin(self) -> AdminClient:
        return self.client().admin()

    def ensure_topics(self, names: list[str] | tuple[str, ...], partitions: int = 1) -> list[str]:
        return self.client().ensure_topics(names, partitions)

    def topic_id(self, topic: str) -> str:
        return self.client().topic_id(topic)

    def watermarks(self, topic: str) -> dict[int, tuple[int, int]]:
        return self.client().watermarks(topic)

    def read_since(self, topic: str, since_ms: int, read_committed: bool = True) -> Iterator[bytes]:
        return self.client().read_since(topic, since_ms, read_committed)

    def spark_options(self) -> dict[str, str]:
        return self.kafka_settings().spark_options()
