"""up / down / status over the stack's services, and the endpoints other code connects to."""

from __future__ import annotations

import time
from dataclasses import dataclass

from netflix_assets import settings
from netflix_assets.stack import edge, flink_cluster, kafka_cluster, monitoring
from netflix_assets.stack.errors import StackError
from netflix_assets.stack.services import Service, all_services
from schema import topics


@dataclass
class ServiceStatus:
    name: str
    running: bool
    healthy: bool
    pid: int | None
    endpoint: str


def up(names: list[str] | None = None) -> dict[str, str]:
    """Start every (or the named) service; returns what happened to each, with start seconds."""
    outcome: dict[str, str] = {}
    for service in _select(names):
        started = time.monotonic()
        result = service.up()
        outcome[service.name] = f"{result} ({time.monotonic() - started:.1f}s)"
    if names is None or "kafka" in names:
        from resources.kafka import KafkaResource

        kafka = KafkaResource(bootstrap_servers=settings.kafka_bootstrap())
        for name, partitions in topics.PARTITIONS.items():
            kafka.ensure_topics([name], partitions=partitions)
    return outcome


def down(names: list[str] | None = None) -> dict[str, str]:
    """Stop only the services this stack started (pid files under the state folder)."""
    optional = [
        *monitoring.services(),
        *edge.services(),
        *flink_cluster.services(),
        *kafka_cluster.services(),
    ]
    chosen = _select(names) if names else [*all_services(), *optional]
    return {s.name: s.down() for s in reversed(chosen)}


def status() -> list[ServiceStatus]:
    return [
        ServiceStatus(s.name, s.running(), s.healthy(), s.pid(), s.endpoint)
        for s in [
            *all_services(),
            *(m for m in [*monitoring.services(), *edge.services()] if m.running()),
            *(f for f in [*flink_cluster.services(), *kafka_cluster.services()] if f.running()),
        ]
    ]


def is_up() -> bool:
    return all(s.healthy for s in status())


def endpoints() -> dict[str, object]:
    """Every endpoint a client needs, as `stack status --json` prints it."""
    return {
        "kafka_bootstrap_servers": settings.kafka_bootstrap(),
        "redis_url": settings.redis_url(),
        "postgres_dsn": settings.postgres_dsn(),
        "object_store_root": settings.object_store_root(),
        "dagster_home": str(settings.state_dir() / "dagster"),
        "kafka_topics": list(topics.ALL),
    }


def _select(names: list[str] | None) -> list[Service]:
    services = all_services()
    if names is None:
        return services
    services = [*services, *monitoring.services(), *edge.services()]  # optional: only when named
    services += [*flink_cluster.services(), *kafka_cluster.services()]
    names = flink_cluster.expand(monitoring.expand(names))
    unknown = set(names) - {s.name for s in services}
    if unknown:
        raise StackError(
            f"unknown service(s) {sorted(unknown)}; known: {[s.name for s in services]}"
        )
    return [s for s in services if s.name in names]
