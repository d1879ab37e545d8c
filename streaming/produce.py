"""Send simulated viewing events to Kafka, fast: batched, lz4, idempotent producer."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from netflix_assets.clients.kafka import KafkaClient
from schema import topics
from streaming.simulator import SimConfig, Simulator


@dataclass
class ProduceReport:
    topic: str
    produced: int = 0
    seconds: float = 0.0
    kinds: Counter = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return self.produced / self.seconds if self.seconds else 0.0


def produce_simulated(
    kafka: KafkaClient,
    config: SimConfig,
    rate: float | None = None,
    topic: str = topics.VIEWING_EVENTS,
    simulator: type[Simulator] = Simulator,
) -> ProduceReport:
    """Produce every message of a simulation; `rate` (events/s) paces it for live demos.

    The topic is created first when missing (the broker does not auto-create topics, and
    librdkafka would otherwise fail every message after 30 s). Every delivery report is checked:
    a failed delivery raises with the broker's reason instead of counting as produced.

    Record timestamps are the event times, so a simulated past day lands on its own date in
    bronze, but never later than now: Kafka 4 rejects records stamped more than an hour ahead
    of the broker (log.message.timestamp.after.max.ms), and a simulated "today" runs to
    midnight. The event time in the payload is unchanged; silver judges it."""
    kafka.ensure_topics([topic], partitions=topics.PARTITIONS[topics.VIEWING_EVENTS])
    producer = kafka.producer(
        **{"linger.ms": 50, "batch.size": 1_000_000, "queue.buffering.max.messages": 1_000_000}
    )
    report = ProduceReport(topic)
    failures: Counter = Counter()

    def delivered(err, _msg) -> None:
        if err is not None:
            failures[str(err)] += 1

    started = time.perf_counter()
    ceiling = int(time.time() * 1000)
    for message in simulator(config).messages():
        while True:
            try:
                producer.produce(
                    topic,
                    message.value,
                    message.key,
                    timestamp=min(message.timestamp_ms, ceiling),
                    on_delivery=delivered,
                )
                break
            except BufferError:
                producer.poll(0.05)  # local queue full: let the broker catch up
        report.produced += 1
        report.kinds[message.kind] += 1
        if report.produced % 10_000 == 0:
            producer.poll(0)
            ceiling = int(time.time() * 1000)
            if rate:
                ahead = report.produced / rate - (time.perf_counter() - started)
                if ahead > 0:
                    time.sleep(ahead)
    remaining = producer.flush(60)
    if remaining:
        raise RuntimeError(f"{remaining} events were not acknowledged by {kafka.bootstrap_servers}")
    if failures:
        reason, count = failures.most_common(1)[0]
        raise RuntimeError(
            f"{sum(failures.values())} of {report.produced} events were not delivered to "
            f"{topic!r} ({count}x {reason})"
        )
    report.seconds = time.perf_counter() - started
    return report
