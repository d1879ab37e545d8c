"""Kafka: producer, consumer and admin factories for the broker named by bootstrap_servers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from dagster import ConfigurableResource
from pydantic import Field

from netflix_assets import settings


class KafkaResource(ConfigurableResource):
    """Clients for one Kafka cluster. Producers are idempotent (acks=all) so a retried send after
    a broker restart never writes a duplicate; consumers never auto-commit, because the platform
    keeps offsets where the data lands (sensor cursors, the bronze Delta table)."""

    bootstrap_servers: str = Field(
        default=settings.kafka_bootstrap(),
        description="Comma-separated host:port list (env NETFLIX_ASSETS_KAFKA_BOOTSTRAP).",
    )
    request_timeout_s: float = 10.0

    def _base(self) -> dict[str, Any]:
        return {"bootstrap.servers": self.bootstrap_servers}

    def producer(self, **conf: Any) -> Producer:
        merged = {
            **self._base(),
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 20,
            "compression.type": "lz4",
            **conf,
        }
        return Producer(merged)

    def consumer(self, group_id: str, **conf: Any) -> Consumer:
        merged = {
            **self._base(),
            "group.id": group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            **conf,
        }
        return Consumer(merged)

    def admin(self) -> AdminClient:
        return AdminClient(self._base())

    def ensure_topics(self, names: list[str] | tuple[str, ...], partitions: int = 1) -> list[str]:
        """Create the topics that do not exist yet; returns the names it created."""
        admin = self.admin()
        existing = set(admin.list_topics(timeout=self.request_timeout_s).topics)
        missing = [n for n in names if n not in existing]
        if not missing:
            return []
        futures = admin.create_topics(
            [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in missing]
        )
        for future in futures.values():
            try:
                future.result(self.request_timeout_s)
            except KafkaException as exc:
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise
        return missing

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
        ms) up to the end offsets at the call, without joining a group or committing.

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
                yield message.value()
                if message.offset() + 1 >= ends[message.partition()]:
                    todo.pop(message.partition(), None)
            if todo:
                raise TimeoutError(
                    f"reading {topic}: partitions {sorted(todo)} stopped short of their end "
                    f"offsets (is the broker up at {self.bootstrap_servers}?)"
                )
        finally:
            consumer.close()
